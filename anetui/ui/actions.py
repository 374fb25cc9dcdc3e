"""What each key does, and the command palette's entries for the same actions.

:class:`KeyActions` is a mixin of :class:`~anetui.ui.app.AnetuiApp`: the actions read
and change the app's run state (the active backend, the pause, the model thread), which
stays in the app with the code that starts, stops and draws it; here is only what a key,
enter, a click or the palette asks of it. The key bindings themselves stay on the app:
Textual gathers ``BINDINGS`` and ``@on`` handlers only from classes it builds (App and
widget subclasses), and this one is a plain class so that the app has one App base.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import SystemCommand
from textual.screen import Screen

from anetui.core.config import RunConfig
from anetui.core.results import Snapshot
from anetui.core.session import Session
from anetui.errors import AnetuiError, one_line
from anetui.power.monitor import PowerMonitor
from anetui.report import files
from anetui.ui.help import DetailsScreen, HelpScreen
from anetui.ui.widgets.backends import BackendList

if TYPE_CHECKING:
    from textual.app import App

    # mypy checks the actions as the App's own methods (notify, query_one, …); at run
    # time the base is object, and AnetuiApp supplies App after this mixin in its MRO.
    _AppBase = App[int]
else:
    _AppBase = object


class KeyActions(_AppBase):
    """The ``action_*`` methods behind the key bindings, and their palette entries."""

    # The run state these actions read and change: set up by AnetuiApp.__init__.
    config: RunConfig
    monitor: PowerMonitor | None
    session: Session | None
    snapshot: Snapshot | None
    keyed: list[str]
    active: str | None
    paused: bool
    auto: bool
    auto_seconds: float
    idle_seconds: float
    message: str
    saved: list[Path]
    _next_switch_at: float
    _auto_timer: object | None
    #: Held by the actions that pause the run and then resume it (idle, reset), so that
    #: one never resumes what the other paused.
    _interlude: asyncio.Lock

    if TYPE_CHECKING:  # defined by AnetuiApp, which owns the run they control

        def switch_to(self, backend_id: str) -> None: ...
        def refresh_view(self) -> None: ...
        def _pause(self) -> None: ...
        def _resume(self) -> None: ...
        async def _on_model_thread(
            self, function: Callable[..., object], *args: object
        ) -> object: ...

    def _say_why(self, backend_id: str) -> None:
        """A backend that cannot run was asked for: its error, or why it is unavailable."""
        assert self.session is not None
        snapshot = self.session.snapshot()
        result = next((b for b in snapshot.backends if b.id == backend_id), None)
        why = (result.error or result.reason) if result else None
        self.notify(f"{backend_id}: {why or 'cannot run here'}", severity="warning")

    def action_run(self, number: int) -> None:
        if 1 <= number <= len(self.keyed):
            self.switch_to(self.keyed[number - 1])
        elif self.session is not None:
            self.notify(f"no backend {number}: {len(self.keyed)} can run here (d: the others)")

    def _run_row(self, row: int) -> None:
        """Enter or a click on a row: run its backend, or list why the folded ones can't."""
        table = self.query_one(BackendList)
        backend_id = table.row_backend(row)
        if backend_id is not None:
            self.switch_to(backend_id)
        elif 0 <= row < len(table.rows_shown):
            self.action_details()

    def action_cycle(self, step: int) -> None:
        if self.session is None:
            return
        runnable = self.session.runnable()
        if not runnable:
            return
        index = runnable.index(self.active) if self.active in runnable else -step
        self.switch_to(runnable[(index + step) % len(runnable)])
        self._next_switch_at = time.monotonic() + self.auto_seconds

    def action_pause(self) -> None:
        if self.paused:
            self._resume()
        else:
            self._pause()
        self.refresh_view()

    def action_auto(self) -> None:
        self.auto = not self.auto
        if self.auto:
            self._next_switch_at = time.monotonic() + self.auto_seconds
            self._auto_timer = self.set_interval(self.auto_seconds, lambda: self.action_cycle(1))
        elif self._auto_timer is not None:
            self._auto_timer.stop()  # type: ignore[attr-defined]
        order = " → ".join(self.session.runnable()) if self.session else ""
        state = f"on, {self.auto_seconds:g} s each: {order}" if self.auto else "off"
        self.notify(f"auto-cycle {state}")
        self.refresh_view()

    def action_reference(self) -> None:
        if self.session is None:
            return
        table = self.query_one(BackendList)
        on_fold = 0 <= table.cursor_row < len(table.rows_shown) and not table.row_backend(
            table.cursor_row
        )
        chosen = table.row_backend(table.cursor_row) or self.active
        if on_fold:
            self.notify("those backends cannot run here (d: why)", severity="warning")
        elif chosen is None:
            self.notify("choose a backend row first", severity="warning")
        elif chosen not in self.session.runnable():
            self._say_why(chosen)  # an unavailable or failed backend cannot be the reference
        else:
            self.session.set_reference(chosen)
            measured = self.snapshot is not None and any(
                b.id == chosen for b in self.snapshot.measured()
            )
            self.notify(f"reference: {chosen}" + ("" if measured else " (once it has a number)"))
            self.refresh_view()

    def action_details(self) -> None:
        if self.session is None:
            return
        reasons = [
            (i, a.reason or "not available")
            for i, a in self.session.availability().items()
            if i not in self.keyed
        ]
        if reasons:
            self.push_screen(DetailsScreen(reasons))
        else:
            self.notify("every backend can run here")

    @work(exclusive=True, group="idle")
    async def action_idle(self) -> None:
        """Pause everything for a few seconds: those power windows are the idle baseline."""
        if self.monitor is None:
            self.notify("an idle baseline needs a power source (--power)", severity="warning")
            return
        async with self._interlude:  # after a reset that is still resuming the run
            await self._idle_phase()

    async def _idle_phase(self) -> None:
        was_running = not self.paused and self.active is not None
        self._pause()
        session = self.session
        if session is not None:
            # On the model thread, so the idle phase starts only once the run it stops
            # has closed its own timed stretch (jobs there run in order).
            await self._on_model_thread(session.begin_idle)
        end = time.monotonic() + self.idle_seconds
        while (left := end - time.monotonic()) > 0:
            self.message = f"idle baseline: nothing runs for {left:.0f} s more…"
            self.refresh_view()
            await asyncio.sleep(min(1.0, left))
        if session is not None:
            await self._on_model_thread(session.end_idle)
        self.message = ""
        idle_w = self.session.snapshot().power.get("idle_w") if self.session else None
        if isinstance(idle_w, dict) and idle_w:
            watts = ", ".join(f"{rail} {w:.2f} W" for rail, w in idle_w.items())
            self.notify(f"idle baseline: {watts}", timeout=8)
        else:
            self.notify(
                "idle baseline: no power window fell wholly inside the pause; "
                "try a longer --idle-seconds",
                severity="warning",
                timeout=8,
            )
        if was_running:
            self._resume()

    @work(exclusive=True, group="reset")
    async def action_reset(self) -> None:
        if self.session is None:
            return
        async with self._interlude:  # never resume a run an idle phase has paused
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

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette (ctrl+p): Textual's own commands, then one per action above."""
        yield from super().get_system_commands(screen)
        for backend_id in self.keyed:
            yield SystemCommand(
                f"Run {backend_id}",
                f"Prepare if needed, then measure {backend_id}",
                lambda b=backend_id: self.switch_to(b),
            )
        for title, help_text, action in (
            ("Next backend", "Run the next backend (tab)", lambda: self.action_cycle(1)),
            ("Pause / resume", "Pause or resume the running backend (space)", self.action_pause),
            ("Auto-cycle", "Alternate all ready backends every few seconds (a)", self.action_auto),
            ("Make reference", "Ratios against the selected backend (b)", self.action_reference),
            ("Idle baseline", "Pause everything to measure idle power (i)", self.action_idle),
            ("Reset statistics", "Forget every measurement so far (r)", self.action_reset),
            ("Snapshot", "Write JSON, Markdown and SVG to --out (s)", self.action_snapshot),
            (
                "Not available here",
                "Backends that cannot run here, and why (d)",
                self.action_details,
            ),
            ("Help", "Key bindings (?)", self.action_help),
        ):
            yield SystemCommand(title, help_text, action)
