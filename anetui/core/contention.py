"""What else used the machine while a backend's timed stretches ran.

A benchmark on a busy machine measures the machine, not the backend: on two cores, one
busy neighbour turned PyTorch's ~15 ms per MobileNetV2 inference into ~1000 ms. The
sampler reads the system's and this process's CPU times (``psutil``) at every stretch
edge and every ``interval_s`` in between, and splits the time among backends:

- others' cores = (system busy time − this process's CPU time − steal) ÷ wall time;
- this process's cores = its CPU time (all its threads) ÷ wall time;
- steal, where the kernel reports it (virtual machines): time the hypervisor gave
  to someone else;
- the 1-minute load average (its highest value during the stretches).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import psutil

#: Seconds between readings inside a long stretch (each reading costs ~50 µs).
INTERVAL_S = 0.5
#: Others using at least this many cores (or this share of them) is worth a warning.
MEANINGFUL_CORES = 0.5
MEANINGFUL_SHARE = 0.1
#: Less sampled time than this (s) says nothing.
MIN_SECONDS = 0.2


@dataclass(frozen=True)
class Contention:
    """The machine's load while one backend ran (cores are mean busy cores)."""

    seconds: float
    cores: int
    others_cores: float
    own_cores: float
    steal_cores: float | None
    load_1m: float | None
    threads: int | None

    @property
    def free_cores(self) -> float:
        return max(0.0, self.cores - self.others_cores - (self.steal_cores or 0.0))

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 3),
            "cores": self.cores,
            "others_cores": round(self.others_cores, 3),
            "own_cores": round(self.own_cores, 3),
            "steal_cores": None if self.steal_cores is None else round(self.steal_cores, 3),
            "free_cores": round(self.free_cores, 3),
            "load_1m": None if self.load_1m is None else round(self.load_1m, 2),
            "threads": self.threads,
        }

    def warnings(self, backend_id: str) -> list[str]:
        """Plain sentences for the report, stderr and the status line; [] when quiet."""
        out = []
        meaningful = max(MEANINGFUL_CORES, MEANINGFUL_SHARE * self.cores)
        load = f", load {self.load_1m:.1f}" if self.load_1m is not None else ""
        if self.others_cores >= meaningful:
            out.append(
                f"{backend_id}: other processes used {self.others_cores:.1f} of "
                f"{self.cores} cores while it ran{load}, so its figures are slower than "
                "on a quiet machine; measure on a quieter machine, or with --threads 1"
            )
        if (
            self.threads is not None
            and self.threads > self.free_cores + 0.25
            and self.others_cores >= MEANINGFUL_CORES / 2
        ):
            out.append(
                f"{backend_id}: {self.threads} threads but only {self.free_cores:.1f} "
                f"cores were free; try --threads {max(1, math.floor(self.free_cores))}"
            )
        if self.steal_cores is not None and self.steal_cores >= 0.1:
            out.append(
                f"{backend_id}: the hypervisor took {self.steal_cores:.1f} cores (steal) "
                "while it ran; figures from a virtual machine vary with its neighbours"
            )
        return out


@dataclass(slots=True)
class _Totals:
    seconds: float = 0.0
    others_s: float = 0.0
    own_s: float = 0.0
    steal_s: float = 0.0
    load_1m: float | None = None


@dataclass(frozen=True, slots=True)
class _Reading:
    t_s: float
    busy_s: float
    own_s: float
    steal_s: float | None


class ContentionSampler:
    """Splits the machine's CPU time among backends' timed stretches; thread-safe.

    ``set_owner(backend_id)`` at a stretch's start and ``set_owner(None)`` at its end;
    between, a daemon thread reads every ``interval_s``. ``close()`` stops it.
    """

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.cores = psutil.cpu_count() or 1
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._last: _Reading | None = None
        self._totals: dict[str, _Totals] = {}
        self._threads: dict[str, int | None] = {}
        # One short-lived thread per owned period: no thread outlives a timed stretch.
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def _read(self) -> _Reading:
        system = psutil.cpu_times()
        own = self._process.cpu_times()
        steal = getattr(system, "steal", None)
        busy = sum(
            getattr(system, name, 0.0)
            for name in ("user", "nice", "system", "irq", "softirq", "steal")
        )
        return _Reading(time.monotonic(), busy, own.user + own.system, steal)

    def set_owner(self, backend_id: str | None, threads: int | None = None) -> None:
        """Time from now on belongs to ``backend_id`` (None: to nobody). A reading
        thread runs while someone owns the time and is joined when nobody does."""
        with self._lock:
            self._tick_locked()
            self._owner = backend_id
            if backend_id is not None:
                self._threads[backend_id] = threads
        if backend_id is None:
            self._join()
        elif self._thread is None:
            stop = self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._loop, args=(stop,), name="anetui-contention", daemon=True
            )
            self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            with self._lock:
                if self._owner is not None:
                    self._tick_locked()

    def _join(self) -> None:
        thread, stop = self._thread, self._stop
        self._thread = self._stop = None
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _tick_locked(self) -> None:
        now = self._read()
        last, self._last = self._last, now
        owner = self._owner
        if last is None or owner is None:
            return
        wall = now.t_s - last.t_s
        if wall <= 0:
            return
        own = max(0.0, now.own_s - last.own_s)
        steal = (
            max(0.0, now.steal_s - last.steal_s)
            if now.steal_s is not None and last.steal_s is not None
            else 0.0
        )
        others = max(0.0, now.busy_s - last.busy_s - own - steal)
        totals = self._totals.setdefault(owner, _Totals())
        totals.seconds += wall
        totals.others_s += others
        totals.own_s += own
        totals.steal_s += steal
        load = psutil.getloadavg()[0]
        totals.load_1m = load if totals.load_1m is None else max(totals.load_1m, load)

    def figures(self) -> dict[str, Contention]:
        """Per backend with enough sampled time, its contention so far."""
        with self._lock:
            if self._owner is not None:
                self._tick_locked()
            out = {}
            steal_known = self._last is not None and self._last.steal_s is not None
            for owner, t in self._totals.items():
                if t.seconds < MIN_SECONDS:
                    continue
                out[owner] = Contention(
                    seconds=t.seconds,
                    cores=self.cores,
                    others_cores=t.others_s / t.seconds,
                    own_cores=t.own_s / t.seconds,
                    steal_cores=t.steal_s / t.seconds if steal_known else None,
                    load_1m=t.load_1m,
                    threads=self._threads.get(owner),
                )
            return out

    def reset(self) -> None:
        with self._lock:
            self._totals = {}

    def close(self) -> None:
        """Stop the reading thread (idempotent)."""
        with self._lock:
            self._owner = None
        self._join()
