"""llama.cpp on the CPU through llama-cpp-python's low-level API: the generative workload.

The decoder folder is written once as GGUF (:mod:`anetui.models.convert.gguf`, cached),
loaded with ``llama_model_load_from_file`` and given one context of ``P + N`` positions.
One ``infer()`` is one whole generation (:mod:`anetui.backends.generation`): the KV
cache is cleared (``llama_memory_clear``), the prompt is decoded in one
``llama_decode`` batch, then each token is the argmax of the last position's logits
(greedy, temperature 0: no sampler, so no sampler state) fed back as a one-token batch,
until exactly ``tokens_per_run`` tokens exist. ``llama_decode`` returns when the CPU has
computed the batch, and the token is read from the logits on the host, so each
:class:`TokenClock` stamp follows a token that exists.

llama-cpp-python compiles llama.cpp from source when installed (no wheel on PyPI), so
its extra is optional and not part of ``make run``/``make test``.
"""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import os
import time
from typing import Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.backends.generation import DECODER_KIND, TokenClock, TokenHooks
from anetui.errors import AnetuiError, Availability, one_line
from anetui.models.spec import ModelSpec

INSTALL_HINT = "pip install 'anetui[llamacpp]': it compiles llama.cpp"
#: The precisions a GGUF is written in here (F32, or F16 matrices).
DTYPES = ("fp32", "fp16")


class LlamaCppBackend(TokenHooks):
    """llama.cpp's CPU backend on a GGUF written from the decoder folder."""

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in DTYPES:
            raise BackendError(f"{self.id} runs a GGUF in {' or '.join(DTYPES)}, not {self.dtype}")
        self._description = description
        self._threads = options.threads
        self._lib: Any = None
        self._model: Any = None
        self._ctx: Any = None
        self._memory: Any = None
        self._prompt: Any = None  # ctypes array of the prompt's token ids
        self._one: Any = None  # ctypes array of one token id, refilled per token
        self._n_prompt = 0
        self._n_vocab = 0
        self._n_ctx = 0
        self._tokens: list[int] = []
        self._gen_len = 1
        self._clock = TokenClock(1)
        #: Tokens one infer() ends with (1: the prefill's token alone); set by the session.
        self.tokens_per_run = 1

    def available(self) -> Availability:
        base = self._description.probe()
        if not base.ok:
            return base
        try:
            _llama_cpp()
        except Exception as exc:  # the compiled library may fail to load
            return Availability.no(f"llama_cpp does not load: {one_line(exc)}")
        return Availability.yes()

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        from anetui.models.convert.gguf import convert

        if spec.kind != DECODER_KIND or spec.path is None or spec.generation is None:
            raise BackendError(f"{self.id} runs decoders (the generative workload) only")
        generation = spec.generation
        started = time.perf_counter()
        self.phase = "converting"  # shown live: writing the GGUF takes seconds
        try:
            gguf_model = convert(spec.path, self.dtype)
        except AnetuiError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        converted = time.perf_counter()
        self.phase = "loading"
        lib = self._lib = _llama_cpp()
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0  # the CPU backend, whatever the build offers
        self._model = lib.llama_model_load_from_file(str(gguf_model.path).encode(), params)
        if not self._model:
            raise BackendError(
                f"{self.id}: llama.cpp could not load {gguf_model.path}{_last_error()}"
            )
        threads, threads_batch = _threads(self._threads)
        context = lib.llama_context_default_params()
        self._n_prompt = generation.prompt_len
        self._n_ctx = context.n_ctx = generation.prompt_len + generation.gen_len
        # The whole prompt in one llama_decode call (its batch limit), split into
        # micro-batches by llama.cpp as usual.
        context.n_batch = max(int(context.n_batch), generation.prompt_len)
        context.n_threads, context.n_threads_batch = threads, threads_batch
        context.no_perf = True
        self._ctx = lib.llama_init_from_model(self._model, context)
        if not self._ctx:
            raise BackendError(f"{self.id}: llama.cpp could not create a context{_last_error()}")
        self._memory = lib.llama_get_memory(self._ctx)
        self._n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self._model))
        prompt = spec.make_inputs()["input_ids"].reshape(-1)
        if prompt.size and int(prompt.max()) >= self._n_vocab:
            raise BackendError(f"{self.id}: prompt ids exceed the GGUF's {self._n_vocab} tokens")
        self._prompt = (lib.llama_token * prompt.size)(*(int(t) for t in prompt))
        self._one = (lib.llama_token * 1)()
        self.tokens_per_run = self._gen_len = generation.gen_len
        self._clock = TokenClock(generation.gen_len)
        loaded = time.perf_counter()
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        notes = [
            "GGUF "
            + ("from the cache" if gguf_model.cached else f"written in {gguf_model.seconds:.1f} s"),
            f"{threads} threads decoding, {threads_batch} for the prompt"
            + ("" if self._threads is not None else " (llama-cpp-python's defaults)"),
        ]
        return PrepareInfo(
            load_s=loaded - converted,
            compile_s=converted - started,
            first_inference_ms=first_ns / 1e6,
            notes=tuple(notes),
            info={
                "llama_cpp_python": _version(lib),
                "gguf": str(gguf_model.path),
                "weights": "F32" if self.dtype == "fp32" else "F16 matrices, F32 vectors",
                "n_threads": threads,
                "n_threads_batch": threads_batch,
            },
        )

    def infer(self) -> None:
        """One generation: a fresh KV cache, the prompt, then ``tokens_per_run`` tokens."""
        lib, ctx, clock = self._lib, self._ctx, self._clock
        wanted = self.tokens_per_run
        if self._n_prompt + wanted > self._n_ctx + 1:  # the last token is never decoded
            raise BackendError(f"{self.id}: {wanted} tokens exceed the context of {self._n_ctx}")
        tokens: list[int] = []
        lib.llama_memory_clear(self._memory, True)
        clock.start()
        batch = lib.llama_batch_get_one(self._prompt, self._n_prompt)
        while True:
            status = lib.llama_decode(ctx, batch)
            if status != 0:
                raise BackendError(f"{self.id}: llama_decode returned {status}{_last_error()}")
            logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), (self._n_vocab,))
            token = int(logits.argmax())
            clock.mark()
            tokens.append(token)
            if len(tokens) >= wanted:
                break
            self._one[0] = token
            batch = lib.llama_batch_get_one(self._one, 1)
        self._tokens = tokens

    def close(self) -> None:
        if self._lib is not None:
            if self._ctx:
                self._lib.llama_free(self._ctx)
            if self._model:
                self._lib.llama_model_free(self._model)
        self._ctx = self._model = self._memory = None


#: ggml's log levels (``enum ggml_log_level`` in ggml.h): llama-cpp-python 0.3.36's own
#: callback maps an older enum (it prints WARN as an error and hides ERROR as debug).
GGML_LOG_ERROR, GGML_LOG_CONT = 4, 5
#: The last error lines llama.cpp logged, for the message of a failed load.
_errors: collections.deque[str] = collections.deque(maxlen=4)
_callback: Any = None  # the ctypes callback, kept alive while llama.cpp may call it


def _llama_cpp() -> Any:
    """llama_cpp with its C logging kept to error lines, held here for messages (nothing
    printed: llama.cpp logs every load step, and the dashboard owns the terminal), and
    the ggml backends initialised once."""
    global _callback
    import llama_cpp

    if _callback is None:
        last = [0]

        def log(level: int, text: bytes, _user: Any) -> None:
            level = last[0] if level == GGML_LOG_CONT else level
            last[0] = level
            if level == GGML_LOG_ERROR and text.strip():
                _errors.append(text.decode(errors="replace").strip())

        _callback = llama_cpp.llama_log_callback(log)
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp


def _last_error() -> str:
    """What llama.cpp last logged as an error, for a message (``: …``), or ""."""
    return f": {_errors[-1]}" if _errors else ""


def _threads(asked: int | None) -> tuple[int, int]:
    """(decode threads, prompt threads): ``--threads`` for both, else llama-cpp-python's
    ``Llama`` defaults (half the CPUs decoding, all of them on the prompt)."""
    if asked is not None:
        return asked, asked
    cpus = os.cpu_count() or 1
    return max(cpus // 2, 1), cpus


def _version(lib: Any) -> str:
    return str(getattr(lib, "__version__", "?"))


def llama_cpp_installed() -> Availability:
    """llama-cpp-python and gguf importable (found, not imported: loading libllama is slow)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return Availability.no(f"llama-cpp-python is not installed ({INSTALL_HINT})")
    if importlib.util.find_spec("gguf") is None:
        return Availability.no(f"the gguf package is not installed ({INSTALL_HINT})")
    return Availability.yes()


BACKENDS = (
    BackendDescription(
        "llamacpp-cpu",
        "llama.cpp",
        "cpu",
        "fp32",
        "llama.cpp (llama-cpp-python) on the CPU, a GGUF written from the folder, greedy",
        LlamaCppBackend,
        llama_cpp_installed,
        accepts=(DECODER_KIND,),
        graph="ggml graph",
        # Optional: its extra compiles llama.cpp from source; run it by name.
        default=False,
    ),
)
