from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from anetui.core.config import RunConfig
from anetui.core.energy import EnergyLedger
from anetui.core.energy_figures import BackendEnergy
from anetui.core.energy_totals import MAX_ITEMS, completions
from anetui.core.intervals import energy_ratio
from anetui.core.runner import BUCKET_NS, CompletionTimeline
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power import nvml, powermetrics, rapl
from anetui.power.base import CounterReading, PowerSample
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource
from anetui.report.text import rails_label
from tests.test_session import doubles_registry  # noqa: F401  (fixture)

MS = 1_000_000


def sample(start_ms: float, end_ms: float, **rails_mj: float) -> PowerSample:
    return PowerSample(int(start_ms * MS), int(end_ms * MS), rails_mj)


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


class Clock:
    """A hand-moved perf_counter for the ledger (ns)."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def at(self, ms: float) -> None:
        self.now_ns = int(ms * MS)


def steady(timeline: CompletionTimeline, start_ms: int, end_ms: int, per_bucket: int) -> None:
    """The runner's view of a backend that completed ``per_bucket`` inferences in every
    100 ms of [start_ms, end_ms)."""
    for bucket in range(start_ms * MS // BUCKET_NS, end_ms * MS // BUCKET_NS):
        timeline.publish(bucket, per_bucket)


class Counted:
    """count_now for a phase: inferences so far."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def test_only_explicit_idle_phases_make_the_baseline_and_windows_need_a_whole_run() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock)
    # Startup, imports, preparation: windows in nobody's time, never idle.
    clock.at(1000)
    for t in range(0, 1000, 250):
        ledger.add(sample(t, t + 250, cpu=2000.0))  # 8 W while torch imports
    ledger.begin_idle()
    clock.at(2000)
    ledger.add(sample(1000, 1250, cpu=250.0))  # idle: 1 W
    ledger.add(sample(1250, 1500, cpu=250.0))
    ledger.add(sample(1500, 1750, cpu=250.0))
    ledger.end()
    ledger.add(sample(1750, 2000, cpu=250.0))  # arrives after the end: still idle
    timeline, counted = CompletionTimeline(), Counted()
    clock.at(2100)
    ledger.begin_run("a", timeline, counted)
    clock.at(3100)
    steady(timeline, 2100, 3100, 10)
    counted.count = 100
    ledger.add(sample(2000, 2250, cpu=999.0))  # straddles the start: nobody's
    ledger.add(sample(2250, 2750, cpu=2500.0))  # 5 W, 50 inferences
    ledger.add(sample(2750, 3000, cpu=1250.0))  # 5 W, 25 inferences
    ledger.end()
    ledger.add(sample(3000, 3250, cpu=999.0))  # straddles the end
    report = ledger.report({"a": 1000 * MS})
    assert report.idle_windows == 4 and report.idle_w == pytest.approx({"cpu": 1.0})
    assert report.idle_s == pytest.approx(1.0) and report.idle_method == "windows"
    a = report.backends["a"]
    assert a.windows == 2 and a.inferences == pytest.approx(75)
    assert a.mj_per_inference["cpu"] == pytest.approx(50.0)
    assert a.active_mj_per_inference == pytest.approx({"cpu": 40.0, "total": 40.0})  # 5 − 1 W
    assert a.coverage == pytest.approx(0.75) and a.method == "windows"


def test_without_an_idle_phase_there_is_no_baseline_and_no_active_energy() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock)
    clock.at(500)
    ledger.add(sample(0, 250, cpu=250.0))  # before anything: not idle
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    clock.at(1500)
    steady(timeline, 500, 1500, 10)
    counted.count = 100
    ledger.end()
    ledger.add(sample(500, 1500, cpu=5000.0))
    report = ledger.report({"a": 1000 * MS})
    assert report.idle_w is None and report.idle_windows == 0 and report.idle_s == 0
    assert report.backends["a"].active_mj_per_inference is None


def test_a_window_waits_until_the_runner_has_counted_its_last_bucket() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock)
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    clock.at(1000)
    steady(timeline, 0, 500, 10)  # buckets up to 400–500 ms are final
    ledger.add(sample(250, 750, cpu=500.0))  # its 600–700 ms bucket is not yet
    assert ledger.report({"a": 1000 * MS}).backends == {}
    steady(timeline, 500, 800, 10)
    a = ledger.report({"a": 1000 * MS}).backends["a"]
    assert a.windows == 1 and a.inferences == pytest.approx(50)


def test_completions_are_prorated_over_the_running_part_of_a_bucket() -> None:
    # A phase from 1050 to 1300 ms; buckets 10 (1000–1100), 11, 12 (1200–1300).
    counts = {10: 10, 11: 20, 12: 20}
    # Bucket 10 ran only 1050–1100: its 10 completions happened there.
    assert completions(1050 * MS, 1100 * MS, 1050 * MS, 1300 * MS, counts) == pytest.approx(10)
    assert completions(1100 * MS, 1150 * MS, 1050 * MS, 1300 * MS, counts) == pytest.approx(10)


class FakeCounters:
    """A counter source whose counters step in 100 mJ: what the ledger reads at the
    edges of phases (the periodic windows are fed separately)."""

    def __init__(self, clock: Clock) -> None:
        self.resolution_mj = {"gpu0": 100.0}
        self.clock = clock
        self.energy_mj = 0.0

    def read_counters(self) -> CounterReading:
        stepped = self.energy_mj // 100 * 100
        return CounterReading(self.clock.now_ns, {"gpu0": stepped})


def test_counter_sources_measure_each_stretch_exactly() -> None:
    clock = Clock()
    counters = FakeCounters(clock)
    ledger = EnergyLedger(nvml.total_rails, counters, clock=clock)  # type: ignore[arg-type]
    ledger.begin_idle()
    clock.at(2000)
    counters.energy_mj += 100_000  # 50 W idle for 2 s
    ledger.end()
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    clock.at(6000)
    counters.energy_mj += 4 * 250_000  # 250 W for 4 s
    counted.count = 400
    steady(timeline, 2000, 6000, 10)
    # Windows of a stepping counter: uneven, some straddle; they do not set the figure.
    ledger.add(sample(2100, 3100, gpu0=300_000.0))
    ledger.add(sample(3100, 4100, gpu0=200_000.0))
    ledger.end()
    report = ledger.report({"a": 4000 * MS})
    assert report.idle_method == "counters" and report.idle_w == pytest.approx({"gpu0": 50.0})
    a = report.backends["a"]
    assert a.method == "counters" and a.stretches == 1 and a.coverage == pytest.approx(1.0)
    assert a.total_mj_per_inference == pytest.approx(2500.0)  # 1000 J / 400
    assert a.total_active_mj_per_inference == pytest.approx(2000.0)  # (250 − 50) W
    assert a.windows == 2  # kept for the interval only
    assert a.resolution_mj_per_inference == pytest.approx(100.0 / 400)
    assert report.resolution_mj == {"gpu0": 100.0}


def test_a_stretch_in_progress_counts_up_to_now_with_counters() -> None:
    clock = Clock()
    counters = FakeCounters(clock)
    ledger = EnergyLedger(nvml.total_rails, counters, clock=clock)  # type: ignore[arg-type]
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    clock.at(1000)
    counters.energy_mj += 10_000
    counted.count = 20
    a = ledger.report({"a": 1000 * MS}).backends["a"]
    assert a.total_mj_per_inference == pytest.approx(500.0)


def test_per_window_figures_stay_bounded_however_long_the_run() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock)
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    windows = 3 * MAX_ITEMS
    clock.at(windows * 100 + 100)
    steady(timeline, 0, windows * 100 + 100, 2)
    for i in range(windows):
        ledger.add(sample(i * 100, (i + 1) * 100, cpu=100.0))
    a = ledger.report({"a": windows * 100 * MS}).backends["a"]
    assert a.windows == windows and len(a.per_window) <= MAX_ITEMS
    assert sum(n for _e, n in a.per_window) == pytest.approx(2 * windows)
    assert a.mj_per_inference["cpu"] == pytest.approx(50.0)


def test_gaps_between_windows_are_counted_as_missed() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock, interval_ms=250)
    clock.at(5000)
    ledger.add(sample(0, 250, cpu=1.0))
    ledger.add(sample(1250, 1500, cpu=1.0))  # a second lost
    assert ledger.report().missed_s == pytest.approx(1.0)


def test_zero_energy_gives_no_ratio_and_a_reason_not_an_exception() -> None:
    def energy(mj: float, items: int) -> BackendEnergy:
        return BackendEnergy(
            rails=("gpu0",),
            total_rails=("gpu0",),
            windows=items,
            window_s=items * 0.25,
            inferences=10.0 * items,
            mj_per_inference={"gpu0": mj, "total": mj},
            active_mj_per_inference=None,
            mean_power_w={"gpu0": 0.0},
            coverage=1.0,
            thermal_pressure=(),
            per_window=tuple((mj * 10, 10.0) for _ in range(items)),
        )

    ratio, ci, note = energy_ratio(energy(5.0, 40), energy(0.0, 40))
    assert ratio is None and ci is None and note == "no energy measured on gpu0"
    ratio, ci, note = energy_ratio(energy(5.0, 4), energy(1.0, 4))
    assert ratio == pytest.approx(5.0) and ci is None
    assert note == "4 windows: too few for an interval (needs 30)"


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
    energy = result.energy
    # Inside the windows: 5 W × their seconds ÷ the inferences completed in them.
    in_windows_mj = 5.0 * energy.window_s * 1000 / energy.inferences
    assert energy.total_mj_per_inference == pytest.approx(in_windows_mj, rel=0.01)
    assert energy.mean_power_w["cpu"] == pytest.approx(5.0, rel=0.01)
    # Against the whole run's throughput only loosely: the windows leave out the run's
    # edges (~5-10 % of it), whose pace differs on a busy machine.
    expected_mj = 5.0 / result.throughput_per_s * 1000  # W ÷ (inf/s) = J/inf
    assert energy.total_mj_per_inference == pytest.approx(expected_mj, rel=0.1)
    assert result.energy.total_rails == ("cpu", "gpu", "ane")
    assert result.energy.coverage > 0.7
    assert result.energy.thermal_pressure == ("Nominal",)
    # The idle baseline is the same 5 W: active energy per inference is ~0.
    assert snap.power["idle_windows"] >= 3
    assert abs(result.energy.total_active_mj_per_inference or 0) < 0.02 * expected_mj
    assert snap.power["label"] == "replay of constant.plist (looped)"
    assert not any(t.name == "anetui-power" and t.is_alive() for t in threading.enumerate())


def test_windows_ahead_of_the_clock_are_nobodys_and_pending_stays_small() -> None:
    clock = Clock()
    ledger = EnergyLedger(clock=clock)
    timeline, counted = CompletionTimeline(), Counted()
    ledger.begin_run("a", timeline, counted)
    clock.at(1000)
    steady(timeline, 0, 1000, 10)
    for i in range(5000):  # a source whose documents arrive faster than their windows
        ledger.add(sample(1000 + i * 250, 1250 + i * 250, cpu=250.0))
    assert len(ledger._pending) <= 4  # only those within a second of the clock wait
    clock.at(2000)
    steady(timeline, 1000, 2000, 10)
    ledger.end()
    assert ledger.report({"a": 2000 * MS}).backends["a"].windows == 4
