"""`anetui` with no command: build the power monitor, then hand over to the Textual app.

This module is the CLI's bridge to the UI: it imports :mod:`anetui.ui` (and so textual)
only when the dashboard is actually opened.
"""

from __future__ import annotations

import os
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
    metrics_addr: tuple[str, int] | None = None,
) -> int:
    # Under `anetui --serve` (textual-serve sets TEXTUAL_DRIVER) stdout is the browser's
    # stream, not a terminal, and must carry nothing else.
    served = bool(os.environ.get("TEXTUAL_DRIVER"))
    if not sys.stdout.isatty() and not served:
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
    exporter = None
    if metrics_addr is not None:
        from rich.console import Console

        from anetui.cli.metrics import start_exporter

        exporter = start_exporter(metrics_addr, Console(stderr=True))
        exporter.follow(lambda: app.session)  # None until the app has built its session
    try:
        code = app.run()
    finally:
        if exporter is not None:
            exporter.stop()
    for path in app.saved:
        print(path, file=sys.stderr if served else sys.stdout)
    return code or 0
