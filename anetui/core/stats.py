"""Streaming latency statistics in O(1) memory.

Latencies go into an HDR histogram (``hdrhistogram``) with 3 significant digits, so any
quantile is known to within 0.05% of its true value however many inferences are recorded,
while memory stays at one fixed counts array (~270 KB). Mean, standard deviation, min and
max are kept exactly beside it. The median's 95% confidence interval comes from order
statistics: the ranks j and k with P(X(j) <= median <= X(k)) >= 0.95 for any continuous
distribution, read back from the histogram, so no sample is ever stored.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

#: Largest latency the histogram can hold: one hour, in ns. Longer values are clamped.
MAX_LATENCY_NS = 3_600 * 1_000_000_000
SIGNIFICANT_DIGITS = 3
#: Quantiles reported everywhere, as fractions.
REPORTED_QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p999", 0.999),
)
#: Below this many samples no distribution-free 95% interval for the median exists.
MIN_COUNT_FOR_CI = 6
#: Fewer timed inferences than this in either backend: no speed ratio is claimed.
MIN_COUNT_FOR_RATIO = 30
#: Each median's confidence in a ratio interval: 0.975² ≥ 0.95 jointly.
RATIO_MEDIAN_CONFIDENCE = 0.975
#: Two-sided normal quantiles for the confidences used here.
_NORMAL_QUANTILES = {0.95: 1.959963984540054, 0.975: 2.241402727604947}


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """An immutable view of a latency distribution; every latency in nanoseconds."""

    count: int
    min_ns: int
    max_ns: int
    mean_ns: float
    stddev_ns: float
    quantiles_ns: dict[str, float]
    p50_ci95_ns: tuple[float, float] | None
    #: The median's 97.5 % interval: two of them bound a ratio of medians at >= 95 %.
    p50_ci975_ns: tuple[float, float] | None = None

    @property
    def p50_ns(self) -> float:
        return self.quantiles_ns["p50"]

    def to_ms(self) -> dict[str, object]:
        """The summary in milliseconds, in the order of the results schema."""
        out: dict[str, object] = {"p50": _ms(self.quantiles_ns["p50"])}
        out["p50_ci95"] = (
            [_ms(self.p50_ci95_ns[0]), _ms(self.p50_ci95_ns[1])] if self.p50_ci95_ns else None
        )
        for name, _q in REPORTED_QUANTILES[1:]:
            out[name] = _ms(self.quantiles_ns[name])
        out["mean"] = _ms(self.mean_ns)
        out["stddev"] = _ms(self.stddev_ns)
        out["min"] = _ms(self.min_ns)
        out["max"] = _ms(self.max_ns)
        return out


def _ms(value_ns: float) -> float:
    return round(value_ns / 1e6, 6)


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks (j, k) of the order statistics bounding the median with >= confidence.

    Exact binomial tail for n <= 300; above, the normal approximation with continuity
    correction, which lands within one rank of the exact interval. None when n is too
    small for any interval to reach the confidence.
    """
    if n < 1:
        return None
    alpha_half = (1.0 - confidence) / 2.0
    if n <= 300:
        # P(Bin(n, 1/2) <= j - 1) <= alpha/2: the median lies below X(j) that rarely.
        cumulative = 0.0
        j = 0
        total = 1 << n  # int / int true division stays exact for huge n
        for i in range(n + 1):
            cumulative += math.comb(n, i) / total
            if cumulative > alpha_half:
                j = i  # ranks 1..i: P(fewer than j successes) <= alpha/2
                break
        if j < 1:
            return None
    else:
        # Normal approximation with continuity correction: P(Bin <= j - 1) ~ alpha/2.
        z = _NORMAL_QUANTILES[confidence]
        j = math.floor(n / 2.0 + 0.5 - z * math.sqrt(n) / 2.0)
    k = n - j + 1
    if j < 1 or k > n:
        return None
    return j, k


#: The minimum of no latency: above any value recorded, so the first one replaces it.
_NO_MIN = MAX_LATENCY_NS + 1


class LatencyStats:
    """Thread-safe recorder of latencies in ns; cheap to write, snapshot to read.

    One writer (the runner thread) and any number of readers; every method takes the
    lock, which costs ~0.1 µs uncontended on the hot path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hist = HdrHistogram(1, MAX_LATENCY_NS, SIGNIFICANT_DIGITS)
        self._count = 0
        self._sum = 0
        self._sum_sq = 0
        self._min = _NO_MIN
        self._max = 0

    def record(self, latency_ns: int) -> None:
        """Record one latency (ns). Values outside [1, 1 h] are clamped into range."""
        value = latency_ns
        if not 0 < value <= MAX_LATENCY_NS:
            value = 1 if value < 1 else MAX_LATENCY_NS
        with self._lock:
            self._hist.record_value(value)
            # Python ints: the sums are exact however long the run.
            self._sum += value
            self._sum_sq += value * value
            if value < self._min:
                self._min = value
            if value > self._max:
                self._max = value
            self._count += 1

    def record_many(self, latencies_ns: Iterable[int]) -> None:
        """Record many latencies (ns) at once: the histogram's counts are found for all of
        them in one array operation (the runner folds its buffer here, outside the timed
        path, instead of a Python call per inference). Clamped like :meth:`record`."""
        values = np.clip(np.fromiter(latencies_ns, dtype=np.int64), 1, MAX_LATENCY_NS)
        if values.size == 0:
            return
        indices = self._counts_indices(values)
        # Python ints for the sums: exact however long the run (int64 squares overflow).
        as_ints = values.tolist()
        total = sum(as_ints)
        total_sq = sum(v * v for v in as_ints)
        lo, hi = int(values.min()), int(values.max())
        with self._lock:
            hist = self._hist
            counts = np.ctypeslib.as_array(hist.counts)
            first = int(indices.min())
            counts[first : int(indices.max()) + 1] += np.bincount(indices - first).astype(
                counts.dtype, copy=False
            )
            hist.total_count += len(as_ints)
            hist.min_value = min(hist.min_value, lo)
            hist.max_value = max(hist.max_value, hi)
            self._sum += total
            self._sum_sq += total_sq
            self._min = min(self._min, lo)
            self._max = max(self._max, hi)
            self._count += len(as_ints)

    def _counts_indices(self, values: np.ndarray) -> np.ndarray:
        """The histogram's counts index of each value, vectorised from hdrhistogram's own
        ``_counts_index_for`` (bucket from the bit length, sub-bucket by shifting)."""
        hist = self._hist
        # frexp's exponent is the bit length, exactly: every value is below 2**53.
        _mantissa, bit_length = np.frexp((values | int(hist.sub_bucket_mask)).astype(np.float64))
        magnitude = int(hist.sub_bucket_half_count_magnitude)
        bucket = bit_length.astype(np.int64) - int(hist.unit_magnitude) - (magnitude + 1)
        sub_bucket = values >> (bucket + int(hist.unit_magnitude))
        return ((bucket + 1) << magnitude) + sub_bucket - int(hist.sub_bucket_half_count)

    @property
    def count(self) -> int:
        return self._count

    def reset(self) -> None:
        with self._lock:
            self._hist.reset()
            self._count = self._sum = self._sum_sq = self._max = 0
            self._min = _NO_MIN

    def summary(self) -> LatencySummary | None:
        """An immutable summary, or None before the first latency is recorded."""
        with self._lock:
            n = self._count
            if n == 0:
                return None
            counts = np.ctypeslib.as_array(self._hist.counts).astype(np.int64, copy=True)
            total, total_sq, lo, hi = self._sum, self._sum_sq, self._min, self._max
        mean = total / n
        # Exact integer arithmetic, then the unbiased (n - 1) estimator.
        variance = (total_sq * n - total * total) / (n * (n - 1)) if n > 1 else 0.0
        ranks = [max(1, math.ceil(q * n)) for _name, q in REPORTED_QUANTILES]
        ci_ranks = median_ci_ranks(n)
        ratio_ranks = median_ci_ranks(n, RATIO_MEDIAN_CONFIDENCE)
        for pair in (ci_ranks, ratio_ranks):
            if pair is not None:
                ranks.extend(pair)
        values = self._values_at_ranks(counts, ranks, lo, hi)
        quantiles = {name: values[i] for i, (name, _q) in enumerate(REPORTED_QUANTILES)}
        at = len(REPORTED_QUANTILES)
        ci = (values[at], values[at + 1]) if ci_ranks is not None else None
        at += 2 if ci_ranks is not None else 0
        ci975 = (values[at], values[at + 1]) if ratio_ranks is not None else None
        return LatencySummary(
            count=n,
            min_ns=lo,
            max_ns=hi,
            mean_ns=mean,
            stddev_ns=math.sqrt(variance),
            quantiles_ns=quantiles,
            p50_ci95_ns=ci,
            p50_ci975_ns=ci975,
        )

    def _index_values(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lowest value, midpoint) of the histogram buckets at ``indices``, vectorised
        from hdrhistogram's public layout (its ``get_value_from_index`` and
        ``get_highest_equivalent_value``, one array operation instead of a Python call
        per bucket: the dashboard reads these every redraw)."""
        hist = self._hist
        half = int(hist.sub_bucket_half_count)
        bucket = (indices >> int(hist.sub_bucket_half_count_magnitude)) - 1
        sub = (indices & (half - 1)) + half
        first = bucket < 0
        sub = np.where(first, sub - half, sub)
        shift = np.maximum(bucket, 0) + int(hist.unit_magnitude)
        low = sub << shift
        return low, low + ((np.int64(1) << shift) >> 1)

    def _values_at_ranks(
        self, counts: np.ndarray, ranks: Sequence[int], lo: int, hi: int
    ) -> list[float]:
        """Value of the r-th smallest sample (1-based) for each r: its bucket's midpoint,
        clamped into [min, max] so the extremes are exact."""
        cumulative = np.cumsum(counts)
        indices = np.searchsorted(cumulative, np.asarray(ranks, dtype=np.int64), side="left")
        _low, mids = self._index_values(indices.astype(np.int64))
        return [float(min(max(int(mid), lo), hi)) for mid in mids.tolist()]

    def buckets(
        self, max_buckets: int = 60, high_ns: float | None = None
    ) -> list[tuple[float, float, int]]:
        """The distribution as ``max_buckets`` equal-width bins between min and max (or
        ``high_ns``, so a few outliers do not squash the body; latencies above it are left
        out): (low_ns, high_ns, count). For histograms in reports and the UI."""
        with self._lock:
            if self._count == 0:
                return []
            counts = np.ctypeslib.as_array(self._hist.counts).astype(np.int64, copy=True)
            lo, hi = self._min, self._max
        nonzero = np.flatnonzero(counts).astype(np.int64)
        lows, mids = self._index_values(nonzero)
        values = mids.astype(np.float64)
        weights = counts[nonzero]
        inside = np.ones(len(values), dtype=bool)  # bucket midpoints may pass the exact max
        if high_ns is not None and high_ns < hi:
            hi = int(max(high_ns, lo))
            inside = np.asarray(lows) <= hi  # a bucket starting at or below the cut
        if hi <= lo:
            return [(float(lo), float(hi), int(weights[inside].sum()))]
        edges = np.linspace(lo, hi, max_buckets + 1)
        binned, _ = np.histogram(
            np.clip(values[inside], lo, hi), bins=edges, weights=weights[inside]
        )
        return [(float(edges[i]), float(edges[i + 1]), int(binned[i])) for i in range(max_buckets)]


def ratio_with_interval(
    numerator: LatencySummary, denominator: LatencySummary
) -> tuple[float, tuple[float, float] | None, str | None]:
    """numerator.p50 / denominator.p50 with an interval that holds at >= 95 %: each
    median's distribution-free 97.5 % interval, lowest over highest and highest over
    lowest (both intervals hold at once with probability >= 0.975² > 0.95). The third
    item says why there is no interval (too few inferences), else None."""
    ratio = numerator.p50_ns / denominator.p50_ns
    fewest = min(numerator.count, denominator.count)
    if fewest < MIN_COUNT_FOR_RATIO:
        return (
            ratio,
            None,
            f"{numerator.count} and {denominator.count} inferences: too few for a ratio "
            f"(needs {MIN_COUNT_FOR_RATIO} each)",
        )
    if numerator.p50_ci975_ns is None or denominator.p50_ci975_ns is None:
        return ratio, None, "too few inferences for an interval"
    n_lo, n_hi = numerator.p50_ci975_ns
    d_lo, d_hi = denominator.p50_ci975_ns
    return ratio, (n_lo / d_hi, n_hi / d_lo), None
