"""Degenerate cases never lose a result: an inference longer than a power window, a
backend that measured zero energy, too few windows. No NaN, no infinity, no exception
reaches the snapshot, the JSON or the Markdown; too little data is null plus a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anetui.backends import registry as backends
from anetui.backends.base import BackendDescription, BackendOptions
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource
from anetui.report import files, markdown, results_json
from tests.doubles import CountingBackend, describe_double
from tests.test_energy import constant_power_recording

NO_MODEL = ModelSpec(name="none", kind="none", input_shape=(1,))


class SlowBackend(CountingBackend):
    """Each inference busy-waits 300 ms: longer than the 50 ms power windows."""

    def __init__(
        self, description: BackendDescription | None = None, options: BackendOptions | None = None
    ) -> None:
        super().__init__(description, options, work_ns=300_000_000)


@pytest.fixture
def slow_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    for backend_id, factory in (("double-slow", SlowBackend), ("double-ok", CountingBackend)):
        monkeypatch.setitem(
            backends.REGISTRY,
            backend_id,
            describe_double(backend_id, factory, accepts=("none",)),
        )


def run_session(
    recording: Path,
    backend_ids: tuple[str, ...],
    idle_s: float,
    keep_rails: tuple[str, ...] = (),
) -> Session:
    monitor = PowerMonitor(ReplaySource(recording, loop=True))
    assert monitor.start()
    config = RunConfig(
        backends=backend_ids,
        warmup=0,
        iterations=None,
        duration_s=1.2,
        power=f"replay:{recording}",
        idle_seconds=idle_s,
        keep_rails=keep_rails,
    )
    session = Session(config, NO_MODEL, monitor)
    session.prepare()
    session.run()
    monitor.stop()
    return session


def test_inferences_longer_than_a_window_still_give_finite_files(
    tmp_path: Path, slow_registry: None
) -> None:
    recording = tmp_path / "fast.plist"
    constant_power_recording(recording, watts=5.0, windows=40, window_ms=50)
    session = run_session(recording, ("double-slow", "double-ok"), idle_s=0.0)
    snap = session.snapshot()
    session.close()
    doc = results_json.to_json(snap)
    text = json.dumps(doc, allow_nan=False)  # raises on NaN or infinity
    assert "NaN" not in text and "Infinity" not in text
    files.write_json(tmp_path / "out.json", snap)
    files.write_markdown(tmp_path / "out.md", snap)
    assert json.loads((tmp_path / "out.json").read_text())["schema"] == "anetui.results/2"
    # No idle phase: no baseline, and active energy is absent, not zero.
    assert doc["power"]["idle_w"] is None and doc["power"]["idle_windows"] == 0
    for entry in doc["backends"]:
        if entry["energy"] is not None:
            assert entry["energy"]["active_mj_per_inference"] is None
    # A handful of slow inferences: no ratio is claimed, and a note says why.
    ratio = doc["ratios"][0]
    assert ratio["speed"] is None and ratio["speed_note"]
    assert "no speed ratio claimed" in ratio["summary"]
    assert any("too few for a ratio" in w for w in doc["warnings"])
    assert "no speed ratio claimed" in markdown.to_markdown(snap)


def test_zero_energy_is_a_note_not_a_crash(tmp_path: Path, slow_registry: None) -> None:
    recording = tmp_path / "zero.plist"
    constant_power_recording(recording, watts=0.0, windows=40, window_ms=100)
    # A rail at zero while a backend runs is suspect (issue 13) and would leave the
    # totals: keep them all, this test is about zero energy itself.
    session = run_session(
        recording, ("double-ok", "double-slow"), idle_s=0.5, keep_rails=("cpu", "gpu", "ane")
    )
    snap = session.snapshot()  # the dashboard calls this every second: it must not raise
    session.close()
    energy = snap.backends[0].energy
    assert energy is not None and energy.total_mj_per_inference == 0.0
    doc = results_json.to_json(snap)
    json.dumps(doc, allow_nan=False)
    ratio = doc["ratios"][0]
    assert ratio["energy"] is None and ratio["energy_note"] is not None
    assert ratio["energy_note"] == "no energy measured on cpu+gpu+ane"
    assert any(w.startswith("double-ok: cpu+gpu+ane measured no energy") for w in doc["warnings"])
