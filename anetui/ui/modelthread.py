"""The one thread all model work runs on (see :mod:`anetui.ui.app`'s docstring).

A daemon thread, not a ``ThreadPoolExecutor`` worker: the interpreter joins executor
threads at exit, so quitting while a backend converts or exports would wait for it. A
daemon thread lets the dashboard return to the shell at once; :attr:`busy` tells the CLI
that it must leave with ``os._exit`` because model code is still running.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

_Job = tuple[Future[object], Callable[..., object], tuple[object, ...]]


class ModelThread:
    """Runs submitted calls one after another, in order, on one daemon thread."""

    def __init__(self, name: str = "anetui-model") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._running = threading.Event()  # set while a job runs
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., object], *args: object) -> Future[object]:
        future: Future[object] = Future()
        if self._closed:
            future.cancel()
            return future
        self._jobs.put((future, function, args))
        return future

    @property
    def busy(self) -> bool:
        """True while a job (preparing or running a backend) is still executing."""
        return self._thread.is_alive() and self._running.is_set()

    def shutdown(self, wait_s: float) -> bool:
        """Drop queued jobs, stop the thread after the current job; wait up to ``wait_s``
        seconds for it. True when the thread has ended."""
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        self._jobs.put(None)
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, function, args = job
            if not future.set_running_or_notify_cancel():
                continue
            self._running.set()
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)
            finally:
                self._running.clear()
