"""Recorded-style ``AppleEnergyMetrics`` sequences for the ioreport tests.

The per-window energies (mJ) and the shape of each chip — which fields exist, how many
cores and clusters — are the readings in zeus-apple-silicon's own test suite
(tests/tests_cpp/test_monitor.cpp: test_m1_max_example, test_m3_pro_example,
test_m4_example; tests/tests_python/test_monitor.py: test_m5_max_channels, whose M5 Max
has no GPU SRAM channel). A sequence is cumulative, as ``get_cumulative_energy``
returns it: a large since-boot origin plus the window's energy, window after window,
varied by a fixed pattern so no two windows are alike.
"""

from __future__ import annotations

from typing import Any

#: One window's energy per AppleEnergyMetrics field (mJ); absent key = field is None.
WINDOWS: dict[str, dict[str, Any]] = {
    "m1_max": {
        "cpu_total_mj": 1701,
        "efficiency_cores_mj": [4, 2],
        "performance_cores_mj": [1651, 14, 2, 0, 0, 0, 0, 0],
        "efficiency_cluster_mj": [10],
        "performance_cluster_mj": [1700, 5],
        "efficiency_core_manager_mj": 2,
        "performance_core_manager_mj": 26,
        "dram_mj": 358,
        "gpu_mj": 9,
        "gpu_sram_mj": 0,
        "ane_mj": 0,
    },
    "m3_pro": {
        "cpu_total_mj": 2131,
        "efficiency_cores_mj": [5, 2, 2, 1, 1, 2],
        "performance_cores_mj": [1, 0, 9, 0, 3, 1893],
        "efficiency_cluster_mj": [15],
        "performance_cluster_mj": [25],
        "efficiency_core_manager_mj": 5,
        "performance_core_manager_mj": 19,
        "dram_mj": 60,
        "gpu_mj": 4,
        "gpu_sram_mj": 0,
        "ane_mj": 0,
    },
    "m4": {
        "cpu_total_mj": 2174,
        "efficiency_cores_mj": [2, 1, 0, 0, 0, 0],
        "performance_cores_mj": [47, 1, 2104, 3],
        "efficiency_cluster_mj": [8],
        "performance_cluster_mj": [2200],
        "efficiency_core_manager_mj": 2,
        "performance_core_manager_mj": 16,
        "dram_mj": 61,
        "gpu_mj": 0,
        "gpu_sram_mj": 0,
        "ane_mj": 0,
    },
    "m5_like": {  # M5 Max naming: two "efficiency" (MCPU) clusters, no GPU SRAM
        "cpu_total_mj": 2000,
        "efficiency_cores_mj": [100, 90, 80, 70, 60, 50, 95, 85, 75, 65, 55, 45],
        "performance_cores_mj": [500, 400, 300, 250, 200, 150],
        "efficiency_cluster_mj": [9999, 8888],
        "performance_cluster_mj": [7777],
        "efficiency_core_manager_mj": 55,
        "performance_core_manager_mj": 40,
        "dram_mj": 100,
        "gpu_mj": 5,
        "ane_mj": 10,
    },
}
ORIGIN_MJ = 7_000_000  # a since-boot counter value
#: What the ANE draws per window while Core ML runs a model on it (about 0.7 W at 250 ms).
ANE_BUSY_MJ = 180


def _scale(value: Any, factor: float) -> Any:
    if isinstance(value, list):
        return [round(v * factor) for v in value]
    return round(value * factor)


def sequence(
    chip: str,
    windows: int = 12,
    *,
    ane_busy: bool = False,
    frozen_ane: bool = False,
    zero_dram: bool = False,
) -> list[dict[str, Any]]:
    """``windows + 1`` cumulative readings for ``chip``.

    ane_busy: the ANE draws ANE_BUSY_MJ per window (a model running on it);
    frozen_ane: the ANE counter sticks at its origin value (macmon#76, mactop#82);
    zero_dram: the DRAM counter reads 0, origin included (stats#3608).
    """
    per_window = dict(WINDOWS[chip])
    if ane_busy:
        per_window["ane_mj"] = ANE_BUSY_MJ
    total: dict[str, Any] = {k: _scale(v, 0) for k, v in per_window.items()}
    readings = []
    for index in range(windows + 1):
        reading = {k: _scale(v, 1) for k, v in total.items()}
        for key, value in reading.items():
            reading[key] = (
                [x + ORIGIN_MJ for x in value] if isinstance(value, list) else value + ORIGIN_MJ
            )
        if frozen_ane and "ane_mj" in reading:
            reading["ane_mj"] = ORIGIN_MJ
        if zero_dram and "dram_mj" in reading:
            reading["dram_mj"] = 0
        readings.append(reading)
        factor = 1 + 0.1 * (index % 3)
        for key, value in per_window.items():
            step = _scale(value, factor)
            total[key] = (
                [a + b for a, b in zip(total[key], step, strict=True)]
                if isinstance(step, list)
                else total[key] + step
            )
    return readings
