"""MLX backends (the generative workload): mlx-lm's greedy generation on the CPU or Metal.

``mlx-cpu`` (Linux and macOS) and ``mlx-gpu`` (Metal, macOS on Apple silicon) load the
decoder's Hugging Face folder with ``mlx_lm.utils.load_model`` (the same safetensors the
PyTorch backends read; no tokenizer) and run one whole generation per :meth:`infer`:
mlx-lm's own ``generate_step`` with its default greedy sampler (argmax of the
log-probabilities) and no end-of-sequence stop (``generate_step`` has none; only
``stream_generate`` checks a tokenizer's), a fresh KV cache every time.

MLX is lazy: nothing is computed until a value is asked for. ``generate_step`` hands over
each token as ``y.item()`` — the value on the host, so the stamp taken when it arrives
comes after the token was computed, never before. It also pipelines: before handing over
token k it launches the step that computes token k + 1, so a run computes one decode step
beyond its last token; :meth:`MlxBackend.infer` waits for that step (``mx.synchronize``,
as mlx-lm's ``stream_generate`` does at its end) so no work spills into the next run.

Streams belong to threads in MLX 0.32 (a stream made in one thread raises "There is no
Stream(cpu, 1) in current thread" in another), and the runner prepares in one thread and
infers in another: the backend holds a ``ThreadLocalStream`` on its device, which gives
every thread its own stream there. The two backends differ only in that device.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from anetui.backends.base import (
    DTYPES,
    BackendDescription,
    BackendError,
    BackendOptions,
    NotAvailableHere,
    PrepareInfo,
)
from anetui.backends.generation import TokenClock, TokenHooks
from anetui.errors import Availability, one_line
from anetui.models.spec import DECODER_KIND, ModelSpec
from anetui.versions import package_version

INSTALL_HINT = "pip install 'anetui[mlx]'"
#: On Linux the ``mlx`` wheel holds ``mlx/core*.so`` but not ``libmlx.so``, which comes
#: from ``mlx-cpu`` (or ``mlx-cuda-*``): ``mlx.core`` is found but cannot load.
LINUX_HINT = "on Linux the mlx wheel alone has no working mlx.core: mlx[cpu] adds its library"
#: The MLX dtype of each ``--dtype``.
MLX_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: What ``mx.get_peak_memory`` counts (the note of every prepared backend).
PEAK_MEMORY_NOTE = (
    "device memory: mx.get_peak_memory since prepare, the bytes of MLX's own arrays at "
    "their peak (weights, KV cache, activations) as MLX's allocator counts them, not the "
    "process's RSS nor the allocator's buffer cache; the count is the process's, so it "
    "includes any other MLX backend's weights held at the time"
)
THREADS_NOTE = (
    "--threads {n} not applied: MLX has no thread-count setting (it runs each stream's "
    "operations on one scheduler thread; its matrix products go to the BLAS it was built "
    "with: Accelerate on macOS, the single-threaded reference BLAS bundled in the Linux "
    "mlx-cpu wheel)"
)


def mlx_installed() -> Availability:
    """mlx (with a loadable core) and mlx-lm installed; imports neither."""
    try:
        core = importlib.util.find_spec("mlx.core")
    except (ImportError, ValueError):
        core = None
    if core is None or core.origin is None:
        linux = f"; {LINUX_HINT}" if sys.platform.startswith("linux") else ""
        return Availability.no(f"mlx not installed ({INSTALL_HINT}{linux})")
    library = Path(core.origin).parent / "lib" / "libmlx.so"
    if sys.platform.startswith("linux") and not library.is_file():
        return Availability.no(f"mlx.core cannot load ({INSTALL_HINT}; {LINUX_HINT})")
    if importlib.util.find_spec("mlx_lm") is None:
        return Availability.no(f"mlx-lm not installed ({INSTALL_HINT})")
    return Availability.yes()


def mlx_metal() -> Availability:
    """MLX installed on macOS on Apple silicon (Metal); the GPU itself is checked by
    :meth:`MlxBackend.available`, which may import mlx."""
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return Availability.no("MLX's Metal GPU needs macOS on Apple silicon")
    return mlx_installed()


class MlxBackend(TokenHooks):
    """mlx-lm's greedy generation of a decoder folder on one MLX device (see the module)."""

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in DTYPES:
            raise BackendError(f"{self.id} computes in {', '.join(DTYPES)}, not {self.dtype}")
        self._description = description
        self._threads = options.threads
        self.tokens_per_run = 0
        self._gen_len = 0
        self._model: Any = None
        self._prompt: Any = None
        self._stream: Any = None
        self._generate_step: Any = None
        self._clock = TokenClock(0)
        self._tokens: list[int] = []
        self._old_wired_limit: int | None = None
        self._closed = True

    # -- availability ---------------------------------------------------------------
    def available(self) -> Availability:
        probe = self._description.probe()
        if not probe.ok:
            return probe
        try:
            import mlx.core as mx
        except (ImportError, OSError) as exc:
            return Availability.no(f"mlx.core cannot load: {one_line(exc)} ({INSTALL_HINT})")
        if not hasattr(mx, "new_thread_local_stream"):  # MLX >= 0.31.2
            return Availability.no(
                f"mlx {_version('mlx')} predates thread-local streams (0.31.2): "
                f"pip install -U 'anetui[mlx]'"
            )
        if self.device == "gpu" and not mx.metal.is_available():
            return Availability.no("MLX reports no Metal GPU here (mx.metal.is_available())")
        return Availability.yes()

    # -- preparation ----------------------------------------------------------------
    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        if spec.kind != DECODER_KIND or spec.generation is None or spec.path is None:
            raise BackendError(f"{self.id} runs decoders (a Hugging Face folder), not {spec.kind}")
        availability = self.available()
        if not availability.ok:
            raise NotAvailableHere(availability.reason or "not available here")
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.utils import maybe_set_recommended_wired_limit

        self.phase = "loading"
        started = time.perf_counter()
        device = mx.gpu if self.device == "gpu" else mx.cpu
        notes: list[str] = []
        try:
            with mx.stream(device):  # weights materialised on this backend's device
                model = load_decoder(Path(spec.path))
                stored = _float_dtype(model)
                model.set_dtype(getattr(mx, MLX_DTYPES[self.dtype]))
                mx.eval(model.parameters())
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise BackendError(f"{self.id} could not load {spec.path}: {one_line(exc)}") from None
        model.eval()
        if stored is not None and stored != MLX_DTYPES[self.dtype]:
            notes.append(f"the folder's {stored} weights cast to {MLX_DTYPES[self.dtype]}")
        # What mlx-lm's generate() does on Metal (a no-op where the device reports no
        # recommended working set, e.g. the CPU build): weights stay wired in memory.
        self._old_wired_limit = maybe_set_recommended_wired_limit()
        self._model = model
        self._generate_step = generate_step
        # int32, as mlx-lm tokenises; the ids are < the vocabulary, so nothing changes.
        self._prompt = mx.array(spec.make_inputs()["input_ids"][0].astype(np.int32))
        self._stream = mx.new_thread_local_stream(device)
        self._gen_len = spec.generation.gen_len
        self.tokens_per_run = self._gen_len
        self._clock = TokenClock(self._gen_len)
        self._closed = False
        loaded = time.perf_counter()
        mx.reset_peak_memory()  # the peak from here: weights held, KV cache, activations
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        notes.append(
            "mlx-lm's generate_step computes one decode step beyond the last token "
            "(it launches the next step before handing over a token); each run waits for it"
        )
        notes.append(PEAK_MEMORY_NOTE)
        if self._threads is not None:
            notes.append(THREADS_NOTE.format(n=self._threads))
        return PrepareInfo(
            load_s=loaded - started,
            compile_s=0.0,
            first_inference_ms=first_ns / 1e6,
            notes=spec.notes + tuple(notes),
            info={"mlx": _version("mlx"), "mlx_lm": _version("mlx-lm")},
        )

    # -- the timed call -------------------------------------------------------------
    def infer(self) -> None:
        """One generation: prefill, then greedy decoding until ``tokens_per_run`` tokens
        exist, each stamped once its value is on the host."""
        import mlx.core as mx

        n = self.tokens_per_run
        clock, tokens = self._clock, self._tokens
        tokens.clear()
        clock.start()
        # prompt_cache=None: generate_step makes a fresh KV cache for every generation.
        for token, _ in self._generate_step(
            self._prompt, self._model, stream=self._stream, max_tokens=n
        ):
            clock.mark()  # token is y.item(): its value exists on the host
            tokens.append(token)
        mx.synchronize(self._stream)  # the step launched beyond the last token

    # -- the generative hooks (anetui.backends.generation) ----------------------------
    def device_memory_mb(self) -> float | None:
        """MLX's peak memory since prepare (MB, 1e6 bytes); see :data:`PEAK_MEMORY_NOTE`."""
        if self._closed:
            return None
        import mlx.core as mx

        return float(mx.get_peak_memory()) / 1e6

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import mlx.core as mx

        self._model = self._prompt = self._stream = self._generate_step = None
        if self._old_wired_limit is not None:
            mx.set_wired_limit(self._old_wired_limit)
            self._old_wired_limit = None
        mx.clear_cache()


def load_decoder(folder: Path) -> Any:
    """The folder's model through ``mlx_lm.utils.load_model`` (weights evaluated, no
    tokenizer, no code from the folder), with the RoPE settings it would miss.

    transformers 5 writes RoPE as ``rope_parameters`` (``{"rope_theta": …, "rope_type":
    …, "factor": …}``); mlx-lm 0.32's Llama and Qwen2 read only the older top-level
    ``rope_theta`` and ``rope_scaling`` and silently use their own defaults (Llama:
    θ = 10000, Qwen2: 1e6, no scaling) — another model wherever the folder's differ
    (SmolLM2: θ = 1e5; Llama 3.2: 5e5 with llama3 scaling). Those two keys are given from
    ``rope_parameters`` where the folder lacks them.
    """
    from mlx_lm.utils import load_model

    model, _ = load_model(folder, model_config=rope_overrides(folder))
    return model


def rope_overrides(folder: Path) -> dict[str, Any]:
    """``rope_theta`` / ``rope_scaling`` from the folder's ``rope_parameters`` where its
    ``config.json`` has no top-level ones (see :func:`load_decoder`)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}  # load_model says what is wrong with the folder
    rope = config.get("rope_parameters") if isinstance(config, dict) else None
    if not isinstance(rope, dict):
        return {}
    overrides: dict[str, Any] = {}
    if "rope_theta" not in config and "rope_theta" in rope:
        overrides["rope_theta"] = rope["rope_theta"]
    scaled = rope.get("rope_type", "default") != "default"
    if scaled and config.get("rope_scaling") is None:
        overrides["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return overrides


def _float_dtype(model: Any) -> str | None:
    """The dtype name of the model's first floating-point parameter (None: none)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    leaves: dict[str, Any] = {}
    tree_flatten(model.parameters(), destination=leaves)
    for value in leaves.values():
        if mx.issubdtype(value.dtype, mx.floating):
            return str(value.dtype).removeprefix("mlx.core.")
    return None


def _version(distribution: str) -> str:
    return package_version(distribution) or "unknown"


_SUMMARY = (
    "mlx-lm on {where}: the folder's weights, generate_step (greedy, fresh KV cache), "
    "lazy graph evaluated per token"
)
BACKENDS = (
    BackendDescription(
        "mlx-cpu",
        "MLX",
        "cpu",
        "fp32",
        _SUMMARY.format(where="the CPU"),
        MlxBackend,
        mlx_installed,
        accepts=(DECODER_KIND,),
        graph="eager",
    ),
    BackendDescription(
        "mlx-gpu",
        "MLX",
        "gpu",
        "fp32",
        _SUMMARY.format(where="the Apple GPU (Metal)"),
        MlxBackend,
        mlx_metal,
        accepts=(DECODER_KIND,),
        graph="eager",
    ),
)
