"""How much does anetui's measuring cost, and does it change what it measures?

Prints three figures from one run on this machine (targets from issues 2 and 20):

(a) harness overhead per inference (µs): anetui's timed loop on a trivial model (an
    identity TorchScript module) against a bare ``for`` loop over the same call;
    target <= 1 µs (issue 20).
(b) anetui's reported ``torch-cpu`` median against a hand-written loop timing the same
    configuration (MobileNetV2, eager, inference_mode, channels_last) in the same
    process, interleaved; target within 3%.
(c) RSS growth while recording 10 million latencies into the statistics; target < 5 MB.

Run: ``.venv/bin/python benchmarks/harness.py`` (about a minute). Use ``--quick`` for a
smoke run with smaller counts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from anetui.backends import registry as backends
from anetui.core.runner import BackendRecord, run
from anetui.core.stats import LatencyStats
from anetui.models.resolve import resolve_model
from anetui.models.torch_load import load_torch_model


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def harness_overhead_us(calls: int, repeats: int) -> tuple[float, float, float]:
    """(anetui loop µs/call, bare loop µs/call, difference) for an identity TorchScript."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "identity.pt"
        torch.jit.script(Identity()).save(str(path))
        spec = resolve_model(str(path), input_shape=(1, 3, 8, 8))
        backend = backends.create("torch-cpu")
        backend.prepare(spec)
    anetui_per_call, bare_per_call = [], []
    stop = threading.Event()
    for _ in range(repeats):
        record = BackendRecord()
        run(backend, record, stop, warmup=100, iterations=calls)
        anetui_per_call.append(record.active_ns / calls / 1e3)
        infer = backend.infer
        with backend.thread_context():
            started = time.perf_counter_ns()
            for _ in range(calls):
                infer()
            bare_per_call.append((time.perf_counter_ns() - started) / calls / 1e3)
    a, b = statistics.median(anetui_per_call), statistics.median(bare_per_call)
    return a, b, a - b


def median_agreement(rounds: int, per_round: int) -> tuple[float, float, float]:
    """(anetui torch-cpu p50 ms, hand-written p50 ms, difference %), interleaved."""
    spec = resolve_model("mobilenet_v2")
    backend = backends.create("torch-cpu")
    backend.prepare(spec)
    record = BackendRecord()
    stop = threading.Event()

    # The hand-written equivalent: same weights, same input, same layout and mode.
    model = load_torch_model(spec).to(memory_format=torch.channels_last)
    x = torch.from_numpy(spec.make_input()).contiguous(memory_format=torch.channels_last)
    hand: list[int] = []
    with torch.inference_mode():
        for _ in range(10):
            model(x)
    for _ in range(rounds):
        run(backend, record, stop, warmup=10, iterations=per_round)
        with torch.inference_mode():
            for _ in range(per_round):
                t0 = time.perf_counter_ns()
                model(x)
                hand.append(time.perf_counter_ns() - t0)
    summary = record.stats.summary()
    assert summary is not None
    ours = summary.p50_ns / 1e6
    theirs = statistics.median(hand) / 1e6
    return ours, theirs, (ours - theirs) / theirs * 100


def rss_growth_mb(values: int) -> float:
    """RSS growth (MB) while recording ``values`` latencies into one LatencyStats."""
    process = psutil.Process()
    stats = LatencyStats()
    stats.record(1_000_000)
    stats.summary()  # let numpy and the summary path allocate once, before measuring
    rng = np.random.default_rng(0)
    before = process.memory_info().rss
    chunk = 10_000
    for _ in range(values // chunk):
        stats.record_many(rng.integers(100_000, 100_000_000, chunk).tolist())
    stats.summary()
    after = process.memory_info().rss
    assert stats.count == values // chunk * chunk + 1
    return (after - before) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    args = parser.parse_args()
    calls, repeats = (20_000, 3) if args.quick else (200_000, 5)
    rounds, per_round = (4, 10) if args.quick else (20, 25)
    latencies = 200_000 if args.quick else 10_000_000
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    a, b, overhead = harness_overhead_us(calls, repeats)
    print(
        f"(a) harness overhead: {overhead:.2f} µs per inference "
        f"(anetui loop {a:.2f} µs/call, bare loop {b:.2f} µs/call; target <= 1 µs)"
    )

    ours, theirs, diff = median_agreement(rounds, per_round)
    print(
        f"(b) torch-cpu median: anetui {ours:.3f} ms, hand-written {theirs:.3f} ms, "
        f"difference {diff:+.2f}% (target within ±3%)"
    )

    growth = rss_growth_mb(latencies)
    print(f"(c) RSS growth recording {latencies:,} latencies: {growth:.2f} MB (target < 5 MB)")


if __name__ == "__main__":
    main()
