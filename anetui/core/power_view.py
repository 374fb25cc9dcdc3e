"""The power side of a session: the energy ledger for a monitor, the counter-health
checks over its recent windows, and the results' ``power`` entry."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

from anetui.core.energy import EnergyLedger
from anetui.core.energy_figures import EnergyReport
from anetui.core.runner import BackendRecord
from anetui.power import health
from anetui.power.base import CounterSource
from anetui.power.monitor import PowerMonitor


def ledger_for(monitor: PowerMonitor) -> EnergyLedger:
    """A ledger on the runner's clock (perf_counter) for ``monitor``'s samples
    (monotonic): one clock on Linux and macOS, a constant offset elsewhere."""
    offset = time.monotonic_ns() - time.perf_counter_ns()
    if abs(offset) < 1_000_000:
        offset = 0
    source = monitor.source
    return EnergyLedger(
        source.total_rails,
        source if isinstance(source, CounterSource) else None,
        offset_ns=offset,
        interval_ms=source.interval_ms,
    )


def check_rails(
    monitor: PowerMonitor,
    offset_ns: int,
    runs: Mapping[str, tuple[str, BackendRecord]],
    keep_rails: Sequence[str],
) -> health.Checked:
    """The counter-health checks over the monitor's recent windows (a bounded ring),
    moved onto the runner's clock, against each backend's timed stretches."""
    offset = offset_ns
    samples = [
        dataclasses.replace(s, t_start_ns=s.t_start_ns - offset, t_end_ns=s.t_end_ns - offset)
        if offset
        else s
        for s in monitor.samples()
    ]
    now = time.perf_counter_ns()
    spans = {}
    for backend_id, (device, record) in runs.items():
        intervals = list(record.intervals)
        since = record.running_since_ns
        if since is not None:  # the stretch in progress, for a live view
            intervals.append((since, now))
        spans[backend_id] = health.RunSpan(device, intervals)
    return health.check(samples, spans, keep=keep_rails)


def power_dict(monitor: PowerMonitor | None, report: EnergyReport | None) -> dict[str, object]:
    """The results' ``power`` entry: the source, its state, the idle baseline and what
    the energy figures rest on."""
    if monitor is None:
        return {"source": "none", "state": "unavailable", "reason": "no power source chosen"}
    source = monitor.source
    return {
        "source": source.id,
        "label": source.label,
        "interval_ms": source.interval_ms,
        "state": monitor.state,
        "reason": monitor.reason,
        "samples": monitor.count,
        "idle_s": round(report.idle_s, 3) if report else 0.0,
        "idle_windows": report.idle_windows if report else 0,
        "idle_method": report.idle_method if report else None,
        "idle_w": report.idle_w if report else None,
        "counters": isinstance(source, CounterSource),
        "resolution_mj": report.resolution_mj if report else None,
        "missed_s": round(report.missed_s, 3) if report else 0.0,
        "thermal_pressure": list(report.thermal_pressure) if report else [],
    }


#: At most this many points of power over time go into a results file.
MAX_SERIES_POINTS = 400


def power_series(monitor: PowerMonitor, since_ns: int | None = None) -> dict[str, object]:
    """Power per rail over time for reports: ``t_s`` (each point's window end, seconds
    after the first window's start) and ``rails_w`` (rail -> mean W over the point, None
    where the rail was absent). Consecutive windows are merged (energy summed over time
    summed) to at most ``MAX_SERIES_POINTS`` points; ``since_ns`` (monotonic) drops
    windows that started earlier. From the monitor's bounded ring of recent windows."""
    samples = [
        s
        for s in monitor.samples()
        if s.elapsed_ns > 0 and (since_ns is None or s.t_start_ns >= since_ns)
    ]
    if not samples:
        return {"t_s": [], "rails_w": {}}
    rails: list[str] = []
    for sample in samples:
        rails += [r for r in sample.rails_mj if r not in rails]
    per_point = -(-len(samples) // MAX_SERIES_POINTS)  # ceiling division
    origin = samples[0].t_start_ns
    t_s: list[float] = []
    watts: dict[str, list[float | None]] = {r: [] for r in rails}
    for i in range(0, len(samples), per_point):
        group = samples[i : i + per_point]
        elapsed_ms = sum(s.elapsed_ns for s in group) / 1e6
        t_s.append(round((group[-1].t_end_ns - origin) / 1e9, 3))
        for rail in rails:
            parts = [s.rails_mj[rail] for s in group if rail in s.rails_mj]
            watts[rail].append(round(sum(parts) / elapsed_ms, 4) if parts else None)
    return {"t_s": t_s, "rails_w": watts}
