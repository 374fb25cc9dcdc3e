"""The immutable results a session hands out: per backend, ratios, the whole snapshot.

Only these cross threads (DESIGN.md §1); report.py and tables.py render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from anetui.backends.base import PrepareInfo
from anetui.core.energy import BackendEnergy
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
    energy: BackendEnergy | None = None
    #: The runtime's own latency where it reports one (Core ML's predict duration), ns.
    runtime_summary: LatencySummary | None = None
    #: (low ns, high ns, count) bins between min and max, for histograms.
    histogram: tuple[tuple[float, float, int], ...] = ()
    #: (100 ms bucket, mean latency ns), the most recent last, for latency-over-time.
    latency_series: tuple[tuple[int, float], ...] = ()
    #: What a reader of this backend's numbers should know (preparation, agreement …).
    notes: tuple[str, ...] = ()
    #: What is happening now, in words: "loading", "exporting", "converting",
    #: "compiling", "warming up 4/10", "running", "paused", "failed" … (for live views).
    phase: str = ""


@dataclass(frozen=True)
class LiveStatus:
    """A cheap view for progress displays: state, timed count, timed seconds, p50 (ms)."""

    state: str
    count: int
    active_s: float
    p50_ms: float | None


@dataclass(frozen=True)
class Ratio:
    """How many times faster ``backend`` ran than ``reference`` (ratio of medians)."""

    reference: str
    backend: str
    speed: float
    speed_ci95: tuple[float, float] | None
    #: reference ÷ backend energy per inference (> 1: the backend used less), and the
    #: rails summed for it.
    energy: float | None = None
    energy_ci95: tuple[float, float] | None = None
    energy_rails: tuple[str, ...] = ()


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

    def measured(self) -> list[BackendResult]:
        return [b for b in self.backends if b.summary is not None]
