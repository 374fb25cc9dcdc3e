"""`anetui doctor --deep`: real backends and a real subprocess here; recorded power
windows replayed; the window and counter checks on windows made to be wrong; and the Mac
path under the macOS personality (Core ML and powermetrics stand-ins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anetui.backends import registry as backends
from anetui.cli import doctor_deep
from anetui.power import registry as power_registry
from anetui.power.base import PowerSample
from anetui.power.powermetrics import PowermetricsSource
from anetui.power.replay import ReplaySource
from tests.conftest import SMALL_MODEL
from tests.macos import MacOS
from tests.test_cli import anetui

DATA = Path(__file__).parent / "data/powermetrics"
M1_B = DATA / "m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_b.plist"


def test_deep_doctor_as_a_new_user(tmp_path: Path) -> None:
    report = tmp_path / "d.json"
    proc = anetui(
        "doctor", "--deep", "--json", str(report), "--model", SMALL_MODEL,
        "--input-shape", "1,3,32,32", "--iterations", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "deep check" in proc.stdout and "Traceback" not in proc.stderr
    data = json.loads(report.read_text())
    assert data["schema"] == "anetui.doctor/1" and data["passed"] is True
    verdicts = {(c["kind"], c["id"]): c["verdict"] for c in data["checks"]}
    for backend_id in backends.REGISTRY:
        assert ("backend", backend_id) in verdicts
    for source_id in (*power_registry.SOURCE_IDS, "replay:FILE"):
        assert ("power", source_id) in verdicts
    assert verdicts[("backend", "torch-cpu")] == "pass"
    assert set(verdicts.values()) <= {"pass", "skip"}
    by_id = {c["id"]: c for c in data["checks"]}
    assert by_id["torch-cpu-opt"]["facts"]["count"] == 2
    assert by_id["torch-cpu-opt"]["facts"]["agreement_max_rel_err"] < 1e-3
    assert data["packages"]["torch"] and data["environment"]["python"]


def test_deep_doctor_fails_with_the_exact_error(tmp_path: Path) -> None:
    proc = anetui("doctor", "--deep", "--model", "no_such_model", "--power", "replay:/nope")
    assert proc.returncode == 1
    flat = " ".join(proc.stdout.split())
    assert "unknown model 'no_such_model'" in flat
    assert "recording not found: /nope" in flat


def test_replayed_windows_pass_the_checks() -> None:
    check = doctor_deep.check_source("replay", ReplaySource(M1_B, speed=5, loop=True))
    assert check.verdict == "pass", check.detail
    assert check.facts["windows"] == 2
    assert check.facts["total_rails"] == ["cpu", "gpu", "ane"]
    assert "combined" in check.detail and "cpu" in check.detail


def window(start_ms: float, end_ms: float, **rails: float) -> PowerSample:
    return PowerSample(int(start_ms * 1e6), int(end_ms * 1e6), dict(rails))


def test_window_checks_catch_what_is_wrong() -> None:
    good = [window(0, 250, cpu=100.0, gpu=20.0), window(250, 500, cpu=90.0, gpu=10.0)]
    assert doctor_deep.window_problems(good, 250) == []
    assert doctor_deep.window_problems(
        [
            window(0, 250, cpu=-1.0),
            window(100, 350, cpu=1e6),
            window(350, 350, cpu=1.0),
            window(400, 5000, cpu=1.0),
            window(5000, 5250),
            window(5250, 5500, cpu=100.0, gpu=50.0, ane=0.0, combined=400.0),
        ],
        250,
    ) == [
        "window 0: cpu energy is negative (-1.0 mJ)",
        "window 1 overlaps the one before",
        "window 1: cpu at 4000 W is not plausible",
        "window 2 ends before it starts",
        "window 3 lasts 4600 ms (asked 250 ms)",
        "window 4 has no rails",
        "window 5: combined 400 mJ but cpu+gpu+ane = 150 mJ",
    ]
    assert doctor_deep.counter_problems({"pkg": 5.0, "dram": 2.0}, {"pkg": 7.0, "dram": 1.0}) == [
        "counter dram went backwards (2.0 -> 1.0 mJ)"
    ]
    assert doctor_deep.counter_problems({"pkg": 5.0}, {"pkg": 5.0}) == [
        "no counter advanced between two reads"
    ]
    assert doctor_deep.counter_problems({"pkg": 5.0}, {"pkg": 6.0}) == []


def test_deep_doctor_on_a_mac_as_root(
    macos: MacOS,
    fake_powermetrics: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the macOS personality: powermetrics (the stand-in, as root) for two windows,
    then Core ML through the autospecced coremltools; the second Core ML backend loads
    the compiled model from the cache."""
    from anetui.cli.main import main

    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path / "cache"))
    # A recorded 525 ms window, written at about the pace powermetrics would write it.
    monkeypatch.setenv("FAKE_PM_RECORDING", str(M1_B))
    monkeypatch.setenv("FAKE_PM_DELAY", "0.0126")
    monkeypatch.setenv("FAKE_PM_END", "loop")
    monkeypatch.setattr("os.geteuid", lambda: 0)  # powermetrics needs root
    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.setattr(PowermetricsSource.__init__, "__defaults__", (525, fake_powermetrics))
    from anetui.core import agreement
    from anetui.models.resolve import resolve_model

    spec = resolve_model(SMALL_MODEL, input_shape=(1, 3, 32, 32))
    macos.coreml.output = agreement.reference_output(spec).astype("float16").astype("float32")
    report = tmp_path / "mac.json"
    code = main(
        [
            "doctor", "--deep", "--json", str(report), "--model", SMALL_MODEL,
            "--input-shape", "1,3,32,32", "--iterations", "2", "--interval-ms", "525",
            "--backends", "torch-cpu,coreml-ane,coreml-cpu", "--power", "powermetrics",
        ]
    )  # fmt: skip
    data = json.loads(report.read_text())
    checks = {c["id"]: c for c in data["checks"]}
    assert code == 0, [(c["id"], c["verdict"], c["detail"]) for c in checks.values()]
    assert checks["powermetrics"]["verdict"] == "pass", checks["powermetrics"]
    assert checks["powermetrics"]["facts"]["total_rails"] == ["cpu", "gpu", "ane"]
    assert checks["coreml-ane"]["verdict"] == "pass" and checks["coreml-cpu"]["verdict"] == "pass"
    notes = checks["coreml-cpu"]["facts"]["notes"]
    assert "loaded the compiled model from the cache" in notes
    assert checks["coreml-ane"]["facts"]["runtime_p50_ms"] == pytest.approx(0.9)
    assert data["environment"]["os_version"] == "15.5"
