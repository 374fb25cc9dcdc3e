"""Does watching change what is measured? The dashboard against headless `bench`.

For a sub-millisecond backend (onnx-cpu, mobilenet_v3_small) and a slow one (torch-cpu,
mobilenet_v2), rounds alternate headless ``anetui bench`` and the dashboard in a real
terminal (tmux, 160x48, the terminal's own rendering on the same cores), both with a
replayed power source so every panel draws. Each round prints the dashboard's
throughput, p50 and p99 over headless, and the CPU others used meanwhile (from the
results' contention); then the medians over rounds. ``--metrics`` runs a second set with
both serving Prometheus metrics, scraped once a second.

Goal (issue 20): throughput >= 0.99 of headless, p50 within 1 %, p99 within 10 %.

``--variant`` measures the options against each other (the dashboard's only; headless is
always the default build): ``gate`` (kept: frame gate + 50 µs switch interval), ``switch``
(the short switch interval alone), ``none`` (neither: the dashboard as it was).

**Per-process modes.** On some machines a process settles in one of two speeds for its
whole life (here, a 2-vCPU VM: onnx-cpu's p50 ~0.56 or ~1.0 ms, torch-cpu's ~6.4 or
~7.3 ms, headless and dashboard alike), which swamps a few rounds' medians. So each
round's two processes are classified into modes (p50s more than ``MODE_GAP`` apart over
all rounds of the case split them), the mode of each is printed, how often each arm
landed in the slow mode is printed (the dashboard must not make it likelier), and the
medians are given twice: over every round, and over the rounds whose two processes
landed in the same mode (like for like). The verdict uses the same-mode medians when at
least ``MIN_SAME_MODE`` rounds have them.

Run: .venv/bin/python benchmarks/observer.py [--rounds 8] [--seconds 8] [--metrics]
     [--variant gate|switch|none] [--only onnx-cpu|torch-cpu]
Needs tmux; run it on a quiet machine (others' CPU is printed per round).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ANETUI = str(Path(sys.executable).with_name("anetui"))
REPLAY = Path(__file__).resolve().parents[1] / (
    "tests/data/powermetrics/m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt"
)
CASES = (("onnx-cpu", "mobilenet_v3_small"), ("torch-cpu", "mobilenet_v2"))
#: The dashboard's start (model load, preparation, warmup) before its timed run, at most.
STARTUP_S = 8.0
#: Two p50s of one case further apart than this (relative) are in different modes.
MODE_GAP = 0.06
#: Same-mode rounds needed before the verdict uses their medians.
MIN_SAME_MODE = 3
#: The dashboard's environment per variant (anetui.core.gate, anetui.core.runner).
VARIANTS = {
    "gate": {},
    "switch": {"ANETUI_FRAME_GATE": "0"},
    "none": {"ANETUI_FRAME_GATE": "0", "ANETUI_SWITCH_INTERVAL_US": "0"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scraper:
    """GETs http://127.0.0.1:PORT/metrics once a second until stopped, like Prometheus."""

    def __init__(self, port: int) -> None:
        self.port, self.scrapes = port, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2):
                    self.scrapes += 1
            except OSError:
                pass  # not serving yet, or already done

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.scrapes


def _figures(path: Path) -> dict[str, float]:
    row = json.loads(path.read_text())["backends"][0]
    contention = row.get("contention") or {}
    return {
        "throughput": float(row["throughput_per_s"]),
        "p50": float(row["latency_ms"]["p50"]),
        "p99": float(row["latency_ms"]["p99"]),
        "others": float(contention.get("others_cores") or 0.0),
        "count": float(row["count"]),
    }


def _common(backend: str, model: str, metrics_port: int | None) -> list[str]:
    args = ["--backends", backend, "--model", model, "--power", f"replay:{REPLAY}"]
    return args + (["--metrics", f"127.0.0.1:{metrics_port}"] if metrics_port else [])


def headless(backend: str, model: str, seconds: float, out: Path, metrics: bool) -> dict[str, Any]:
    port = _free_port() if metrics else None
    scraper = Scraper(port) if port else None
    command = [ANETUI, "bench", *_common(backend, model, port), "--duration", str(seconds)]
    command += ["--json", str(out)] + (["--metrics-linger", "0"] if port else [])
    subprocess.run(command, check=True, capture_output=True)
    if scraper:
        scraper.stop()
    return _figures(out)


def dashboard(
    backend: str, model: str, seconds: float, out_dir: Path, metrics: bool, variant: str = "gate"
) -> dict[str, Any]:
    port = _free_port() if metrics else None
    scraper = Scraper(port) if port else None
    session = f"anetui-observer-{time.monotonic_ns()}"
    argv = [ANETUI, *_common(backend, model, port), "--out", str(out_dir), "--snapshot-on-exit"]
    env = " ".join(f"{k}={v}" for k, v in VARIANTS[variant].items())
    command = " ".join([*([f"env {env}"] if env else []), *argv])
    command += f" --exit-after {seconds + STARTUP_S}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-x", "160", "-y", "48", "-s", session, command], check=True
    )
    deadline = time.monotonic() + seconds + STARTUP_S + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
        if alive.returncode != 0:
            break
    else:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        raise SystemExit(f"the dashboard did not exit ({command})")
    if scraper:
        scraper.stop()
    snapshots = sorted(out_dir.glob("*.json"))
    if not snapshots:
        raise SystemExit(f"the dashboard wrote no snapshot ({command})")
    return _figures(snapshots[-1])


def measure(
    case: tuple[str, str], rounds: int, seconds: float, metrics: bool, work: Path, variant: str
) -> None:
    backend, model = case
    label = f"{backend}, {model}, variant {variant}" + (
        ", --metrics scraped 1/s" if metrics else ""
    )
    print(f"\n{label}", flush=True)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (dashboard, headless)
    for r in range(rounds):
        tag = f"{backend}-{variant}-{'m' if metrics else 'p'}-{r}"
        # The order alternates, so neither always runs first (warm caches, drift).
        order = (True, False) if r % 2 == 0 else (False, True)
        results: dict[bool, dict[str, Any]] = {}
        for is_dashboard in order:
            if is_dashboard:
                results[True] = dashboard(
                    backend, model, seconds, work / f"{tag}-ui", metrics, variant
                )
            else:
                results[False] = headless(backend, model, seconds, work / f"{tag}.json", metrics)
        ui, bare = results[True], results[False]
        pairs.append((ui, bare))
        ratio = _ratios(ui, bare)
        print(
            f"  round {r + 1}: throughput {ratio['throughput']:.3f}, "
            f"p50 {ratio['p50']:.3f}, p99 {ratio['p99']:.3f} "
            f"(headless p50 {bare['p50']:.3f} / p99 {bare['p99']:.3f} ms, "
            f"dashboard {ui['p50']:.3f} / {ui['p99']:.3f} ms; others' CPU "
            f"{bare['others']:.2f} / {ui['others']:.2f} cores)",
            flush=True,
        )
    summarise(pairs)


def _ratios(ui: dict[str, Any], bare: dict[str, Any]) -> dict[str, float]:
    return {
        "throughput": ui["throughput"] / bare["throughput"],
        "p50": ui["p50"] / bare["p50"],
        "p99": ui["p99"] / bare["p99"],
    }


def modes(p50s: list[float], gap: float = MODE_GAP) -> list[int]:
    """Each p50's mode: 1 (slow) above the widest relative gap between neighbours in the
    sorted values when that gap is wider than ``gap``, else 0 (two modes at most)."""
    order = sorted(p50s)
    if len(order) < 2:
        return [0] * len(p50s)
    widest = max(itertools.pairwise(order), key=lambda ab: ab[1] / ab[0])
    if widest[1] <= widest[0] * (1 + gap):
        return [0] * len(p50s)
    return [int(p >= widest[1]) for p in p50s]


def summarise(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Medians over every round and over the same-mode rounds, the modes, the verdict."""
    tags = ("throughput", "p50", "p99")
    labels = modes([p["p50"] for pair in pairs for p in pair])
    ui_modes, bare_modes = labels[0::2], labels[1::2]
    print(
        f"  modes (0 = fastest): dashboard {ui_modes}, headless {bare_modes}; "
        f"rounds in a slower mode: dashboard {sum(m > 0 for m in ui_modes)}, "
        f"headless {sum(m > 0 for m in bare_modes)} of {len(pairs)}",
        flush=True,
    )
    every = [_ratios(ui, bare) for ui, bare in pairs]
    same = [r for r, a, b in zip(every, ui_modes, bare_modes, strict=True) if a == b]
    chosen = same if len(same) >= MIN_SAME_MODE else every
    for name, rows in (("every round", every), (f"same-mode rounds ({len(same)})", same)):
        if not rows:
            continue
        medians = {tag: statistics.median(r[tag] for r in rows) for tag in tags}
        verdict = (
            medians["throughput"] >= 0.99
            and abs(medians["p50"] - 1) <= 0.01
            and medians["p99"] <= 1.10
        )
        used = " [the verdict]" if rows is chosen else ""
        print(
            f"  median dashboard / headless, {name}: throughput {medians['throughput']:.3f} "
            f"(goal >= 0.99), p50 {medians['p50']:.3f} (goal 0.99-1.01), p99 "
            f"{medians['p99']:.3f} (goal <= 1.10) -> "
            f"{'at the goal' if verdict else 'NOT at the goal'}{used}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--metrics", action="store_true", help="also the --metrics set")
    parser.add_argument("--only", choices=[b for b, _ in CASES], help="one backend only")
    parser.add_argument("--variant", choices=list(VARIANTS), default="gate")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("needs tmux (apt-get install tmux)")
    work = Path(tempfile.mkdtemp(prefix="anetui-observer-"))
    cases = [c for c in CASES if args.only in (None, c[0])]
    for backend, model in cases:  # conversions and caches ready before any round
        headless(backend, model, 1.0, work / f"prime-{backend}.json", False)
    for case in cases:
        measure(case, args.rounds, args.seconds, False, work, args.variant)
        if args.metrics:
            measure(case, args.rounds, args.seconds, True, work, args.variant)


if __name__ == "__main__":
    main()
