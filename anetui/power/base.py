"""The PowerSource protocol, the PowerSample window and the typed "unavailable" states.

A sample is energy per rail over one window of the monotonic clock: energy is the
primary quantity (mJ), power is derived from it. A rail a source does not report is
absent from ``rails_mj``, never 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn, Protocol, runtime_checkable

from anetui.errors import AnetuiError, Availability

#: Which of the rails present sum to the total without counting anything twice: each
#: power source declares its own (:meth:`PowerSource.total_rails`).
TotalRails = Callable[[Iterable[str]], tuple[str, ...]]


class SourceState(StrEnum):
    """A power source's state, as shown in the UI and written to results."""

    IDLE = "idle"  # made, not started
    RUNNING = "running"
    NEEDS_ROOT = "needs-root"
    LOST = "lost"
    UNAVAILABLE = "unavailable"
    ENDED = "ended"  # a recording that was played to its end
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One CPU cluster (or the GPU) over the window: frequency (MHz), active share (0–1)."""

    freq_mhz: float | None = None
    active_ratio: float | None = None
    online_ratio: float | None = None
    power_w: float | None = None


@dataclass(frozen=True, slots=True)
class PowerSample:
    """Energy per rail over [t_start_ns, t_end_ns) of the monotonic clock.

    rails_mj: energy per rail in millijoules; thermal_pressure: the OS's word for it
    ("Nominal", "Moderate", "Heavy", …) or None when the source has none.
    """

    t_start_ns: int
    t_end_ns: int
    rails_mj: dict[str, float]
    thermal_pressure: str | None = None
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)

    @property
    def elapsed_ns(self) -> int:
        return self.t_end_ns - self.t_start_ns

    @property
    def rails_w(self) -> dict[str, float]:
        """Mean power per rail over the window (W) = mJ / ms."""
        elapsed_ms = self.elapsed_ns / 1e6
        if elapsed_ms <= 0:
            return {}
        return {rail: mj / elapsed_ms for rail, mj in self.rails_mj.items()}

    def to_json(self) -> dict[str, object]:
        """The `anetui power` JSON-lines object (DESIGN.md §6)."""
        return {
            "t_start_ns": self.t_start_ns,
            "t_end_ns": self.t_end_ns,
            "elapsed_ms": round(self.elapsed_ns / 1e6, 6),
            "rails_mj": {k: round(v, 6) for k, v in self.rails_mj.items()},
            "rails_w": {k: round(v, 6) for k, v in self.rails_w.items()},
            "thermal_pressure": self.thermal_pressure,
            "clusters": {
                name: {
                    k: v
                    for k, v in (
                        ("freq_mhz", c.freq_mhz),
                        ("active_ratio", c.active_ratio),
                        ("online_ratio", c.online_ratio),
                        ("power_w", c.power_w),
                    )
                    if v is not None
                }
                for name, c in self.clusters.items()
            },
        }


@dataclass(frozen=True, slots=True)
class CounterReading:
    """A counter source's cumulative energy per rail (mJ) since it started, read at
    ``t_ns`` on the monotonic clock. Wraparound is already undone by the source."""

    t_ns: int
    energy_mj: dict[str, float]

    def sample_since(self, earlier: CounterReading) -> PowerSample:
        """The window from ``earlier`` to this reading: each rail's energy in between (mJ),
        for the rails both readings have."""
        rails = {
            rail: mj - earlier.energy_mj[rail]
            for rail, mj in self.energy_mj.items()
            if rail in earlier.energy_mj
        }
        return PowerSample(earlier.t_ns, self.t_ns, rails)


class PowerSourceError(AnetuiError):
    """A power source could not be started or read; one line for the user."""


class NeedsRoot(PowerSourceError):
    """The source exists here but only root may read it."""


class Unavailable(PowerSourceError):
    """The source does not exist on this machine (wrong OS, no hardware, no library)."""


def refuse(source: PowerSource, reason: str | None) -> NoReturn:
    """Mark ``source`` as not started and raise the matching typed error."""
    reason = reason or "unavailable"
    needs_root = reason.startswith("needs root")
    source.state = SourceState.NEEDS_ROOT if needs_root else SourceState.UNAVAILABLE
    source.reason = reason
    raise (NeedsRoot if needs_root else Unavailable)(reason)


@runtime_checkable
class PowerSource(Protocol):
    """An asynchronous stream of PowerSamples; stop it with aclose() (idempotent)."""

    id: str
    #: Human-readable origin, e.g. "powermetrics (250 ms)" or "replay of m1.plist".
    label: str
    interval_ms: int
    state: SourceState
    #: Why the source is not running (needs root, lost: last error …), else None.
    reason: str | None

    def available(self) -> Availability: ...

    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        """Which of ``rails`` sum to this source's total energy without counting anything
        twice (e.g. CPU+GPU+ANE, never ``combined`` on top of them)."""
        ...

    async def start(self) -> None:
        """Acquire what needs privileges (spawn, open files). Raises PowerSourceError."""
        ...

    def samples(self) -> AsyncIterator[PowerSample]: ...

    def __aiter__(self) -> AsyncIterator[PowerSample]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CounterSource(PowerSource, Protocol):
    """A source backed by energy counters (RAPL, NVML, IOReport): besides the periodic
    windows, it can be read at any moment, so the energy of a timed stretch is exact
    (reading at its start and end) rather than made of whole windows."""

    #: The smallest step each rail's counter moves by (mJ): no figure finer than it.
    resolution_mj: dict[str, float]

    def read_counters(self) -> CounterReading:
        """The cumulative energy now; cheap enough to call at every stretch boundary."""
        ...
