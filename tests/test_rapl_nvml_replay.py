"""RAPL on a real temporary sysfs-like tree; NVML's logic against a stand-in pynvml;
replay timing and scaling."""

from __future__ import annotations

import asyncio
import sys
import time
import types
from pathlib import Path

import pytest

from anetui.errors import AnetuiError
from anetui.power.base import CounterSource, NeedsRoot, SourceState, Unavailable
from anetui.power.nvml import NvmlSource
from anetui.power.rapl import RaplSource, discover, energy_delta_uj
from anetui.power.registry import create
from anetui.power.replay import ReplaySource

DATA = Path(__file__).parent / "data" / "powermetrics"


def make_zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    make_zone(root, "intel-rapl:0", "package-0", 1_000_000, 262_143_328_850)
    make_zone(root, "intel-rapl:0:0", "core", 500_000, 262_143_328_850)
    make_zone(root, "intel-rapl:0:1", "dram", 9_999_000, 10_000_000)  # about to wrap
    make_zone(root, "intel-rapl-mmio:0", "package-0", 7, 100)  # duplicate domain: ignored
    return root


def test_wraparound_arithmetic() -> None:
    assert energy_delta_uj(100, 250, 1000) == 150
    assert energy_delta_uj(900, 50, 1000) == 150  # wrapped at max_energy_range_uj
    assert energy_delta_uj(5, 5, 1000) == 0


def test_discovery_names_rails_and_skips_mmio(powercap: Path, tmp_path: Path) -> None:
    zones = discover(powercap)
    assert [z.rail for z in zones] == ["package-0", "core", "dram"]
    assert zones[2].max_range_uj == 10_000_000
    make_zone(powercap, "intel-rapl:1", "package-1", 0, 1000)
    make_zone(powercap, "intel-rapl:1:0", "core", 0, 1000)
    assert [z.rail for z in discover(powercap)] == [
        "package-0",
        "core-0",
        "dram-0",
        "package-1",
        "core-1",
    ]
    assert discover(tmp_path / "absent") == []


def test_rapl_windows_with_wraparound_from_real_files(powercap: Path) -> None:
    span_ns: list[int] = []

    async def scenario() -> list:
        source = RaplSource(interval_ms=100, root=powercap)
        await source.start()
        assert source.state == SourceState.RUNNING
        samples = []
        stream = source.samples()
        began = time.monotonic_ns()
        first = asyncio.ensure_future(anext(stream))
        # One event loop: the task takes its first reading and waits its 100 ms before
        # this sleep ends, whatever the machine's speed; now the counters move.
        await asyncio.sleep(0.02)
        (powercap / "intel-rapl:0" / "energy_uj").write_text("1500000\n")  # +500 mJ
        (powercap / "intel-rapl:0:0" / "energy_uj").write_text("800000\n")  # +300 mJ
        (powercap / "intel-rapl:0:1" / "energy_uj").write_text("49000\n")  # wrapped: +50 mJ
        samples.append(await first)
        span_ns.append(time.monotonic_ns() - began)
        await stream.aclose()
        await source.aclose()
        assert source.state == SourceState.STOPPED
        return samples

    (sample,) = asyncio.run(scenario())
    assert sample.rails_mj == pytest.approx({"package-0": 500.0, "core": 300.0, "dram": 50.0})
    # The window is the time between the two readings: at least the interval, at most
    # what this test saw pass around them (no fixed bound: a busy machine is late).
    assert 100e6 <= sample.elapsed_ns <= span_ns[0]
    assert sample.rails_w["package-0"] == pytest.approx(500.0 / (sample.elapsed_ns / 1e6))


def test_rapl_availability(tmp_path: Path, powercap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert RaplSource(root=tmp_path / "none").available().reason.startswith("no RAPL counters")
    real_read = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    source = RaplSource(root=powercap)
    assert source.available().reason == "needs root: run `sudo anetui`"
    with pytest.raises(NeedsRoot):
        asyncio.run(source.start())
    assert source.state == SourceState.NEEDS_ROOT


def test_rapl_counter_that_disappears_is_lost(powercap: Path) -> None:
    async def scenario() -> RaplSource:
        source = RaplSource(interval_ms=20, root=powercap)
        await source.start()
        (powercap / "intel-rapl:0" / "energy_uj").write_text("not a number\n")
        async for _ in source.samples():
            pass
        await source.aclose()
        return source

    source = asyncio.run(scenario())
    assert source.state == SourceState.LOST and source.reason is not None
    assert source.reason.startswith("reading RAPL failed")


class FakeNvml(types.ModuleType):
    """Stand-in for pynvml: two GPUs; gpu1 has no total-energy counter (pre-Volta)."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.energy = 1_000_000
        self.inits = self.shutdowns = 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if handle == 1:
            raise self.NVMLError("Not Supported")
        self.energy += 30_000  # 30 J between readings
        return self.energy

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 120_000 if handle == 0 else 60_000  # mW


def test_nvml_energy_counter_and_power_integration(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())

    async def scenario() -> tuple[list, NvmlSource]:
        source = NvmlSource(interval_ms=50)
        assert source.available().ok
        await source.start()
        samples = []
        async for sample in source.samples():
            samples.append(sample)
            if len(samples) == 2:
                break
        await source.aclose()
        return samples, source

    samples, source = asyncio.run(scenario())
    assert source.label == "NVML (50 ms) (power integrated on gpu1)"
    for sample in samples:
        assert sample.rails_mj["gpu0"] == 30_000  # counter difference, mJ
        assert sample.rails_w["gpu1"] == pytest.approx(60.0)  # integrated 60 W
    assert source.state == SourceState.STOPPED and fake.shutdowns >= 1


def test_nvml_without_library_or_gpu_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert (
        NvmlSource().available().reason == "nvidia-ml-py not installed (pip install nvidia-ml-py)"
    )
    fake = FakeNvml()

    def no_driver() -> None:
        raise fake.NVMLError("Driver Not Loaded")

    fake.nvmlInit = no_driver  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert NvmlSource().available().reason == "no NVIDIA GPU (NVML: Driver Not Loaded)"
    with pytest.raises(Unavailable):
        asyncio.run(NvmlSource().start())


def test_replay_plays_at_its_own_pace_and_speed_keeps_power(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = DATA / "m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_b.plist"  # 526 ms
    waits: list[float] = []  # what the source asked to sleep (s)
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)

    async def play(speed: float) -> tuple[list, list[int], ReplaySource]:
        waits.clear()
        source = ReplaySource(recording, speed=speed)
        started = time.monotonic_ns()
        samples, arrived = [], []
        async for sample in source.samples():
            samples.append(sample)
            arrived.append(time.monotonic_ns())
        assert all(s.t_start_ns >= started for s in samples)
        return samples, arrived, source

    # Each window is handed over once its end has passed, no sooner; it lasts the
    # recorded time divided by the speed, and the source never waits longer than that.
    # (How late a busy machine hands it over is not asserted.)
    (one,), (arrived,), source = asyncio.run(play(1.0))
    assert source.state == SourceState.ENDED and arrived >= one.t_end_ns
    assert one.rails_mj["cpu"] == 54.0 and one.elapsed_ns == 525_992_374
    assert 0 < sum(waits) <= 0.525_992_374
    (fast,), (arrived_fast,), _ = asyncio.run(play(10.0))
    assert fast.elapsed_ns == round(525_992_374 / 10) and arrived_fast >= fast.t_end_ns
    assert 0 < sum(waits) <= 0.052_599_238
    assert fast.rails_w["cpu"] == pytest.approx(one.rails_w["cpu"], rel=1e-6)
    assert fast.rails_mj["cpu"] == pytest.approx(5.4)


def test_replay_of_a_file_without_samples_is_unavailable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("nothing here\n")
    with pytest.raises(Unavailable, match=r"empty\.txt holds no powermetrics sample"):
        asyncio.run(ReplaySource(empty).start())
    with pytest.raises(Unavailable, match="recording not found"):
        asyncio.run(ReplaySource(tmp_path / "absent.plist").start())


def test_rapl_counters_are_cumulative_across_wraparound(powercap: Path) -> None:
    source = create(f"rapl:{powercap}", 100)
    assert isinstance(source, RaplSource) and isinstance(source, CounterSource)
    assert source.root == powercap and source.label == f"RAPL at {powercap} (100 ms)"
    asyncio.run(source.start())
    try:
        start = source.read_counters()
        assert start.energy_mj == {"package-0": 0.0, "core": 0.0, "dram": 0.0}
        dram = powercap / "intel-rapl:0:1" / "energy_uj"
        for value in ("9999500", "20000", "520000"):  # wraps at 10 J between the first two
            dram.write_text(f"{value}\n")
            reading = source.read_counters()
        assert reading.energy_mj["dram"] == pytest.approx(0.5 + 20.5 + 500.0)
        assert reading.t_ns >= start.t_ns
        # The smallest step seen (0.5 mJ) is the dram counter's resolution here.
        assert source.resolution_mj["dram"] == pytest.approx(0.5)
        assert source.resolution_mj["package-0"] == pytest.approx(0.001)  # µJ: no step yet
    finally:
        asyncio.run(source.aclose())


def test_rapl_dir_needs_a_directory() -> None:
    with pytest.raises(AnetuiError, match="rapl: needs a directory"):
        create("rapl:")


def test_nvml_counters_since_start_with_their_step(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    source = NvmlSource(interval_ms=50)
    assert isinstance(source, CounterSource)
    asyncio.run(source.start())
    try:
        first = source.read_counters()
        time.sleep(0.02)
        second = source.read_counters()
    finally:
        asyncio.run(source.aclose())
    assert first.energy_mj["gpu0"] == 0.0
    assert second.energy_mj["gpu0"] == 30_000.0  # the fake's counter moves 30 J a read
    assert source.resolution_mj["gpu0"] == 30_000.0  # no figure finer than its step
    elapsed_ms = (second.t_ns - first.t_ns) / 1e6
    assert second.energy_mj["gpu1"] == pytest.approx(60.0 * elapsed_ms)  # 60 W integrated
