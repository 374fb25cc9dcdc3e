"""bench's progress display: the session prepared and run in a worker thread while the
main thread draws a progress bar per backend (or plain log lines when stderr is not a
terminal) and takes the signals that stop it."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from anetui.cli.options import StopRequests
from anetui.core.config import RunConfig
from anetui.core.session import ProgressCallback, Session
from anetui.errors import AnetuiError, one_line
from anetui.report.text import fmt_ms

#: How often the progress display is refreshed from the session (s).
POLL_S = 0.25
#: After Ctrl+C, how long the worker gets to reach a stop point before it is abandoned (s):
#: a timed loop stops at its next inference, but a conversion or compilation in progress
#: cannot be interrupted, so the worker (a daemon thread) is left to die with the process.
ABANDON_AFTER_S = 0.75


def run_with_progress(
    session: Session, err: Console, stops: StopRequests
) -> tuple[int | None, bool]:
    """Prepare and run the session in a thread: (the number of the signal that stopped it
    — SIGINT, SIGTERM, SIGHUP — or None when it ran to its end; whether the worker was
    abandoned mid-preparation)."""
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
    # Ctrl+C, SIGTERM and SIGHUP stop the loop from the signal handler instead of
    # raising KeyboardInterrupt into the middle of whatever the main thread is doing.
    abandoned = False
    with stops.handling(), progress:
        worker.start()
        stopped_at: float | None = None
        while worker.is_alive():
            worker.join(POLL_S / 5 if stops.signum is not None else POLL_S)
            _update(progress, tasks, session)
            if stops.signum is not None:
                stopped_at = stopped_at or time.monotonic()
                if time.monotonic() - stopped_at >= ABANDON_AFTER_S:
                    abandoned = worker.is_alive()
                    break
    if abandoned:
        busy = [i for i, live in session.live().items() if live.state == "preparing"]
        what = f" (abandoned while preparing {', '.join(busy)})" if busy else ""
        err.print(f"[yellow]stopped{what}[/]")
        return stops.signum, True
    if failure:
        exc = failure[0]
        if isinstance(exc, AnetuiError):
            raise exc
        raise AnetuiError(f"the benchmark failed: {one_line(exc)}") from exc
    return stops.signum, False


def _planned(config: RunConfig) -> float:
    per_run = config.iterations if config.iterations is not None else config.duration_s or 0
    return float(per_run * config.repeat)


def _update(progress: Progress, tasks: dict[str, TaskID], session: Session) -> None:
    for backend_id, live in session.live().items():
        task = tasks.get(backend_id)
        if task is None:
            continue
        done = live.count if session.config.iterations is not None else live.active_s
        status = f"{live.state}, {live.count} inferences"
        if live.p50_ms is not None:
            status += f", p50 {fmt_ms(live.p50_ms)} ms"
        progress.update(task, completed=done, status=status)


def _log_to(err: Console) -> ProgressCallback:
    started = time.monotonic()

    def log(backend_id: str, what: str, count: int) -> None:
        err.print(f"[{time.monotonic() - started:6.1f} s] {backend_id}: {what} ({count} timed)")

    return log
