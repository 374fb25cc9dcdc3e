"""Runs one power source in its own thread and event loop, keeping its samples.

The session and the CLI are synchronous; the sources are asynchronous. A PowerMonitor
bridges them: ``start()`` returns once the source has started (or failed), which is
what lets the privileged work (spawning powermetrics, opening RAPL files) happen before
the process drops root. Samples go into a bounded deque under a lock; readers get copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque

from anetui.errors import one_line
from anetui.power.base import PowerSample, PowerSource, PowerSourceError, SourceState

#: Samples kept: 24 h at 250 ms. Older ones fall off; memory stays bounded.
MAX_SAMPLES = 24 * 3600 * 4


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

    def samples(self) -> list[PowerSample]:
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
