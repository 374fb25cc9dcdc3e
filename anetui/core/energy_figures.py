"""The energy figures a ledger reports (``EnergyLedger.report``): immutable, per backend
and for the session. Energies in mJ (per inference where the name says so), powers in W,
times in s."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BackendEnergy:
    """One backend's energy figures (mJ per inference, W, s)."""

    rails: tuple[str, ...]
    total_rails: tuple[str, ...]
    #: Windows wholly inside the backend's timed stretches, and their seconds.
    windows: int
    window_s: float
    inferences: float
    mj_per_inference: dict[str, float]
    active_mj_per_inference: dict[str, float] | None
    mean_power_w: dict[str, float]
    #: Share of the backend's timed wall time that the figures measured.
    coverage: float
    thermal_pressure: tuple[str, ...]
    #: (total energy mJ, inferences) per attributed window, oldest first (neighbours
    #: merged beyond ``energy_totals.MAX_ITEMS``): the material of the intervals.
    per_window: tuple[tuple[float, float], ...] = field(repr=False, default=())
    #: "counters" (read at each stretch's edges) or "windows".
    method: str = "windows"
    stretches: int = 0
    #: Seconds of measurement behind the figures (counter time or window time).
    measured_s: float = 0.0
    #: How far the counters' step size can move the total per inference (mJ), or None.
    resolution_mj_per_inference: float | None = None

    @property
    def total_mj_per_inference(self) -> float:
        return self.mj_per_inference["total"]

    @property
    def total_active_mj_per_inference(self) -> float | None:
        return self.active_mj_per_inference["total"] if self.active_mj_per_inference else None


@dataclass(frozen=True)
class EnergyReport:
    idle_w: dict[str, float] | None
    idle_windows: int
    backends: dict[str, BackendEnergy]
    #: Seconds of explicit idle phases, and how the baseline was measured.
    idle_s: float = 0.0
    idle_method: str | None = None
    resolution_mj: dict[str, float] | None = None
    #: Seconds between windows that the source did not cover (lost windows).
    missed_s: float = 0.0
    #: Thermal pressure seen during timed stretches, in order of first appearance.
    thermal_pressure: tuple[str, ...] = ()
    #: Plain sentences about what is missing and why.
    notes: tuple[str, ...] = ()
