"""The dashboard under Pilot: keys, snapshots, failures shown, clean exit; a few SVGs."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.text import Text

from anetui.core.config import RunConfig
from anetui.power.monitor import PowerMonitor
from anetui.power.powermetrics import PowermetricsSource
from anetui.ui.app import AnetuiApp, make_app
from anetui.ui.help import DetailsScreen
from anetui.ui.widgets.backends import BackendList
from tests.conftest import SMALL_MODEL
from tests.test_session import doubles_registry  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("doubles_registry")


def config(tmp_path: Path, *backends: str, **kwargs: object) -> RunConfig:
    base: dict[str, object] = {
        "model": SMALL_MODEL,
        "input_shape": (1, 3, 32, 32),
        "backends": backends,
        "warmup": 1,
        "iterations": None,
        "duration_s": None,
        "out_dir": tmp_path / "snaps",
    }
    base.update(kwargs)
    return RunConfig(**base)  # type: ignore[arg-type]


async def until(pilot: object, condition: object, timeout_s: float = 120.0) -> None:
    """Wait for ``condition`` (an event that must come); ``timeout_s`` only stops a hang,
    generous because a slow machine (one core, busy) may take many times this one's."""
    waited = 0.0
    while not condition():  # type: ignore[operator]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        waited += 0.05
        assert waited < timeout_s, "condition never became true"


def anetui_threads_left(within_s: float = 10.0) -> list[str]:
    """The app's threads still alive after quitting, waiting up to ``within_s``: quitting
    waits briefly for the model thread, and an inference in flight on a busy machine may
    outlast that wait before the thread sees the stop."""
    deadline = time.monotonic() + within_s
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith("anetui")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def state(app: AnetuiApp, backend_id: str) -> str:
    assert app.session is not None
    return str(app.session.live()[backend_id].state)


def counts(app: AnetuiApp) -> dict[str, int]:
    assert app.session is not None
    snap = app.session.snapshot()
    return {b.id: (b.summary.count if b.summary else 0) for b in snap.backends}


async def test_keys_switch_pause_reset_reference_and_snapshot(tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "double-ok", "torch-mps", "torch-cpu"))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.active == "double-ok" and counts(app)["double-ok"] > 50)
        assert app.keyed == ["double-ok", "torch-cpu"]  # runnable first, keys 1..n
        await pilot.press("2")  # switch to torch-cpu (prepared now, when chosen)
        await until(pilot, lambda: app.active == "torch-cpu" and counts(app)["torch-cpu"] > 3)
        assert state(app, "double-ok") == "paused"  # the other one stopped ...
        before = counts(app)["double-ok"]
        await pilot.pause(0.3)
        assert counts(app)["double-ok"] == before  # ... and stays stopped
        await pilot.press("space")  # pause
        # Stopped once the inference in flight ends (a state: on a slow machine one
        # inference may outlast any fixed wait).
        await until(pilot, lambda: state(app, "torch-cpu") == "paused")
        paused_at = counts(app)["torch-cpu"]
        await pilot.pause(0.3)
        assert app.paused and counts(app)["torch-cpu"] == paused_at
        await pilot.press("space")  # resume
        await until(pilot, lambda: counts(app)["torch-cpu"] > paused_at)
        await pilot.press("3")  # no third runnable backend: a notification, no switch
        await pilot.pause(0.1)
        assert app.active == "torch-cpu"
        await pilot.press("tab")  # next runnable: wraps to double-ok
        await until(pilot, lambda: app.active == "double-ok")
        table = app.query_one(BackendList)
        table.move_cursor(row=2)  # the folded "not available" line: refused
        await pilot.press("b")
        assert app.session is not None and app.session.reference_override is None
        table.move_cursor(row=1)
        await pilot.press("b")
        assert app.session.reference_override == "torch-cpu"
        await until(
            pilot, lambda: app.snapshot is not None and app.snapshot.reference == "torch-cpu"
        )
        await pilot.pause(1.1)  # one redraw
        marked = Text.from_markup(str(table.get_cell_at((1, 1)))).plain
        assert marked.strip() == "torch-cpu ref"  # the reference is marked in the list
        await pilot.press("s")
        await until(pilot, lambda: len(app.saved) == 3)
        await pilot.press("r")
        await until(pilot, lambda: counts(app)["torch-cpu"] == 0)
        await pilot.press("q")
    json_path = next(p for p in app.saved if p.suffix == ".json")
    doc = json.loads(json_path.read_text())
    runs = {b["id"]: b["count"] for b in doc["backends"]}
    assert runs["double-ok"] > 50 and runs["torch-cpu"] > 3 and runs["torch-mps"] == 0
    assert doc["reference"] == "torch-cpu"
    assert [b["histogram_ms"] != [] for b in doc["backends"]] == [True, False, True]
    assert {p.suffix for p in app.saved} == {".json", ".md", ".svg"}
    assert "<svg" in next(p for p in app.saved if p.suffix == ".svg").read_text()[:500]
    assert not anetui_threads_left()


async def test_unavailable_and_failing_backends_show_why_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    app = make_app(config(tmp_path, "double-fails", "torch-mps", "double-ok"))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(
            pilot,
            lambda: (
                app.snapshot is not None
                and {b.id: b.state for b in app.snapshot.backends}["double-fails"] == "error"
            ),
        )
        await pilot.press("2")
        await until(pilot, lambda: counts(app)["double-ok"] > 20)
        await pilot.pause(1.1)  # one redraw
        table = app.query_one(BackendList)
        cells = [str(table.get_cell_at((row, 2))) for row in range(3)]
        assert "failed: failed while running" in cells[0]  # cut to fit; in full below
        assert app.errors_shown == ["double-fails failed while running: device lost"]
        assert "not available" in str(table.get_cell_at((2, 1)))  # torch-mps, folded
        table.move_cursor(row=0)
        await pilot.press("b")  # a failed backend cannot be the reference
        assert app.session is not None and app.session.reference_override is None
        await pilot.press("d")  # the folded line's details: doctor's reason
        await pilot.pause(0.2)
        assert isinstance(app.screen, DetailsScreen)
        assert ("torch-mps", "MPS needs macOS") in [(i, why[:15]) for i, why in app.screen.reasons]
        await pilot.press("escape")
        await pilot.press("q")


async def test_a_power_source_that_dies_shows_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_powermetrics: str
) -> None:
    monkeypatch.setenv("FAKE_PM_END", "crash")
    source = PowermetricsSource(executable=fake_powermetrics)
    app = make_app(config(tmp_path, "double-ok"), PowerMonitor(source))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: source.state == "lost")
        await until(pilot, lambda: "(lost)" in str(app.query_one("#status").render()))
        # The benchmark goes on.
        await until(pilot, lambda: app.session is not None and counts(app)["double-ok"] > 0)
        pid = source.pid
        await pilot.press("q")
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_quit_stops_a_live_power_child_and_every_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_powermetrics: str
) -> None:
    monkeypatch.setenv("FAKE_PM_END", "loop")
    source = PowermetricsSource(executable=fake_powermetrics)
    app = make_app(config(tmp_path, "double-ok"), PowerMonitor(source))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.monitor is not None and len(app.monitor.samples()) > 3)
        pid = source.pid
        await pilot.press("q")
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not anetui_threads_left()


async def test_command_palette_offers_the_actions(tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "double-ok"), autostart=False)
    async with app.run_test(size=(120, 36)):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    assert {
        "Next backend",
        "Pause / resume",
        "Auto-cycle",
        "Make reference",
        "Idle baseline",
        "Reset statistics",
        "Snapshot",
        "Help",
    } <= titles


# -- SVG snapshots at a fixed size (deterministic: nothing here is timed) -----------------
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="the reasons shown are Linux's")


async def _settled(pilot: object) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    await until(pilot, lambda: app.snapshot is not None)
    await pilot.pause(0.3)  # type: ignore[attr-defined]


@pytest.fixture
def fixed_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the SVGs show of the machine, fixed so that they compare on any machine: the
    CPU figures (they change from run to run), the privileges the status bar names (the
    recorded SVGs ran as root; CI may not) and no NVIDIA GPU (on a machine with one,
    torch-cuda would be runnable and listed as such)."""
    from anetui import privileges
    from anetui.backends import torch_base
    from anetui.ui.widgets import status

    monkeypatch.setattr(status.CpuMeter, "read", lambda self: status.CpuLoad(57.0, 48.0))
    monkeypatch.setattr(privileges, "current", lambda: privileges.Privileges("root", 0))
    monkeypatch.setattr(torch_base, "_nvidia_gpu_present", lambda: False)


@linux_only
@pytest.mark.usefixtures("fixed_cpu")
def test_svg_nothing_can_run_here(snap_compare: object, tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "torch-mps", "coreml-ane", "torch-cuda"))
    assert snap_compare(app, terminal_size=(120, 36), run_before=_settled)  # type: ignore[operator]


@linux_only
@pytest.mark.usefixtures("fixed_cpu")
def test_svg_help_screen(snap_compare: object, tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "torch-mps"))

    async def open_help(pilot: object) -> None:
        await _settled(pilot)
        await pilot.press("question_mark")  # type: ignore[attr-defined]
        await pilot.pause(0.2)  # type: ignore[attr-defined]

    assert snap_compare(app, terminal_size=(120, 36), run_before=open_help)  # type: ignore[operator]
