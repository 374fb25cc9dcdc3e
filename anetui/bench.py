"""`anetui bench`: a headless session with a progress display on stderr and the results
on stdout (and in files). The session runs in a worker thread so that the main thread
keeps the progress display live and turns Ctrl+C into a clean stop with partial results.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from anetui import privileges, report, tables
from anetui.config import RunConfig
from anetui.errors import AnetuiError, one_line
from anetui.models import resolve_model
from anetui.power import registry as power_registry
from anetui.power.monitor import PowerMonitor
from anetui.session import ProgressCallback, Session

#: How often the progress display is refreshed from the session (s).
POLL_S = 0.25


def _consoles() -> tuple[Console, Console]:
    return tables.stdout_console(), Console(stderr=True, soft_wrap=True)


def run_bench(
    config: RunConfig, *, json_path: Path | None = None, markdown_path: Path | None = None
) -> int:
    """Measure, print and write results. Returns the exit code (1 if a backend failed)."""
    out, err = _consoles()
    monitor = start_power(config, err)  # privileged work first …
    try:
        if not config.keep_root and privileges.drop_to_sudo_user().state == "dropped":
            err.print(f"[dim]dropped root: running as {privileges.current().user}[/]")
        return _measure(config, monitor, out, err, json_path, markdown_path)  # … then models
    finally:
        if monitor is not None:
            monitor.stop()


def start_power(config: RunConfig, err: Console) -> PowerMonitor | None:
    """Start the chosen power source, or None for `--power none`.

    A source asked for by name that cannot start is an error; `auto` that finds none
    says why and measures without energy.
    """
    if config.power == "none":
        return None
    skipped: list[str] = []
    try:
        if config.power == "auto":
            source, skipped = power_registry.choose_auto(config.interval_ms)
        else:
            source = power_registry.create(
                config.power, config.interval_ms, speed=config.replay_speed
            )
    except AnetuiError as exc:
        if config.power != "auto":
            raise
        err.print(f"[yellow]no energy measurement:[/] {exc}")
        return None
    for reason in skipped:  # e.g. without sudo: powermetrics and RAPL need root
        err.print(f"[dim]power: skipped {reason}[/]")
    monitor = PowerMonitor(source)
    if not monitor.start():
        raise AnetuiError(f"power source {source.id}: {monitor.reason}")
    err.print(f"[dim]power: {source.label}[/]")
    return monitor


def _measure(
    config: RunConfig,
    monitor: PowerMonitor | None,
    out: Console,
    err: Console,
    json_path: Path | None,
    markdown_path: Path | None,
) -> int:
    spec = resolve_model(config.model, batch_size=config.batch_size, input_shape=config.input_shape)
    for note in spec.notes:
        err.print(f"[yellow]note:[/] {note}")
    session = Session(config, spec, monitor)
    if config.backends is not None:
        session.require_available()  # asked for by name: say why not, exit non-zero
    if not session.runnable():
        reasons = "; ".join(f"{i}: {a.reason}" for i, a in session.availability().items())
        raise AnetuiError(f"no backend can run here ({reasons})")
    for backend_id, availability in session.availability().items():
        if not availability.ok:
            err.print(f"[dim]skipping {backend_id}: {availability.reason}[/]")

    interrupted = _run_with_progress(session, err)
    if monitor is not None:
        monitor.stop()  # before the snapshot, so the last windows are in
    snapshot = session.snapshot()
    session.close()
    tables.print_results(out, snapshot)
    if json_path is not None:
        report.write_json(json_path, snapshot)
        err.print(f"wrote {json_path}")
    if markdown_path is not None:
        report.write_markdown(markdown_path, snapshot)
        err.print(f"wrote {markdown_path}")
    if monitor is not None and monitor.state == "lost":
        err.print(f"[red]power source lost:[/] {monitor.reason}")
    if interrupted:
        err.print("[yellow]interrupted: the results above are partial[/]")
        return 130
    failed = [b for b in snapshot.backends if b.state == "error"]
    for b in failed:
        err.print(f"[red]error:[/] {b.error}")
    return 1 if failed else 0


def _run_with_progress(session: Session, err: Console) -> bool:
    """Prepare and run the session in a thread; True if the user interrupted it."""
    failure: list[BaseException] = []

    log = None if err.is_terminal else _log_to(err)  # plain lines when stderr is a log

    def work() -> None:
        try:
            session.prepare(progress=log)
            session.run(progress=log)
        except BaseException as exc:  # re-raised in the main thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="anetui-bench", daemon=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    tasks = {
        i: progress.add_task(i, total=_planned(session.config), status="waiting")
        for i in session.runnable()
    }
    interrupted = threading.Event()

    def on_interrupt(_signum: int, _frame: object) -> None:
        # Stop the loop from the signal handler instead of raising KeyboardInterrupt
        # into the middle of whatever the main thread is doing.
        interrupted.set()
        session.stop_event.set()

    in_main = threading.current_thread() is threading.main_thread()  # signal's own rule
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
    try:
        with progress:
            worker.start()
            while worker.is_alive():
                worker.join(POLL_S)
                _update(progress, tasks, session)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if failure:
        exc = failure[0]
        if isinstance(exc, AnetuiError):
            raise exc
        raise AnetuiError(f"the benchmark failed: {one_line(exc)}") from exc
    return interrupted.is_set()


def _planned(config: RunConfig) -> float:
    return float(config.iterations if config.iterations is not None else config.duration_s or 0)


def _update(progress: Progress, tasks: dict[str, TaskID], session: Session) -> None:
    for backend_id, live in session.live().items():
        task = tasks.get(backend_id)
        if task is None:
            continue
        done = live.count if session.config.iterations is not None else live.active_s
        status = f"{live.state}, {live.count} inferences"
        if live.p50_ms is not None:
            status += f", p50 {report.fmt_ms(live.p50_ms)} ms"
        progress.update(task, completed=done, status=status)


def _log_to(err: Console) -> ProgressCallback:
    started = time.monotonic()

    def log(backend_id: str, what: str, count: int) -> None:
        err.print(f"[{time.monotonic() - started:6.1f} s] {backend_id}: {what} ({count} timed)")

    return log
