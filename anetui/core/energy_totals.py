"""The energy ledger's records (``core/energy.py``), plain data with no lock of their
own: a phase as the session declared it, the running totals over attributed windows and
over counter readings at the phases' edges, and the prorating of the runner's 100 ms
completion buckets over a window. Energies in mJ, times in ns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from anetui.core.runner import BUCKET_NS, CompletionTimeline
from anetui.power.base import CounterReading, PowerSample

#: Per-window figures kept per backend; beyond, neighbours are merged in pairs (the
#: interval sums them into at most 10 groups of consecutive windows anyway).
MAX_ITEMS = 512


@dataclass(slots=True)
class Phase:
    """A backend's timed stretch or an idle phase; ``end_ns`` is None while it is open."""

    start_ns: int
    owner: str | None  # None: an idle phase
    timeline: CompletionTimeline | None = None
    count_now: Callable[[], int] | None = None
    count_at_start: int = 0
    counters_at_start: CounterReading | None = None
    end_ns: int | None = None


@dataclass(slots=True)
class Windows:
    """Running totals over attributed windows."""

    windows: int = 0
    ns: int = 0
    energy_mj: dict[str, float] = field(default_factory=dict)
    inferences: float = 0.0
    items: list[tuple[float, float]] = field(default_factory=list)
    thermal: dict[str, None] = field(default_factory=dict)

    def add(self, sample: PowerSample, total_mj: float, inferences: float) -> None:
        self.windows += 1
        self.ns += sample.elapsed_ns
        for rail, mj in sample.rails_mj.items():
            self.energy_mj[rail] = self.energy_mj.get(rail, 0.0) + mj
        self.inferences += inferences
        self.items.append((total_mj, inferences))
        if len(self.items) > MAX_ITEMS:  # neighbours merged: blocks stay in time order
            it = self.items
            self.items = [
                (it[i][0] + it[i + 1][0], it[i][1] + it[i + 1][1]) for i in range(0, len(it) - 1, 2)
            ] + ([it[-1]] if len(it) % 2 else [])
        if sample.thermal_pressure:
            self.thermal[sample.thermal_pressure] = None


@dataclass(slots=True)
class Counters:
    """Running totals over phases measured by reading the counters at their edges."""

    stretches: int = 0
    ns: int = 0
    energy_mj: dict[str, float] = field(default_factory=dict)
    inferences: int = 0
    failed: bool = False

    def add(self, start: CounterReading, end: CounterReading, inferences: int) -> None:
        self.stretches += 1
        self.ns += end.t_ns - start.t_ns
        for rail, mj in end.energy_mj.items():
            if rail in start.energy_mj:
                self.energy_mj[rail] = self.energy_mj.get(rail, 0.0) + mj - start.energy_mj[rail]
        self.inferences += inferences

    def copy(self) -> Counters:
        """A copy that can take a live stretch without touching these totals."""
        return Counters(self.stretches, self.ns, dict(self.energy_mj), self.inferences, self.failed)


def completions(
    t_start_ns: int,
    t_end_ns: int,
    phase_start_ns: int,
    phase_end_ns: int | None,
    counts: Mapping[int, int],
) -> float:
    """Inferences completed inside [t_start_ns, t_end_ns), prorated from 100 ms buckets
    over the part of each bucket the phase covered (exact for a steady rate)."""
    total = 0.0
    phase_end = phase_end_ns if phase_end_ns is not None else t_end_ns + BUCKET_NS
    for bucket in range(t_start_ns // BUCKET_NS, (t_end_ns - 1) // BUCKET_NS + 1):
        count = counts.get(bucket)
        if not count:
            continue
        span_start = max(bucket * BUCKET_NS, phase_start_ns)
        span_end = min((bucket + 1) * BUCKET_NS, phase_end)
        if span_end <= span_start:
            continue
        overlap = min(span_end, t_end_ns) - max(span_start, t_start_ns)
        total += count * max(0, overlap) / (span_end - span_start)
    return total
