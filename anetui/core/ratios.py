"""Ratios between backends: speed (ratio of medians) and energy per inference, each
against one reference backend."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from anetui.core import intervals
from anetui.core.results import BackendResult, Ratio
from anetui.core.stats import ratio_with_interval

#: The reference when the user names none and it was measured.
DEFAULT_REFERENCE = "torch-cpu"


def pick_reference(measured: Mapping[str, BackendResult], wanted: str | None) -> str | None:
    """``wanted`` if it was measured; with none wanted, torch-cpu, else the first measured."""
    if wanted is not None and wanted in measured:
        return wanted
    if wanted is None and DEFAULT_REFERENCE in measured:
        return DEFAULT_REFERENCE
    return next(iter(measured), None)


def against(reference: str | None, measured: Mapping[str, BackendResult]) -> tuple[Ratio, ...]:
    """Every other measured backend against ``reference``."""
    if reference is None:
        return ()
    ref = measured[reference]
    assert ref.summary is not None
    out = []
    for result in measured.values():
        if result.id == reference or result.summary is None:
            continue
        # ref.p50 / b.p50: > 1 means the backend is faster than the reference.
        speed, ci, speed_note = ratio_with_interval(ref.summary, result.summary)
        ci, ci_from = _widest(speed, ci, ref, result)
        energy, energy_ci, rails, energy_note = _energy_ratio(ref, result)
        ratio = Ratio(
            reference,
            result.id,
            speed,
            ci,
            energy,
            energy_ci,
            rails,
            speed_note=speed_note,
            energy_note=energy_note,
            speed_ci_from=ci_from,
        )
        out.append(_with_factors(ratio, ref, result, measured))
    return tuple(out)


def _widest(
    speed: float, ci: tuple[float, float] | None, ref: BackendResult, other: BackendResult
) -> tuple[tuple[float, float] | None, str]:
    """The within-run interval, or the run-to-run one when that is wider: one run's
    interval assumes its inferences are alike, and runs minutes apart differ by more.
    The run-to-run interval is centred on the ratio of the overall medians."""
    if ci is None:
        return None, "within-run"
    half = intervals.run_to_run_half_width(ref.run_medians_ns, other.run_medians_ns)
    if half is None:
        return ci, "within-run"
    low, high = speed * math.exp(-half), speed * math.exp(half)
    if math.log(high / low) <= math.log(ci[1] / ci[0]):
        return ci, "within-run"
    runs = min(len(ref.run_medians_ns), len(other.run_medians_ns))
    return (low, high), f"run-to-run ({runs} runs)"


#: At most this many like-for-like pairs are pointed to per ratio.
MAX_POINTERS = 2


def _with_factors(
    ratio: Ratio, ref: BackendResult, other: BackendResult, measured: Mapping[str, BackendResult]
) -> Ratio:
    """The ratio with the factors its two backends differ in and, when it mixes several,
    the measured pairs that differ in one of those factors only.

    Pairs that include one of the ratio's two backends come first (they explain this
    ratio's figure), then any other measured pair, in measurement order.
    """
    if ref.factors is None or other.factors is None:
        return ratio
    differs = ref.factors.differing(other.factors)
    if len(differs) <= 1:
        return replace(ratio, differs=differs)
    results = [r for r in measured.values() if r.factors is not None]
    pairs: list[tuple[int, tuple[str, str, str]]] = []
    for i, first in enumerate(results):
        for second in results[i + 1 :]:
            assert first.factors is not None and second.factors is not None
            one = first.factors.differing(second.factors)
            if len(one) != 1 or one[0] not in differs:
                continue
            if {first.id, second.id} == {ref.id, other.id}:
                continue
            rank = 0 if {first.id, second.id} & {ref.id, other.id} else 1
            pairs.append((rank, (second.id, first.id, one[0])))
    pairs.sort(key=lambda item: item[0])  # stable: measurement order within a rank
    chosen: list[tuple[str, str, str]] = []
    for _, pair in pairs:
        if pair[2] not in {factor for _, _, factor in chosen}:  # one pointer per factor
            chosen.append(pair)
    return replace(ratio, differs=differs, single_factor_pairs=tuple(chosen[:MAX_POINTERS]))


def _energy_ratio(
    reference: BackendResult, other: BackendResult
) -> tuple[float | None, tuple[float, float] | None, tuple[str, ...], str | None]:
    """(reference ÷ other energy per inference, its interval, the rails, why no
    interval) or Nones."""
    if reference.energy is None or other.energy is None:
        return None, None, (), None
    if reference.energy.total_rails != other.energy.total_rails:
        return None, None, (), None  # not like for like: never compare different rail sets
    ratio, ci, note = intervals.energy_ratio(reference.energy, other.energy)
    return ratio, ci, reference.energy.total_rails, note
