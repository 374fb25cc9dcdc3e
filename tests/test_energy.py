from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from anetui.core.config import RunConfig
from anetui.core.energy import RunView, attribute, completions_in, energy_ratio
from anetui.core.runner import BUCKET_NS
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power import nvml, powermetrics, rapl
from anetui.power.base import PowerSample
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource
from anetui.report.text import rails_label
from tests.test_session import doubles_registry  # noqa: F401  (fixture)

MS = 1_000_000


def sample(start_ms: float, end_ms: float, **rails_mj: float) -> PowerSample:
    return PowerSample(int(start_ms * MS), int(end_ms * MS), rails_mj)


def steady_run(start_ms: int, end_ms: int, per_bucket: int) -> RunView:
    """A backend that completed `per_bucket` inferences in every 100 ms it ran."""
    buckets = [(b, per_bucket) for b in range(start_ms * MS // BUCKET_NS, end_ms * MS // BUCKET_NS)]
    return RunView([(start_ms * MS, end_ms * MS)], buckets, (end_ms - start_ms) * MS)


@pytest.mark.parametrize(
    ("rule", "rails", "total"),
    [
        (
            powermetrics.total_rails,
            {"cpu", "gpu", "ane", "combined", "dram", "package"},
            ("cpu", "gpu", "ane"),
        ),
        (rapl.total_rails, {"package-0", "core", "uncore", "dram", "psys"}, ("package-0", "dram")),
        (
            rapl.total_rails,
            {"package-0", "package-1", "core-0", "dram-0", "dram-1"},
            ("package-0", "package-1", "dram-0", "dram-1"),
        ),
        (nvml.total_rails, {"gpu1", "gpu0", "gpu10"}, ("gpu0", "gpu1", "gpu10")),
        (powermetrics.total_rails, {"package", "dram"}, ("package",)),
        (powermetrics.total_rails, {"gpu"}, ("gpu",)),
    ],
)
def test_total_rails_never_count_twice(
    rule: Callable[[set[str]], tuple[str, ...]], rails: set[str], total: tuple[str, ...]
) -> None:
    """Each source declares which of its rails sum to the total."""
    assert rule(rails) == total


def test_rails_label() -> None:
    assert rails_label(("cpu", "gpu", "ane")) == "CPU+GPU+ANE"
    assert rails_label(("package-0", "dram")) == "package-0+DRAM"


def test_windows_are_attributed_only_when_wholly_inside_one_run() -> None:
    runs = {"a": steady_run(1000, 2000, 10), "b": steady_run(2000, 3000, 5)}
    samples = [
        sample(0, 250, cpu=250.0),  # idle: 1 W
        sample(250, 500, cpu=250.0),  # idle
        sample(1000, 1500, cpu=2500.0),  # a: 5 W
        sample(1500, 2000, cpu=2500.0),  # a
        sample(1900, 2100, cpu=999.0),  # straddles the switch: nobody's
        sample(2000, 3000, cpu=3000.0),  # b: 3 W
        sample(2900, 3500, cpu=999.0),  # straddles b's end: not idle either
        sample(500, 900, cpu=999.0),  # idle by time, but busy (preparing)
    ]
    report = attribute(samples, runs, busy=[(600 * MS, 800 * MS)])
    assert report.idle_windows == 2 and report.idle_w == pytest.approx({"cpu": 1.0})
    a, b = report.backends["a"], report.backends["b"]
    assert a.windows == 2 and a.inferences == pytest.approx(100)
    assert a.mj_per_inference["cpu"] == pytest.approx(
        50.0
    ) and a.total_mj_per_inference == pytest.approx(50.0)
    assert a.active_mj_per_inference == pytest.approx(
        {"cpu": 40.0, "total": 40.0}
    )  # 5 W − 1 W idle
    assert a.mean_power_w == pytest.approx({"cpu": 5.0}) and a.coverage == pytest.approx(1.0)
    assert b.inferences == pytest.approx(50) and b.mj_per_inference["cpu"] == pytest.approx(60.0)
    ratio, ci = energy_ratio(a, b)
    assert ratio == pytest.approx(50 / 60)  # reference ÷ other: a used less
    assert ci is None  # too few windows for an interval


def test_completions_are_prorated_over_the_running_part_of_a_bucket() -> None:
    # The run started 50 ms into a bucket and completed 10 inferences in those 50 ms.
    run = RunView([(1050 * MS, 1300 * MS)], [(10, 10), (11, 20), (12, 20)], 250 * MS)
    assert completions_in(sample(1050, 1100, cpu=1), run, dict(run.buckets)) == pytest.approx(10)
    assert completions_in(sample(1075, 1250, cpu=1), run, dict(run.buckets)) == pytest.approx(
        5 + 20 + 10
    )


def test_no_idle_windows_means_no_active_energy() -> None:
    report = attribute([sample(1000, 2000, cpu=5000.0)], {"a": steady_run(1000, 2000, 10)})
    assert report.idle_w is None
    assert report.backends["a"].active_mj_per_inference is None


def test_energy_ratio_interval_from_windows() -> None:
    runs = {"a": steady_run(0, 5000, 10), "b": steady_run(5000, 10000, 10)}
    samples = [
        sample(t, t + 250, gpu0=250.0 * (1 + 0.05 * (i % 3)))
        for i, t in enumerate(range(0, 5000, 250))
    ]
    samples += [
        sample(t, t + 250, gpu0=50.0 * (1 + 0.05 * (i % 2)))
        for i, t in enumerate(range(5000, 10000, 250))
    ]
    report = attribute(samples, runs)
    ratio, ci = energy_ratio(report.backends["a"], report.backends["b"])
    assert ci is not None and ci[0] < ratio < ci[1]
    assert ci[0] > 4.5 and ci[1] < 5.5


def constant_power_recording(
    path: Path, watts: float, windows: int = 40, window_ms: int = 100
) -> None:
    """A plist stream in powermetrics' framing whose CPU draws `watts` exactly."""
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
        f"<key>elapsed_ns</key><integer>{window_ms * MS}</integer>\n"
        "<key>processor</key><dict>"
        f"<key>cpu_energy</key><integer>{round(watts * window_ms)}</integer>"
        "<key>gpu_energy</key><integer>0</integer><key>ane_energy</key><integer>0</integer>"
        "</dict>\n<key>thermal_pressure</key><string>Nominal</string>\n</dict>\n</plist>\n"
    )
    path.write_bytes(b"\0".join([doc.encode()] * windows))


def test_constant_power_replay_gives_power_over_throughput(
    tmp_path: Path,
    doubles_registry: None,  # noqa: F811
) -> None:
    recording = tmp_path / "constant.plist"
    constant_power_recording(recording, watts=5.0)
    monitor = PowerMonitor(ReplaySource(recording, loop=True))
    assert monitor.start()
    config = RunConfig(
        backends=("double-ok",),
        warmup=0,
        iterations=None,
        duration_s=2.0,
        power=f"replay:{recording}",
        idle_seconds=0.5,
    )
    session = Session(config, ModelSpec(name="none", kind="none", input_shape=(1,)), monitor)
    session.prepare()
    session.run()
    monitor.stop()
    snap = session.snapshot()
    result = snap.backends[0]
    assert result.energy is not None and result.throughput_per_s is not None
    expected_mj = 5.0 / result.throughput_per_s * 1000  # W ÷ (inf/s) = J/inf
    assert result.energy.total_mj_per_inference == pytest.approx(expected_mj, rel=0.02)
    assert result.energy.total_rails == ("cpu", "gpu", "ane")
    assert result.energy.coverage > 0.7
    assert result.energy.thermal_pressure == ("Nominal",)
    # The idle baseline is the same 5 W: active energy per inference is ~0.
    assert snap.power["idle_windows"] >= 3
    assert abs(result.energy.total_active_mj_per_inference or 0) < 0.02 * expected_mj
    assert snap.power["label"] == "replay of constant.plist (looped)"
    assert not any(t.name == "anetui-power" and t.is_alive() for t in threading.enumerate())
