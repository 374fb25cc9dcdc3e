"""The dashboard's first minutes and its layout from 80x24 to 220x60 (issue 14): phase
words, runnable backends first, enter/click/palette, feedback for i and a, the key row,
columns dropped whole, titles shortened from the middle; SVG snapshots at three sizes."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from anetui.backends import registry as backends
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource
from anetui.ui.app import AnetuiApp, make_app
from anetui.ui.help import HELP
from anetui.ui.widgets.backends import BackendList
from anetui.ui.widgets.keys import KEYS, KeyBar, fit_keys
from anetui.ui.widgets.latency import fit_title
from anetui.ui.widgets.power import PowerPanel, spark
from anetui.ui.widgets.tables import fit_columns
from tests import doubles
from tests.conftest import REPO
from tests.test_session import doubles_registry  # noqa: F401  (fixture)
from tests.test_ui import config, counts, fixed_cpu, until  # noqa: F401  (fixture)


def count(app: AnetuiApp, backend_id: str) -> int:
    """Timed inferences of ``backend_id`` so far (0 before the session exists)."""
    return counts(app)[backend_id] if app.session is not None else 0


pytestmark = pytest.mark.usefixtures("doubles_registry")
#: The 24-window M1 recording (GPU ramping 0 → 7.6 W): power that varies.
RECORDING = (
    REPO / "tests/data/powermetrics/m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt"
)


# -- pure pieces ------------------------------------------------------------------------
@pytest.mark.parametrize("width", [20, 40, 60, 80, 100, 120, 160, 220])
def test_the_key_row_always_keeps_quit_and_help_and_cuts_no_word(width: int) -> None:
    pairs = fit_keys(width)
    assert pairs[:2] == [("q", "quit"), ("?", "help")]
    text = "  ".join(k + (" " + d if d else "") for k, d in pairs)
    assert len(text) <= max(width, len("q quit  ? help"))
    described = [d for _, d in pairs[2:]]
    # Descriptions go before keys do, from the last key backwards.
    assert described == sorted(described, key=lambda d: d == "")
    if width >= 120:
        assert len(pairs) == len(KEYS) and all(d for _, d in pairs)


def test_columns_are_dropped_whole_least_useful_first() -> None:
    headers = ("backend", "p50 ms", "inf/s", "mean W")
    rows = [("torch-cpu-opt", "5.10", "190.2", "12.30")]
    assert fit_columns(headers, rows, (3, 2), 100) == [0, 1, 2, 3]
    assert fit_columns(headers, rows, (3, 2), 36) == [0, 1, 2]
    assert fit_columns(headers, rows, (3, 2), 25) == [0, 1]


def test_titles_shorten_from_the_middle_and_keep_n() -> None:
    parts = ["onnx-cpu", "p50 2.41 (2.40–2.43) ms", "p90 2.90", "p99 4.12", "n=12345"]
    assert fit_title(parts, 200) == " · ".join(parts)
    assert fit_title(parts, 55) == "onnx-cpu · p50 2.41 ms · p90 2.90 · p99 4.12 · n=12345"
    assert fit_title(parts, 45) == "onnx-cpu · p50 2.41 ms · p90 2.90 · n=12345"
    assert fit_title(parts, 20) == "onnx-cpu · p50 2.41 ms · n=12345"


def test_power_sparklines_share_one_scale() -> None:
    assert spark([0.0, 5.0, 10.0], top=10.0, width=10) == ["▁▄█"]
    assert spark([0.0, 5.0], top=20.0, width=10) == ["▁▂"]  # half of 10 W on a 20 W scale
    assert spark([1.0, 2.0, 3.0, 4.0], top=4.0, width=2) == ["▆█"]  # the latest values
    # Two lines tall: 16 steps; the top line (first) holds what passes half the scale.
    assert spark([2.0, 10.0, 6.0], top=10.0, width=10, rows=2) == [" █▂", "▃██"]


def test_the_help_screen_fits_80_columns() -> None:
    for line in Text.from_markup(HELP).plain.splitlines():
        assert len(line) <= 76, line  # inside the help box's border and padding


# -- behaviour under Pilot --------------------------------------------------------------
async def test_every_row_says_what_is_happening_and_backends_prepare_when_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = threading.Event()  # the export lasts until this test has seen it
    monkeypatch.setattr(doubles.SlowPrepareBackend, "prepare_s", 60.0)
    monkeypatch.setattr(doubles.SlowPrepareBackend, "done_exporting", exported)
    monkeypatch.setitem(
        backends.REGISTRY, "double-slow", _description("double-slow", doubles.SlowPrepareBackend)
    )
    app = make_app(config(tmp_path, "double-ok", "double-slow", warmup=3))
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: count(app, "double-ok") > 10)
        table = app.query_one(BackendList)
        await pilot.pause(0.3)
        assert "not run" in str(table.get_cell_at((1, 2)))  # never prepared in the background
        await pilot.press("2")
        await until(pilot, lambda: "exporting" in str(table.get_cell_at((1, 2))))
        latency = app.query_one("#latency")
        await until(pilot, lambda: "double-slow: exporting" in str(latency.border_title))
        exported.set()
        await until(pilot, lambda: count(app, "double-slow") > 0)
        await until(pilot, lambda: "running" in str(table.get_cell_at((1, 2))))
        assert "stopped" in str(table.get_cell_at((0, 2)))
        await pilot.press("q")


async def test_enter_a_click_and_the_palette_run_a_row(tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "double-ok", "torch-mps", "double-nan"), autostart=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.keyed == ["double-ok", "double-nan"])
        table = app.query_one(BackendList)
        await until(pilot, lambda: table.row_count == 3)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: app.active == "double-nan" and count(app, "double-nan") > 0)
        await pilot.click(BackendList, offset=(8, 2))  # the first backend row
        await until(pilot, lambda: app.active == "double-ok")
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Run double-ok", "Run double-nan"} <= set(titles)
        assert "Run torch-mps" not in titles
        titles["Run double-nan"].callback()
        await until(pilot, lambda: app.active == "double-nan")
        await pilot.press("q")


async def test_idle_counts_down_then_says_the_baseline_and_auto_shows_its_cycle(
    tmp_path: Path,
) -> None:
    monitor = PowerMonitor(ReplaySource(RECORDING, speed=20.0, loop=True))
    app = make_app(
        config(tmp_path, "double-ok", "double-nan"), monitor, idle_seconds=2.0, auto_seconds=3.0
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: count(app, "double-ok") > 10)
        energy = app.query_one("#energy")
        await pilot.press("r")  # forgets the idle windows from before the first run
        await until(pilot, lambda: "press i for an idle baseline" in str(energy.border_subtitle))
        await pilot.press("i")
        bar = app.query_one("#status")
        await until(pilot, lambda: "idle baseline: nothing runs for" in str(bar.render()))
        assert app.paused
        await until(pilot, lambda: not app.paused)  # resumed after it

        def said_baseline() -> bool:
            notes = [n.message for n in app._notifications]
            return any(re.match(r"idle baseline: \w+ [\d.]+ W", m) for m in notes)

        await until(pilot, said_baseline)
        await pilot.press("a")
        await until(pilot, lambda: "auto-cycle: double-ok → double-nan" in str(bar.render()))
        assert re.search(r"double-nan in \d s", str(bar.render()))
        await pilot.press("q")


async def test_a_reset_in_flight_never_resumes_a_run_the_idle_phase_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class SlowInference(doubles.CountingBackend):
        """300 ms per inference: a stop waits for the one in flight, as a big model's."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "work_ns": 300_000_000})

    monkeypatch.setitem(
        backends.REGISTRY, "double-300ms", _description("double-300ms", SlowInference)
    )
    monitor = PowerMonitor(ReplaySource(RECORDING, speed=20.0, loop=True))
    app = make_app(config(tmp_path, "double-300ms", warmup=0), monitor, idle_seconds=3.0)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: count(app, "double-300ms") > 2)
        await pilot.press("r", "i")  # the reset is still waiting for the inference in flight
        bar = app.query_one("#status")
        await until(pilot, lambda: "idle baseline: nothing runs for" in str(bar.render()))
        await pilot.pause(1.2)  # the reset is done by now, and must not have resumed the run
        assert app.paused and app.session is not None
        assert app.session.live()["double-300ms"].state != "running"
        await until(pilot, lambda: not app.paused)
        await pilot.press("q")


async def test_the_key_row_at_80x24_shows_quit_and_help(tmp_path: Path) -> None:
    app = make_app(config(tmp_path, "double-ok"), autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        row = str(app.query_one(KeyBar).render())
        assert row.startswith("q quit  ? help") and len(row) <= 80
        assert app.has_class("-narrow")
        await pilot.press("q")


def _description(backend_id: str, cls: type) -> object:
    from tests.doubles import describe_double

    return describe_double(backend_id, cls)


# -- SVG snapshots at 80x24, 120x36 and 220x60 (deterministic: nothing timed) -----------
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="the reasons shown are Linux's")


def _layout_app(tmp_path: Path) -> AnetuiApp:
    monitor = PowerMonitor(ReplaySource(RECORDING, speed=10_000.0))  # all 24 windows at once
    return make_app(
        config(tmp_path, "double-ok", "torch-mps", "double-nan", "coreml-ane", "torch-cuda"),
        monitor,
        autostart=False,
    )


async def _ended(pilot: object) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    await until(pilot, lambda: app.snapshot is not None and app.monitor.state == "ended")
    panel = app.query_one(PowerPanel)
    # A redraw after the last window (its subtitle counts them), then one more beat.
    await until(pilot, lambda: "24 windows · e" in str(panel.border_subtitle))  # ended
    await pilot.pause(0.5)  # type: ignore[attr-defined]


@linux_only
@pytest.mark.usefixtures("fixed_cpu")
@pytest.mark.parametrize("size", [(80, 24), (120, 36), (220, 60)])
def test_svg_layout(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(_layout_app(tmp_path), terminal_size=size, run_before=_ended)  # type: ignore[operator]
