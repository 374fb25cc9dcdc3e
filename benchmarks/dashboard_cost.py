"""What does the dashboard cost the thing it measures?

Throughput of `torch-cpu` (MobileNetV2) under the running TUI, in a real terminal (tmux,
160x48, so the terminal's own rendering is on the same cores), against `anetui bench` in
the same conditions, interleaved round by round. Target: >= 0.97 of headless on this
2-core machine. Prints each round and the ratio of medians.

Run: .venv/bin/python benchmarks/dashboard_cost.py [--rounds 3] [--seconds 15]
Needs tmux.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANETUI = str(Path(sys.executable).with_name("anetui"))


def headless(seconds: float, out: Path) -> float:
    subprocess.run(
        [
            ANETUI,
            "bench",
            "--backends",
            "torch-cpu",
            "--duration",
            str(seconds),
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return float(json.loads(out.read_text())["backends"][0]["throughput_per_s"])


def under_tui(seconds: float, out_dir: Path) -> float:
    # Loading takes a few seconds; the snapshot's throughput counts timed inferences only.
    session = f"anetui-cost-{time.monotonic_ns()}"
    command = (
        f"{ANETUI} --backends torch-cpu --power none --out {out_dir} "
        f"--snapshot-on-exit --exit-after {seconds + 6}"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-x", "160", "-y", "48", "-s", session, command], check=True
    )
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if (
            subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode
            != 0
        ):
            break
    snapshot = sorted(out_dir.glob("*.json"))[-1]
    return float(json.loads(snapshot.read_text())["backends"][0]["throughput_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("needs tmux (apt-get install tmux)")
    work = Path(tempfile.mkdtemp(prefix="anetui-cost-"))
    tui_runs, bench_runs = [], []
    for r in range(args.rounds):
        bench_runs.append(headless(args.seconds, work / f"bench-{r}.json"))
        tui_runs.append(under_tui(args.seconds, work / f"tui-{r}"))
        print(
            f"round {r + 1}: headless {bench_runs[-1]:.1f} inf/s, "
            f"dashboard {tui_runs[-1]:.1f} inf/s",
            flush=True,
        )
    ratio = statistics.median(tui_runs) / statistics.median(bench_runs)
    print(f"dashboard / headless throughput: {ratio:.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
