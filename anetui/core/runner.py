"""The inference loop for one backend. It knows nothing of the UI or the CLI.

``run()`` warms the backend up once, then times ``backend.infer()`` with
``time.perf_counter_ns`` until a limit is reached or the stop event is set, writing each
latency into the backend's :class:`BackendRecord`. Per-inference work outside ``infer()``
is two clock reads, one store into a preallocated buffer and three comparisons (one of
them whether an after-call hook exists: Core ML's own latency, a generation's token
stamps, both read outside the timed region); the buffer
is folded into the histogram in one array operation between inferences (the harness
overhead is measured by ``benchmarks/harness.py``, ``make bench-harness``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from anetui.backends.base import Backend, BackendError
from anetui.core.stats import LatencyStats
from anetui.errors import one_line

if TYPE_CHECKING:
    from anetui.core.tokens import GenerationRecord

#: Width of a completion-count bucket (ns), the grain of energy attribution.
BUCKET_NS = 100_000_000
#: Latencies buffered before they are folded into the histogram (at the latest at each
#: 100 ms bucket edge): the buffer is preallocated, the fold is one array operation.
CHUNK = 4096
#: The interpreter's switch interval while a timed stretch runs (s; CPython's default is
#: 0.005): how long a runner back from the runtime waits at most for a GIL another thread
#: holds before that thread is asked to let go. See :func:`_short_switch_interval`.
#: ``ANETUI_SWITCH_INTERVAL_US`` changes it (0: leave the interpreter's), for
#: benchmarks/observer.py's comparison of the options.
SWITCH_INTERVAL_S = float(os.environ.get("ANETUI_SWITCH_INTERVAL_US", "50")) / 1e6
_switch_lock = threading.Lock()
_stretches_running = 0
_saved_interval = [sys.getswitchinterval()]
#: Stretch medians kept (the dashboard ends a stretch for every frame): the latest.
MAX_STRETCHES = 600
#: Buckets kept: 10 minutes at 100 ms, far more than a power window can lag (the energy
#: ledger reads each bucket within seconds); older ones fall off, memory stays flat.
MAX_BUCKETS = 10 * 60 * 10


class CompletionTimeline:
    """Inferences completed per 100 ms of the monotonic clock, bounded in memory.

    Only closed buckets are published, so readers in other threads never see a
    half-counted bucket; a bucket is published once the runner has moved past it, so
    every bucket up to the last published one is final. The lock is taken once per
    100 ms bucket, never per inference.
    """

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._closed: deque[tuple[int, int]] = deque(maxlen=max_buckets)
        #: (bucket, mean latency ns) for latency-over-time plots; the last ~10 minutes.
        self._means: deque[tuple[int, float]] = deque(maxlen=6000)

    def publish(self, bucket: int, count: int, latency_sum_ns: float = 0) -> None:
        """Record ``count`` completions in bucket ``bucket`` (t_ns // BUCKET_NS), whose
        latencies added up to ``latency_sum_ns``; added to the last bucket published when
        it is the same one (buckets only move forward)."""
        if count:
            with self._lock:
                if self._closed and self._closed[-1][0] == bucket:
                    # A stretch that starts in the bucket where the last one ended (the
                    # dashboard's frame gate pauses for milliseconds): one entry.
                    _, before = self._closed.pop()
                    _, mean_before = self._means.pop()
                    latency_sum_ns += mean_before * before
                    count += before
                self._closed.append((bucket, count))
                self._means.append((bucket, latency_sum_ns / count))

    def counts_between(self, first: int, last: int) -> tuple[dict[int, int], int | None]:
        """Completions per bucket in [first, last] and the last published bucket (None
        before any). Reads from the newest end: cheap for recent buckets."""
        counts: dict[int, int] = {}
        with self._lock:
            newest = self._closed[-1][0] if self._closed else None
            for bucket, count in reversed(self._closed):
                if bucket < first:
                    break
                if bucket <= last:
                    counts[bucket] = count
        return counts, newest

    def mean_latency_series(self, last: int | None = None) -> list[tuple[int, float]]:
        """(bucket, mean latency in ns) per 100 ms with completions, oldest first; only
        the ``last`` most recent when given (cheap: read from the newest end)."""
        with self._lock:
            if last is None:
                return list(self._means)
            return list(itertools.islice(reversed(self._means), last))[::-1]

    def buckets(self) -> list[tuple[int, int]]:
        """(bucket index, completions) pairs in time order."""
        with self._lock:
            return list(self._closed)


@dataclass
class BackendRecord:
    """Everything measured for one backend; written by its runner thread only."""

    stats: LatencyStats = field(default_factory=LatencyStats)
    #: The runtime's own latency where the backend reports one (Core ML's predict duration).
    runtime_stats: LatencyStats = field(default_factory=LatencyStats)
    timeline: CompletionTimeline = field(default_factory=CompletionTimeline)
    #: Wall time inside timed loops, harness included (ns): the throughput denominator.
    active_ns: int = 0
    #: Monotonic (start_ns, end_ns) of every timed stretch, for energy attribution.
    intervals: list[tuple[int, int]] = field(default_factory=list)
    warmed_up: bool = False
    #: Untimed warmup inferences done so far (shown as "warming up 4/10").
    warmup_done: int = 0
    #: Monotonic start of the timed stretch in progress (ns), None between stretches.
    running_since_ns: int | None = None
    #: Inferences completed inside an energy phase but not timed (the one after each
    #: dashboard frame): counted for energy per inference, in no latency figure.
    untimed_completions: int = 0
    #: (median ns, inferences) of the latest timed stretches: the run-to-run spread.
    stretch_medians_ns: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=MAX_STRETCHES)
    )
    #: The generative workload's token figures (None for one forward pass per inference):
    #: folded from the backend's token stamps after each timed generation.
    generation: GenerationRecord | None = None

    @property
    def count(self) -> int:
        return self.stats.count

    def completions(self) -> int:
        """Every inference completed in timed runs, the untimed ones among them included
        (the energy ledger's count)."""
        return self.stats.count + self.untimed_completions

    def throughput_per_s(self) -> float | None:
        """Inferences per second of wall time including the harness (overhead included)."""
        active_s = self.active_s_now()  # the stretch in progress counts too
        if active_s <= 0 or self.stats.count == 0:
            return None
        return self.stats.count / active_s

    def active_s_now(self) -> float:
        """Timed wall time so far (s), the stretch in progress included."""
        since = self.running_since_ns
        extra = time.perf_counter_ns() - since if since is not None else 0
        return (self.active_ns + extra) / 1e9

    def reset(self) -> None:
        """Forget the measurements (called between stretches; warmup is kept)."""
        self.stats.reset()
        self.runtime_stats.reset()
        self.timeline = CompletionTimeline()
        self.active_ns = 0
        self.intervals = []
        self.untimed_completions = 0
        self.stretch_medians_ns = deque(maxlen=MAX_STRETCHES)
        if self.generation is not None:
            self.generation.reset()


def warm_up(backend: Backend, record: BackendRecord, count: int, stop: threading.Event) -> None:
    """Run ``count`` untimed inferences once per backend (later calls do nothing; a
    warmup that was stopped part-way resumes where it stopped)."""
    if record.warmed_up:
        return
    with backend.thread_context():
        for _ in range(max(0, count - record.warmup_done)):
            if stop.is_set():
                return
            backend.infer()
            record.warmup_done += 1
    record.warmed_up = True


def warm_up_once(
    backend: Backend, record: BackendRecord, count: int, stop: threading.Event
) -> None:
    """:func:`warm_up`, a runtime's own error raised as this backend's BackendError."""
    try:
        warm_up(backend, record, count, stop)
    except BackendError:
        raise
    except Exception as exc:  # a runtime's own error: one line, the others go on
        raise BackendError(f"{backend.id} failed while warming up: {one_line(exc)}") from exc


def untimed_inference(
    backend: Backend,
    record: BackendRecord,
    at_least_ns: int = 0,
    *,
    settled: float | None = None,
    at_most_ns: int = 0,
    settled_for_ns: int = 0,
) -> None:
    """Inferences outside the statistics — one, and more until ``at_least_ns`` have
    passed, then (with ``settled``: a factor of the latest stretch's median) until the
    inferences of the last ``settled_for_ns`` (one at least) were all within it, or
    ``at_most_ns`` have passed — counted among the completions for energy (the
    dashboard's after each frame: the runtime's threads slept and the caches went cold
    through it, and the frame is still being written and drawn by the terminal on the
    same cores; a headless run never pays either)."""
    target = None
    if settled is not None and record.stretch_medians_ns:
        target = record.stretch_medians_ns[-1][0] * settled
    with backend.thread_context():
        first = started = calm_since = time.perf_counter_ns()
        while True:
            backend.infer()
            ended = time.perf_counter_ns()
            record.untimed_completions += 1
            record.timeline.publish(ended // BUCKET_NS, 1, ended - started)
            if target is not None and ended - started > target:
                calm_since = ended  # not settled yet: the calm run starts after this one
            elapsed = ended - first
            calm = target is None or (calm_since < ended and ended - calm_since >= settled_for_ns)
            if elapsed >= at_least_ns and (calm or elapsed >= at_most_ns):
                break
            started = ended


def run(
    backend: Backend,
    record: BackendRecord,
    stop: threading.Event,
    *,
    warmup: int = 10,
    iterations: int | None = None,
    duration_s: float | None = None,
    pause: threading.Event | None = None,
) -> int:
    """Warm up (once), then time inferences until ``iterations`` are done, ``duration_s``
    seconds have passed, or ``stop`` (or ``pause``: a frame gate's request, see
    :mod:`anetui.core.gate`) is set. Returns the number of timed inferences.

    Raises BackendError, with the backend's id, when an inference fails.
    """
    try:
        warm_up(backend, record, warmup, stop)
        return _timed_loop(backend, record, stop, iterations, duration_s, pause)
    except BackendError:
        raise
    except Exception as exc:  # a runtime's own error: report it, never crash the caller
        raise BackendError(f"{backend.id} failed while running: {one_line(exc)}") from exc


def _timed_loop(
    backend: Backend,
    record: BackendRecord,
    stop: threading.Event,
    iterations: int | None,
    duration_s: float | None,
    pause: threading.Event | None = None,
) -> int:
    # The hot path is the harness overhead: two clock reads, the call, one store into a
    # preallocated buffer and three comparisons (one for the after-call hook). Everything
    # else — folding the buffer into the histogram, publishing the 100 ms completion
    # bucket, the deadline and the count — runs on the slow path, at most once per bucket
    # or per CHUNK inferences, between inferences and never inside the timed region.
    clock = time.perf_counter_ns
    infer = backend.infer
    stopped = stop.is_set
    paused = pause.is_set if pause is not None else stop.is_set
    after = _after_call(backend, record)  # None for most: no check beyond this one
    max_count = iterations if iterations is not None else sys.maxsize
    buffer = [0] * CHUNK
    folded = 0  # timed inferences already folded into the record
    filled = 0  # latencies waiting in the buffer
    stretch_stats = LatencyStats()  # this stretch alone: the per-run medians
    with backend.thread_context(), _short_switch_interval():
        started = clock()
        record.running_since_ns = started
        deadline = started + int(duration_s * 1e9) if duration_s is not None else sys.maxsize
        bucket = started // BUCKET_NS
        in_bucket = in_bucket_ns = 0
        edge = min((bucket + 1) * BUCKET_NS, deadline)
        room = min(CHUNK, max_count)
        now = started
        try:
            while room > 0 and not stopped() and not paused():
                t0 = clock()
                infer()
                now = clock()
                buffer[filled] = now - t0
                filled += 1
                if after is not None:
                    after()
                if now < edge and filled < room:
                    continue
                # -- the slow path: between inferences, outside the timed region --------
                chunk = buffer[:filled]
                record.stats.record_many(chunk)
                stretch_stats.record_many(chunk)
                folded += filled
                filled = 0
                if now // BUCKET_NS != bucket:
                    # The edge is checked after every inference, so only the last one of the
                    # chunk ended in the new bucket: it opens that bucket.
                    last = chunk[-1]
                    record.timeline.publish(
                        bucket, in_bucket + len(chunk) - 1, in_bucket_ns + sum(chunk) - last
                    )
                    bucket, in_bucket, in_bucket_ns = now // BUCKET_NS, 1, last
                else:
                    in_bucket += len(chunk)
                    in_bucket_ns += sum(chunk)
                if now >= deadline:
                    break
                edge = min((bucket + 1) * BUCKET_NS, deadline)
                room = min(CHUNK, max_count - folded)
        except BaseException:
            # An inference failed: what was timed before it still counts (the error is
            # the backend's, its figures so far are kept and shown).
            record.stats.record_many(buffer[:filled])
            raise
        if filled:
            chunk = buffer[:filled]
            record.stats.record_many(chunk)
            stretch_stats.record_many(chunk)
            folded += filled
            in_bucket += filled
            in_bucket_ns += sum(chunk)
        record.timeline.publish(bucket, in_bucket, in_bucket_ns)
        ended = clock() if folded == 0 else now
    record.active_ns += ended - started
    record.running_since_ns = None
    record.intervals.append((started, ended))
    stretch = stretch_stats.summary()
    if stretch is not None:
        record.stretch_medians_ns.append((stretch.p50_ns, stretch.count))
    return folded


def _after_call(backend: Backend, record: BackendRecord) -> Callable[[], None] | None:
    """What runs after each timed call, outside the timed region, as one callable (None
    when nothing does): the runtime's own latency where the backend reports one (Core
    ML's prediction duration), and a generation's token stamps folded into its figures."""
    runtime_latency: Callable[[], int | None] | None = getattr(backend, "runtime_latency_ns", None)
    fold = record.generation.fold if record.generation is not None else None
    if runtime_latency is None:
        return fold
    record_runtime = record.runtime_stats.record

    def after() -> None:
        runtime_ns = runtime_latency()
        if runtime_ns is not None:
            record_runtime(runtime_ns)
        if fold is not None:
            fold()

    return after


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    """The interpreter's switch interval, shortened while a timed stretch runs.

    A runner coming back from a runtime call that released the GIL waits for whoever
    holds it — the dashboard building a frame, the power monitor — and by default that
    wait lasts up to 5 ms, inside the measured latency. Shortened, the holder is asked
    to let go after SWITCH_INTERVAL_S. Not shorter: a waiting thread could then force
    the runner itself off the GIL in the few instructions between its two clock reads.
    Restored when the last stretch in this process ends.
    """
    global _stretches_running
    if SWITCH_INTERVAL_S <= 0:  # ANETUI_SWITCH_INTERVAL_US=0: the interpreter's own
        yield
        return
    with _switch_lock:
        if _stretches_running == 0:
            _saved_interval[0] = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        _stretches_running += 1
    try:
        yield
    finally:
        with _switch_lock:
            _stretches_running -= 1
            if _stretches_running == 0:
                sys.setswitchinterval(_saved_interval[0])
