"""Intervals for energy ratios that hold at their stated level on autocorrelated data.

Power windows next to each other are alike (heat, clocks, background work), so a
resampling that treats them as independent is overconfident. The ratio's interval comes
from a delete-a-group jackknife over groups of consecutive windows, on the log scale,
with Student's t. A percentile block bootstrap was tried first: in the coverage
simulation (tests/test_intervals.py) it held 80–91 % instead of 95 %; this one holds
95 % from 30 windows per backend with moderate autocorrelation. Its cost is O(windows
kept), at most ``energy_totals.MAX_ITEMS`` per backend, so a live redraw stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from anetui.core.energy_figures import BackendEnergy

#: Fewer attributed windows than this per backend: no energy interval (below, the
#: coverage simulation falls under 95 % for autocorrelated windows).
MIN_WINDOWS_FOR_CI = 30


def _t_quantile(df: float, z: float = 1.959963984540054) -> float:
    """Student's t 97.5 % quantile for ``df`` degrees of freedom (Cornish-Fisher
    expansion around the normal one; within 0.01 of the exact value from df = 4)."""
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def _log_ratio_jackknife(items: Sequence[tuple[float, float]]) -> tuple[float, float, int]:
    """(log Σ energy ÷ Σ inferences, its variance, degrees of freedom) by the
    delete-a-group jackknife over 5–10 groups of consecutive windows (≥ 30 windows a
    group when there are enough): whole stretches of time are left out together, so
    the autocorrelation of neighbouring windows stays inside the groups."""
    data = np.asarray(items, dtype=np.float64)
    n = len(data)
    groups = min(n, max(5, min(10, n // 30)))
    edges = np.linspace(0, n, groups + 1).astype(np.int64)
    sums = np.add.reduceat(data, edges[:-1], axis=0)
    total = sums.sum(axis=0)
    left_out = total - sums
    if total[0] <= 0 or total[1] <= 0 or np.any(left_out <= 0):
        return math.nan, math.nan, groups - 1
    theta = math.log(total[0] / total[1])
    loo = np.log(left_out[:, 0] / left_out[:, 1])
    variance = (groups - 1) / groups * float(((loo - loo.mean()) ** 2).sum())
    return theta, variance, groups - 1


def energy_ratio(
    reference: BackendEnergy, other: BackendEnergy
) -> tuple[float | None, tuple[float, float] | None, str | None]:
    """(reference ÷ other energy per inference, its 95 % interval, why one is missing).

    The interval is for the ratio itself: log ratio ± t · √(var_ref + var_other), each
    variance from a grouped jackknife over time (see ``_log_ratio_jackknife``), Welch's
    degrees of freedom. Counter figures keep their exact point estimate; the windows
    give the interval's width.
    """
    ref_mj, other_mj = reference.total_mj_per_inference, other.total_mj_per_inference
    if not (math.isfinite(ref_mj) and math.isfinite(other_mj)) or ref_mj <= 0 or other_mj <= 0:
        which = other if other_mj <= 0 or not math.isfinite(other_mj) else reference
        return None, None, f"no energy measured on {'+'.join(which.total_rails)}"
    ratio = ref_mj / other_mj
    fewest = min(len(reference.per_window), len(other.per_window))
    if fewest < MIN_WINDOWS_FOR_CI:
        return (
            ratio,
            None,
            f"{fewest} windows: too few for an interval (needs {MIN_WINDOWS_FOR_CI})",
        )
    ref_log, ref_var, ref_df = _log_ratio_jackknife(reference.per_window)
    oth_log, oth_var, oth_df = _log_ratio_jackknife(other.per_window)
    variance = ref_var + oth_var
    if not (math.isfinite(variance) and math.isfinite(ref_log) and math.isfinite(oth_log)):
        return ratio, None, "too few inferences per window for an interval"
    if variance <= 0:
        return ratio, (ratio, ratio), None
    df = variance**2 / (ref_var**2 / ref_df + oth_var**2 / oth_df)
    half = _t_quantile(df) * math.sqrt(variance)
    centre = math.log(ratio)  # the counters' exact estimate where there is one
    return ratio, (math.exp(centre - half), math.exp(centre + half)), None


#: Fewer timed runs (stretches) than this per backend: no run-to-run interval.
MIN_RUNS_FOR_SPREAD = 3
#: Student's t 97.5 % quantiles for 1–9 degrees of freedom, where the expansion above is
#: too rough (few runs is the usual case here).
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def t_975(df: float) -> float:
    """Student's t 97.5 % quantile: a table below 10 degrees of freedom, else the
    expansion."""
    whole = int(df)
    return _T_975[whole - 1] if 1 <= whole <= len(_T_975) else _t_quantile(df)


def run_to_run_half_width(ref_medians: Sequence[float], medians: Sequence[float]) -> float | None:
    """The 95 % half-width, on the log scale, of a ratio of medians judged by how much
    the per-run medians moved from run to run (each timed stretch a run), or None with
    fewer than MIN_RUNS_FOR_SPREAD runs each.

    Runs measured in the same rounds (as many of each: --interleave, --repeat) are
    paired, so drift that hit both cancels; otherwise the two sets are compared as
    independent samples (Welch).
    """
    a = np.log(np.asarray(ref_medians, dtype=np.float64))
    b = np.log(np.asarray(medians, dtype=np.float64))
    if min(len(a), len(b)) < MIN_RUNS_FOR_SPREAD:
        return None
    if len(a) == len(b):
        d = a - b
        return float(t_975(len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    if se2 == 0:
        return 0.0
    df = se2**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(t_975(df) * math.sqrt(se2))
