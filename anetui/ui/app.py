"""The anetui dashboard: a thin layer over :class:`~anetui.session.Session`.

Work: every piece of model work (preparing, the inference loop) runs on one dedicated
thread, reached from Textual workers through ``run_in_executor``: the loop is
``session.run_backend(id, stop_event)`` and nothing else, and switching sets the running
one's stop event. One thread, not a thread per run: PyTorch's OpenMP team belongs to the
thread that first computed, and computing from a second thread while the first lives
halved torch-cpu's throughput on this 2-core machine (66 vs 147 inf/s, measured).
The power source runs as an async worker (``PowerMonitor.consume``). The screen is
redrawn from ``session.snapshot()`` on a timer (1 Hz). No message per inference ever
crosses threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from anetui import privileges
from anetui.core.config import RunConfig
from anetui.core.results import BackendResult, Snapshot
from anetui.core.session import Session
from anetui.errors import AnetuiError, one_line
from anetui.models.resolve import resolve_model
from anetui.power.monitor import PowerMonitor
from anetui.report import files
from anetui.ui.help import HelpScreen
from anetui.ui.widgets.backends import BackendList
from anetui.ui.widgets.energy import EnergyTable
from anetui.ui.widgets.latency import LatencyPanel
from anetui.ui.widgets.power import PowerPanel
from anetui.ui.widgets.status import StatusBar

#: Redraw period (s). Every Python instruction the UI runs holds the GIL that the
#: inference thread's dispatch needs, so the dashboard redraws at 1 Hz and the histogram
#: (plotext, the costliest widget) every 2 s; measured by benchmarks/dashboard_cost.py.
REFRESH_S = 1.0
HISTOGRAM_EVERY = 2
STOP_WAIT_S = 5.0


class AnetuiApp(App[int]):
    CSS_PATH = "anetui.tcss"
    TITLE = "anetui"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(i), f"run({i})", f"run {i}", show=False) for i in range(1, 10)),
        Binding("tab", "cycle(1)", "next", priority=True),
        Binding("shift+tab", "cycle(-1)", "previous", priority=True, show=False),
        Binding("space", "pause", "pause/resume"),
        Binding("a", "auto", "auto-cycle"),
        Binding("b", "reference", "reference"),
        Binding("i", "idle", "idle baseline"),
        Binding("r", "reset", "reset"),
        Binding("s", "snapshot", "snapshot"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        config: RunConfig,
        monitor: PowerMonitor | None = None,
        auto_seconds: float = 5.0,
        idle_seconds: float = 5.0,
        snapshot_on_exit: bool = False,
        autostart: bool = True,
        startup_notes: list[str] | None = None,
        exit_after_s: float | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.monitor = monitor
        self.session: Session | None = None
        self.snapshot: Snapshot | None = None
        self.active: str | None = None
        self.paused = False
        self.auto = False
        self.auto_seconds = auto_seconds
        self.idle_seconds = idle_seconds
        self.snapshot_on_exit = snapshot_on_exit
        self.autostart = autostart
        self.message = "starting…"
        self.saved: list[Path] = []
        #: Backend errors already shown in full as notifications.
        self.errors_shown: list[str] = []
        self._ticks = 0
        self._exit_after = exit_after_s
        self._stop = threading.Event()
        #: The one thread all model work runs on (see the module docstring).
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="anetui-model")
        self._auto_timer: object | None = None
        self._startup_notes = startup_notes or []

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield BackendList(id="backends")
                yield PowerPanel(id="power")
            yield LatencyPanel(id="latency")
        yield EnergyTable(id="energy")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(EnergyTable).border_title = "energy per inference"
        self.query_one(BackendList).border_title = "backends (1–9 run · tab next)"
        self.set_interval(REFRESH_S, self.refresh_view)
        if self._exit_after is not None:  # scripted captures and benchmarks
            self.set_timer(self._exit_after, self.action_quit)
        self.startup()

    # -- start-up: power (privileged) → drop root → model → backends -----------------
    @work(exclusive=True, group="startup")
    async def startup(self) -> None:
        for note in self._startup_notes:  # e.g. which power sources were skipped and why
            self.notify(f"power: {note}", severity="warning", timeout=10)
        if self.monitor is not None:
            self.message = f"starting {self.monitor.source.label}…"
            if await self.monitor.start_async():
                self.run_worker(self.monitor.consume(), group="power", exclusive=True)
            else:
                self.notify(f"power: {self.monitor.reason}", severity="warning", timeout=8)
        if not self.config.keep_root:
            privileges.drop_to_sudo_user()  # before any model loads or file is written
        self.message = f"loading {self.config.model}…"
        try:
            self.session = await asyncio.to_thread(self._build_session)
        except AnetuiError as exc:
            self.message = f"error: {exc}"
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.message = ""
        self.prepare_all()

    def _build_session(self) -> Session:
        spec = resolve_model(
            self.config.model,
            batch_size=self.config.batch_size,
            input_shape=self.config.input_shape,
        )
        return Session(self.config, spec, self.monitor)

    @work(exclusive=True, group="prepare")
    async def prepare_all(self) -> None:
        """Prepare every available backend in turn, then run the first that is ready."""
        assert self.session is not None
        for backend_id in self.session.ids:
            await self._on_model_thread(self.session.prepare_backend, backend_id)
        runnable = self.session.runnable()
        if self.autostart and self.active is None and runnable:
            self.switch_to(runnable[0])

    async def _on_model_thread(self, function: Callable[..., object], *args: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, function, *args)

    # -- the inference worker -------------------------------------------------------
    def switch_to(self, backend_id: str) -> None:
        """Stop whatever runs, then run ``backend_id`` (preparing it first if needed)."""
        if self.session is None or backend_id not in self.session.runnable():
            return
        self._stop.set()
        self._stop = threading.Event()
        self.active, self.paused = backend_id, False
        self.run_inference(backend_id, self._stop)

    @work(group="inference")
    async def run_inference(self, backend_id: str, stop: threading.Event) -> None:
        # Queued behind the run being stopped: the model thread does one thing at a time.
        await self._on_model_thread(self._run_job, backend_id, stop)

    def _run_job(self, backend_id: str, stop: threading.Event) -> None:
        assert self.session is not None
        if stop.is_set():
            return
        if self.session.prepare_backend(backend_id):
            self.session.run_backend(backend_id, stop)

    def _pause(self) -> None:
        self._stop.set()
        self.paused = True

    def _resume(self) -> None:
        if self.active is not None:
            self.switch_to(self.active)

    # -- drawing --------------------------------------------------------------------
    def refresh_view(self) -> None:
        status = self.query_one(StatusBar)
        samples = self.monitor.samples() if self.monitor is not None else []
        label = self.monitor.source.label if self.monitor else "none: energy needs --power SOURCE"
        state = self.monitor.state if self.monitor else "none"
        thermal = samples[-1].thermal_pressure if samples else None
        if self.session is None:
            status.show(None, self.message, label, state, thermal, privileges.current().state)
            return
        self.snapshot = snapshot = self.session.snapshot()
        message = self.message or ("auto-cycle on" if self.auto else "")
        status.show(snapshot, message, label, state, thermal, privileges.current().state)
        self.query_one(BackendList).show(snapshot, self.active, self.paused)
        for b in snapshot.backends:  # the list truncates; say each failure in full, once
            if b.error and b.error not in self.errors_shown:
                self.errors_shown.append(b.error)
                self.notify(b.error, title=f"{b.id} failed", severity="error", timeout=12)
        self._ticks += 1
        if self._ticks % HISTOGRAM_EVERY == 1:  # the first redraw included
            self.query_one(LatencyPanel).show(self._shown_backend(snapshot))
        self.query_one(EnergyTable).show(snapshot)
        self.query_one(PowerPanel).show(samples, label, state)

    def _shown_backend(self, snapshot: Snapshot) -> BackendResult | None:
        by_id = {b.id: b for b in snapshot.backends}
        return by_id.get(self.active or "") or next(iter(snapshot.measured()), None)

    # -- actions --------------------------------------------------------------------
    def action_run(self, number: int) -> None:
        if self.session is not None and 1 <= number <= len(self.session.ids):
            backend_id = self.session.ids[number - 1]
            if backend_id in self.session.runnable():
                self.switch_to(backend_id)
            else:
                reason = self.session.availability()[backend_id].reason or "failed"
                self.notify(f"{backend_id}: {reason}", severity="warning")

    def action_cycle(self, step: int) -> None:
        if self.session is None:
            return
        runnable = self.session.runnable()
        if not runnable:
            return
        index = runnable.index(self.active) if self.active in runnable else -step
        self.switch_to(runnable[(index + step) % len(runnable)])

    def action_pause(self) -> None:
        if self.paused:
            self._resume()
        else:
            self._pause()

    def action_auto(self) -> None:
        self.auto = not self.auto
        if self.auto:
            self._auto_timer = self.set_interval(self.auto_seconds, lambda: self.action_cycle(1))
        elif self._auto_timer is not None:
            self._auto_timer.stop()  # type: ignore[attr-defined]
        self.notify(f"auto-cycle {'on' if self.auto else 'off'} ({self.auto_seconds:g} s)")

    def action_reference(self) -> None:
        if self.session is None:
            return
        table = self.query_one(BackendList)
        ids = self.session.ids
        chosen = ids[table.cursor_row] if 0 <= table.cursor_row < len(ids) else self.active
        if chosen:
            self.session.set_reference(chosen)
            self.notify(f"reference: {chosen}")

    @work(exclusive=True, group="idle")
    async def action_idle(self) -> None:
        """Pause everything for a few seconds: those power windows are the idle baseline."""
        was_running = not self.paused and self.active is not None
        self._pause()
        self.message = f"measuring the idle baseline for {self.idle_seconds:g} s…"
        await asyncio.sleep(self.idle_seconds)
        self.message = ""
        if was_running:
            self._resume()

    @work(exclusive=True, group="reset")
    async def action_reset(self) -> None:
        if self.session is None:
            return
        was_running = not self.paused and self.active is not None
        self._pause()
        await self._on_model_thread(lambda: None)  # the run has stopped once this ran
        self.session.reset()
        if was_running:
            self._resume()
        self.notify("statistics reset")

    def action_snapshot(self) -> None:
        if self.session is None:
            return
        try:
            paths = files.write_snapshot_set(
                self.config.out_dir, self.session.snapshot(), self.export_screenshot()
            )
        except (OSError, AnetuiError) as exc:
            self.notify(f"snapshot failed: {one_line(exc)}", severity="error")
            return
        self.saved.extend(paths)
        self.notify(f"snapshot: {paths[0].with_suffix('.{json,md,svg}')}", timeout=6)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self.snapshot_on_exit:
            self.action_snapshot()
        await self.shutdown()
        self.exit(0)

    def on_unmount(self) -> None:
        # However the app ends (q, an exception, a test failing), no loop runs on.
        self._stop.set()
        if self.session is not None:
            self.session.stop_event.set()

    async def shutdown(self) -> None:
        """Stop the run and the power source; join the inference thread (bounded)."""
        self._stop.set()
        if self.session is not None:
            self.session.stop_event.set()
        try:
            await asyncio.wait_for(self._on_model_thread(lambda: None), STOP_WAIT_S)
            stopped = True
        except TimeoutError:
            stopped = False  # a runtime stuck in one inference: do not hang the exit on it
        # Idle once the barrier ran: joining is immediate, and no thread outlives the app.
        self._model_thread.shutdown(wait=stopped, cancel_futures=True)
        self.workers.cancel_group(self, "power")
        if self.monitor is not None:
            await self.monitor.source.aclose()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            ("Next backend", "Run the next backend (tab)", lambda: self.action_cycle(1)),
            ("Pause / resume", "Pause or resume the running backend (space)", self.action_pause),
            ("Auto-cycle", "Alternate all ready backends every few seconds (a)", self.action_auto),
            ("Make reference", "Ratios against the selected backend (b)", self.action_reference),
            ("Idle baseline", "Pause everything to measure idle power (i)", self.action_idle),
            ("Reset statistics", "Forget every measurement so far (r)", self.action_reset),
            ("Snapshot", "Write JSON, Markdown and SVG to --out (s)", self.action_snapshot),
            ("Help", "Key bindings (?)", self.action_help),
        ):
            yield SystemCommand(title, help_text, action)


def make_app(
    config: RunConfig, monitor: PowerMonitor | None = None, **options: object
) -> AnetuiApp:
    """The one factory used by the CLI and the tests."""
    return AnetuiApp(config, monitor, **options)  # type: ignore[arg-type]
