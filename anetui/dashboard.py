"""`anetui` with no command: build the power monitor, then hand over to the Textual app.

This module is the CLI's bridge to the UI: it imports :mod:`anetui.ui` (and so textual)
only when the dashboard is actually opened.
"""

from __future__ import annotations

import sys

from anetui.config import RunConfig
from anetui.errors import AnetuiError
from anetui.power import registry as power_registry
from anetui.power.monitor import PowerMonitor


def make_monitor(config: RunConfig) -> tuple[PowerMonitor | None, list[str]]:
    """The power monitor for --power (not started), and the notes on what was skipped."""
    if config.power == "none":
        return None, []
    if config.power == "auto":
        try:
            source, skipped = power_registry.choose_auto(config.interval_ms)
        except AnetuiError as exc:
            return None, [str(exc)]
        return PowerMonitor(source), [f"skipped {reason}" for reason in skipped]
    return PowerMonitor(
        power_registry.create(config.power, config.interval_ms, speed=config.replay_speed)
    ), []


def run_dashboard(
    config: RunConfig,
    *,
    auto_seconds: float,
    idle_seconds: float,
    snapshot_on_exit: bool,
    exit_after_s: float | None = None,
) -> int:
    if not sys.stdout.isatty():
        raise AnetuiError("the dashboard needs a terminal; use `anetui bench` in scripts")
    from anetui.ui.app import make_app

    monitor, notes = make_monitor(config)
    app = make_app(
        config,
        monitor,
        auto_seconds=auto_seconds,
        idle_seconds=idle_seconds,
        snapshot_on_exit=snapshot_on_exit,
        startup_notes=notes,
        exit_after_s=exit_after_s,
    )
    code = app.run()
    for path in app.saved:
        print(path)
    return code or 0
