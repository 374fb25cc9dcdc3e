"""Runs one power source in its own thread and event loop, keeping its samples.

The session and the CLI are synchronous; the sources are asynchronous. A PowerMonitor
bridges them: ``start()`` returns once the source has started (or failed), which is
what lets the privileged work (spawning powermetrics, opening RAPL files) happen before
the process drops root. Each sample is handed to the listeners (the session's energy
ledger attributes it once, as it arrives) and kept in a short ring for sparklines; the
figures never need the whole history, so memory stays flat however long the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable

from anetui.errors import one_line
from anetui.power.base import PowerSample, PowerSource, PowerSourceError, SourceState

#: Samples kept for the live sparklines: 5 minutes at 250 ms. Older ones fall off; the
#: energy figures come from listeners that saw every sample once.
MAX_SAMPLES = 1200

#: Called with each sample, on the thread (or event loop) that reads the source.
SampleListener = Callable[[PowerSample], None]


class PowerMonitor:
    def __init__(self, source: PowerSource, max_samples: int = MAX_SAMPLES) -> None:
        self.source = source
        self._samples: deque[PowerSample] = deque(maxlen=max_samples)
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        self._listeners: list[SampleListener] = []
        self._count = 0

    def subscribe(self, listener: SampleListener) -> None:
        """Hand every later sample to ``listener`` (cheap work only: it runs on the
        source's thread). A listener that raises is dropped, with its error kept."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def count(self) -> int:
        """Samples received since the start (the ring keeps only the latest)."""
        return self._count

    @property
    def state(self) -> str:
        return self.source.state

    @property
    def reason(self) -> str | None:
        return self.error or self.source.reason

    def start(self, timeout_s: float = 15.0) -> bool:
        """Start the source in a thread; True once it runs, False (see .reason) if not."""
        self._thread = threading.Thread(target=self._main, name="anetui-power", daemon=True)
        self._thread.start()
        self._started.wait(timeout_s)
        return self.error is None and self._started.is_set()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        if await self.start_async():
            self._task = asyncio.current_task()
            self._started.set()
            await self.consume()
        else:
            self._started.set()

    async def start_async(self) -> bool:
        """Start the source on the running loop (the privileged step); False on failure."""
        try:
            await self.source.start()
        except PowerSourceError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # an unexpected failure is still one line, never a crash
            self.error = f"{self.source.id} failed to start: {one_line(exc)}"
            return False
        return True

    async def consume(self) -> None:
        """Collect samples until the source ends or this task is cancelled (the
        dashboard runs this as an async worker; the CLI in its own thread)."""
        stream = self.source.samples()
        try:
            async for sample in stream:
                with self._lock:
                    self._samples.append(sample)
                    self._count += 1
                    listeners = list(self._listeners)
                for listener in listeners:
                    self._notify(listener, sample)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.source.state, self.error = (
                SourceState.LOST,
                f"{self.source.id} failed: {one_line(exc)}",
            )
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await self.source.aclose()

    def _notify(self, listener: SampleListener, sample: PowerSample) -> None:
        try:
            listener(sample)
        except Exception as exc:  # a broken listener must not stop the source
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
            self.error = f"power sample listener failed: {one_line(exc)}"

    def samples(self) -> list[PowerSample]:
        """The most recent samples (at most ``max_samples``), oldest first."""
        with self._lock:
            return list(self._samples)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the source and join the thread; idempotent."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)
