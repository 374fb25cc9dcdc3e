"""Energy attribution (DESIGN.md §2), incremental: each power window is looked at once.

The session declares *phases*: a backend's timed stretch (``begin_run`` … ``end``) or an
explicit idle phase (``begin_idle`` … ``end``: ``--idle-seconds``, the dashboard's
``i``). Everything else — startup, imports, preparation, conversion, warmup, switching,
gaps — belongs to nobody: it never feeds the idle baseline, and with no idle phase
there is no baseline and no active energy.

Two ways to measure a phase's energy:

- **windows** (every source): a power window belongs to a phase when it lies wholly
  inside it. Energy per inference = Σ energy of a backend's windows ÷ inferences
  completed in them (from the runner's 100 ms completion buckets).
- **counters** (a :class:`~anetui.power.base.CounterSource`: RAPL, NVML, IOReport): the
  counters are read at the start and end of every phase, so each phase's energy is
  exact up to one counter step (coverage ≈ 100 %), whatever the window boundaries.
  The windows still feed the intervals and the live sparklines.

A window is attributed once, when it can be decided (its phase's buckets are final),
and only running totals are kept (:mod:`anetui.core.energy_totals`; per-window figures
are merged pairwise beyond its ``MAX_ITEMS``), so the cost of a report does not grow
with the length of the run. This module holds the ledger itself (its lock, the open and
closed phases, the attribution); the figures it reports are in
:mod:`anetui.core.energy_figures`.
All energies in mJ, powers in W (= mJ/ms), times in ns.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from anetui.core.energy_figures import BackendEnergy, EnergyReport
from anetui.core.energy_totals import Counters, Phase, Windows, completions
from anetui.core.runner import BUCKET_NS, CompletionTimeline
from anetui.errors import one_line
from anetui.power.base import CounterReading, CounterSource, PowerSample, TotalRails

#: Closed phases kept for windows that arrive late; older ones are forgotten.
MAX_PHASES = 64
#: Windows waiting for their buckets are few; beyond this many the oldest are dropped.
MAX_PENDING = 256
#: A window ending further than this in the future (ns) cannot be placed (a source whose
#: documents run ahead of real time): it is attributed to nobody.
MAX_AHEAD_NS = 1_000_000_000
#: A counter idle baseline needs at least this much idle time (ns).
MIN_IDLE_NS = 500_000_000


def every_rail(rails: Iterable[str]) -> tuple[str, ...]:
    """The rule for rails that do not overlap: all of them."""
    return tuple(sorted(set(rails)))


class EnergyLedger:
    """Attributes power windows to phases as they arrive; thread-safe.

    ``add`` runs on the power source's thread; ``begin_*``, ``end`` and ``report`` on
    the session's. ``offset_ns`` moves samples (monotonic clock) onto ``clock``'s.
    """

    def __init__(
        self,
        total_rails: TotalRails = every_rail,
        counters: CounterSource | None = None,
        *,
        offset_ns: int = 0,
        interval_ms: int = 0,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._total_rails = total_rails
        self._counters = counters
        self._offset_ns = offset_ns
        self._interval_ns = interval_ms * 1_000_000
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    @property
    def offset_ns(self) -> int:
        """What is subtracted from a sample's times to put them on the runner's clock."""
        return self._offset_ns

    def set_total_rails(self, total_rails: TotalRails) -> None:
        """Change the rule for the total (the session leaves suspect rails out). Totals
        are summed from per-rail energy when figures are made, so the new rule applies to
        everything so far; only the per-window totals behind the energy-ratio interval
        keep the rule in force when each window arrived."""
        with self._lock:
            self._total_rails = total_rails

    def reset(self) -> None:
        """Forget everything measured so far (the dashboard's reset)."""
        with self._lock:
            self._since_ns = self._clock()
            self._open: Phase | None = None
            self._closed: list[Phase] = []
            self._starts: list[int] = []
            self._pending: list[PowerSample] = []
            self._windows: dict[str, Windows] = {}
            self._idle_windows = Windows()
            self._counter_totals: dict[str, Counters] = {}
            self._idle_counters = Counters()
            self._idle_ns = 0
            self._last_end_ns: int | None = None
            self._missed_ns = 0
            self._thermal: dict[str, None] = {}
            self._notes: dict[str, None] = {}

    # -- phases (session thread) -------------------------------------------------------
    def begin_run(
        self, backend_id: str, timeline: CompletionTimeline, count_now: Callable[[], int]
    ) -> None:
        """A timed stretch of ``backend_id`` starts now (after its warmup)."""
        reading = self._read_counters()
        with self._lock:
            self._close_open(self._clock(), None)
            self._open = Phase(self._clock(), backend_id, timeline, count_now, count_now(), reading)

    def begin_idle(self) -> None:
        """An explicit idle phase starts now: nothing runs until ``end``."""
        reading = self._read_counters()
        with self._lock:
            self._close_open(self._clock(), None)
            self._open = Phase(self._clock(), None, counters_at_start=reading)

    def end(self) -> None:
        """The open phase ends now (a no-op when none is open)."""
        t_end = self._clock()
        reading = self._read_counters() if self._open is not None else None
        with self._lock:
            self._close_open(t_end, reading)
            self._process()

    def _read_counters(self) -> CounterReading | None:
        if self._counters is None:
            return None
        try:
            return self._counters.read_counters()
        except Exception as exc:  # a failed read costs this phase its exact energy only
            self._notes[f"reading the energy counters failed: {one_line(exc)}"] = None
            return None

    def _close_open(self, t_end: int, reading: CounterReading | None) -> None:
        phase = self._open
        if phase is None:
            return
        self._open = None
        phase.end_ns = t_end
        if phase.owner is None:
            self._idle_ns += t_end - phase.start_ns
        start = phase.counters_at_start
        if self._counters is not None:
            totals = (
                self._idle_counters
                if phase.owner is None
                else self._counter_totals.setdefault(phase.owner, Counters())
            )
            if start is not None and reading is not None:
                done = phase.count_now() - phase.count_at_start if phase.count_now else 0
                totals.add(start, reading, done)
            else:
                totals.failed = True
        self._closed.append(phase)
        self._starts.append(phase.start_ns)
        if len(self._closed) > MAX_PHASES:
            del self._closed[: -MAX_PHASES // 2]
            del self._starts[: -MAX_PHASES // 2]

    # -- windows (source thread) -------------------------------------------------------
    def add(self, sample: PowerSample) -> None:
        """One window from the power source; attributed now or once it can be."""
        offset = self._offset_ns
        start, end = sample.t_start_ns - offset, sample.t_end_ns - offset
        with self._lock:
            if start < self._since_ns:
                return
            last = self._last_end_ns
            if last is not None and self._interval_ns and start - last > self._interval_ns // 2:
                self._missed_ns += start - last
            self._last_end_ns = max(end, last or end)
            if offset:
                sample = PowerSample(
                    start, end, sample.rails_mj, sample.thermal_pressure, sample.clusters
                )
            self._pending.append(sample)
            self._process()

    def _process(self) -> None:
        self._pending = [s for s in self._pending if not self._decide(s)][-MAX_PENDING:]

    def _decide(self, sample: PowerSample) -> bool:
        """Attribute ``sample`` if its fate is known; False to look again later."""
        if sample.elapsed_ns <= 0:
            return True
        phase = self._open
        if phase is not None and sample.t_start_ns >= phase.start_ns:
            ahead_ns = sample.t_end_ns - self._clock()
            if ahead_ns > MAX_AHEAD_NS:
                return True  # a window that ends in the future is misplaced: nobody's
            if ahead_ns > 0:
                return False  # may still straddle the phase's end
            return self._attribute(sample, phase)
        i = bisect.bisect_right(self._starts, sample.t_start_ns) - 1
        if i >= 0:
            closed = self._closed[i]
            assert closed.end_ns is not None
            if sample.t_end_ns <= closed.end_ns:
                return self._attribute(sample, closed)
        return True  # straddles an edge, or in nobody's time: not attributed

    def _attribute(self, sample: PowerSample, phase: Phase) -> bool:
        if phase.owner is None:
            self._idle_windows.add(sample, 0.0, 0.0)
            return True
        assert phase.timeline is not None
        first = sample.t_start_ns // BUCKET_NS
        last = (sample.t_end_ns - 1) // BUCKET_NS
        counts, newest = phase.timeline.counts_between(first, last)
        if phase.end_ns is None and (newest is None or newest < last):
            return False  # the runner is still counting this window's last bucket
        n = completions(sample.t_start_ns, sample.t_end_ns, phase.start_ns, phase.end_ns, counts)
        totals = self._total_rails(sample.rails_mj)
        total_mj = sum(sample.rails_mj.get(r, 0.0) for r in totals)
        self._windows.setdefault(phase.owner, Windows()).add(sample, total_mj, n)
        if sample.thermal_pressure:
            self._thermal[sample.thermal_pressure] = None
        return True

    # -- figures -----------------------------------------------------------------------
    def report(self, active_ns: Mapping[str, int] | None = None) -> EnergyReport:
        """The figures so far; ``active_ns``: each backend's timed wall time (coverage).
        The stretch in progress counts up to now."""
        live = self._read_counters() if self._open is not None else None
        with self._lock:
            self._process()
            now = self._clock()
            open_phase = self._open
            idle_ns = self._idle_ns
            if open_phase is not None and open_phase.owner is None:
                idle_ns += now - open_phase.start_ns
            idle_w, method = self._idle_power(open_phase, live)
            backends: dict[str, BackendEnergy] = {}
            owners = dict.fromkeys([*self._windows, *self._counter_totals])
            if open_phase is not None and open_phase.owner is not None:
                owners[open_phase.owner] = None  # its first stretch is still running
            for owner in owners:
                counters = self._counters_with_live(owner, open_phase, live)
                energy = self._backend(owner, counters, idle_w, (active_ns or {}).get(owner, 0))
                if energy is not None:
                    backends[owner] = energy
            resolution = None
            if self._counters is not None:
                try:
                    resolution = dict(self._counters.resolution_mj)
                except Exception:  # a source that cannot say: no resolution stated
                    resolution = None
            return EnergyReport(
                idle_w=idle_w,
                idle_windows=self._idle_windows.windows,
                backends=backends,
                idle_s=idle_ns / 1e9,
                idle_method=method,
                resolution_mj=resolution,
                missed_s=self._missed_ns / 1e9,
                thermal_pressure=tuple(self._thermal),
                notes=tuple(self._notes),
            )

    def _idle_power(
        self, open_phase: Phase | None, live: CounterReading | None
    ) -> tuple[dict[str, float] | None, str | None]:
        counters = self._idle_counters.copy()
        if (
            open_phase is not None
            and open_phase.owner is None
            and open_phase.counters_at_start is not None
            and live is not None
        ):
            counters.add(open_phase.counters_at_start, live, 0)
        if self._counters is not None and not counters.failed and counters.ns >= MIN_IDLE_NS:
            ms = counters.ns / 1e6
            return {rail: mj / ms for rail, mj in counters.energy_mj.items()}, "counters"
        windows = self._idle_windows
        if windows.windows and windows.ns > 0:
            ms = windows.ns / 1e6
            return {rail: mj / ms for rail, mj in windows.energy_mj.items()}, "windows"
        return None, None

    def _counters_with_live(
        self, owner: str, open_phase: Phase | None, live: CounterReading | None
    ) -> Counters | None:
        if self._counters is None:
            return None
        counters = self._counter_totals.get(owner, Counters()).copy()
        if open_phase is not None and open_phase.owner == owner:
            if open_phase.counters_at_start is None or live is None:
                counters.failed = True
            else:
                assert open_phase.count_now is not None
                done = open_phase.count_now() - open_phase.count_at_start
                counters.add(open_phase.counters_at_start, live, done)
        return counters

    def _backend(
        self,
        owner: str,
        counters: Counters | None,
        idle_w: Mapping[str, float] | None,
        active_ns: int,
    ) -> BackendEnergy | None:
        windows = self._windows.get(owner, Windows())
        use_counters = (
            counters is not None
            and not counters.failed
            and counters.inferences > 0
            and counters.ns > 0
        )
        if use_counters:
            assert counters is not None
            energy, ns, inferences = (
                dict(counters.energy_mj),
                counters.ns,
                float(counters.inferences),
            )
        else:
            energy, ns, inferences = dict(windows.energy_mj), windows.ns, windows.inferences
        if inferences <= 0 or ns <= 0 or not energy:
            return None  # the caveats say so for a backend that ran
        rails = tuple(sorted(energy))
        totals = self._total_rails(rails)
        energy["total"] = sum(energy[r] for r in totals)
        ms = ns / 1e6
        per_inference = {rail: mj / inferences for rail, mj in energy.items()}
        active = None
        if idle_w is not None and all(r in idle_w for r in rails):
            idle_mj = {rail: idle_w[rail] * ms for rail in rails}
            idle_mj["total"] = sum(idle_mj[r] for r in totals)
            active = {rail: (energy[rail] - idle_mj[rail]) / inferences for rail in energy}
        resolution = None
        if use_counters and self._counters is not None:
            assert counters is not None
            try:
                step = sum(self._counters.resolution_mj.get(r, 0.0) for r in totals)
            except Exception:
                step = 0.0
            resolution = counters.stretches * step / inferences if step else None
        return BackendEnergy(
            rails=rails,
            total_rails=totals,
            windows=windows.windows,
            window_s=windows.ns / 1e9,
            inferences=inferences,
            mj_per_inference=per_inference,
            active_mj_per_inference=active,
            mean_power_w={rail: energy[rail] / ms for rail in rails},
            coverage=min(1.0, ns / active_ns) if active_ns else 0.0,
            thermal_pressure=tuple(windows.thermal),
            per_window=tuple(windows.items),
            method="counters" if use_counters else "windows",
            stretches=counters.stretches if use_counters and counters else 0,
            measured_s=ns / 1e9,
            resolution_mj_per_inference=resolution,
        )
