"""NVIDIA GPUs through NVML (``nvidia-ml-py``): each GPU's total-energy counter (mJ since
the driver loaded, Volta and later) read every interval; GPUs without that counter fall
back to integrating instantaneous power, and the label says so.

It is a :class:`~anetui.power.base.CounterSource`: the session reads the counters at the
edges of every timed stretch, so energy per inference does not depend on how the
counter's steps (several joules on some boards) fall across sampling windows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from anetui.errors import Availability, one_line
from anetui.power.base import CounterReading, PowerSample, SourceState, Unavailable

#: nvmlDeviceGetTotalEnergyConsumption counts in mJ: nothing finer. The board updates it
#: in coarser steps (~7.7 J seen on an H200); the smallest step seen replaces this.
COUNTER_UNIT_MJ = 1.0


def _pynvml() -> Any:
    import pynvml

    return pynvml


def total_rails(rails: Iterable[str]) -> tuple[str, ...]:
    """Every GPU (``gpu0``, ``gpu1`` …, in index order): their counters do not overlap."""
    return tuple(sorted(set(rails), key=lambda r: (len(r), r)))


class NvmlSource:
    """Per-GPU energy (rails gpu0, gpu1, …) per window."""

    id = "nvml"

    def __init__(self, interval_ms: int = 250) -> None:
        self.interval_ms = interval_ms
        self.label = f"NVML ({interval_ms} ms)"
        self.state = SourceState.IDLE
        self.reason: str | None = None
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._integrated: set[int] = set()
        self._counter_lock = threading.Lock()
        self._start_mj: dict[int, float] = {}
        self._last_mj: dict[int, float] = {}
        self._step_mj: dict[int, float] = {}
        # Power-integrated GPUs: (t_ns, W) of the last reading and the running sum (mJ).
        self._last_power: dict[int, tuple[int, float]] = {}
        self._integral_mj: dict[int, float] = {}

    @property
    def resolution_mj(self) -> dict[str, float]:
        """Per GPU rail, the smallest step its energy counter was seen to move by (mJ);
        1 mJ (the counter's unit) before any step was seen. Integrated rails have no
        counter step: 1 mJ stands for their rounding."""
        with self._counter_lock:
            return {
                f"gpu{i}": max(COUNTER_UNIT_MJ, self._step_mj.get(i, 0.0))
                for i in range(len(self._handles))
            }

    def read_counters(self) -> CounterReading:
        """Energy per GPU since start (mJ): the driver's counter, or for GPUs without one
        the trapezoid integral of power between readings."""
        with self._counter_lock:
            t_ns = time.monotonic_ns()
            energy = self._energy_mj()
            out: dict[str, float] = {}
            for i, mj in energy.items():
                self._start_mj.setdefault(i, mj)
                step = mj - self._last_mj.get(i, mj)
                if 0 < step < self._step_mj.get(i, step + 1):
                    self._step_mj[i] = step
                self._last_mj[i] = mj
                out[f"gpu{i}"] = mj - self._start_mj[i]
            if self._integrated:
                power = self.power_w()
                for i in self._integrated:
                    rail = f"gpu{i}"
                    t_prev, w_prev = self._last_power.get(i, (t_ns, power[rail]))
                    self._integral_mj[i] = (
                        self._integral_mj.get(i, 0.0)
                        + (w_prev + power[rail]) / 2 * (t_ns - t_prev) / 1e6
                    )
                    self._last_power[i] = (t_ns, power[rail])
                    out[rail] = self._integral_mj[i]
            return CounterReading(t_ns, dict(sorted(out.items())))

    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        return total_rails(rails)

    def available(self) -> Availability:
        if importlib.util.find_spec("pynvml") is None:
            return Availability.no("nvidia-ml-py not installed (pip install nvidia-ml-py)")
        nvml = _pynvml()
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded …
            return Availability.no(f"no NVIDIA GPU (NVML: {one_line(exc)})")
        try:
            if nvml.nvmlDeviceGetCount() == 0:
                return Availability.no("no NVIDIA GPU (NVML sees none)")
        finally:
            if self._nvml is None:
                nvml.nvmlShutdown()
        return Availability.yes()

    async def start(self) -> None:
        availability = self.available()
        if not availability.ok:
            self.state, self.reason = SourceState.UNAVAILABLE, availability.reason
            raise Unavailable(availability.reason or "unavailable")
        nvml = _pynvml()
        nvml.nvmlInit()
        self._nvml = nvml
        self._handles = [
            nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())
        ]
        for i, handle in enumerate(self._handles):
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except nvml.NVMLError:
                self._integrated.add(i)
        if self._integrated:
            self.label += (
                " (power integrated on "
                + ", ".join(f"gpu{i}" for i in sorted(self._integrated))
                + ")"
            )
        self.state, self.reason = SourceState.RUNNING, None

    def power_w(self) -> dict[str, float]:
        """Instantaneous board power per GPU (W)."""
        nvml = self._nvml
        return {
            f"gpu{i}": nvml.nvmlDeviceGetPowerUsage(h) / 1000.0 for i, h in enumerate(self._handles)
        }

    def _energy_mj(self) -> dict[int, float]:
        nvml = self._nvml
        return {
            i: float(nvml.nvmlDeviceGetTotalEnergyConsumption(h))
            for i, h in enumerate(self._handles)
            if i not in self._integrated
        }

    def __aiter__(self) -> AsyncIterator[PowerSample]:
        return self.samples()

    async def samples(self) -> AsyncIterator[PowerSample]:
        if self._nvml is None:
            await self.start()
        try:
            previous = self.read_counters()
            while self._nvml is not None:
                await asyncio.sleep(self.interval_ms / 1000)
                if self._nvml is None:
                    break
                now = self.read_counters()
                yield now.sample_since(previous)
                previous = now
        except Exception as exc:  # NVMLError_GpuIsLost and friends
            if self._nvml is not None:
                self.state, self.reason = SourceState.LOST, f"NVML failed: {one_line(exc)}"

    async def aclose(self) -> None:
        with self._counter_lock:  # not while another thread reads the counters
            nvml, self._nvml = self._nvml, None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except Exception as exc:  # shutting down must not hide the session's results
                self.reason = f"nvmlShutdown failed: {one_line(exc)}"
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
