"""Attributes measured energy to backends' inference windows (DESIGN.md §2).

A power window belongs to a backend when that backend ran for the whole window; windows
that straddle a switch, a pause or a preparation are not attributed. Windows in which
nothing ran nor was being prepared measure the idle baseline. Energy per inference =
Σ energy in attributed windows ÷ inferences completed in them; *active* energy first
subtracts idle power × time. All energies in mJ, powers in W, times in ns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from anetui.core.runner import BUCKET_NS
from anetui.power.base import PowerSample

Interval = tuple[int, int]
BOOTSTRAP_RESAMPLES = 2000
MIN_WINDOWS_FOR_CI = 5


#: Which of the rails present sum to the total without counting anything twice: each
#: power source declares its own (``PowerSource.total_rails``).
TotalRails = Callable[[Iterable[str]], tuple[str, ...]]


def every_rail(rails: Iterable[str]) -> tuple[str, ...]:
    """The rule for rails that do not overlap: all of them."""
    return tuple(sorted(set(rails)))


@dataclass(frozen=True)
class BackendEnergy:
    """One backend's energy figures over its attributed windows."""

    rails: tuple[str, ...]
    total_rails: tuple[str, ...]
    windows: int
    window_s: float
    inferences: float
    mj_per_inference: dict[str, float]
    active_mj_per_inference: dict[str, float] | None
    mean_power_w: dict[str, float]
    coverage: float
    thermal_pressure: tuple[str, ...]
    #: Per attributed window: (total energy mJ, inferences), for intervals on ratios.
    per_window: tuple[tuple[float, float], ...] = field(repr=False, default=())

    @property
    def total_mj_per_inference(self) -> float:
        return self.mj_per_inference["total"]

    @property
    def total_active_mj_per_inference(self) -> float | None:
        return self.active_mj_per_inference["total"] if self.active_mj_per_inference else None


@dataclass(frozen=True)
class EnergyReport:
    idle_w: dict[str, float] | None
    idle_windows: int
    backends: dict[str, BackendEnergy]


@dataclass(frozen=True)
class RunView:
    """What energy attribution needs from a backend's record."""

    intervals: Sequence[Interval]
    buckets: Sequence[tuple[int, int]]
    active_ns: int


def attribute(
    samples: Sequence[PowerSample],
    runs: Mapping[str, RunView],
    busy: Sequence[Interval] = (),
    total_rails: TotalRails = every_rail,
) -> EnergyReport:
    """Attribute every sample to one backend, to idle, or to nobody; the total sums the
    rails that ``total_rails`` (the source's rule) picks."""
    owned: dict[str, list[PowerSample]] = {backend: [] for backend in runs}
    idle: list[PowerSample] = []
    for sample in samples:
        if sample.elapsed_ns <= 0:
            continue
        owner = None
        touched = any(_overlaps(sample, i) for i in busy)
        for backend, run in runs.items():
            if any(_overlaps(sample, i) for i in run.intervals):
                if owner is None and any(_inside(sample, i) for i in run.intervals):
                    owner = backend
                else:
                    touched = True
                    owner = None
                    break
        if owner is not None and not touched:
            owned[owner].append(sample)
        elif (
            owner is None
            and not touched
            and not any(_overlaps(sample, i) for run in runs.values() for i in run.intervals)
        ):
            idle.append(sample)
    idle_w = _mean_power(idle) if idle else None
    result = {}
    for backend, run in runs.items():
        energy = _backend_energy(owned[backend], run, idle_w, total_rails)
        if energy is not None:
            result[backend] = energy
    return EnergyReport(idle_w, len(idle), result)


def _inside(sample: PowerSample, interval: Interval) -> bool:
    return interval[0] <= sample.t_start_ns and sample.t_end_ns <= interval[1]


def _overlaps(sample: PowerSample, interval: Interval) -> bool:
    return sample.t_start_ns < interval[1] and interval[0] < sample.t_end_ns


def _mean_power(samples: Sequence[PowerSample]) -> dict[str, float]:
    """Σ energy / Σ time per rail (W = mJ/ms), over the windows that report the rail."""
    energy: dict[str, float] = {}
    time_ms: dict[str, float] = {}
    for sample in samples:
        for rail, mj in sample.rails_mj.items():
            energy[rail] = energy.get(rail, 0.0) + mj
            time_ms[rail] = time_ms.get(rail, 0.0) + sample.elapsed_ns / 1e6
    return {rail: energy[rail] / time_ms[rail] for rail in energy if time_ms[rail] > 0}


def completions_in(sample: PowerSample, run: RunView, buckets: Mapping[int, int]) -> float:
    """Inferences completed inside the window, prorated from 100 ms buckets over the part
    of each bucket the backend was actually running (exact for a steady rate)."""
    interval = next(i for i in run.intervals if _inside(sample, i))
    total = 0.0
    first = sample.t_start_ns // BUCKET_NS
    last = (sample.t_end_ns - 1) // BUCKET_NS
    for bucket in range(first, last + 1):
        count = buckets.get(bucket)
        if not count:
            continue
        span_start = max(bucket * BUCKET_NS, interval[0])
        span_end = min((bucket + 1) * BUCKET_NS, interval[1])
        if span_end <= span_start:
            continue
        overlap = min(span_end, sample.t_end_ns) - max(span_start, sample.t_start_ns)
        total += count * max(0, overlap) / (span_end - span_start)
    return total


def _backend_energy(
    samples: Sequence[PowerSample],
    run: RunView,
    idle_w: Mapping[str, float] | None,
    total_rails: TotalRails,
) -> BackendEnergy | None:
    if not samples:
        return None
    buckets = dict(run.buckets)
    counts = [completions_in(s, run, buckets) for s in samples]
    inferences = sum(counts)
    if inferences <= 0:
        return None
    rails = tuple(sorted({r for s in samples for r in s.rails_mj}))
    totals = total_rails(rails)
    window_ms = sum(s.elapsed_ns for s in samples) / 1e6
    energy = {rail: sum(s.rails_mj.get(rail, 0.0) for s in samples) for rail in rails}
    energy["total"] = sum(energy[r] for r in totals)
    per_inference = {rail: mj / inferences for rail, mj in energy.items()}
    active = None
    if idle_w is not None and all(r in idle_w for r in rails):
        idle_energy = {rail: idle_w[rail] * window_ms for rail in rails}
        idle_energy["total"] = sum(idle_energy[r] for r in totals)
        active = {rail: (energy[rail] - idle_energy[rail]) / inferences for rail in energy}
    per_window = tuple(
        (sum(s.rails_mj.get(r, 0.0) for r in totals), n)
        for s, n in zip(samples, counts, strict=True)
    )
    thermal = tuple(dict.fromkeys(s.thermal_pressure for s in samples if s.thermal_pressure))
    return BackendEnergy(
        rails=rails,
        total_rails=totals,
        windows=len(samples),
        window_s=window_ms / 1000,
        inferences=inferences,
        mj_per_inference=per_inference,
        active_mj_per_inference=active,
        mean_power_w={rail: energy[rail] / window_ms for rail in rails},
        coverage=min(1.0, window_ms * 1e6 / run.active_ns) if run.active_ns else 0.0,
        thermal_pressure=thermal,
        per_window=per_window,
    )


def energy_ratio(
    reference: BackendEnergy, other: BackendEnergy, seed: int = 0
) -> tuple[float, tuple[float, float] | None]:
    """How many times less energy per inference ``other`` used than ``reference``
    (reference ÷ other), with a 95% bootstrap interval over attributed windows."""
    ratio = reference.total_mj_per_inference / other.total_mj_per_inference
    if min(len(reference.per_window), len(other.per_window)) < MIN_WINDOWS_FOR_CI:
        return ratio, None
    rng = np.random.default_rng(seed)
    ref = np.asarray(reference.per_window)
    oth = np.asarray(other.per_window)
    i = rng.integers(0, len(ref), size=(BOOTSTRAP_RESAMPLES, len(ref)))
    j = rng.integers(0, len(oth), size=(BOOTSTRAP_RESAMPLES, len(oth)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_ratio = ref[i, 0].sum(axis=1) / ref[i, 1].sum(axis=1)
        oth_ratio = oth[j, 0].sum(axis=1) / oth[j, 1].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = ref_ratio / oth_ratio
    # A resample of windows without completed inferences has no ratio (0/0, x/0).
    boot = boot[np.isfinite(boot)]
    if len(boot) < BOOTSTRAP_RESAMPLES // 2:
        return ratio, None
    low, high = np.percentile(boot, [2.5, 97.5])
    return ratio, (float(low), float(high))
