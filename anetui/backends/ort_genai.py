"""ONNX Runtime GenAI on the CPU: the generative workload through onnxruntime-genai's own
generation loop (``og.Generator``) on a model its builder made from the decoder's folder.

The folder is built once (fp32, CPU execution provider; cached,
:mod:`anetui.models.convert.ort_genai`) and loaded with ``og.Model``; ``--threads`` goes
to the decoder's ONNX Runtime session as ``intra_op_num_threads`` through a config
overlay (``og.Config.overlay``), never by editing the cached ``genai_config.json``.

One ``infer()`` is one generation: a fresh ``og.Generator``, the prompt ids appended
(``append_tokens``: the prefill), then ``generate_next_token`` + ``get_next_tokens``
exactly ``tokens_per_run`` times, each token stamped once it is read to the host. The
search is greedy (``do_sample=False``) with ``max_length`` = prompt + tokens. The
workload is argmax over the whole vocabulary with no end-of-sequence rule (the reference
and the other runtimes), but GenAI always has an EOS id (its config requires one in the
vocabulary; an empty list in an overlay leaves the builder's): ``min_length`` =
``max_length`` masks it, so a run never ends early, and where greedy decoding would pick
that id, GenAI picks the next best token — the token agreement then shows where, and a
note names the id.

Nothing here imports onnxruntime_genai at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from typing import Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.backends.generation import DECODER_KIND, TokenClock, TokenHooks
from anetui.errors import Availability, one_line
from anetui.models.convert.ort_genai import GenAIConversionError, convert
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

GRAPH = "GenAI builder"
#: Modules the model builder imports besides onnxruntime_genai -> the extra that has them.
BUILDER_NEEDS = {"transformers": "transformers", "onnx_ir": "onnx", "tokenizers": "transformers"}


class OrtGenAIBackend(TokenHooks):
    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        self._description = description
        self._threads = options.threads
        self.phase = "loading"
        self.tokens_per_run = 0
        self._model: Any = None
        self._params: dict[int, Any] = {}
        self._prompt = np.zeros((1, 0), dtype=np.int32)
        self._gen_len = 0
        self._tokens: list[int] = []
        self._clock = TokenClock(1)

    def available(self) -> Availability:
        probe = self._description.probe()
        if not probe.ok:
            return probe
        if self.dtype != self._description.default_dtype:  # refused before any build
            return Availability.no(
                f"{self.id} computes {self._description.default_dtype} only, not {self.dtype} "
                "(ort-genai-cpu: fp32; ort-genai-cpu-int4: int4 weights)"
            )
        return Availability.yes()

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        if spec.kind != DECODER_KIND or spec.generation is None or spec.path is None:
            raise BackendError(f"{self.id} runs decoders only (--model llama-tiny or a folder)")
        started = time.perf_counter()
        self.phase = "converting"
        try:
            built = convert(spec, precision=self.dtype)
        except GenAIConversionError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        self.phase = "loading"
        og = _og()
        self._gen_len = spec.generation.gen_len
        self.tokens_per_run = self._gen_len
        prompt = spec.make_inputs()["input_ids"]
        self._prompt = np.ascontiguousarray(prompt, dtype=np.int32)  # GenAI's token type
        context = json.loads((built.path / "genai_config.json").read_text())["model"][
            "context_length"
        ]
        if prompt.shape[1] + self._gen_len > context:
            raise BackendError(
                f"{self.id}: prompt {prompt.shape[1]} + {self._gen_len} tokens exceed the "
                f"model's context of {context} tokens"
            )
        overlay: dict[str, Any] = {}
        if self._threads is not None:
            overlay["decoder"] = {"session_options": {"intra_op_num_threads": self._threads}}
        try:
            config = og.Config(str(built.path))
            config.overlay(json.dumps({"model": overlay}))
            self._model = og.Model(config)
        except Exception as exc:
            raise BackendError(f"{self.id} could not load the model: {one_line(exc)}") from None
        loaded = time.perf_counter()
        self._clock = TokenClock(self._gen_len)
        self._params = {}
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        built_s = 0.0 if built.cached else built.seconds
        notes = [
            "built "
            + ("from the cache" if built.cached else f"in {built_s:.1f} s")
            + f" by onnxruntime-genai's model builder ({self.dtype}, cpu), with a placeholder "
            "tokenizer (the workload feeds token ids)",
        ]
        eos = json.loads((built.path / "genai_config.json").read_text())["model"].get(
            "eos_token_id"
        )
        notes.append(
            f"GenAI's end-of-sequence id {eos} is masked so that every run makes "
            f"{self._gen_len} tokens: where greedy decoding picks it, the tokens differ"
        )
        if self._threads is None:
            notes.append("threads: ONNX Runtime's default")
        return PrepareInfo(
            load_s=(loaded - started) - built_s,
            compile_s=built_s,
            first_inference_ms=first_ns / 1e6,
            notes=(*spec.notes, *notes),
            info={
                "onnxruntime_genai": package_version("onnxruntime-genai"),
                "model_folder": str(built.path),
                "cached": built.cached,
                "intra_op_num_threads": self._threads if self._threads is not None else "default",
            },
        )

    def _search(self, tokens: int) -> Any:
        """The generator parameters for ``tokens`` new tokens (made once per count)."""
        params = self._params.get(tokens)
        if params is None:
            og = _og()
            length = self._prompt.shape[1] + tokens
            params = og.GeneratorParams(self._model)
            # min_length = max_length: the EOS ids (if any) are masked until the last token.
            # A fixed random_seed: with the default (-1) every new generator seeds its
            # sampler from std::random_device, 10-30 ms per generation measured here,
            # inside the time to first token, for a sampler greedy search never uses.
            params.set_search_options(
                do_sample=False, max_length=length, min_length=length, random_seed=0
            )
            self._params[tokens] = params
        return params

    def infer(self) -> None:
        og = _og()
        count = self.tokens_per_run
        params = self._search(count)
        tokens = self._tokens
        tokens.clear()
        clock = self._clock
        clock.start()
        generator = og.Generator(self._model, params)
        generator.append_tokens(self._prompt)
        for _ in range(count):
            if generator.is_done():
                raise BackendError(f"{self.id}: generation stopped after {len(tokens)} tokens")
            generator.generate_next_token()
            tokens.append(int(generator.get_next_tokens()[0]))
            clock.mark()

    def close(self) -> None:
        self._params = {}
        self._model = None


def _og() -> Any:
    """onnxruntime_genai (a compiled module without type information)."""
    return importlib.import_module("onnxruntime_genai")


# -- availability probe: imports nothing ------------------------------------------------
def genai_installed() -> Availability:
    if importlib.util.find_spec("onnxruntime_genai") is None:
        return Availability.no("onnxruntime-genai not installed (pip install 'anetui[genai]')")
    for module, extra in BUILDER_NEEDS.items():
        if importlib.util.find_spec(module) is None:
            return Availability.no(
                f"onnxruntime-genai's model builder needs {module} (pip install 'anetui[{extra}]')"
            )
    return Availability.yes()


BACKENDS = (
    BackendDescription(
        "ort-genai-cpu",
        "ONNX Runtime GenAI",
        "cpu",
        "fp32",
        "decoders: GenAI's generation loop (og.Generator), greedy, on the model its "
        "builder made offline from the decoder's folder",
        OrtGenAIBackend,
        genai_installed,
        (DECODER_KIND,),
        graph=GRAPH,
    ),
    BackendDescription(
        "ort-genai-cpu-int4",
        "ONNX Runtime GenAI",
        "cpu",
        "int4",
        "decoders: ort-genai-cpu with int4 weights (the builder's MatMulNBits, "
        "round-to-nearest in blocks of 32, no calibration), activations fp32",
        OrtGenAIBackend,
        genai_installed,
        (DECODER_KIND,),
        graph=GRAPH,
        sibling_of="ort-genai-cpu",
        default=False,
    ),
)
