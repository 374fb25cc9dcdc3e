"""What a backend offers when it runs the generative workload (a decoder, issue 22).

A generative backend is a :class:`~anetui.backends.base.Backend` whose ``prepare(spec)``
takes a spec of kind ``"decoder"`` (``spec.path``: a Hugging Face folder with
``config.json`` and ``*.safetensors``, no tokenizer; ``spec.generation``: prompt and
generation lengths; the prompt is ``spec.make_inputs()["input_ids"]``, int64 (1, P),
the same ids for every backend) and whose ``infer()`` is **one whole generation**: the
prefill of the prompt, then greedy decoding until exactly ``tokens_per_run`` tokens
exist (the prefill's token included), never stopping early at an end-of-sequence token.
The runner times ``infer()`` as for any workload; the backend itself stamps the start and
every token with :class:`TokenClock` (each stamp taken once the token's value exists on
the host: after the device synchronised, after MLX's ``mx.eval``), and the runner reads
the stamps after the call, outside the timed region, into the time-to-first-token and
per-token histograms.

Besides the :class:`Backend` methods a generative backend has:

- ``tokens_per_run: int`` — settable; the session sets 1 for a prefill-only stretch (the
  energy of the prefill, measured apart from the decoding) and ``spec.generation.gen_len``
  otherwise;
- ``token_times_ns() -> tuple[int, Sequence[int]] | None`` — the last ``infer()``'s start
  and per-token stamps (``time.perf_counter_ns``), ``TokenClock.times()``;
- ``generated_tokens() -> list[int]`` — the last generation's token ids (for the token
  agreement with eager fp32 PyTorch on the CPU);
- optionally ``device_memory_mb() -> float | None`` — the runtime's peak device memory
  (MB) where it tells (``torch.cuda.max_memory_allocated``, ``mx.get_peak_memory``).

``outputs()`` returns ``[np.array(tokens, dtype=np.int64)]`` of a full generation.
Nothing here imports a runtime.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from anetui.models.spec import DECODER_KIND

__all__ = ["DECODER_KIND", "Generative", "TokenClock", "TokenHooks", "is_generative"]


class TokenClock:
    """The start and per-token stamps of one generation (ns, ``time.perf_counter_ns``).

    Preallocated for ``capacity`` tokens, so that stamping costs a clock read and a store
    inside the generation (it lies inside the timed region).
    """

    def __init__(self, capacity: int) -> None:
        self._marks = [0] * (capacity + 1)
        self._count = 0

    def start(self) -> None:
        """A generation starts now (call before the prefill)."""
        self._marks[0] = time.perf_counter_ns()
        self._count = 1

    def mark(self) -> None:
        """A token's value exists on the host now."""
        if self._count >= len(self._marks):  # more tokens than the capacity: grow, rarely
            self._marks.extend([0] * len(self._marks))
        self._marks[self._count] = time.perf_counter_ns()
        self._count += 1

    @property
    def tokens(self) -> int:
        """Tokens stamped since the last :meth:`start`."""
        return max(0, self._count - 1)

    def times(self) -> tuple[int, Sequence[int]] | None:
        """(start ns, [token ns …]) of the last generation; None before any."""
        if self._count == 0:
            return None
        return self._marks[0], self._marks[1 : self._count]


@runtime_checkable
class Generative(Protocol):
    """The methods a backend adds to run the generative workload (see the module)."""

    tokens_per_run: int

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None: ...

    def generated_tokens(self) -> list[int]: ...


def is_generative(backend: object) -> bool:
    """Whether ``backend`` is prepared for (or can run) the generative workload."""
    return callable(getattr(backend, "token_times_ns", None)) and callable(
        getattr(backend, "generated_tokens", None)
    )


class TokenHooks:
    """The hooks a generative backend shares (see the module), over its ``_clock`` (a
    :class:`TokenClock`), ``_tokens`` (the last generation's ids), ``_gen_len`` (the
    spec's tokens per run) and its own ``infer()``; ``thread_context`` enters nothing."""

    _clock: TokenClock
    _tokens: list[int]
    _gen_len: int
    tokens_per_run: int

    def infer(self) -> None:
        raise NotImplementedError

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None:
        return self._clock.times()

    def generated_tokens(self) -> list[int]:
        return list(self._tokens)

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def outputs(self) -> list[np.ndarray]:
        """A full generation's tokens (``gen_len``, whatever ``tokens_per_run`` is now)."""
        saved, self.tokens_per_run = self.tokens_per_run, self._gen_len
        try:
            self.infer()
        finally:
            self.tokens_per_run = saved
        return [np.asarray(self._tokens, dtype=np.int64)]
