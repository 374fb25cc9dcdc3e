"""The ioreport source against a stand-in ``zeus_apple_silicon`` built from the
library's documented API (tests/stand_ins), fed recorded-style chip sequences."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from anetui.cli.doctor import print_doctor
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power import ioreport, registry
from anetui.power.base import CounterSource, PowerSample, SourceState, Unavailable
from anetui.power.health import RunSpan, excluding, suspect_rails
from anetui.power.ioreport import IOReportSource, metrics_to_rails, total_rails
from anetui.power.monitor import PowerMonitor
from anetui.power.process_energy import ProcessEnergy
from anetui.report import results_json
from tests.ioreport_chips import ANE_BUSY_MJ, WINDOWS, sequence
from tests.test_cli import anetui
from tests.test_process_energy import FakeLibproc
from tests.test_session import doubles_registry  # noqa: F401  (fixture)

STAND_INS = Path(__file__).parent / "stand_ins"


@pytest.fixture
def zeus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stand-in importable as ``zeus_apple_silicon``, and ioreport posing as macOS."""
    monkeypatch.syspath_prepend(str(STAND_INS))
    sys.modules.pop("zeus_apple_silicon", None)
    monkeypatch.setattr(ioreport, "on_macos", lambda: True)
    import zeus_apple_silicon

    yield zeus_apple_silicon
    sys.modules.pop("zeus_apple_silicon", None)


def no_process() -> ProcessEnergy:
    return ProcessEnergy(call=FakeLibproc([0], refuse_flavors=(6,)).function)


# -- the stand-in keeps the documented window semantics ------------------------------
def test_stand_in_windows_follow_the_documented_api(zeus: Any) -> None:
    zeus.Mocker.load(sequence("m3_pro", 3))
    monitor = zeus.AppleEnergyMonitor()
    monitor.begin_window("a")
    with pytest.raises(RuntimeError):
        monitor.begin_window("a")
    monitor.begin_window("a", restart=True)
    result = monitor.end_window("a")
    assert isinstance(result, zeus.AppleEnergyMetrics)
    assert result.cpu_total_mj == round(2131 * 1.1) and result.ane_mj == 0
    with pytest.raises(RuntimeError):
        monitor.end_window("a")


# -- rails per chip --------------------------------------------------------------------
@pytest.mark.parametrize("chip", sorted(WINDOWS))
def test_rails_per_chip_present_and_absent(zeus: Any, chip: str) -> None:
    zeus.Mocker.load(sequence(chip, 1))
    rails = metrics_to_rails(zeus.AppleEnergyMonitor().get_cumulative_energy())
    window = WINDOWS[chip]
    assert {"cpu", "gpu", "ane", "dram", "cpu_e_manager", "cpu_p_manager"} <= set(rails)
    assert ("gpu_sram" in rails) == ("gpu_sram_mj" in window)
    clusters = len(window["efficiency_cluster_mj"])
    assert {f"cpu_e{i}" for i in range(clusters)} <= set(rails)
    assert f"cpu_e{clusters}" not in rails
    cores = len(window["performance_cores_mj"])
    assert f"cpu_p_core{cores - 1}" in rails and f"cpu_p_core{cores}" not in rails
    # The total never counts a cluster, core, manager, DRAM or our process on top of cpu.
    assert total_rails([*rails, "process"]) == ("cpu", "gpu", "ane")


def test_total_without_the_cpu_channel_uses_clusters_or_cores() -> None:
    clusters = ["cpu_e0", "cpu_p0", "cpu_p1", "cpu_e_manager", "cpu_e_core0", "gpu", "dram"]
    assert total_rails(clusters) == ("cpu_e0", "cpu_p0", "cpu_p1", "cpu_e_manager", "gpu")
    assert total_rails(["cpu_e_core0", "cpu_p_core1", "ane"]) == (
        "cpu_e_core0",
        "cpu_p_core1",
        "ane",
    )
    # A suspect cpu channel falls back to its clusters.
    rule = excluding(total_rails, ["cpu"])
    assert rule(["cpu", "cpu_e0", "cpu_p0", "gpu", "ane"]) == ("cpu_e0", "cpu_p0", "gpu", "ane")


# -- the source ------------------------------------------------------------------------
async def take(source: IOReportSource, count: int) -> list[PowerSample]:
    out = []
    async for sample in source.samples():
        out.append(sample)
        if len(out) == count:
            break
    await source.aclose()
    return out


def test_windows_and_counters_follow_the_m4_sequence(zeus: Any) -> None:
    readings = sequence("m4", 8)
    zeus.Mocker.load(readings)
    fake = FakeLibproc([1_000_000_000 + i * 40_000_000 for i in range(20)])
    source = IOReportSource(interval_ms=10, process=ProcessEnergy(call=fake.function))
    assert isinstance(source, CounterSource)
    assert source.available().ok  # two readings: the CPU counter advanced
    asyncio.run(source.start())  # third reading: the origin
    assert source.state == SourceState.RUNNING
    assert source.resolution_mj["cpu"] == 1.0 and source.resolution_mj["process"] == 1e-6
    counters = source.read_counters()  # fourth
    assert counters.energy_mj["cpu"] == readings[3]["cpu_total_mj"] - readings[2]["cpu_total_mj"]
    assert counters.energy_mj["process"] == pytest.approx(40.0)
    samples = asyncio.run(take(source, 3))
    # The first window runs from the loop's first reading (5th) to the next (6th).
    for k, sample in enumerate(samples):
        a, b = readings[4 + k], readings[5 + k]
        assert sample.rails_mj["cpu"] == b["cpu_total_mj"] - a["cpu_total_mj"]
        assert (
            sample.rails_mj["cpu_p0"]
            == b["performance_cluster_mj"][0] - a["performance_cluster_mj"][0]
        )
        assert sample.rails_mj["process"] == pytest.approx(40.0)
        assert sample.t_end_ns > sample.t_start_ns
    assert [s.t_end_ns for s in samples[:-1]] == [s.t_start_ns for s in samples[1:]]
    assert source.state == SourceState.STOPPED


def test_a_cpu_counter_that_does_not_advance_is_not_taken(zeus: Any) -> None:
    frozen = sequence("m1_max", 0) * 3
    zeus.Mocker.load(frozen)
    availability = IOReportSource(process=no_process()).available()
    assert not availability.ok and "did not advance" in (availability.reason or "")
    assert "--power powermetrics" in (availability.reason or "")


def test_a_failed_subscription_is_one_line(zeus: Any) -> None:
    zeus.Mocker.load(sequence("m4", 2))
    zeus.Mocker.fail_with = "Failed to create IOReport subscription."
    source = IOReportSource(process=no_process())
    availability = source.available()
    assert availability.reason == (
        "IOReport cannot be read: Failed to create IOReport subscription."
    )
    with pytest.raises(Unavailable):
        asyncio.run(source.start())
    assert source.state == SourceState.UNAVAILABLE


def test_without_the_package_it_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ioreport, "on_macos", lambda: True)
    monkeypatch.setattr(ioreport.importlib.util, "find_spec", lambda name: None)
    reason = IOReportSource().available().reason or ""
    assert "zeus-apple-silicon not installed" in reason and "anetui[apple]" in reason


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the non-macOS answer")
def test_on_linux_ioreport_is_macos_only_and_auto_skips_it() -> None:
    probes = dict(registry.probe_all())
    assert probes["ioreport"].reason == "ioreport is macOS only"
    assert registry.SOURCE_IDS[0] == "ioreport"


def test_auto_takes_ioreport_when_it_works(zeus: Any) -> None:
    zeus.Mocker.load(sequence("m5_like", 4))
    source, skipped = registry.choose_auto()
    assert source.id == "ioreport" and skipped == []
    assert registry.auto_choice([("ioreport", source.available())]).startswith(
        "--power auto takes ioreport"
    )


# -- health on the chip sequences ------------------------------------------------------
def windows_of(zeus: Any, readings: list[dict[str, Any]]) -> list[PowerSample]:
    """The source's windows over ``readings``, re-timed to 250 ms each as recorded (the
    test reads them 1 ms apart)."""
    zeus.Mocker.load(readings)
    source = IOReportSource(interval_ms=1, process=no_process())
    asyncio.run(source.start())
    # available() takes two readings, start() one, the loop's first one more.
    samples = asyncio.run(take(source, len(readings) - 4))
    step = 250_000_000
    return [
        dataclasses.replace(s, t_start_ns=k * step, t_end_ns=(k + 1) * step)
        for k, s in enumerate(samples)
    ]


@pytest.mark.parametrize("chip", sorted(WINDOWS))
def test_health_flags_a_frozen_ane_during_a_neural_engine_run(zeus: Any, chip: str) -> None:
    samples = windows_of(zeus, sequence(chip, 10, ane_busy=True, frozen_ane=True))
    run = {"coreml-ane": RunSpan("cpu+ane", [(samples[0].t_start_ns, samples[-1].t_end_ns)])}
    suspect = suspect_rails(samples, run)
    assert [s.rail for s in suspect] == ["ane"]
    assert suspect[0].reason.startswith(
        f"ane reads 0 mJ over {len(samples)} windows while coreml-ane ran"
    )
    assert "`anetui plan`" in suspect[0].reason


@pytest.mark.parametrize("chip", sorted(WINDOWS))
def test_health_flags_a_zero_dram_and_is_quiet_when_healthy(zeus: Any, chip: str) -> None:
    samples = windows_of(zeus, sequence(chip, 10, ane_busy=True, zero_dram=True))
    whole = [(samples[0].t_start_ns, samples[-1].t_end_ns)]
    suspect = suspect_rails(samples, {"coreml-ane": RunSpan("cpu+ane", whole)})
    assert [s.rail for s in suspect] == ["dram"]
    assert "dead or frozen" in suspect[0].reason
    healthy = windows_of(zeus, sequence(chip, 10, ane_busy=True))
    assert all(s.rails_mj["ane"] == pytest.approx(ANE_BUSY_MJ, rel=0.25) for s in healthy)
    whole = [(healthy[0].t_start_ns, healthy[-1].t_end_ns)]
    assert suspect_rails(healthy, {"coreml-ane": RunSpan("cpu+ane", whole)}) == []


# -- doctor ----------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "darwin", reason="checks the Linux answer")
def test_doctor_on_linux_lists_ioreport_as_macos_only() -> None:
    proc = anetui("doctor")
    assert proc.returncode == 0
    line = next(x for x in proc.stdout.splitlines() if "ioreport " in x and "✗" in x)
    assert line.split() == ["✗", "ioreport", "ioreport", "is", "macOS", "only"]
    assert "--power auto " in proc.stdout


def test_doctor_on_a_mac_shows_ioreport_available_without_root(zeus: Any) -> None:
    zeus.Mocker.load(sequence("m3_pro", 6))
    console = Console(record=True, width=120, color_system=None)
    print_doctor(console)
    text = console.export_text()
    assert (
        "  ✓ ioreport          CPU (clusters, cores), GPU, GPU SRAM, ANE, DRAM energy counters, "
        "no root\n" in text
    )
    assert (
        "--power auto takes ioreport: the first of ioreport, powermetrics, rapl, nvml that "
        "runs here" in text
    )


# -- a whole session over the stand-in -------------------------------------------------
def test_a_session_over_ioreport_reports_process_share_and_a_zero_dram(
    zeus: Any,
    doubles_registry: None,  # noqa: F811
) -> None:
    zeus.Mocker.load(sequence("m3_pro", 2000, zero_dram=True))
    fake = FakeLibproc([1_000_000_000 + i * 30_000_000 for i in range(4000)])
    source = IOReportSource(interval_ms=20, process=ProcessEnergy(call=fake.function))
    monitor = PowerMonitor(source)
    assert monitor.start()
    config = RunConfig(
        backends=("double-ok",), warmup=0, iterations=None, duration_s=1.0, power="ioreport"
    )
    session = Session(config, ModelSpec(name="none", kind="none", input_shape=(1,)), monitor)
    session.prepare()
    session.run()
    monitor.stop()
    snap = session.snapshot()
    energy = snap.backends[0].energy
    assert energy is not None and energy.total_rails == ("cpu", "gpu", "ane")
    assert {"dram", "process", "cpu_p0", "cpu_e_core5"} <= set(energy.rails)
    assert snap.power["source"] == "ioreport"
    (suspect,) = snap.power["suspect_rails"]
    assert suspect["rail"] == "dram" and not suspect["kept"]
    assert suspect["reason"] in snap.warnings
    assert not [w for w in snap.warnings if "reads 0 mJ" in w and w != suspect["reason"]]
    doc = results_json.to_json(snap)
    share = doc["backends"][0]["energy"]["process_share"]
    expected = energy.mj_per_inference["process"] / energy.total_mj_per_inference
    # results.json rounds to 6 decimal places, so the tolerance is absolute: a share
    # near 0.01 would fail a relative 1e-5 by rounding alone.
    assert share == pytest.approx(expected, abs=5e-7) and 0 < share < 1
