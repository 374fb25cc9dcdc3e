"""The model shared by both powermetrics parsers: a parsed Window, the limits that make
one a measurement (``window_problem``), the error tally both parsers keep, and rail
naming.

A window under ``MIN_WINDOW_NS`` or beyond its parser's ``max_window_ns``, or carrying a
non-finite or negative value, is no measurement: the parsers skip and count it
(``error_count``; the first ``MAX_ERRORS`` described in ``errors``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from anetui.power.base import ClusterInfo, PowerSample

#: Windows shorter than this are not measurements (powermetrics' minimum interval is 1 ms).
MIN_WINDOW_NS = 1_000_000
#: Without a requested interval to compare with, a window longer than this is impossible.
DEFAULT_MAX_WINDOW_NS = 3600 * 1_000_000_000
#: How many error descriptions are kept (all are counted in ``error_count``).
MAX_ERRORS = 100


def max_window_ns_for(interval_ms: int) -> int:
    """Longest plausible window for a requested interval: 20x it, and at least 10 s
    (powermetrics stretches windows under load, never by this much)."""
    return max(20 * interval_ms * 1_000_000, 10_000_000_000)


class Errors:
    """Skipped input, counted; the first MAX_ERRORS described."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.error_count = 0
        self.last_error: str | None = None

    def _error(self, message: str) -> None:
        self.error_count += 1
        self.last_error = message
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def window_problem(window: Window, max_window_ns: int) -> str | None:
    """Why a parsed window cannot be a measurement, or None if it can."""
    if not MIN_WINDOW_NS <= window.elapsed_ns <= max_window_ns:
        return f"impossible window length {window.elapsed_ns} ns"
    for rail, mj in window.rails_mj.items():
        if not math.isfinite(mj) or mj < 0:
            return f"impossible energy {mj} mJ on rail {rail}"
    for name, info in window.clusters.items():
        for value in (info.freq_mhz, info.active_ratio, info.online_ratio, info.power_w):
            if value is not None and (not math.isfinite(value) or value < 0):
                return f"impossible value {value} for cluster {name}"
    return None


@dataclass(frozen=True, slots=True)
class Window:
    """One parsed powermetrics window, before it is placed on the monotonic clock."""

    elapsed_ns: int
    rails_mj: dict[str, float]
    thermal_pressure: str | None = None
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)

    def at(self, t_end_ns: int) -> PowerSample:
        """This window as a PowerSample ending at ``t_end_ns``."""
        return PowerSample(
            t_end_ns - self.elapsed_ns,
            t_end_ns,
            dict(self.rails_mj),
            self.thermal_pressure,
            dict(self.clusters),
        )


def windows_to_samples(windows: list[Window]) -> list[PowerSample]:
    """Windows laid end to end from t = 0 (for parsing a recording)."""
    samples, t = [], 0
    for window in windows:
        t += window.elapsed_ns
        samples.append(window.at(t))
    return samples


def rail_name(name: str) -> str:
    """A label as a rail key: "GPU SRAM" -> "gpu_sram"."""
    return name.strip().lower().replace(" ", "_")
