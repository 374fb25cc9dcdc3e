"""A minimal root supervisor for a root-only child (powermetrics): privilege separation
in the manner of OpenSSH's monitor.

Before anetui drops root, :func:`spawn` forks a small process that stays root and does
one thing: it starts the child with its stdout and stderr going straight into pipes
that anetui reads (the relay costs no copy), then watches a *life pipe* whose only
writer is anetui. When that pipe reaches end of file, because anetui closed it or
because anetui died, however (SIGKILL included: the kernel closes its descriptors), the
supervisor stops the child (SIGTERM, then SIGKILL after ``TERMINATE_WAIT_S``), reaps
it and exits with the child's exit code. So no root child outlives anetui, even a
silent one that would never hit SIGPIPE, and anetui, no longer root, never needs to
signal a root process. A SIGTERM to the supervisor (possible while anetui is still
root) kills the child at once.

The forked supervisor runs only ``os``/``select``/``signal`` calls (the parent may have
threads: nothing that takes a lock is used after the fork) and leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from typing import IO, NoReturn

#: How long the supervisor waits after SIGTERM before SIGKILL (s).
TERMINATE_WAIT_S = 2.0
#: How often the supervisor checks whether the child exited on its own (s).
POLL_S = 0.1
_HIGHEST_FD = 65536


class SpawnError(OSError):
    """The supervisor could not start the child (the message says why)."""


class _Stop(Exception):
    """Raised in the supervisor by its SIGTERM handler."""


class Supervised:
    """The parent's handle, shaped like the parts of ``subprocess.Popen`` it needs.

    ``pid`` is the child's (for display and tests); ``supervisor_pid`` the supervisor's,
    which is the process this one waits for. Exit codes are the child's (128 + N when a
    signal N ended it).
    """

    def __init__(self, supervisor_pid: int, child_pid: int, life_fd: int, stdout: int, stderr: int):
        self.supervisor_pid = supervisor_pid
        self.pid = child_pid
        self._life_fd: int | None = life_fd
        self.stdout: IO[bytes] = os.fdopen(stdout, "rb", buffering=0)
        self.stderr: IO[bytes] = os.fdopen(stderr, "rb", buffering=0)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the supervisor (and so the child) has exited, else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.supervisor_pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: treat as gone
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout_s: float | None = None) -> int | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return code

    def terminate(self) -> None:
        """Ask for a stop: close the life pipe (idempotent; works without privileges)."""
        if self._life_fd is not None:
            fd, self._life_fd = self._life_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def kill(self) -> None:
        """Stop now: close the life pipe and, where allowed, SIGTERM the supervisor,
        which then SIGKILLs the child (a dropped process is not allowed: the supervisor
        escalates by itself after ``TERMINATE_WAIT_S``)."""
        self.terminate()
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.supervisor_pid, signal.SIGTERM)


def spawn(argv: list[str]) -> Supervised:
    """Fork the supervisor, which starts ``argv`` (an absolute path, no shell).

    Raises SpawnError when the child cannot be started (not found, not executable).
    """
    life_r, life_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _supervise(argv, life_r, out_w, err_w, status_w)  # never returns
    for fd in (life_r, out_w, err_w, status_w):
        os.close(fd)
    with os.fdopen(status_r, "rb") as status_pipe:
        status = status_pipe.read().decode(errors="replace")
    if not status.startswith("ok "):
        for fd in (life_w, out_r, err_r):
            os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise SpawnError(status.removeprefix("error ").strip() or "the supervisor failed")
    return Supervised(pid, int(status.split()[1]), life_w, out_r, err_r)


def _supervise(argv: list[str], life: int, out: int, err: int, status: int) -> NoReturn:
    """The forked supervisor's whole life."""
    code = 1
    try:
        code = _supervise_inner(argv, life, out, err, status)
    finally:
        os._exit(code)


def _supervise_inner(argv: list[str], life: int, out: int, err: int, status: int) -> int:
    # Terminal signals are the parent's to act on; it tells us through the life pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)  # the parent's event loop's, not ours
    _close_all_but({0, 1, 2, life, out, err, status})
    try:
        child = os.posix_spawn(
            argv[0],
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, err, 2),
            ],
            setsigdef=(signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTERM),
            setpgroup=0,  # its own group: Ctrl+C in the terminal reaches anetui only
        )
    except OSError as exc:
        _write_all(status, f"error {exc.strerror or exc}: {argv[0]}".encode())
        return 127
    os.close(out)
    os.close(err)
    _write_all(status, f"ok {child}".encode())
    os.close(status)
    how = signal.SIGTERM
    try:
        while True:
            exited = _reap(child)
            if exited is not None:
                return exited
            readable, _, _ = select.select([life], [], [], POLL_S)
            if readable and not os.read(life, 512):
                break  # end of file: the parent closed the pipe or is gone
    except _Stop:
        how = signal.SIGKILL
    try:
        return _stop(child, how, TERMINATE_WAIT_S)
    except _Stop:  # told again while stopping: no more waiting
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return _stop(child, signal.SIGKILL, 0.0)


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


def _stop(child: int, first: signal.Signals, wait_s: float) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, first)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        exited = _reap(child)
        if exited is not None:
            return exited
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    return _code(status)


def _reap(child: int) -> int | None:
    pid, status = os.waitpid(child, os.WNOHANG)
    return _code(status) if pid else None


def _code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _close_all_but(keep: set[int]) -> None:
    """Close every inherited descriptor but ``keep`` (sockets, RAPL files, the parent's
    other pipes: a supervisor holding a copy of another pipe would keep it open)."""
    start = 0
    for fd in sorted(keep):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, _HIGHEST_FD)


def _write_all(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]
