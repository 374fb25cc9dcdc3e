"""Apple silicon energy without root: IOReport's "Energy Model" counters through
``zeus-apple-silicon`` (``pip install 'anetui[apple]'`` on macOS).

The library's Python API (zeus-apple-silicon 1.1, bindings/energy_bindings.hpp and its
README): ``AppleEnergyMonitor()`` with ``begin_window(key, restart=False)``,
``end_window(key) -> AppleEnergyMetrics`` and ``get_cumulative_energy() ->
AppleEnergyMetrics`` (energy "from an unspecified point fixed over the lifetime of the
monitor"). ``AppleEnergyMetrics`` holds integers in mJ, ``None`` where the chip lacks
the channel: ``cpu_total_mj``, ``efficiency_cores_mj``/``performance_cores_mj`` (per
core, lists), ``efficiency_cluster_mj``/``performance_cluster_mj`` (per cluster, lists),
``efficiency_core_manager_mj``/``performance_core_manager_mj``, ``dram_mj``,
``gpu_mj``, ``gpu_sram_mj``, ``ane_mj``. Each channel is converted to whole mJ, so a
counter moves in steps of 1 mJ.

This source reads ``get_cumulative_energy()`` — the counters themselves — rather than
pairs of named windows: a stretch's energy is the difference of two readings (what
``end_window`` computes with ``IOReportCreateSamplesDelta``), so no window is left open
when a stretch is cut short, and the periodic windows for the sparklines and the
session's stretch boundaries read the same counters without disturbing each other.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from anetui.errors import Availability, one_line
from anetui.power.base import (
    CounterReading,
    PowerSample,
    SourceState,
    Unavailable,
    refuse,
)
from anetui.power.process_energy import ProcessEnergy, on_macos

#: ``AppleEnergyMetrics`` scalar fields → rail names (powermetrics' where it has them).
SCALAR_RAILS = (
    ("cpu_total_mj", "cpu"),
    ("gpu_mj", "gpu"),
    ("ane_mj", "ane"),
    ("dram_mj", "dram"),
    ("gpu_sram_mj", "gpu_sram"),
    ("efficiency_core_manager_mj", "cpu_e_manager"),
    ("performance_core_manager_mj", "cpu_p_manager"),
)
#: List fields → rail name prefixes: clusters ``cpu_e0``, ``cpu_p1``; cores
#: ``cpu_e_core0`` (the library numbers cores across clusters).
LIST_RAILS = (
    ("efficiency_cluster_mj", "cpu_e"),
    ("performance_cluster_mj", "cpu_p"),
    ("efficiency_cores_mj", "cpu_e_core"),
    ("performance_cores_mj", "cpu_p_core"),
)
#: Our own process's CPU energy (process_energy.py): shown, never part of a total.
PROCESS_RAIL = "process"
#: Sampling the counters twice this far apart tells a live CPU counter from a dead one.
PROBE_GAP_S = 0.1


def metrics_to_rails(metrics: Any) -> dict[str, float]:
    """An ``AppleEnergyMetrics`` as rails (mJ); a ``None`` field gives no rail."""
    rails: dict[str, float] = {}
    for field, rail in SCALAR_RAILS:
        value = getattr(metrics, field)
        if value is not None:
            rails[rail] = float(value)
    for field, prefix in LIST_RAILS:
        values: Sequence[int] | None = getattr(metrics, field)
        for index, value in enumerate(values or ()):
            rails[f"{prefix}{index}"] = float(value)
    return rails


def _is_core(rail: str) -> bool:
    return re.fullmatch(r"cpu_[ep]_core\d+", rail) is not None


def _is_cluster(rail: str) -> bool:
    return re.fullmatch(r"cpu_[ep]\d+", rail) is not None


def total_rails(rails: Iterable[str]) -> tuple[str, ...]:
    """CPU+GPU+ANE, as powermetrics' Combined Power, so the two macOS sources total
    the same thing. The CPU is the ``cpu`` channel, which contains its clusters, their
    managers and cores; without it, the clusters and managers; without those, the cores
    — never a core on top of its cluster. DRAM and GPU SRAM are shown but not summed
    (the library does not say whether the GPU channel contains its SRAM), nor is the
    ``process`` rail, which is part of the CPU's energy."""
    present = set(rails)
    if "cpu" in present:
        cpu: list[str] = ["cpu"]
    else:
        clusters = sorted(r for r in present if _is_cluster(r))
        cpu = clusters or sorted(r for r in present if _is_core(r))
        if clusters:
            cpu += [r for r in ("cpu_e_manager", "cpu_p_manager") if r in present]
    return (*cpu, *(r for r in ("gpu", "ane") if r in present))


def _zeus() -> Any:
    import zeus_apple_silicon

    return zeus_apple_silicon


class IOReportSource:
    """IOReport energy counters: a counter source (exact energy per stretch via
    :meth:`read_counters`) that also yields periodic windows for the live view."""

    id = "ioreport"

    def __init__(self, interval_ms: int = 250, process: ProcessEnergy | None = None) -> None:
        self.interval_ms = interval_ms
        self.label = f"IOReport ({interval_ms} ms)"
        self.state = SourceState.IDLE
        self.reason: str | None = None
        self.resolution_mj: dict[str, float] = {}
        self._process = process if process is not None else ProcessEnergy()
        self._monitor: Any = None
        # The C++ monitor is not documented as thread-safe: the sampling loop and the
        # session's stretch boundaries read it under one lock.
        self._lock = threading.Lock()
        self._origin: dict[str, float] = {}
        self._closed = False

    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        return total_rails(rails)

    # -- availability ---------------------------------------------------------------
    def available(self) -> Availability:
        if not on_macos():
            return Availability.no("ioreport is macOS only")
        if importlib.util.find_spec("zeus_apple_silicon") is None:
            return Availability.no("zeus-apple-silicon not installed (pip install 'anetui[apple]')")
        try:
            monitor = self._monitor or _zeus().AppleEnergyMonitor()
            first = metrics_to_rails(monitor.get_cumulative_energy())
            time.sleep(PROBE_GAP_S)
            second = metrics_to_rails(monitor.get_cumulative_energy())
        except Exception as exc:  # RuntimeError("Failed to create IOReport subscription.")
            return Availability.no(f"IOReport cannot be read: {one_line(exc)}")
        self._monitor = monitor
        if "cpu" not in first:
            return Availability.no("IOReport has no CPU energy channel on this Mac")
        if second["cpu"] <= first["cpu"]:
            return Availability.no(
                f"IOReport's CPU counter did not advance over {PROBE_GAP_S * 1000:.0f} ms "
                "(broken on this macOS?): use `sudo anetui --power powermetrics`"
            )
        return Availability.yes()

    # -- life cycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self._monitor is None:
            availability = self.available()
            if not availability.ok:
                refuse(self, availability.reason)
        try:
            now = self._read_raw()
        except Exception as exc:
            self.state, self.reason = SourceState.UNAVAILABLE, f"IOReport: {one_line(exc)}"
            raise Unavailable(self.reason) from None
        self._origin = now
        self.resolution_mj = {rail: 1.0 for rail in now}
        if PROCESS_RAIL in now:
            self.resolution_mj[PROCESS_RAIL] = 1e-6  # ri_energy_nj counts nJ
        self.state, self.reason = SourceState.RUNNING, None

    def _read_raw(self) -> dict[str, float]:
        """Every counter now (mJ since a fixed, unspecified point) plus our process's."""
        with self._lock:
            rails = metrics_to_rails(self._monitor.get_cumulative_energy())
        process_mj = self._process.read_mj()
        if process_mj is not None:
            rails[PROCESS_RAIL] = process_mj
        return rails

    def read_counters(self) -> CounterReading:
        """Cumulative energy per rail since :meth:`start` (mJ). IOReport's counters are
        64-bit and do not wrap; a counter that goes backwards is left as it reads, for
        the health checks to see."""
        t_ns = time.monotonic_ns()
        now = self._read_raw()
        return CounterReading(
            t_ns, {rail: mj - self._origin.get(rail, 0.0) for rail, mj in now.items()}
        )

    def __aiter__(self) -> AsyncIterator[PowerSample]:
        return self.samples()

    async def samples(self) -> AsyncIterator[PowerSample]:
        """A window every interval: the counters' difference over it."""
        if self._monitor is None or not self._origin:
            await self.start()
        try:
            previous = self.read_counters()
            while not self._closed:
                await asyncio.sleep(self.interval_ms / 1000)
                if self._closed:
                    break
                now = self.read_counters()
                yield now.sample_since(previous)
                previous = now
        except Exception as exc:  # the library raises RuntimeError on a failed sample
            if not self._closed:
                self.state, self.reason = SourceState.LOST, f"IOReport failed: {one_line(exc)}"

    async def aclose(self) -> None:
        # The monitor is kept: a stretch boundary may still read it; its destructor
        # releases the IOReport subscription when the source goes.
        self._closed = True
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
