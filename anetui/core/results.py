"""The immutable results a session hands out: per backend, ratios, the whole snapshot.

Only these cross threads (DESIGN.md §1); report/ (results_json, markdown, terminal)
renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from anetui.backends.base import Factors, PrepareInfo
from anetui.core.contention import Contention
from anetui.core.energy_figures import BackendEnergy
from anetui.core.generation import GenerationResult
from anetui.core.stats import LatencySummary


class BackendState(StrEnum):
    """Where a backend is, as shown in the UI and written to results."""

    PENDING = "pending"
    UNAVAILABLE = "unavailable"
    PREPARING = "preparing"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    ERROR = "error"


@dataclass(frozen=True)
class BackendResult:
    """One backend's state and figures at snapshot time (latencies in ns in summary)."""

    id: str
    runtime: str
    device: str
    dtype: str
    available: bool
    reason: str | None
    state: BackendState
    error: str | None
    prepare: PrepareInfo | None
    summary: LatencySummary | None
    throughput_per_s: float | None
    active_s: float
    agreement_max_rel_err: float | None
    #: Each named output's agreement (same measure; integer outputs 0 or 1: exact or not).
    agreement_outputs: dict[str, float] = field(default_factory=dict)
    energy: BackendEnergy | None = None
    #: The runtime's own latency where it reports one (Core ML's predict duration), ns.
    runtime_summary: LatencySummary | None = None
    #: (low ns, high ns, count) bins between min and max, for histograms.
    histogram: tuple[tuple[float, float, int], ...] = ()
    #: (100 ms bucket, mean latency ns), the most recent last, for latency-over-time.
    latency_series: tuple[tuple[int, float], ...] = ()
    #: What a reader of this backend's numbers should know (preparation, agreement …).
    notes: tuple[str, ...] = ()
    #: What else used the machine while this backend's timed stretches ran.
    contention: Contention | None = None
    #: Runtime, device, precision, graph capture, threads: what a ratio may mix.
    factors: Factors | None = None
    #: What is happening now, in words: "loading", "exporting", "converting",
    #: "compiling", "warming up 4/10", "running", "paused", "failed" … (for live views).
    phase: str = ""
    #: The median of each timed stretch with enough inferences (ns): the run-to-run
    #: spread (rounds of --interleave, runs of --repeat, the dashboard's stretches).
    run_medians_ns: tuple[float, ...] = ()
    #: Classifiers: the share (0–1) of the batch whose top-1 class is the reference's.
    top1_agreement: float | None = None
    #: The generative workload's token figures (None for one forward pass per inference;
    #: then ``summary`` is per whole generation).
    generation: GenerationResult | None = None


@dataclass(frozen=True)
class LiveStatus:
    """A cheap view for progress displays: state, timed count, timed seconds, p50 (ms)."""

    state: str
    count: int
    active_s: float
    p50_ms: float | None


@dataclass(frozen=True)
class Ratio:
    """How many times faster ``backend`` ran than ``reference`` (ratio of medians).

    A ratio is *claimed* only with an interval: without one (too few inferences or
    windows) the note says why, and reports say no ratio rather than a bare number.
    """

    reference: str
    backend: str
    speed: float
    speed_ci95: tuple[float, float] | None
    #: reference ÷ backend energy per inference (> 1: the backend used less), and the
    #: rails summed for it.
    energy: float | None = None
    energy_ci95: tuple[float, float] | None = None
    energy_rails: tuple[str, ...] = ()
    #: Why there is no speed / energy interval (and so no claim), else None.
    speed_note: str | None = None
    energy_note: str | None = None
    #: The factors (``FACTOR_NAMES`` keys) in which the two backends differ; None when
    #: either backend's factors are unknown.
    differs: tuple[str, ...] | None = None
    #: Measured pairs (backend, reference, factor) that differ in that one factor only,
    #: each a factor this ratio mixes: where to look for a like-for-like figure.
    single_factor_pairs: tuple[tuple[str, str, str], ...] = ()
    #: Where ``speed_ci95`` comes from: "within-run" (both medians' order-statistics
    #: intervals) or "run-to-run (N runs)" (the spread of per-run medians, when wider).
    speed_ci_from: str = "within-run"

    @property
    def speed_claimed(self) -> bool:
        return self.speed_ci95 is not None

    @property
    def energy_claimed(self) -> bool:
        return self.energy is not None and self.energy_ci95 is not None


@dataclass(frozen=True)
class Snapshot:
    created: str
    model: str
    input_shape: tuple[int, ...]
    environment: dict[str, object]
    config: dict[str, object]
    backends: tuple[BackendResult, ...]
    reference: str | None
    ratios: tuple[Ratio, ...]
    power: dict[str, object] = field(
        default_factory=lambda: {"source": "none", "state": "unavailable"}
    )
    #: Plain sentences about whatever weakens the figures (a suspect rail, contention, too
    #: few samples, lost windows, thermal pressure that changed): for the report, stderr
    #: and the dashboard's status line.
    warnings: tuple[str, ...] = ()
    #: What a live view cost the measurement (the frame gate's figures), None headless.
    observer: dict[str, object] | None = None
    #: Each measured quantized sibling against its base (precision only), where that is
    #: not already one of ``ratios`` (whose reference is one backend for all).
    sibling_ratios: tuple[Ratio, ...] = ()

    def measured(self) -> list[BackendResult]:
        return [b for b in self.backends if b.summary is not None]
