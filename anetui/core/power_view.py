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
