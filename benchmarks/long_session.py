"""What does one dashboard redraw's data step cost after an hour?

Simulates one hour of 250 ms power windows with a 5 s auto-cycle over 3 backends (50 ms
switching gaps, 10 inferences per 100 ms), on a simulated clock, through the real energy
ledger, latency histograms and ratio code. At 1 minute and at 1 hour it times the data
step a redraw performs (the ledger's report, every backend's latency summary and
histogram, the ratios with their intervals, the warnings) and prints the median of
repeated runs, the process's RSS and the per-window figures kept.

Goal (issue 10): <= 20 ms at 1 hour, within 1.5x of the 1-minute figure, memory flat.

Run: PYTHONPATH=. .venv/bin/python benchmarks/long_session.py [--minutes 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import psutil

from anetui.core import caveats, ratios
from anetui.core.energy import EnergyLedger
from anetui.core.results import BackendResult, BackendState
from anetui.core.runner import BUCKET_NS, CompletionTimeline
from anetui.core.stats import LatencyStats
from anetui.power.base import PowerSample
from anetui.power.powermetrics import total_rails

MS = 1_000_000
WINDOW_NS = 250 * MS
CYCLE_NS = 5_000 * MS
GAP_NS = 50 * MS
PER_BUCKET = 10
BACKENDS = ("torch-cpu", "torch-cpu-opt", "onnx-cpu")
POWER_W = {"torch-cpu": 6.0, "torch-cpu-opt": 4.0, "onnx-cpu": 3.0}


class SimClock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


class Simulation:
    """The session's data, fed as an hour of the dashboard would feed it."""

    def __init__(self, seed: int = 0) -> None:
        self.clock = SimClock()
        self.ledger = EnergyLedger(total_rails, clock=self.clock, interval_ms=250)
        self.timelines = {b: CompletionTimeline() for b in BACKENDS}
        self.stats = {b: LatencyStats() for b in BACKENDS}
        self.counts = dict.fromkeys(BACKENDS, 0)
        self.active_ns = dict.fromkeys(BACKENDS, 0)
        self.rng = np.random.default_rng(seed)
        self.running: str | None = None
        self.phase_start = 0
        self.next_window = 0
        self.next_bucket = 0
        self.cycle = 0

    def advance_to(self, t_end_ns: int) -> None:
        """Run the simulated session until ``t_end_ns``."""
        while self.clock.now_ns < t_end_ns:
            now = self.clock.now_ns
            if self.running is None or now - self.phase_start >= CYCLE_NS:
                self._switch()
                continue
            self.clock.now_ns = now + BUCKET_NS
            self._bucket(now)
            while self.next_window + WINDOW_NS <= self.clock.now_ns:
                self._window()

    def _switch(self) -> None:
        if self.running is not None:
            self.active_ns[self.running] += self.clock.now_ns - self.phase_start
            self.ledger.end()
            self.clock.now_ns += GAP_NS  # stopping one, starting the next
        self.running = BACKENDS[self.cycle % len(BACKENDS)]
        self.cycle += 1
        backend = self.running
        self.ledger.begin_run(backend, self.timelines[backend], lambda: self.counts[backend])
        self.phase_start = self.clock.now_ns

    def _bucket(self, start_ns: int) -> None:
        backend = self.running
        assert backend is not None
        latency_ns = BUCKET_NS // PER_BUCKET
        jitter = self.rng.normal(latency_ns, latency_ns * 0.05, PER_BUCKET).astype(np.int64)
        for value in jitter.tolist():
            self.stats[backend].record(value)
        self.counts[backend] += PER_BUCKET
        self.timelines[backend].publish(start_ns // BUCKET_NS, PER_BUCKET, int(jitter.sum()))

    def _window(self) -> None:
        start, end = self.next_window, self.next_window + WINDOW_NS
        watts = POWER_W.get(self.running or "", 1.0) * (1 + self.rng.normal(0, 0.02))
        mj = watts * WINDOW_NS / MS
        self.ledger.add(
            PowerSample(start, end, {"cpu": mj * 0.8, "gpu": mj * 0.2, "ane": 0.0}, "Nominal")
        )
        self.next_window = end

    def data_step(self) -> tuple[int, int]:
        """One redraw's data work, as Session.snapshot() does it: (wall ns, CPU ns)."""
        t0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
        active = dict(self.active_ns)
        if self.running is not None:
            active[self.running] += self.clock.now_ns - self.phase_start
        report = self.ledger.report(active)
        results = {}
        for backend in BACKENDS:
            summary = self.stats[backend].summary()
            p99 = summary.quantiles_ns["p99"] if summary else None
            results[backend] = BackendResult(
                id=backend,
                runtime="simulated",
                device="cpu",
                dtype="fp32",
                available=True,
                reason=None,
                state=BackendState.RUNNING,
                error=None,
                prepare=None,
                summary=summary,
                throughput_per_s=None,
                active_s=active[backend] / 1e9,
                agreement_max_rel_err=None,
                energy=report.backends.get(backend),
                histogram=tuple(self.stats[backend].buckets(40, p99)),
                latency_series=tuple(self.timelines[backend].mean_latency_series(240)),
            )
        against = ratios.against(BACKENDS[0], results)
        caveats.collect(tuple(results.values()), against, report, {"state": "running"})
        return time.perf_counter_ns() - t0, time.thread_time_ns() - cpu0


def measure(sim: Simulation, repeats: int = 21) -> tuple[float, float, float]:
    """(median data-step wall ms, its CPU ms, RSS MB) at the simulation's current time.
    The CPU time is the cost itself; the wall time adds whatever else ran meanwhile."""
    costs = [sim.data_step() for _ in range(repeats)]
    rss_mb = psutil.Process().memory_info().rss / 2**20
    wall = statistics.median(c[0] for c in costs) / 1e6
    return wall, statistics.median(c[1] for c in costs) / 1e6, rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    sim = Simulation()
    sim.advance_to(60 * 1_000_000_000)
    minute_ms, minute_cpu, minute_rss = measure(sim)
    kept = {b: len(e.per_window) for b, e in sim.ledger.report().backends.items()}
    print(
        f"1 minute: data step {minute_ms:.2f} ms wall, {minute_cpu:.2f} ms CPU, "
        f"RSS {minute_rss:.1f} MB, items kept {kept}"
    )
    started = time.monotonic()
    sim.advance_to(int(args.minutes * 30 * 1_000_000_000))
    half_ms, half_cpu, half_rss = measure(sim)
    print(
        f"{args.minutes / 2:g} minutes: data step {half_ms:.2f} ms wall, {half_cpu:.2f} ms CPU, "
        f"RSS {half_rss:.1f} MB"
    )
    sim.advance_to(int(args.minutes * 60 * 1_000_000_000))
    hour_ms, hour_cpu, hour_rss = measure(sim)
    report = sim.ledger.report()
    kept = {b: len(e.per_window) for b, e in report.backends.items()}
    windows = {b: e.windows for b, e in report.backends.items()}
    print(
        f"{args.minutes:g} minutes: data step {hour_ms:.2f} ms wall, {hour_cpu:.2f} ms CPU, "
        f"RSS {hour_rss:.1f} MB, "
        f"items kept {kept} of windows {windows} (simulated in {time.monotonic() - started:.0f} s)"
    )
    print(
        f"hour / minute: {hour_ms / minute_ms:.2f}x wall, {hour_cpu / minute_cpu:.2f}x CPU "
        f"(goal <= 1.5x); {hour_ms:.2f} ms (goal <= 20 ms); RSS {hour_rss - minute_rss:+.1f} MB "
        f"since 1 minute, {hour_rss - half_rss:+.1f} MB in the second half"
    )


if __name__ == "__main__":
    main()
