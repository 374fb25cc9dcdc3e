"""The powermetrics source: launches ``/usr/bin/powermetrics -f plist`` and reads its
stdout through a pipe (never a file), parsing windows as they arrive.

powermetrics runs under a root supervisor (:mod:`anetui.power.supervisor`) forked
before the privilege drop: anetui holds the write end of a pipe to it, and when that
pipe closes (``aclose``, interpreter exit, or anetui killed by any signal) the
supervisor stops powermetrics (SIGTERM, SIGKILL 2 s later) and reaps it. So no root
child outlives anetui, and a dropped anetui never has to signal a root process.
Clean-up is idempotent: close → wait 2 s → kill, plus a ``weakref.finalize`` that closes
the pipe for an interpreter that exits without closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from anetui.errors import Availability, one_line
from anetui.power import supervisor
from anetui.power.base import PowerSample, SourceState, Unavailable, refuse
from anetui.power.powermetrics_parse import MAX_DOCUMENT_BYTES, PlistStreamParser
from anetui.power.powermetrics_window import Window, max_window_ns_for

POWERMETRICS = "/usr/bin/powermetrics"
WANTED_SAMPLERS = ("cpu_power", "gpu_power", "ane_power", "thermal")
TERMINATE_WAIT_S = 2.0
STDERR_KEEP_BYTES = 4096


def supported_samplers(help_text: str) -> set[str]:
    """Sampler names listed by ``powermetrics --help`` ("The following samplers …")."""
    names: set[str] = set()
    inside = False
    for line in help_text.splitlines():
        if line.startswith("The following samplers are supported"):
            inside = True
            continue
        if inside:
            if line.strip() == "":
                if names:
                    break
                continue
            if not line.startswith(" "):
                break
            names.add(line.split()[0])
    return names


def choose_samplers(help_text: str | None) -> list[str]:
    """The samplers we want that this powermetrics has; without --help output, all but
    ane_power (absent before macOS 12, and cpu_power prints the ANE line anyway)."""
    if help_text:
        known = supported_samplers(help_text)
        if known:
            return [s for s in WANTED_SAMPLERS if s in known]
    return [s for s in WANTED_SAMPLERS if s != "ane_power"]


#: Samplers chosen per powermetrics executable: its --help is asked and parsed once per
#: process (an unknown sampler makes powermetrics refuse the whole command line).
_SAMPLERS: dict[str, list[str]] = {}


def samplers_for(executable: str, help_text: Callable[[], str | None]) -> list[str]:
    """The samplers to request from ``executable``, from its ``--help`` (asked once)."""
    chosen = _SAMPLERS.get(executable)
    if chosen is None:
        text = help_text()
        chosen = choose_samplers(text)
        if text:  # a failed --help is asked again next time
            _SAMPLERS[executable] = chosen
    return list(chosen)


def total_rails(rails: Iterable[str]) -> tuple[str, ...]:
    """CPU+GPU+ANE (``combined`` and ``package`` contain them); on macOS 12 and older,
    which reports ``package`` and ``dram`` instead, the package."""
    present = set(rails)
    apple = tuple(r for r in ("cpu", "gpu", "ane") if r in present)
    if apple:
        return apple
    if "package" in present:
        return ("package",)
    return tuple(sorted(present))


class WindowChain:
    """Places windows end to end by their own ``elapsed_ns``, anchored once.

    The last window of the first read ends when that read arrived; every other window
    starts where the previous one ended. When documents were read (several in one read,
    a late read from a busy event loop) never moves a window: windows neither overlap
    nor drift.
    """

    def __init__(self) -> None:
        self._end_ns: int | None = None

    def place(self, windows: list[Window], arrived_ns: int) -> list[PowerSample]:
        """``windows`` (one read's worth) on the monotonic clock."""
        if not windows:
            return []
        if self._end_ns is None:
            rest = sum(w.elapsed_ns for w in windows[1:])
            self._end_ns = arrived_ns - rest - windows[0].elapsed_ns
        placed = []
        for window in windows:
            self._end_ns += window.elapsed_ns
            placed.append(window.at(self._end_ns))
        return placed


class PowermetricsSource:
    """macOS powermetrics, CPU/GPU/ANE energy per window and thermal pressure."""

    id = "powermetrics"

    def __init__(self, interval_ms: int = 250, executable: str = POWERMETRICS) -> None:
        self.interval_ms = interval_ms
        self.executable = executable
        self.label = f"powermetrics ({interval_ms} ms)"
        self.state = SourceState.IDLE
        self.reason: str | None = None
        self.samplers: list[str] = []
        #: Documents skipped as unparsable or impossible (the source's error tally).
        self.skipped = 0
        self._proc: supervisor.Supervised | None = None
        self._stdout: asyncio.StreamReader | None = None
        self._stdout_transport: asyncio.BaseTransport | None = None
        self._stderr_transport: asyncio.BaseTransport | None = None
        self._stderr = bytearray()
        self._stderr_task: asyncio.Task[None] | None = None
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._closing = False

    # -- availability ---------------------------------------------------------------
    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        return total_rails(rails)

    def available(self) -> Availability:
        if self.executable == POWERMETRICS and sys.platform != "darwin":
            return Availability.no("powermetrics is macOS only")
        if not Path(self.executable).exists():
            return Availability.no(f"{self.executable} not found")
        if os.geteuid() != 0:
            return Availability.no("needs root: run `sudo anetui`")
        return Availability.yes()

    # -- life cycle -----------------------------------------------------------------
    async def start(self) -> None:
        availability = self.available()
        if not availability.ok:
            refuse(self, availability.reason)
        self.samplers = samplers_for(self.executable, self._help_text)
        args = [
            self.executable,
            "--samplers",
            ",".join(self.samplers),
            "-i",
            str(self.interval_ms),
            "-f",
            "plist",
        ]
        try:
            # An absolute path and an argument list: no shell, no PATH lookup; run by a
            # root supervisor that stops it when this process goes away.
            self._proc = supervisor.spawn(args)
        except OSError as exc:
            self.state, self.reason = (
                SourceState.UNAVAILABLE,
                f"cannot start powermetrics: {one_line(exc)}",
            )
            raise Unavailable(self.reason) from None
        self._finalizer = weakref.finalize(self, self._proc.terminate)
        loop = asyncio.get_running_loop()
        assert self._proc.stdout is not None and self._proc.stderr is not None
        # Our own read transports over the pipes the supervisor relays.
        stdout = self._stdout = asyncio.StreamReader(limit=MAX_DOCUMENT_BYTES)
        self._stdout_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdout), self._proc.stdout
        )
        stderr = asyncio.StreamReader()
        self._stderr_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stderr), self._proc.stderr
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr(stderr))
        self.state, self.reason = SourceState.RUNNING, None

    def _help_text(self) -> str | None:
        try:
            out = subprocess.run(
                [self.executable, "--help"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout + out.stderr

    async def _drain_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(1024):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP_BYTES]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __aiter__(self) -> AsyncIterator[PowerSample]:
        return self.samples()

    async def samples(self) -> AsyncIterator[PowerSample]:
        """Windows as powermetrics writes them, placed on the stream's own clock."""
        if self._proc is None:
            await self.start()
        assert self._stdout is not None
        parser = PlistStreamParser(max_window_ns_for(self.interval_ms))
        chain = WindowChain()
        reported = 0
        while chunk := await self._stdout.read(65536):
            arrived_ns = time.monotonic_ns()
            for sample in chain.place(parser.feed(chunk), arrived_ns):
                yield sample
            reported = self._note_errors(parser, reported)
        parser.close()
        self._note_errors(parser, reported)
        if self._closing:
            return
        code = await self._wait(TERMINATE_WAIT_S)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        lines = self._stderr.decode(errors="replace").strip().splitlines()
        tail = lines[-1][:200] if lines else "no message"
        exit_text = f"exited with code {code}" if code is not None else "closed its output"
        self.state, self.reason = SourceState.LOST, f"powermetrics {exit_text}: {tail}"

    def _note_errors(self, parser: PlistStreamParser, reported: int) -> int:
        # A bad document is skipped and counted; remember the tally for the UI.
        if parser.error_count > reported:
            self.skipped = parser.error_count
            self.reason = (
                f"skipped {parser.error_count} bad powermetrics document(s); "
                f"last: {parser.last_error}"
            )
        return parser.error_count

    async def _wait(self, timeout_s: float) -> int | None:
        """The child's exit code, or None if it is still running after timeout_s."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while (code := self._proc.poll()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return code

    async def aclose(self) -> None:
        """Stop powermetrics and reap it; safe to call any number of times."""
        if self._closing:
            return
        self._closing = True
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()  # closes the life pipe: the supervisor stops it
                if await self._wait(TERMINATE_WAIT_S) is None:
                    proc.kill()
            for transport in (self._stdout_transport, self._stderr_transport):
                if transport is not None:
                    transport.close()
            if await self._wait(TERMINATE_WAIT_S + self.interval_ms / 1000) is None:
                self.reason = f"powermetrics (pid {proc.pid}) did not exit"
            if self._stderr_task is not None:
                self._stderr_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._stderr_task
        if self._finalizer is not None:
            self._finalizer.detach()
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
