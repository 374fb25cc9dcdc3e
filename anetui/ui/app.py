"""The anetui dashboard: a thin layer over :class:`~anetui.core.session.Session`.

Work: every piece of model work (preparing, the inference loop) runs on one dedicated
daemon thread (:class:`~anetui.ui.modelthread.ModelThread`), reached from Textual
workers: the loop is ``session.run_backend(id, stop_event)`` and nothing else, and
switching sets the running one's stop event. One thread, not a thread per run:
PyTorch's OpenMP team belongs to the thread that first computed, and computing from a
second thread while the first lives halved torch-cpu's throughput on this 2-core machine
(66 vs 147 inf/s, measured).

First number fast: only the first runnable backend is prepared at start and it runs as
soon as it is ready; every other backend is prepared when it is chosen (a key, enter, a
click, tab, auto-cycle), never in the background, because on a small machine preparing
one backend (an ONNX export, a Core ML conversion) slows the one being measured.

The power source runs as an async worker (``PowerMonitor.consume``). The screen is
redrawn from ``session.snapshot()`` on a timer (1 Hz), through the session's frame
gate: the runner steps aside at an inference boundary while a frame is built and
written, so the frame is in no timed figure (:mod:`anetui.core.gate`). No message per
inference ever crosses threads.

The run state (the active backend, the pause, the stop event, the model thread) lives
in this class with the code that starts, switches, draws and stops it; what each key
does to it is in :mod:`anetui.ui.actions`, a mixin this class inherits. The widgets,
screens, key row and model thread live in their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable

from anetui import privileges
from anetui.core.config import RunConfig
from anetui.core.results import BackendResult, Snapshot
from anetui.core.session import Session
from anetui.errors import AnetuiError
from anetui.models.resolve import resolve_model
from anetui.power.monitor import PowerMonitor
from anetui.ui.actions import KeyActions
from anetui.ui.modelthread import ModelThread
from anetui.ui.widgets.backends import BackendList
from anetui.ui.widgets.energy import EnergyTable
from anetui.ui.widgets.keys import KeyBar
from anetui.ui.widgets.latency import LatencyPanel
from anetui.ui.widgets.power import PowerPanel
from anetui.ui.widgets.status import CpuMeter, StatusBar

#: Redraw period (s). Every Python instruction the UI runs holds the GIL that the
#: inference thread's dispatch needs, so the dashboard redraws at 1 Hz and the histogram
#: (plotext, the costliest widget) every 2 s; measured by benchmarks/dashboard_cost.py.
#: Until the first number is on screen it redraws every 0.25 s so no state goes unseen.
REFRESH_S = 1.0
FIRST_REFRESH_S = 0.25
HISTOGRAM_EVERY = 2
#: How long quitting waits for the model thread: a running loop stops within one
#: inference; a backend that is still preparing is left behind (the CLI exits anyway).
STOP_WAIT_S = 0.5
#: Terminal widths at which the layout changes (see anetui.tcss).
NARROW_BELOW = 100
WIDE_FROM = 160


class AnetuiApp(KeyActions, App[int]):
    CSS_PATH = "anetui.tcss"
    TITLE = "anetui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        *(Binding(str(i), f"run({i})", f"run {i}", show=False) for i in range(1, 10)),
        Binding("tab", "cycle(1)", "next", priority=True),
        Binding("shift+tab", "cycle(-1)", "previous", priority=True, show=False),
        Binding("space", "pause", "pause/resume"),
        Binding("a", "auto", "auto-cycle"),
        Binding("b", "reference", "reference"),
        Binding("i", "idle", "idle baseline"),
        Binding("r", "reset", "reset"),
        Binding("s", "snapshot", "snapshot"),
        Binding("d", "details", "not available"),
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
        #: Backends that can run here, in key order (1…n); fixed once the session exists.
        self.keyed: list[str] = []
        self.active: str | None = None
        self.paused = False
        self.auto = False
        self.auto_seconds = auto_seconds
        self._next_switch_at = 0.0
        self._interlude = asyncio.Lock()
        self.idle_seconds = idle_seconds
        self.snapshot_on_exit = snapshot_on_exit
        self.autostart = autostart
        self.message = "starting…"
        self.saved: list[Path] = []
        #: Backend errors already shown in full as notifications.
        self.errors_shown: list[str] = []
        #: The traceback of an unforeseen exception that ended the app (the CLI logs it).
        self.crash: tuple[BaseException, str] | None = None
        #: True when quitting left model code running (the CLI then exits with os._exit).
        self.left_running = False
        self.first_number_shown = False
        self._ticks = 0
        self._exit_after = exit_after_s
        self._stop = threading.Event()
        self._model_thread = ModelThread()
        self._auto_timer: object | None = None
        self._startup_notes = startup_notes or []
        self._cpu = CpuMeter()
        #: This (the UI) thread's CPU time at the last frame (ns), for the observer cost.
        self._cpu_at = time.thread_time_ns()
        self._quitting = False

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield BackendList(id="backends")
                yield PowerPanel(id="power")
            yield LatencyPanel(id="latency")
        yield EnergyTable(id="energy")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.query_one(EnergyTable).border_title = "energy per inference"
        self.query_one(BackendList).border_title = "backends"
        self.set_class(self.monitor is None, "-no-power")
        self._size_classes(self.size.width)
        self._timer = self.set_interval(FIRST_REFRESH_S, self._frame)
        if self._exit_after is not None:  # scripted captures and benchmarks
            self.set_timer(self._exit_after, self.action_quit)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):  # restore the terminal, then leave
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)  # main thread only
        self.startup()

    def _on_signal(self, sig: signal.Signals) -> None:
        self.run_worker(self._quit(128 + sig.value), group="quit")

    def on_resize(self, event: events.Resize) -> None:
        self._size_classes(event.size.width)

    def _size_classes(self, width: int) -> None:
        self.set_class(width < NARROW_BELOW, "-narrow")
        self.set_class(width >= WIDE_FROM, "-wide")

    # -- start-up: power (privileged) → drop root → model → the first backend ---------
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
            # before any model loads or file is written
            privileges.drop_to_sudo_user(preload=privileges.MODEL_RUNTIMES)
        self.message = f"finding the backends that run {self.config.model} here…"
        try:
            self.session = await asyncio.to_thread(self._build_session)
        except AnetuiError as exc:
            self.message = f"error: {exc}"
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.keyed = self.session.runnable()
        self.message = ""
        if not self.keyed:
            self.message = "nothing can run here: d lists why"
        elif self.autostart and self.active is None:
            self.switch_to(self.keyed[0])  # prepared, then run, as soon as it can
        # No backend can run here: the key row offers no number keys.
        self.query_one(KeyBar).set_number_keys(self._number_keys() if self.keyed else None)
        self.refresh_view()

    def _number_keys(self) -> str:
        """'1-3': the number keys that run a backend here."""
        last = min(len(self.keyed), 9)
        return f"1-{last}" if last > 1 else "1"

    def _build_session(self) -> Session:
        spec = resolve_model(
            self.config.model,
            batch_size=self.config.batch_size,
            input_shape=self.config.input_shape,
            inputs=self.config.inputs,
            seq_len=self.config.seq_len,
            prompt_len=self.config.prompt_len,
            gen_len=self.config.gen_len,
        )
        session = Session(self.config, spec, self.monitor)
        session.observed = True  # snapshots say what this view cost the measurement
        return session

    async def _on_model_thread(self, function: Callable[..., object], *args: object) -> object:
        return await asyncio.wrap_future(self._model_thread.submit(function, *args))

    # -- the inference worker -------------------------------------------------------
    def switch_to(self, backend_id: str) -> None:
        """Stop whatever runs, then run ``backend_id`` (preparing it first if needed)."""
        if self.session is None or self._quitting:
            return
        if backend_id not in self.session.runnable():
            self._say_why(backend_id)
            return
        if backend_id == self.active and not self.paused:
            return  # already running (or being prepared to run)
        self._stop.set()
        self._stop = threading.Event()
        self.active, self.paused = backend_id, False
        self.run_inference(backend_id, self._stop)
        self.refresh_view()

    @work(group="inference")
    async def run_inference(self, backend_id: str, stop: threading.Event) -> None:
        # Queued behind the run being stopped: the model thread does one thing at a time.
        await self._on_model_thread(self._run_job, backend_id, stop)

    def _run_job(self, backend_id: str, stop: threading.Event) -> None:
        assert self.session is not None
        if stop.is_set() or self.session.stop_event.is_set():
            return
        # The output check (a second model load) waits until this run stops: first
        # number first. A snapshot taken before then has no agreement for this backend.
        if self.session.prepare_backend(backend_id, check_agreement=False):
            if not stop.is_set():
                self.session.run_backend(backend_id, stop)
            if not self.session.stop_event.is_set():
                self.session.check_agreement(backend_id)

    def _pause(self) -> None:
        self._stop.set()
        self.paused = True

    def _resume(self) -> None:
        if self.active is not None:
            self.switch_to(self.active)

    # -- drawing --------------------------------------------------------------------
    def _frame(self) -> None:
        """One timed redraw, through the session's frame gate: the runner steps aside at
        an inference boundary, the view is rebuilt and rendered, and only once the
        screen has been written does the runner time again (anetui.core.gate)."""
        cpu_now = time.thread_time_ns()
        session = self.session
        if session is None:
            self._cpu_at = cpu_now
            self.refresh_view()
            return
        gate = session.gate
        if gate.is_active():  # this thread's CPU since the last frame, while timing
            gate.add_ui_cpu(cpu_now - self._cpu_at)
        self._cpu_at = cpu_now
        gate.hold()
        try:
            self.refresh_view()
        finally:
            # After the compositor has rendered and written this frame.
            self.call_after_refresh(gate.release)

    def refresh_view(self) -> None:
        status = self.query_one(StatusBar)
        samples = self.monitor.samples() if self.monitor is not None else []
        label = self.monitor.source.label if self.monitor else "none (--power SOURCE for energy)"
        state = self.monitor.state if self.monitor else "none"
        thermal = samples[-1].thermal_pressure if samples else None
        cpu = self._cpu.read()
        who = privileges.current().state
        if self.monitor is not None:
            self.query_one(PowerPanel).show(samples, label, state)
        if self.session is None:  # still loading the model and probing the backends
            status.show(None, self.message, label, state, thermal, who, cpu)
            self.query_one(LatencyPanel).show(None, self.message)
            self.query_one(EnergyTable).border_subtitle = "no backend measured yet"
            return
        self.snapshot = snapshot = self.session.snapshot()
        status.show(snapshot, self._feedback(), label, state, thermal, who, cpu)
        self.query_one(BackendList).show(
            snapshot, self.keyed, self.active, self.paused, snapshot.reference
        )
        for b in snapshot.backends:  # the list truncates; say each failure in full, once
            if b.error and b.error not in self.errors_shown:
                self.errors_shown.append(b.error)
                self.notify(b.error, title=f"{b.id} failed", severity="error", timeout=12)
        shown = self._shown_backend(snapshot)
        has_number = shown is not None and shown.summary is not None
        self._ticks += 1
        if not self.first_number_shown or self._ticks % HISTOGRAM_EVERY == 1:
            phase = "paused" if self.paused and shown and shown.id == self.active else None
            if shown is None and self.keyed:
                phase = f"press {self._number_keys()} to run a backend"
            self.query_one(LatencyPanel).show(shown, phase)
        self.query_one(EnergyTable).show(snapshot, self.monitor is not None)
        if has_number and not self.first_number_shown:
            self.first_number_shown = True  # from now on, the calmer redraw rate
            self._timer.stop()
            self._timer = self.set_interval(REFRESH_S, self._frame)

    def _feedback(self) -> str:
        """The status line's first words: the last key's effect, or what is going on."""
        if self.message:
            return self.message
        if self.auto and self.active is not None:
            left = max(0.0, self._next_switch_at - time.monotonic())
            order = self.session.runnable() if self.session else []
            upcoming = (
                order[(order.index(self.active) + 1) % len(order)] if self.active in order else "?"
            )
            return f"auto-cycle: {' → '.join(order)} · {upcoming} in {left:.0f} s"
        return ""

    def _shown_backend(self, snapshot: Snapshot) -> BackendResult | None:
        by_id = {b.id: b for b in snapshot.backends}
        return by_id.get(self.active or "") or next(iter(snapshot.measured()), None)

    # -- the backend list: enter or a click runs that row (why here: ui.actions) ----
    @on(DataTable.RowSelected, "#backends")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._run_row(event.cursor_row)  # enter (or a second click)

    @on(BackendList.Clicked)
    def _row_clicked(self, event: BackendList.Clicked) -> None:
        self._run_row(event.row)

    # -- quitting -------------------------------------------------------------------
    async def action_quit(self) -> None:
        await self._quit(0)

    async def _quit(self, code: int) -> None:
        if self._quitting:
            return
        if self.snapshot_on_exit:
            self.action_snapshot()
        self._quitting = True
        await self.shutdown()
        self.exit(code, return_code=code)

    def on_unmount(self) -> None:
        # However the app ends (q, an exception, a test failing), no loop runs on.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(sig)
        if self.session is not None:
            self.session.stop_event.set()
        self._stop.set()

    async def shutdown(self) -> None:
        """Stop the run and the power source; wait briefly for the model thread."""
        if self.session is not None:  # first: a run that ends must not start the output check
            self.session.stop_event.set()
        self._stop.set()
        stopped = await asyncio.to_thread(self._model_thread.shutdown, STOP_WAIT_S)
        self.left_running = not stopped  # e.g. an ONNX export: never hang the exit on it
        self.workers.cancel_group(self, "power")
        if self.monitor is not None:
            await self.monitor.source.aclose()

    def _fatal_error(self) -> None:
        """An unforeseen exception: keep its traceback for the log file the CLI writes,
        and leave without printing it over the terminal (the CLI says one line)."""
        error = self._exception
        if error is not None:
            self.crash = (error, "".join(traceback.format_exception(error)))
        self._stop.set()
        if self.session is not None:
            self.session.stop_event.set()
        self._close_messages_no_wait()


def make_app(
    config: RunConfig, monitor: PowerMonitor | None = None, **options: object
) -> AnetuiApp:
    """The one factory used by the CLI and the tests."""
    return AnetuiApp(config, monitor, **options)  # type: ignore[arg-type]
