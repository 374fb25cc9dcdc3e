"""Ratios between backends: speed (ratio of medians) and energy per inference, each
against one reference backend."""

from __future__ import annotations

from collections.abc import Mapping

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
        energy, energy_ci, rails, energy_note = _energy_ratio(ref, result)
        out.append(
            Ratio(
                reference,
                result.id,
                speed,
                ci,
                energy,
                energy_ci,
                rails,
                speed_note=speed_note,
                energy_note=energy_note,
            )
        )
    return tuple(out)


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
