"""NVIDIA GPUs through NVML (``nvidia-ml-py``): each GPU's total-energy counter (mJ since
the driver loaded, Volta and later) read every interval; GPUs without that counter fall
back to integrating instantaneous power, and the label says so."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from anetui.errors import Availability, one_line
from anetui.power.base import PowerSample, SourceState, Unavailable


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
            t_prev, energy_prev, power_prev = time.monotonic_ns(), self._energy_mj(), self.power_w()
            while self._nvml is not None:
                await asyncio.sleep(self.interval_ms / 1000)
                if self._nvml is None:
                    break
                t_now, energy_now, power_now = (
                    time.monotonic_ns(),
                    self._energy_mj(),
                    self.power_w(),
                )
                rails = {f"gpu{i}": energy_now[i] - energy_prev[i] for i in energy_now}
                dt_s = (t_now - t_prev) / 1e9
                for i in self._integrated:  # trapezoid over the two power readings
                    rail = f"gpu{i}"
                    rails[rail] = (power_prev[rail] + power_now[rail]) / 2 * dt_s * 1000.0
                yield PowerSample(t_prev, t_now, dict(sorted(rails.items())))
                t_prev, energy_prev, power_prev = t_now, energy_now, power_now
        except Exception as exc:  # NVMLError_GpuIsLost and friends
            if self._nvml is not None:
                self.state, self.reason = SourceState.LOST, f"NVML failed: {one_line(exc)}"

    async def aclose(self) -> None:
        nvml, self._nvml = self._nvml, None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except Exception as exc:  # shutting down must not hide the session's results
                self.reason = f"nvmlShutdown failed: {one_line(exc)}"
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
