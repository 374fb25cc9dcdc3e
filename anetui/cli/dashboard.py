"""`anetui` with no command: build the power monitor, then hand over to the Textual app.

This module is the CLI's bridge to the UI: it imports :mod:`anetui.ui` (and so textual)
only when the dashboard is actually opened. However the app ends, the terminal is given
back as it was (Textual restores it; SIGTERM and SIGHUP quit the app the same way as
`q`). A crash is one line on stderr naming a log file with the traceback, exit 1. When
quitting left model code running (a backend still exporting or converting), the process
leaves with ``os._exit`` rather than wait for it: nothing is lost, since snapshots are
written before, and the power source was stopped by the app.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from anetui.core.config import RunConfig
from anetui.errors import AnetuiError, one_line
from anetui.models.cache import cache_root
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
        app.run()
    finally:
        if exporter is not None:
            exporter.stop()
    code = app.return_code or 0
    for path in app.saved:
        print(path, file=sys.stderr if served else sys.stdout)
    if app.crash is not None:
        error, trace = app.crash
        log = write_crash_log(trace)
        where = f"traceback in {log}" if log else "no log file could be written"
        print(
            f"anetui: error: the dashboard crashed: {type(error).__name__}: "
            f"{one_line(error)} ({where})",
            file=sys.stderr,
        )
        code = 1
    if app.left_running:  # a backend still preparing: do not wait for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def write_crash_log(trace: str) -> Path | None:
    """Write ``trace`` to <cache>/logs/dashboard-<UTC time>.log; its path, or None."""
    folder = cache_root() / "logs"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"dashboard-{stamp}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(trace, encoding="utf-8")
    except OSError:
        return None
    return path
