"""Linux RAPL energy counters through powercap sysfs (``/sys/class/powercap/intel-rapl:*``).

Each zone's ``energy_uj`` is a wrapping µJ counter (it wraps at
``max_energy_range_uj``). The files are opened once, in :meth:`RaplSource.start`, so
that after a privilege drop the open descriptors still read; since 2020 (the Platypus
side channel) only root may open them. ``rapl:DIR`` reads a powercap tree at another
path (a container that mounts the host's sysfs elsewhere, or a test's own tree).

Besides the periodic windows, the source is a :class:`~anetui.power.base.CounterSource`:
``read_counters()`` gives each rail's cumulative energy since the start, wraparound
undone, so the session can read it at the edges of every timed stretch.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from anetui.errors import Availability, one_line
from anetui.power.base import CounterReading, PowerSample, SourceState, Unavailable, refuse

POWERCAP = Path("/sys/class/powercap")
# intel-rapl:P (package or psys) and intel-rapl:P:S (core, uncore, dram). The
# intel-rapl-mmio zones repeat the package domain and would count it twice.
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
#: ``energy_uj`` counts in µJ: no reading is finer than 0.001 mJ. The hardware's own
#: unit is coarser (15.3 or 61 µJ); the smallest step seen replaces this once observed.
COUNTER_UNIT_MJ = 0.001


def energy_delta_uj(previous_uj: int, now_uj: int, max_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps at max_range_uj (µJ)."""
    if now_uj >= previous_uj:
        return now_uj - previous_uj
    return now_uj + max_range_uj - previous_uj


@dataclass(frozen=True, slots=True)
class Zone:
    rail: str
    energy_path: Path
    max_range_uj: int


def discover(root: Path = POWERCAP) -> list[Zone]:
    """The RAPL zones under ``root``, with rail names: package-N, core, uncore, dram,
    psys (subzones of a second package get a suffix: core-1, dram-1)."""
    entries = []
    for path in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        match = _ZONE.match(path.name)
        if match and (path / "energy_uj").exists():
            entries.append((int(match[1]), match[2], path))
    packages = {p for p, sub, _ in entries if sub is None}
    zones = []
    for package, sub, path in entries:
        name = (path / "name").read_text().strip() if (path / "name").exists() else path.name
        if sub is not None and len(packages) > 1:
            name = f"{name}-{package}"
        try:
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            max_range = 2**32  # documented default width when the file is unreadable
        zones.append(Zone(name, path / "energy_uj", max_range))
    return zones


def total_rails(rails: Iterable[str]) -> tuple[str, ...]:
    """Each package plus DRAM: core and uncore are inside the package, psys contains
    everything."""
    present = set(rails)
    packages = sorted(r for r in present if r.startswith("package-"))
    if not packages:
        return tuple(sorted(present))
    return (*packages, *sorted(r for r in present if r == "dram" or r.startswith("dram-")))


class RaplSource:
    """RAPL package/core/uncore/DRAM energy per window."""

    id = "rapl"

    def __init__(self, interval_ms: int = 250, root: Path = POWERCAP) -> None:
        self.interval_ms = interval_ms
        self.root = Path(root)
        where = "" if self.root == POWERCAP else f" at {self.root}"
        self.label = f"RAPL{where} ({interval_ms} ms)"
        self.state = SourceState.IDLE
        self.reason: str | None = None
        self._fds: dict[str, int] = {}
        self._zones: list[Zone] = []
        # Unwrapping state for read_counters(), shared by the sampling loop and the
        # session's stretch edges (two threads): guarded by the lock.
        self._counter_lock = threading.Lock()
        self._last_uj: dict[str, int] = {}
        self._total_uj: dict[str, int] = {}
        self._step_uj: dict[str, int] = {}

    @property
    def resolution_mj(self) -> dict[str, float]:
        """The smallest step each rail's counter was seen to move by (mJ), or the µJ unit
        of ``energy_uj`` before any step was seen."""
        with self._counter_lock:
            return {
                zone.rail: max(COUNTER_UNIT_MJ, self._step_uj.get(zone.rail, 0) / 1000.0)
                for zone in self._zones
            }

    def read_counters(self) -> CounterReading:
        """Cumulative energy per rail (mJ) since start, wraparound undone. Must be called
        more often than a counter wraps (minutes at least): the sampling loop does."""
        with self._counter_lock:
            t_ns, raw = time.monotonic_ns(), self.read()
            limits = {zone.rail: zone.max_range_uj for zone in self._zones}
            for rail, now_uj in raw.items():
                previous = self._last_uj.get(rail)
                if previous is not None:
                    delta = energy_delta_uj(previous, now_uj, limits[rail])
                    self._total_uj[rail] = self._total_uj.get(rail, 0) + delta
                    if 0 < delta < self._step_uj.get(rail, delta + 1):
                        self._step_uj[rail] = delta
                else:
                    self._total_uj[rail] = 0
                self._last_uj[rail] = now_uj
            return CounterReading(t_ns, {r: uj / 1000.0 for r, uj in self._total_uj.items()})

    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        return total_rails(rails)

    def available(self) -> Availability:
        zones = discover(self.root)
        if not zones:
            return Availability.no(f"no RAPL counters (nothing at {self.root}/intel-rapl:*)")
        for zone in zones:  # every counter, not just the first: all are opened at start
            if not os.access(zone.energy_path, os.R_OK):
                return Availability.no("needs root: run `sudo anetui`")
        try:
            zones[0].energy_path.read_text()
        except PermissionError:
            return Availability.no("needs root: run `sudo anetui`")
        except OSError as exc:
            return Availability.no(f"RAPL counters unreadable: {one_line(exc)}")
        return Availability.yes()

    async def start(self) -> None:
        availability = self.available()
        if not availability.ok:
            refuse(self, availability.reason)
        self._zones = discover(self.root)
        try:
            for zone in self._zones:
                self._fds[zone.rail] = os.open(zone.energy_path, os.O_RDONLY)
        except OSError as exc:
            self._close_fds()
            self.state, self.reason = (
                SourceState.UNAVAILABLE,
                f"cannot open RAPL counters: {one_line(exc)}",
            )
            raise Unavailable(self.reason) from None
        self.state, self.reason = SourceState.RUNNING, None

    def read(self) -> dict[str, int]:
        """Every counter now (µJ), through the descriptors opened at start."""
        return {rail: int(os.pread(fd, 64, 0).strip()) for rail, fd in self._fds.items()}

    def __aiter__(self) -> AsyncIterator[PowerSample]:
        return self.samples()

    async def samples(self) -> AsyncIterator[PowerSample]:
        if not self._fds:
            await self.start()
        try:
            previous = self.read_counters()
            while self._fds:
                await asyncio.sleep(self.interval_ms / 1000)
                if not self._fds:
                    break
                now = self.read_counters()
                yield now.sample_since(previous)
                previous = now
        except (OSError, ValueError) as exc:
            self.state, self.reason = SourceState.LOST, f"reading RAPL failed: {one_line(exc)}"

    def _close_fds(self) -> None:
        with self._counter_lock:  # never close a descriptor another thread is reading
            fds, self._fds = self._fds, {}
            for fd in fds.values():
                os.close(fd)

    async def aclose(self) -> None:
        self._close_fds()
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
