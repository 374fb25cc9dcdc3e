"""Coverage by simulation: synthetic runs with a known ratio; at least 94 % of the 95 %
intervals must contain it. Seeds are fixed, so each run of the test is the same."""

from __future__ import annotations

import numpy as np
import pytest

from anetui.core.energy_figures import BackendEnergy
from anetui.core.intervals import energy_ratio
from anetui.core.stats import LatencyStats, ratio_with_interval

TRIALS = 400


def windows(
    rng: np.random.Generator, n: int, mj_per_inference: float, rate: float, phi: float
) -> BackendEnergy:
    """``n`` power windows of a backend: Poisson inferences per window, energy per
    inference drifting as an AR(1) process (neighbouring windows alike, as heat and
    clocks make them), plus the counter's own noise."""
    drift = np.zeros(n)
    level = 0.0
    for i in range(n):
        level = phi * level + rng.normal(0.0, 0.1 * np.sqrt(1 - phi**2))
        drift[i] = level
    inferences = rng.poisson(rate, n).astype(float)
    energy = inferences * mj_per_inference * (1 + drift)
    energy += rng.normal(0.0, 0.05 * rate * mj_per_inference, n)
    total = float(energy.sum() / inferences.sum())
    return BackendEnergy(
        rails=("cpu",),
        total_rails=("cpu",),
        windows=n,
        window_s=n * 0.25,
        inferences=float(inferences.sum()),
        mj_per_inference={"cpu": total, "total": total},
        active_mj_per_inference=None,
        mean_power_w={"cpu": 0.0},
        coverage=1.0,
        thermal_pressure=(),
        per_window=tuple(zip(energy.tolist(), inferences.tolist(), strict=True)),
    )


@pytest.mark.parametrize(("n", "phi"), [(60, 0.5), (200, 0.7), (40, 0.0)])
def test_energy_ratio_intervals_cover_the_true_ratio(n: int, phi: float) -> None:
    rng = np.random.default_rng(1)
    true_ratio = 5.0  # 50 mJ against 10 mJ per inference
    hits = 0
    for _ in range(TRIALS):
        ratio, ci, note = energy_ratio(
            windows(rng, n, 50.0, 20, phi), windows(rng, n, 10.0, 60, phi)
        )
        assert ci is not None and note is None and ratio is not None
        hits += ci[0] <= true_ratio <= ci[1]
    assert hits / TRIALS >= 0.94


def test_latency_ratio_intervals_cover_the_true_ratio() -> None:
    rng = np.random.default_rng(2)
    true_ratio = 1.5  # medians 15 ms and 10 ms
    hits = 0
    for _ in range(TRIALS):
        slow, fast = LatencyStats(), LatencyStats()
        slow.record_many(rng.lognormal(np.log(15e6), 0.3, 120).astype(np.int64).tolist())
        fast.record_many(rng.lognormal(np.log(10e6), 0.5, 80).astype(np.int64).tolist())
        a, b = slow.summary(), fast.summary()
        assert a is not None and b is not None
        _ratio, ci, _note = ratio_with_interval(a, b)
        assert ci is not None
        hits += ci[0] <= true_ratio <= ci[1]
    assert hits / TRIALS >= 0.94
