"""The generative workload on PyTorch: transformers' model with a static KV cache, greedy.

One generation (:meth:`TorchGeneration.generate`) is the prefill of the prompt through
the model's forward with a :class:`transformers.StaticCache`, then one forward per
decoded token, each token chosen by argmax and read to the host before its stamp (so the
device has finished it). The cache is allocated once for prompt + generated tokens and
reset at the start of every generation (the reset is part of what is timed: a caller pays
it too). The loop is written out instead of calling ``generate()`` so that the tokens are
exactly ``tokens_per_run`` (no end-of-sequence stop, no logits processors), each stamped
when it exists; the agreement check compares it with ``generate()``'s own greedy tokens.

torch.compile, where the backend asks for it, compiles the one-token decode step with a
fixed shape (as transformers' own auto-compile does); the prefill stays eager.
Not a runtime module: the PyTorch backends of :mod:`anetui.backends.torch` use it when
the spec is a decoder.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from anetui.backends.generation import TokenClock
from anetui.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch


def load_decoder(spec: ModelSpec, dtype: torch.dtype, device: str) -> Any:
    """The folder's causal LM (safetensors only, no network, no code from the folder),
    in ``dtype`` on ``device``, eval mode, with no generation settings of its own."""
    from anetui.models.hf import _transformers, folder_config, from_folder

    assert spec.path is not None
    _, arch = folder_config(spec.path)
    model = from_folder(spec.path, arch, dtype)
    model.generation_config = _transformers().GenerationConfig()  # no eos stop, no sampling
    return model.to(device).eval()


def reference_tokens(spec: ModelSpec) -> list[int]:
    """transformers' own ``generate()``, greedy, fp32 on the CPU: the tokens every backend
    is compared with (``gen_len`` of them; no end-of-sequence token stops it)."""
    import torch

    assert spec.generation is not None
    model = load_decoder(spec, torch.float32, "cpu")
    prompt = torch.from_numpy(spec.make_inputs()["input_ids"])
    n = spec.generation.gen_len
    with torch.inference_mode():
        out = model.generate(
            prompt,
            max_new_tokens=n,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
            attention_mask=torch.ones_like(prompt),
        )
    tokens = [int(t) for t in out[0, prompt.shape[1] :].tolist()]
    del model
    return tokens


class TorchGeneration:
    """Greedy generation with a static KV cache on one device (see the module).

    ``sync``: waits for the device (CUDA/MPS); reading each token to the host already
    does, it is called once more at the end so nothing is left in flight.
    """

    def __init__(
        self,
        model: Any,
        prompt: torch.Tensor,
        gen_len: int,
        *,
        sync: Callable[[], None] = lambda: None,
        compile_mode: str | None = None,
    ) -> None:
        import torch
        from transformers import StaticCache

        self.tokens_per_run = gen_len
        self._model = model
        self._prompt = prompt
        self._prompt_len = int(prompt.shape[1])
        self._sync = sync
        self._cache = StaticCache(config=model.config, max_cache_len=self._prompt_len + gen_len)
        device = prompt.device
        self._positions = torch.arange(self._prompt_len + gen_len, device=device)
        self._clock = TokenClock(gen_len)
        self._tokens = [0] * gen_len
        # transformers 5.x renamed forward's past_key_values to cache (the old name warns).
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._decode: Callable[..., Any] = model.forward
        if compile_mode is not None:
            self._decode = torch.compile(model.forward, mode=compile_mode, fullgraph=False)

    def generate(self) -> None:
        """One generation: prefill, then decode until ``tokens_per_run`` tokens exist."""
        n = self.tokens_per_run
        if n > len(self._tokens):
            raise ValueError(f"{n} tokens asked for, the cache holds {len(self._tokens)}")
        clock, tokens, positions, p = self._clock, self._tokens, self._positions, self._prompt_len
        clock.start()
        self._cache.reset()  # type: ignore[no-untyped-call]
        cache = {self._cache_arg: self._cache}
        out = self._model(
            input_ids=self._prompt, cache_position=positions[:p], use_cache=True, **cache
        )
        token = out.logits[:, -1, :].argmax(dim=-1)
        tokens[0] = int(token.item())  # on the host: the device has finished it
        clock.mark()
        for i in range(1, n):
            out = self._decode(
                input_ids=token.view(1, 1),
                cache_position=positions[p + i - 1 : p + i],
                use_cache=True,
                **cache,
            )
            token = out.logits[:, -1, :].argmax(dim=-1)
            tokens[i] = int(token.item())
            clock.mark()
        self._sync()

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None:
        return self._clock.times()

    def generated_tokens(self) -> list[int]:
        return self._tokens[: self._clock.tokens]

    def outputs(self) -> list[np.ndarray]:
        import torch

        saved = self.tokens_per_run
        self.tokens_per_run = len(self._tokens)
        try:
            with torch.inference_mode():
                self.generate()
        finally:
            self.tokens_per_run = saved
        return [np.asarray(self.generated_tokens(), dtype=np.int64)]


def prepare_generation(
    spec: ModelSpec,
    dtype: torch.dtype,
    device: str,
    *,
    sync: Callable[[], None],
    compile_mode: str | None,
) -> tuple[TorchGeneration, float, float]:
    """Load the decoder, build the generation and run it once (the compilation, if any,
    happens then). Returns it with the load and the compile time (s)."""
    import torch

    assert spec.generation is not None
    started = time.perf_counter()
    model = load_decoder(spec, dtype, device)
    prompt = torch.from_numpy(spec.make_inputs()["input_ids"]).to(device)
    generation = TorchGeneration(
        model, prompt, spec.generation.gen_len, sync=sync, compile_mode=compile_mode
    )
    sync()
    loaded = time.perf_counter()
    if compile_mode is not None:
        with torch.inference_mode():
            generation.generate()  # compiles the decode step
    return generation, loaded - started, time.perf_counter() - loaded
