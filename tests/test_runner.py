from __future__ import annotations

import threading
import time

import pytest

from anetui.backends.base import BackendError
from anetui.core.runner import BUCKET_NS, BackendRecord, CompletionTimeline, run
from tests.doubles import CountingBackend, FailingBackend


def test_iterations_are_exact_and_warmup_is_untimed_and_once() -> None:
    backend = CountingBackend()
    record = BackendRecord()
    stop = threading.Event()
    assert run(backend, record, stop, warmup=7, iterations=50) == 50
    assert backend.calls == 57 and record.count == 50
    assert run(backend, record, stop, warmup=7, iterations=10) == 10
    assert backend.calls == 67 and record.count == 60  # no second warmup
    assert len(record.intervals) == 2
    assert backend.contexts_entered >= 2  # the thread context wraps every timed stretch


class StampedBackend(CountingBackend):
    """Busy-waits ``work_ns`` per inference and keeps when each call began and ended
    (perf_counter ns), as seen from inside infer()."""

    def __init__(self, work_ns: int) -> None:
        super().__init__(work_ns=work_ns)
        self.calls_ns: list[tuple[int, int]] = []

    def infer(self) -> None:
        began = time.perf_counter_ns()
        super().infer()
        self.calls_ns.append((began, time.perf_counter_ns()))


def test_latencies_are_the_time_spent_in_infer() -> None:
    backend = StampedBackend(work_ns=2_000_000)
    record = BackendRecord()
    run(backend, record, threading.Event(), warmup=0, iterations=20)
    summary = record.stats.summary()
    assert summary is not None and summary.count == 20
    # Each latency spans its whole call (never less than the 2 ms busy-wait) ...
    assert summary.min_ns >= min(end - began for began, end in backend.calls_ns) >= 2_000_000
    assert summary.max_ns >= max(end - began for began, end in backend.calls_ns)
    # ... and only its call: together they fit in the timed stretch (what lies between
    # calls is left out). No bound in wall-clock time: another process may take the
    # core mid-wait on a busy machine.
    (started, ended) = record.intervals[0]
    assert summary.mean_ns * summary.count <= ended - started + summary.count


def test_duration_limits_the_run() -> None:
    backend = StampedBackend(work_ns=1_000_000)
    record = BackendRecord()
    before = time.perf_counter_ns()
    n = run(backend, record, threading.Event(), warmup=0, duration_s=0.3)
    after = time.perf_counter_ns()
    assert n == record.count == len(backend.calls_ns) >= 1
    (started, ended) = record.intervals[0]
    # The run lasts the duration, and stops at the first inference that ends past it:
    # every earlier one ended before the deadline (however slow the machine).
    deadline = started + 300_000_000
    assert record.active_ns == ended - started >= 300_000_000
    assert all(end < deadline for _began, end in backend.calls_ns[:-1])
    assert before <= started and ended <= after
    throughput = record.throughput_per_s()
    assert throughput is not None and throughput == pytest.approx(n / (record.active_ns / 1e9))


def test_stop_event_stops_an_endless_run_from_another_thread() -> None:
    backend = CountingBackend(work_ns=100_000)
    record = BackendRecord()
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(backend, record, stop), kwargs={"warmup": 0})
    worker.start()
    deadline = time.monotonic() + 30  # waits for events, bounded; asserts no time
    while record.count < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # a busy machine may start the thread late
    assert record.running_since_ns is not None and record.active_s_now() > 0
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert record.count >= 3 and record.running_since_ns is None


def test_a_set_stop_event_runs_nothing() -> None:
    backend = CountingBackend()
    record = BackendRecord()
    stop = threading.Event()
    stop.set()
    assert run(backend, record, stop, warmup=5, iterations=5) == 0
    assert backend.calls == 0 and record.throughput_per_s() is None


def test_a_failing_inference_becomes_a_one_line_backend_error() -> None:
    backend = FailingBackend()
    record = BackendRecord()
    with pytest.raises(BackendError) as info:
        run(backend, record, threading.Event(), warmup=2, iterations=100)
    message = str(info.value)
    assert message.startswith("counting failed while running: device lost")
    assert "\n" not in message


def test_completions_are_counted_per_100ms_bucket() -> None:
    backend = StampedBackend(work_ns=1_000_000)
    record = BackendRecord()
    n = run(backend, record, threading.Event(), warmup=0, duration_s=0.35)
    buckets = record.timeline.buckets()
    assert sum(c for _b, c in buckets) == n
    assert [b for b, _c in buckets] == sorted({b for b, _c in buckets})
    start, end = record.intervals[0]
    # The first completion falls in a bucket from its call's end to the next call's
    # start (or the end of the run); the last is the end's.
    first_end = backend.calls_ns[0][1]
    next_start = backend.calls_ns[1][0] if n > 1 else end
    assert first_end // BUCKET_NS <= buckets[0][0] <= next_start // BUCKET_NS
    assert start // BUCKET_NS <= buckets[0][0]
    assert buckets[-1][0] == end // BUCKET_NS
    inside = sum(c for b, c in buckets if -(-start // BUCKET_NS) <= b < end // BUCKET_NS)
    assert inside <= n


def test_timeline_counts_only_whole_buckets_inside_a_window() -> None:
    timeline = CompletionTimeline(max_buckets=3)
    for bucket in range(10, 15):
        timeline.publish(bucket, 4)
    timeline.publish(15, 0)  # empty buckets are not stored
    assert timeline.buckets() == [(12, 4), (13, 4), (14, 4)]  # bounded
    assert sum(c for b, c in timeline.buckets() if 12 <= b < 14) == 8


def test_buffered_latencies_are_all_recorded_and_bucketed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The buffer is folded when full (a small CHUNK here) and at every bucket edge:
    every timed inference reaches the histogram once and one completion bucket once."""
    import anetui.core.runner as runner_module

    monkeypatch.setattr(runner_module, "CHUNK", 7)
    backend = CountingBackend(work_ns=50_000)
    record = BackendRecord()
    assert run(backend, record, threading.Event(), warmup=0, iterations=1000) == 1000
    summary = record.stats.summary()
    assert summary is not None and summary.count == 1000 == record.count
    assert summary.min_ns >= 50_000
    buckets = record.timeline.buckets()
    assert sum(count for _bucket, count in buckets) == 1000
    assert [b for b, _c in buckets] == sorted({b for b, _c in buckets})  # each once
    first, last = record.intervals[0]
    assert first // BUCKET_NS <= buckets[0][0] and buckets[-1][0] == last // BUCKET_NS
    assert record.stretch_medians_ns[0][1] == 1000


def test_the_switch_interval_is_short_only_while_a_stretch_runs() -> None:
    """While timed, another thread holding the GIL is asked to let go after
    SWITCH_INTERVAL_S, not the interpreter's 5 ms; restored afterwards."""
    import sys

    from anetui.core.runner import SWITCH_INTERVAL_S

    before = sys.getswitchinterval()
    seen: list[float] = []

    class Probe(CountingBackend):
        def infer(self) -> None:
            seen.append(sys.getswitchinterval())
            super().infer()

    run(Probe(), BackendRecord(), threading.Event(), warmup=2, iterations=3)
    assert seen[:2] == [before, before]  # warmup is not timed
    assert seen[2:] == [pytest.approx(SWITCH_INTERVAL_S, rel=0.05)] * 3  # µs resolution
    assert sys.getswitchinterval() == before


class SlowThenFast(CountingBackend):
    """The first ``slow`` inferences take 20 ms (busy), then none: a runtime back from a
    frame, cold, then at its pace."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.slow = slow

    def infer(self) -> None:
        self.work_ns = 20_000_000 if self.calls < self.slow else 0
        super().infer()


def test_untimed_inferences_after_a_frame_last_until_settled_or_the_cap() -> None:
    from anetui.core.runner import untimed_inference

    record = BackendRecord()
    record.stretch_medians_ns.append((5_000_000.0, 100))  # the latest stretch: 5 ms
    backend = SlowThenFast(slow=3)
    untimed_inference(backend, record, 0, settled=1.03, at_most_ns=10_000_000_000)
    assert backend.calls == 4 and record.untimed_completions == 4  # three cold, one settled
    assert record.count == 0  # none of them timed
    capped = SlowThenFast(slow=100)
    untimed_inference(capped, record, 0, settled=1.03, at_most_ns=50_000_000)
    assert capped.calls == 3  # 60 ms >= the 50 ms cap, never settled
    once = SlowThenFast(slow=100)
    untimed_inference(once, BackendRecord(), 0, settled=1.03, at_most_ns=50_000_000)
    assert once.calls == 1  # no stretch yet: nothing to settle to
    # Settled means settled for a while: one quick inference is not enough.
    record = BackendRecord()
    record.stretch_medians_ns.append((5_000_000.0, 100))
    steady = SlowThenFast(slow=1)
    started = time.perf_counter_ns()
    untimed_inference(steady, record, 0, settled=1.03, at_most_ns=10**10, settled_for_ns=3_000_000)
    assert steady.calls > 2 and time.perf_counter_ns() - started >= 23_000_000
