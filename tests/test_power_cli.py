"""`anetui power` and `anetui bench --power` as a user runs them, and a source lost
during a session."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power.monitor import PowerMonitor
from anetui.power.powermetrics import PowermetricsSource
from tests.conftest import REPO
from tests.test_cli import TINY_RUN, anetui, assert_one_line_error
from tests.test_powermetrics_parse import (
    PLISTS,
    TEXTS,
    cut_off_mid_line,
    plist_documents,
    text_expectations,
)
from tests.test_session import doubles_registry  # noqa: F401  (fixture)

PM_DATA = REPO / "tests" / "data" / "powermetrics"
FIELDS = {
    "t_start_ns",
    "t_end_ns",
    "elapsed_ms",
    "rails_mj",
    "rails_w",
    "thermal_pressure",
    "clusters",
}


@pytest.mark.parametrize("path", PLISTS + TEXTS, ids=lambda p: p.name[:40])
def test_parse_prints_one_json_object_per_sample(path: Path) -> None:
    proc = anetui("power", "--parse", str(path))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = (
        len(plist_documents(path))
        if path.suffix == ".plist"
        # a fragment cut off mid-line: its last window is dropped
        else max(0, len(text_expectations(path)) - cut_off_mid_line(path))
    )
    if expected == 0:
        assert_one_line_error(proc, 1, "holds no powermetrics sample")
        return
    assert proc.returncode == 0, proc.stderr
    assert len(lines) == expected
    for line in lines:
        assert set(line) == FIELDS
        for rail, mj in line["rails_mj"].items():
            assert line["rails_w"][rail] == pytest.approx(
                mj / line["elapsed_ms"], rel=1e-4, abs=1e-6
            )


def test_parse_errors() -> None:
    proc = anetui("power", "--parse", "no/such/file.plist")
    assert_one_line_error(proc, 1, "cannot read no/such/file.plist")
    help_file = REPO / "tests/data/powermetrics/m1_macmini9-1_macos11-2_powermetrics_help.txt"
    assert_one_line_error(
        anetui("power", "--parse", str(help_file)), 1, "holds no powermetrics sample"
    )
    forced = anetui("power", "--parse", str(PLISTS[0]), "--format", "text")
    assert_one_line_error(forced, 1, "holds no powermetrics sample")


def test_live_replay_as_json_lines() -> None:
    recording = PM_DATA / "m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist"
    proc = anetui(
        "power", "--source", f"replay:{recording}", "--speed", "50", "--json", "--count", "3"
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3 and all(set(line) == FIELDS for line in lines)
    assert lines[0]["rails_mj"] == {"gpu": pytest.approx(19 / 50)}


def test_explicit_sources_that_cannot_run_here_say_why() -> None:
    if sys.platform != "darwin":
        assert_one_line_error(
            anetui("power", "--source", "powermetrics", "--count", "1"),
            1,
            "powermetrics is macOS only",
        )
        assert_one_line_error(
            anetui(
                "bench",
                "--backends",
                "torch-cpu",
                *TINY_RUN,
                "--iterations",
                "2",
                "--power",
                "powermetrics",
            ),
            1,
            "powermetrics is macOS only",
        )
    assert_one_line_error(anetui("power", "--source", "bogus"), 1, "unknown power source 'bogus'")


def test_bench_with_a_replayed_recording_reports_energy(tmp_path: Path) -> None:
    recording = (
        REPO / "tests/data/powermetrics/m4max_mac16-6_macos15-5_24F74_text_default_samplers.txt"
    )
    out = tmp_path / "r.json"
    proc = anetui(
        "bench",
        "--backends",
        "torch-cpu,torch-cpu-opt",
        *TINY_RUN,
        "--duration",
        "1.5",
        "--interleave",
        "--power",
        f"replay:{recording}",
        "--speed",
        "25",
        "--idle-seconds",
        "0.5",
        "--json",
        str(out),
        "--markdown",
        str(tmp_path / "r.md"),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["power"]["source"] == "replay" and doc["power"]["label"].startswith(
        "replay of m4max"
    )
    assert doc["power"]["idle_w"]["cpu"] == pytest.approx(0.954)
    for backend in doc["backends"]:
        energy = backend["energy"]
        assert energy["total_rails"] == ["cpu", "gpu", "ane"]
        assert energy["mj_per_inference"] > 0 and 0 < energy["coverage"] <= 1
        assert energy["mean_power_w"]["cpu"] == pytest.approx(0.954)
    ratio = doc["ratios"][0]
    assert ratio["energy_rails"] == ["cpu", "gpu", "ane"]
    if ratio["energy"] is not None:  # claimed only with an interval (>= 30 windows each)
        assert ratio["energy"] > 0 and ratio["energy_ci95"] is not None
        assert "energy per inference" in ratio["energy_summary"]
    else:
        assert ratio["energy_note"] and ratio["energy_note"] in ratio["energy_summary"]
    assert (
        ratio["energy_summary"].endswith("CPU+GPU+ANE")
        or "CPU+GPU+ANE:" in (ratio["energy_summary"])
    )
    assert ratio["energy_summary"] in proc.stdout
    assert "a replayed recording" in proc.stdout
    assert "A **replayed recording**" in (tmp_path / "r.md").read_text()


def test_a_power_source_that_dies_mid_run_is_lost_and_the_run_goes_on(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_powermetrics: str,
    doubles_registry: None,  # noqa: F811
) -> None:
    monkeypatch.setenv("FAKE_PM_END", "crash")
    monkeypatch.setenv("FAKE_PM_DELAY", "0.01")
    monitor = PowerMonitor(PowermetricsSource(executable=fake_powermetrics))
    assert monitor.start()
    pid = monitor.source.pid  # type: ignore[attr-defined]
    config = RunConfig(backends=("double-ok",), warmup=0, iterations=None, duration_s=1.0)
    session = Session(config, ModelSpec(name="none", kind="none", input_shape=(1,)), monitor)
    session.prepare()
    session.run()
    # The stand-in crashes ~0.3 s in; on a slow machine that may come after the 1 s run,
    # and a stop before the crash is a stop, not a loss: wait for it (bounded).
    deadline = time.monotonic() + 30
    while monitor.state != "lost" and time.monotonic() < deadline:
        time.sleep(0.05)
    monitor.stop()
    snap = session.snapshot()
    assert snap.power["state"] == "lost"
    assert "exited with code 3" in str(snap.power["reason"])
    assert snap.backends[0].state == "done" and snap.backends[0].summary is not None
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_auto_without_any_source_measures_without_energy_and_says_why() -> None:
    from anetui.power import registry

    try:
        registry.choose_auto()
    except Exception:
        pass
    else:
        pytest.skip("a power source is available here")
    proc = anetui(
        "bench", "--backends", "torch-cpu", *TINY_RUN, "--iterations", "2", "--power", "auto"
    )
    assert proc.returncode == 0, proc.stderr
    assert "no energy measurement: no power source can run here" in proc.stderr
    assert "energy ·" not in proc.stdout
