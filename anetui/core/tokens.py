"""What the runner folds from each generation's token stamps (the generative workload,
:mod:`anetui.core.generation`): time to first token and each decoded token's latency, in
ns. Written by one backend's runner thread."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anetui.core.stats import LatencyStats


@dataclass
class GenerationRecord:
    """Token figures of one backend's timed generations; written by its runner thread.

    ``stamps``: the backend's ``token_times_ns``, read after each ``infer()``.
    """

    stamps: Callable[[], tuple[int, Sequence[int]] | None]
    ttft: LatencyStats = field(default_factory=LatencyStats)
    decode: LatencyStats = field(default_factory=LatencyStats)
    runs: int = 0
    ttft_sum_ns: int = 0
    decode_sum_ns: int = 0
    decode_tokens: int = 0
    #: Runs that produced another number of tokens than asked for (must stay 0).
    short_runs: int = 0
    #: Tokens each generation must produce (``gen_len``), and the prompt's length.
    expected_tokens: int = 0
    prompt_len: int = 0
    peak_rss_mb: float | None = None
    device_memory_mb: float | None = None

    def fold(self) -> None:
        """The last generation's stamps into the figures (called by the runner after
        each timed ``infer()``, outside the timed region)."""
        marks = self.stamps()
        if marks is None:
            return
        start, tokens = marks
        if not tokens:
            return
        first = tokens[0] - start
        self.ttft.record(first)
        self.ttft_sum_ns += first
        if len(tokens) > 1:
            gaps = [b - a for a, b in itertools.pairwise(tokens)]
            self.decode.record_many(gaps)
            self.decode_sum_ns += tokens[-1] - tokens[0]
            self.decode_tokens += len(gaps)
        self.runs += 1
        if self.expected_tokens and len(tokens) != self.expected_tokens:
            self.short_runs += 1

    def reset(self) -> None:
        self.ttft.reset()
        self.decode.reset()
        self.runs = self.ttft_sum_ns = self.decode_sum_ns = self.decode_tokens = 0
        self.short_runs = 0
