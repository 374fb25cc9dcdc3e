"""Counter health on replayed powermetrics recordings and on hand-made windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from anetui.power.base import PowerSample
from anetui.power.health import (
    RunSpan,
    SuspectRail,
    excluding,
    loads,
    suspect_rails,
    timing_problems,
)
from anetui.power.powermetrics import total_rails as powermetrics_total_rails
from anetui.power.powermetrics_parse import parse_bytes
from anetui.power.powermetrics_window import windows_to_samples

DATA = Path(__file__).parent / "data" / "powermetrics"
#: 24 windows of an M1 under Geekbench 5 Metal: ANE at 0 mW throughout, GPU up to 7.6 W.
GB5_METAL = DATA / "m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt"
MS = 1_000_000


def replay(path: Path) -> list[PowerSample]:
    windows, errors = parse_bytes(path.read_bytes())
    assert windows and not errors
    return windows_to_samples(windows)


def whole(samples: list[PowerSample], device: str) -> RunSpan:
    return RunSpan(device, [(samples[0].t_start_ns, samples[-1].t_end_ns)])


def test_the_recording_with_ane_at_zero_is_flagged_only_for_a_neural_engine_run() -> None:
    samples = replay(GB5_METAL)
    assert len(samples) == 24 and all(s.rails_mj["ane"] == 0 for s in samples)
    suspect = suspect_rails(samples, {"coreml-ane": whole(samples, "cpu+ane")})
    assert [s.rail for s in suspect] == ["ane"]
    # The GPU drew watts meanwhile: the sentence says what that most likely means.
    assert suspect[0].reason.startswith(
        "ane reads 0 mJ over 24 windows while coreml-ane ran and the GPU drew 2.9 W: "
    )
    assert "Core ML most likely ran the model on the GPU" in suspect[0].reason
    # The same windows under a CPU backend are healthy: an idle ANE at 0 is no finding.
    assert suspect_rails(samples, {"torch-cpu": whole(samples, "cpu")}) == []


def test_without_gpu_activity_a_zero_ane_says_broken_or_elsewhere() -> None:
    samples = replay(GB5_METAL)[:6]  # the first six windows: GPU at ~0 W
    (suspect,) = suspect_rails(samples, {"coreml-ane": whole(samples, "cpu+ane")})
    assert suspect == SuspectRail(
        "ane",
        "ane reads 0 mJ over 6 windows while coreml-ane ran: the counter may be broken on "
        "this macOS, or Core ML ran the model elsewhere — see `anetui plan`",
    )


@pytest.mark.parametrize(
    "name",
    [
        "m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt",
        "m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist",
        "m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_a.plist",
        "m4max_mac16-5_macos26-2_25C56_plist_tasks_disk_cpu_gpu_thermal.plist",
        "m1max_macos13beta_22A5321d_cpu_power_text_loadA.txt",
    ],
)
def test_healthy_recordings_raise_nothing(name: str) -> None:
    samples = replay(DATA / name)
    for backend, device in (("torch-cpu", "cpu"), ("torch-mps", "mps")):
        assert suspect_rails(samples, {backend: whole(samples, device)}) == []
    assert timing_problems(samples) == []


def test_a_cpu_reading_zero_throughout_a_cpu_run_is_suspect_and_left_out() -> None:
    samples = [
        PowerSample(s.t_start_ns, s.t_end_ns, {**s.rails_mj, "cpu": 0.0}) for s in replay(GB5_METAL)
    ]
    (suspect,) = suspect_rails(samples, {"torch-cpu": whole(samples, "cpu")})
    assert suspect.rail == "cpu"
    assert suspect.reason == (
        "cpu reads 0 mJ over 24 windows while torch-cpu ran: the counter is dead or "
        "frozen on this system; left out of the totals"
    )
    rule = excluding(powermetrics_total_rails, [suspect.rail])
    assert rule(samples[0].rails_mj) == ("gpu", "ane")
    # Too few windows are not evidence.
    assert suspect_rails(samples[:4], {"torch-cpu": whole(samples[:4], "cpu")}) == []


def test_backwards_and_implausible_readings() -> None:
    samples = [
        PowerSample(0, 250 * MS, {"cpu": 500.0, "gpu": 10.0, "ane": 1.0}),
        PowerSample(250 * MS, 500 * MS, {"cpu": -3.0, "gpu": 10.0, "ane": 1.0}),
        PowerSample(500 * MS, 750 * MS, {"cpu": 500.0, "gpu": 10.0, "ane": 250_000.0}),
    ]
    suspect = {s.rail: s.reason for s in suspect_rails(samples, {})}
    assert set(suspect) == {"cpu", "ane"}
    assert suspect["cpu"].startswith("cpu went backwards (-3 mJ in one window)")
    assert suspect["ane"].startswith("ane read 1000 W in one window, beyond the 60 W")


def test_stalled_and_overlapping_timestamps_are_reported() -> None:
    samples = [
        PowerSample(0, 250 * MS, {"cpu": 1.0}),
        PowerSample(250 * MS, 250 * MS, {"cpu": 1.0}),
        PowerSample(100 * MS, 200 * MS, {"cpu": 1.0}),
        PowerSample(195 * MS, 450 * MS, {"cpu": 1.0}),  # a small overlap is normal
    ]
    problems = timing_problems(samples)
    assert problems == [
        "the power source's clock stalled in 1 window(s) (no time passed): they were not used",
        "the power source's timestamps stopped or went back 2 time(s): the energy figures "
        "around them are less certain",
    ]


def test_which_units_a_device_loads() -> None:
    assert loads("cpu+ane", "ane") and not loads("cpu+gpu", "ane")
    assert loads("mps", "gpu") and loads("cpu+gpu", "gpu") and not loads("cpu", "gpu")
    assert loads("cuda", "gpu0") and not loads("cpu", "gpu1")
    assert all(loads(d, r) for d in ("cpu", "mps", "cpu+ane") for r in ("cpu", "dram"))
    assert loads("cpu", "package-0") and not loads("cpu", "cpu_p1")  # a cluster may idle
