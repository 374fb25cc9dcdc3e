"""`anetui` with no command: build the power monitor, then hand over to the Textual app.

This module is the CLI's bridge to the UI: it imports :mod:`anetui.ui` (and so textual)
only when the dashboard is actually opened.
"""

from __future__ import annotations

import sys

from anetui.core.config import RunConfig
from anetui.errors import AnetuiError
from anetui.power import registry as power_registry


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

    monitor, notes = power_registry.monitor_for(
        config.power, config.interval_ms, config.replay_speed
    )
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
