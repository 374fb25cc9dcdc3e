from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anetui.core.stats import (
    MAX_LATENCY_NS,
    REPORTED_QUANTILES,
    LatencyStats,
    median_ci_ranks,
    ratio_with_interval,
)

#: Worst-case relative error of a value read back from the histogram: half a bucket,
#: and a bucket is at most 1/1024 of its lower edge with 3 significant digits.
REL_TOL = 1 / 2048 + 1e-12


def nearest_rank(sorted_values: np.ndarray, q: float) -> float:
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


def recorded(values: np.ndarray) -> LatencyStats:
    stats = LatencyStats()
    stats.record_many(int(v) for v in values)
    return stats


def test_quantiles_match_exact_order_statistics_of_known_data() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=np.log(10e6), sigma=0.3, size=20_001).astype(np.int64)
    summary = recorded(values).summary()
    assert summary is not None
    ordered = np.sort(values)
    for name, q in REPORTED_QUANTILES:
        exact = nearest_rank(ordered, q)
        assert summary.quantiles_ns[name] == pytest.approx(exact, rel=REL_TOL), name
    assert summary.min_ns == ordered[0]
    assert summary.max_ns == ordered[-1]
    assert summary.count == len(values)
    assert summary.mean_ns == pytest.approx(values.mean(), rel=1e-12)
    assert summary.stddev_ns == pytest.approx(values.std(ddof=1), rel=1e-9)


def test_median_of_odd_and_even_counts_is_the_nearest_rank() -> None:
    summary = recorded(np.array([1_000, 2_000, 3_000, 4_000_000, 5_000_000])).summary()
    assert summary is not None
    assert summary.p50_ns == pytest.approx(3_000, rel=REL_TOL)
    summary = recorded(np.array([1_000, 2_000, 3_000, 4_000])).summary()
    assert summary is not None
    assert summary.p50_ns == pytest.approx(2_000, rel=REL_TOL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**11), min_size=1, max_size=400))
def test_quantiles_of_any_data_are_within_histogram_precision(values: list[int]) -> None:
    summary = recorded(np.array(values, dtype=np.int64)).summary()
    assert summary is not None
    ordered = np.sort(np.array(values, dtype=np.int64))
    for name, q in REPORTED_QUANTILES:
        assert summary.quantiles_ns[name] == pytest.approx(
            nearest_rank(ordered, q), rel=REL_TOL, abs=1
        )
    assert summary.min_ns == min(values) and summary.max_ns == max(values)
    if summary.p50_ci95_ns is not None:
        lo, hi = summary.p50_ci95_ns
        assert lo <= summary.p50_ns <= hi


def test_empty_stats_have_no_summary_and_reset_empties() -> None:
    stats = LatencyStats()
    assert stats.summary() is None
    stats.record(5)
    assert stats.count == 1
    stats.reset()
    assert stats.count == 0 and stats.summary() is None


def test_out_of_range_latencies_are_clamped_not_lost() -> None:
    stats = LatencyStats()
    stats.record(0)
    stats.record(MAX_LATENCY_NS * 10)
    summary = stats.summary()
    assert summary is not None
    assert summary.count == 2
    assert summary.min_ns == 1 and summary.max_ns == MAX_LATENCY_NS


@pytest.mark.parametrize("n", [6, 7, 10, 25, 100, 299, 300, 301, 1000, 100_000])
def test_median_ci_ranks_reach_95_percent_and_are_tightest(n: int) -> None:
    ranks = median_ci_ranks(n)
    assert ranks is not None
    j, k = ranks
    assert j >= 1 and j < k <= n and j + k == n + 1  # symmetric around the median
    coverage = _binomial_coverage(n, j)
    if n <= 300:  # exact method: at least 95%, and one rank tighter would fall below
        assert coverage >= 0.95
        assert _binomial_coverage(n, j + 1) < 0.95
    else:  # normal approximation: about 95%, within one rank of the exact interval
        assert coverage == pytest.approx(0.95, abs=0.015)
        if n <= 2000:
            exact_j = max(i for i in range(1, n) if _binomial_coverage(n, i) >= 0.95)
            assert abs(j - exact_j) <= 1


def _binomial_coverage(n: int, j: int) -> float:
    """P(X(j) <= median <= X(n-j+1)) = 1 - 2 P(Bin(n, 1/2) <= j - 1)."""
    if n > 2000:
        # Normal approximation for the check itself, with continuity correction.
        z = (j - 1 + 0.5 - n / 2) / math.sqrt(n / 4)
        tail = 0.5 * math.erfc(-z / math.sqrt(2))
    else:
        tail = sum(math.comb(n, i) for i in range(j)) / (1 << n)
    return 1 - 2 * tail


def test_median_ci_needs_six_samples() -> None:
    assert median_ci_ranks(5) is None
    assert median_ci_ranks(0) is None
    stats = recorded(np.array([10, 20, 30, 40, 50]))
    summary = stats.summary()
    assert summary is not None and summary.p50_ci95_ns is None
    assert summary.to_ms()["p50_ci95"] is None


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    true_median = 1e7 * math.exp(0)  # lognormal(log 1e7, s) has median 1e7
    trials, hits = 400, 0
    for _ in range(trials):
        sample = rng.lognormal(np.log(1e7), 0.5, size=101).astype(np.int64)
        summary = recorded(sample).summary()
        assert summary is not None and summary.p50_ci95_ns is not None
        lo, hi = summary.p50_ci95_ns
        hits += lo <= true_median <= hi
    # 95% nominal (exact method is >= 95%); 400 trials: binomial sd ~1.1%.
    assert 0.91 <= hits / trials <= 0.995


def test_concurrent_writers_and_readers_lose_nothing() -> None:
    stats = LatencyStats()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            stats.summary()

    reader = threading.Thread(target=read)
    reader.start()
    writers = [
        threading.Thread(target=lambda: stats.record_many(range(1, 20_001))) for _ in range(2)
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    summary = stats.summary()
    assert summary is not None and summary.count == 40_000
    assert summary.mean_ns == pytest.approx(10_000.5)


def test_buckets_partition_all_samples() -> None:
    values = np.arange(1_000_000, 2_000_000, 997)
    stats = recorded(values)
    buckets = stats.buckets(max_buckets=20)
    assert len(buckets) == 20
    assert sum(c for _lo, _hi, c in buckets) == len(values)
    assert buckets[0][0] == values.min() and buckets[-1][1] == values.max()


def test_ratio_interval_brackets_the_ratio() -> None:
    rng = np.random.default_rng(3)
    slow = recorded(rng.normal(20e6, 1e6, 500).astype(np.int64)).summary()
    fast = recorded(rng.normal(10e6, 0.5e6, 500).astype(np.int64)).summary()
    assert slow is not None and fast is not None
    ratio, ci, note = ratio_with_interval(slow, fast)
    assert ratio == pytest.approx(slow.p50_ns / fast.p50_ns)
    assert ci is not None and ci[0] < ratio < ci[1] and note is None
    assert ci[0] > 1.8 and ci[1] < 2.2
    # Each median's 97.5 % interval is wider than its 95 % one: the ratio's is honest.
    assert slow.p50_ci975_ns is not None and slow.p50_ci95_ns is not None
    assert slow.p50_ci975_ns[0] <= slow.p50_ci95_ns[0] <= slow.p50_ci95_ns[1]
    assert slow.p50_ci95_ns[1] <= slow.p50_ci975_ns[1]


def test_no_ratio_below_the_minimum_sample() -> None:
    slow = recorded(np.array([20_000_000] * 2)).summary()
    fast = recorded(np.array([10_000_000] * 3)).summary()
    assert slow is not None and fast is not None
    ratio, ci, note = ratio_with_interval(slow, fast)
    assert ratio == pytest.approx(2.0) and ci is None
    assert note == "2 and 3 inferences: too few for a ratio (needs 30 each)"


def test_buckets_can_leave_the_tail_out() -> None:
    stats = recorded(np.array([1_000_000] * 98 + [2_000_000, 50_000_000]))
    body = stats.buckets(max_buckets=10, high_ns=2_000_000)
    assert sum(c for _lo, _hi, c in body) == 99  # the 50 ms outlier is not drawn
    assert body[-1][1] == 2_000_000
