"""Soak: does a long session keep its memory and its pace?

A real session with two real backends, auto-cycling every few seconds as the dashboard
does (stop one, run the next), a recorded powermetrics stream replayed at high speed as
the power source, and a snapshot every second (the dashboard's redraw). Prints RSS and
each backend's throughput over the first and the last minute.

Goal (issue 12, item 7): RSS growth < 5 MB, throughput within 3 %.

Run: PYTHONPATH=. .venv/bin/python benchmarks/soak.py --minutes 2
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import psutil

from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.resolve import resolve_model
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource

RECORDING = (
    Path(__file__).parent.parent
    / "tests/data/powermetrics/m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_a.plist"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--backends", default="torch-cpu,onnx-cpu")
    parser.add_argument("--model", default="mobilenet_v3_small")
    parser.add_argument("--input-shape", default="1,3,64,64")
    parser.add_argument("--cycle-s", type=float, default=5.0, help="auto-cycle period (s)")
    parser.add_argument("--speed", type=float, default=20.0, help="replay speed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    backends = tuple(args.backends.split(","))
    shape = tuple(int(x) for x in args.input_shape.split(","))
    config = RunConfig(
        backends=backends,
        threads=args.threads,
        iterations=None,
        duration_s=None,
        power="replay",
    )
    monitor = PowerMonitor(ReplaySource(RECORDING, speed=args.speed, loop=True))
    assert monitor.start(), monitor.reason
    session = Session(config, resolve_model(args.model, input_shape=shape), monitor)
    session.prepare()
    ids = session.runnable()
    print(f"power: {monitor.source.label}; backends {ids}; cycle {args.cycle_s:g} s", flush=True)

    rates: dict[str, list[tuple[float, float]]] = {i: [] for i in ids}  # (t, inf/s)
    rss: list[tuple[float, float]] = []
    started = time.monotonic()
    end = started + args.minutes * 60
    cycle = 0
    try:
        while time.monotonic() < end:
            backend = ids[cycle % len(ids)]
            cycle += 1
            stop = threading.Event()
            count0 = session.live()[backend].count
            worker = threading.Thread(target=session.run_backend, args=(backend, stop))
            t0 = time.monotonic()
            worker.start()
            while time.monotonic() - t0 < args.cycle_s:
                time.sleep(1.0)
                session.snapshot()  # the dashboard's redraw
            stop.set()
            worker.join()
            elapsed = time.monotonic() - t0
            rates[backend].append(
                (t0 - started, (session.live()[backend].count - count0) / elapsed)
            )
            rss.append((time.monotonic() - started, psutil.Process().memory_info().rss / 2**20))
    finally:
        session.close()
        monitor.stop()

    minute = 60.0
    total = args.minutes * 60
    first = {b: [r for t, r in rates[b] if t < minute] for b in ids}
    last = {b: [r for t, r in rates[b] if t >= total - minute] for b in ids}
    rss_first = [m for t, m in rss if t < minute]
    rss_last = [m for t, m in rss if t >= total - minute]
    print(
        f"RSS: first minute {rss_first[0]:.1f} MB … last {rss_last[-1]:.1f} MB "
        f"(growth {rss_last[-1] - rss_first[0]:+.1f} MB; from the end of the first minute "
        f"{rss_last[-1] - rss_first[-1]:+.1f} MB; goal < 5 MB)"
    )
    for b in ids:
        a, z = statistics.median(first[b]), statistics.median(last[b])
        print(
            f"{b}: {a:.1f} inf/s in the first minute, {z:.1f} in the last "
            f"({(z / a - 1) * 100:+.1f} %; goal within 3 %; {len(first[b])} and "
            f"{len(last[b])} cycles)"
        )
    snap = session.snapshot()
    print(
        f"windows received {snap.power['samples']}, kept for sparklines "
        f"{len(monitor.samples())}; warnings: {len(snap.warnings)}"
    )


if __name__ == "__main__":
    main()
