"""Run-to-run spread (issue 20): one run's interval assumes its inferences are alike;
runs minutes apart differ by more, and a ratio's interval must say so when it does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anetui.core import intervals, ratios
from anetui.core.config import RunConfig, schedule
from anetui.core.results import BackendResult, BackendState
from anetui.core.stats import LatencyStats


def _result(
    backend_id: str, latencies_ns: list[int], run_medians: tuple[float, ...]
) -> BackendResult:
    stats = LatencyStats()
    stats.record_many(latencies_ns)
    return BackendResult(
        id=backend_id,
        runtime="r",
        device="cpu",
        dtype="fp32",
        available=True,
        reason=None,
        state=BackendState.DONE,
        error=None,
        prepare=None,
        summary=stats.summary(),
        throughput_per_s=None,
        active_s=1.0,
        agreement_max_rel_err=None,
        run_medians_ns=run_medians,
    )


def test_paired_runs_give_a_student_t_interval_on_the_log_ratios() -> None:
    ref = [10.0, 12.0, 11.0, 13.0]
    other = [5.0, 5.5, 5.2, 6.9]
    d = np.log(ref) - np.log(other)
    expected = 3.182 * d.std(ddof=1) / math.sqrt(4)  # t(3) at 97.5 %
    assert intervals.run_to_run_half_width(ref, other) == pytest.approx(expected)
    assert intervals.run_to_run_half_width(ref[:2], other[:2]) is None  # too few runs


def test_unequal_run_counts_are_compared_as_independent_samples() -> None:
    half = intervals.run_to_run_half_width([10.0, 12.0, 11.0], [5.0, 5.5, 5.2, 6.9, 6.0])
    assert half is not None and half > 0


def test_the_ratio_uses_the_run_to_run_interval_only_when_it_is_wider() -> None:
    rng = np.random.default_rng(0)
    steady = rng.normal(10e6, 1e5, 3000).astype(int).tolist()
    fast = rng.normal(5e6, 5e4, 3000).astype(int).tolist()
    # Runs that agree: the within-run interval stands.
    calm = ratios.against(
        "a",
        {
            "a": _result("a", steady, (10.0e6, 10.0001e6, 9.9999e6)),
            "b": _result("b", fast, (5.0e6, 5.0e6, 5.00001e6)),
        },
    )[0]
    assert calm.speed_ci_from == "within-run"
    # Runs that moved a lot: the interval widens, centred on the overall ratio, and says so.
    moved = ratios.against(
        "a",
        {
            "a": _result("a", steady, (7e6, 10e6, 14e6)),
            "b": _result("b", fast, (5e6, 5e6, 5e6)),
        },
    )[0]
    assert moved.speed_ci_from == "run-to-run (3 runs)"
    assert moved.speed_ci95 is not None and calm.speed_ci95 is not None
    low, high = moved.speed_ci95
    assert low < calm.speed_ci95[0] and high > calm.speed_ci95[1]
    assert math.sqrt(low * high) == pytest.approx(moved.speed)


def test_repeat_runs_the_whole_schedule_again() -> None:
    once = schedule(RunConfig(iterations=30, duration_s=None, interleave=True), 2)
    thrice = schedule(RunConfig(iterations=30, duration_s=None, interleave=True, repeat=3), 2)
    assert thrice == once * 3
    plain = schedule(RunConfig(duration_s=4.0, repeat=2), 3)
    assert plain == [[(None, 4.0)] * 3] * 2
