"""Test doubles for backends: real objects that satisfy the Backend protocol without a
model, so the runner's and session's own logic can be tested precisely."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendOptions, PrepareInfo
from anetui.errors import Availability
from anetui.models.spec import ModelSpec


def describe_double(
    backend_id: str,
    factory: Any,
    accepts: tuple[str, ...] = ("none", "torchvision"),
    probe: Callable[[], Availability] = Availability.yes,
) -> BackendDescription:
    """A registry row for a test double, made the way real runtimes make theirs; by
    default it runs without a model ("none") or beside a torchvision one."""
    return BackendDescription(
        backend_id, "test double", "cpu", "fp32", "a test double", factory, probe, accepts
    )


class CountingBackend:
    """Counts calls; each inference busy-waits ``work_ns`` so latencies are known."""

    def __init__(
        self,
        description: BackendDescription | None = None,
        options: BackendOptions | None = None,
        work_ns: int = 0,
    ) -> None:
        self.id = description.id if description else "counting"
        self.dtype = "fp32"
        self.device = "cpu"
        self.work_ns = work_ns
        self.calls = 0
        self.contexts_entered = 0
        self.closed = False

    def available(self) -> Availability:
        return Availability.yes()

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        return PrepareInfo(load_s=0.0, compile_s=0.0, first_inference_ms=0.0)

    def infer(self) -> None:
        self.calls += 1
        if self.work_ns:
            end = time.perf_counter_ns() + self.work_ns
            while time.perf_counter_ns() < end:
                pass

    @contextlib.contextmanager
    def _context(self):  # type: ignore[no-untyped-def]
        self.contexts_entered += 1
        yield None

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return self._context()

    def output(self) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class FailingBackend(CountingBackend):
    """Raises from infer() after ``fail_after`` calls, as a runtime error would."""

    fail_after = 5

    def infer(self) -> None:
        super().infer()
        if self.calls > self.fail_after:
            raise RuntimeError("device lost\nsecond line of a long runtime message")


class NanOutputBackend(CountingBackend):
    """Runs, but its output is NaN, like an fp16 model that overflowed."""

    def output(self) -> np.ndarray:
        return np.full((1, 1000), np.nan, dtype=np.float32)


class JitterBackend(CountingBackend):
    """Busy-waits 2–4 ms per inference (a fixed pseudo-random sequence), so that live
    histograms and sparklines have a shape."""

    def infer(self) -> None:
        self.calls += 1
        work_ns = 2_000_000 + (self.calls * 7919 % 2000) * 1000
        end = time.perf_counter_ns() + work_ns
        while time.perf_counter_ns() < end:
            pass


class SlowPrepareBackend(CountingBackend):
    """Says it is exporting for ``prepare_s`` seconds (sleeping), like a cold ONNX
    export: the dashboard must stay responsive and quit at once meanwhile. A test that
    must see the export happen sets ``done_exporting`` and ends it itself."""

    prepare_s = 120.0
    done_exporting: threading.Event | None = None

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        self.phase = "exporting"
        if self.done_exporting is not None:
            self.done_exporting.wait(self.prepare_s)
        else:
            time.sleep(self.prepare_s)
        self.phase = "loading"
        return super().prepare(spec)
