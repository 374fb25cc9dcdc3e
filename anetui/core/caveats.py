"""The results' top-level ``warnings``: plain sentences about whatever weakens the
figures — contention, too few samples, lost windows, a lost source, thermal pressure
that changed mid-run. The report, stderr and the dashboard's status line show them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anetui.core.energy_figures import EnergyReport
from anetui.core.results import BackendResult, Ratio
from anetui.models.convert.quantize_common import RANDOM_NOTE

#: Missing this share of the measured time in windows deserves a warning.
MISSED_SHARE = 0.02


def collect(
    results: Sequence[BackendResult],
    ratios: Sequence[Ratio],
    report: EnergyReport | None,
    power: Mapping[str, object],
) -> tuple[str, ...]:
    """Every warning, in a stable order, each once."""
    out: dict[str, None] = {}
    for result in results:
        if result.contention is not None:
            for sentence in result.contention.warnings(result.id):
                out[sentence] = None
    for ratio in ratios:
        if ratio.speed_note:
            out[
                f"no speed ratio for {ratio.backend} against {ratio.reference}: {ratio.speed_note}"
            ] = None
        if ratio.energy_note:
            out[
                f"no energy ratio for {ratio.backend} against {ratio.reference}: "
                f"{ratio.energy_note}"
            ] = None
    calibrated = [r.id for r in results if r.summary is not None and RANDOM_NOTE in r.notes]
    if calibrated:
        out[f"{', '.join(calibrated)}: {RANDOM_NOTE}"] = None
    out.update(dict.fromkeys(_generation_warnings(results)))
    if report is not None:
        out.update(dict.fromkeys(_energy_warnings(results, report, power)))
    if power.get("state") == "lost":
        out[
            f"the power source was lost: {power.get('reason')}; energy covers only the time before"
        ] = None
    return tuple(out)


def _generation_warnings(results: Sequence[BackendResult]) -> list[str]:
    """The generative workload: tokens that differ from the reference's, and runs that
    made another number of tokens than asked for (their figures are not like for like)."""
    out = []
    for r in results:
        gen = r.generation
        if gen is None:
            continue
        if gen.token_agreement is not None and gen.first_divergence is not None:
            out.append(
                f"{r.id}: its greedy tokens differ from eager fp32 PyTorch's from position "
                f"{gen.first_divergence} on ({gen.token_agreement:.0%} the same): after that "
                "it decodes another sequence (same length, so the figures still compare)"
            )
        if gen.short_runs:
            out.append(
                f"{r.id}: {gen.short_runs} of {gen.runs} generations made another number of "
                f"tokens than {gen.gen_len}: its per-run figures are not like for like"
            )
    return out


def _energy_warnings(
    results: Sequence[BackendResult], report: EnergyReport, power: Mapping[str, object]
) -> list[str]:
    out = list(report.notes)
    interval_ms = power.get("interval_ms")
    if report.idle_s > 0 and report.idle_w is None:
        window = f" (windows are {interval_ms} ms)" if interval_ms else ""
        out.append(
            f"the idle phase ({report.idle_s:.1f} s) held no whole power window{window}: "
            "no idle baseline and no active energy; measure idle for longer"
        )
    measured_s = sum(r.active_s for r in results)
    if report.missed_s > 0 and report.missed_s >= MISSED_SHARE * max(measured_s, 1.0):
        out.append(
            f"the power source missed {report.missed_s:.1f} s of windows (gaps between "
            "its samples): energy figures cover less of the run"
        )
    if len(report.thermal_pressure) > 1:
        out.append(
            "thermal pressure changed during the runs ("
            + " → ".join(report.thermal_pressure)
            + "): backends measured at different temperatures are not like for like"
        )
    for result in results:
        energy = result.energy
        if energy is not None and energy.total_mj_per_inference <= 0:
            out.append(
                f"{result.id}: {'+'.join(energy.total_rails)} measured no energy while it "
                "ran: a stalled or unpowered counter?"
            )
        if result.summary is None or energy is not None:
            continue
        if result.active_s > 0:
            out.append(
                f"{result.id}: no power window lay wholly inside its timed runs: "
                "no energy figure (run it longer)"
            )
    return out
