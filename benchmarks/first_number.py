"""Time to the first p50 on screen: the real `anetui` dashboard in tmux, as a person
launches it, the screen read every 0.1 s. Prints, per run, when the first frame, the
first backend row and the first p50 figure appeared (s after launch), and the CPU load
of the machine meanwhile (a busy machine slows everything: say so with the figure).

    python benchmarks/first_number.py                   # 120x36, 3 warm runs
    python benchmarks/first_number.py --cold --runs 1   # an empty anetui cache
    python benchmarks/first_number.py --size 80x24 -- --backends torch-cpu,onnx-cpu

"Warm" reuses the anetui cache and the OS's file cache (one unmeasured launch first);
"cold" gives each run an empty ANETUI_CACHE_DIR (ONNX exports, Core ML packages redone).
The OS file cache cannot be emptied without root's drop_caches, so "cold" is cold for
anetui's own artefacts only. Needs tmux.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
P50 = re.compile(r"p50 \d")
ROW = re.compile(r"│ 1 +▶? ?\S+")


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, "-f", "/dev/null", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def app_cpu_seconds(socket: str) -> float | None:
    """CPU time (user + system, s) the dashboard process has used so far: less sensitive
    to other processes than wall time, so it says what the first number costs."""
    try:
        shell = psutil.Process(int(tmux(socket, "display-message", "-p", "#{pane_pid}")))
        app = next(p for p in shell.children(recursive=True) if "python" in p.name())
        cpu = app.cpu_times()
    except (StopIteration, psutil.Error, ValueError):
        return None
    return cpu.user + cpu.system + cpu.children_user + cpu.children_system


def one_run(
    size: tuple[int, int], args: list[str], cache: str | None, limit_s: float
) -> dict[str, float | None]:
    socket = f"anetui-bench-{uuid.uuid4().hex[:8]}"
    env = f"PYTHONPATH={shlex.quote(str(ROOT))}"
    if cache:
        env += f" ANETUI_CACHE_DIR={shlex.quote(cache)}"
    argv = shlex.join([sys.executable, "-m", "anetui", *args])
    command = f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {env} {argv}; sleep 600"
    times: dict[str, float | None] = {"frame": None, "row": None, "p50": None, "cpu_s": None}
    psutil.cpu_percent(interval=None)
    started = time.monotonic()
    tmux(socket, "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "sh", "-c", command)
    try:
        while time.monotonic() - started < limit_s:
            screen = tmux(socket, "capture-pane", "-p")
            now = time.monotonic() - started
            if times["frame"] is None and "anetui" in screen:
                times["frame"] = now
            if times["row"] is None and ROW.search(screen):
                times["row"] = now
            if P50.search(screen):
                times["p50"] = now
                times["cpu_s"] = app_cpu_seconds(socket)
                break
            time.sleep(0.1)
        times["machine_cpu_pct"] = psutil.cpu_percent(interval=None)
        tmux(socket, "send-keys", "q")
        time.sleep(1.0)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="120x36", help="terminal COLSxROWS (120x36)")
    parser.add_argument("--runs", type=int, default=3, help="measured launches (3)")
    parser.add_argument("--cold", action="store_true", help="an empty anetui cache per run")
    parser.add_argument("--limit", type=float, default=180.0, help="give up after (s)")
    parser.add_argument("args", nargs="*", help="anetui arguments (after --)")
    options = parser.parse_args()
    if shutil.which("tmux") is None:
        print("needs tmux: apt-get install tmux", file=sys.stderr)
        return 2
    width, height = (int(v) for v in options.size.split("x"))
    args = options.args or ["--power", "none"]
    if not options.cold:
        one_run((width, height), args, None, options.limit)  # warms the caches; not counted
    found = []
    for run in range(options.runs):
        cache = tempfile.mkdtemp(prefix="anetui-cold-") if options.cold else None
        t = one_run((width, height), args, cache, options.limit)
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
        shown = {k: ("–" if v is None else f"{v:.1f}") for k, v in t.items()}
        print(
            f"run {run + 1}: first frame {shown['frame']} s, first row {shown['row']} s, "
            f"first p50 {shown['p50']} s (the dashboard's CPU time by then {shown['cpu_s']} s); "
            f"machine CPU meanwhile {shown['machine_cpu_pct']}% of {os.cpu_count()} cores"
        )
        if t["p50"] is not None:
            found.append(t["p50"])
    if found:
        kind = "cold" if options.cold else "warm"
        median = statistics.median(found)
        print(
            f"first p50 on screen ({kind}, {options.size}): median {median:.1f} s "
            f"over {len(found)} runs (min {min(found):.1f}, max {max(found):.1f})"
        )
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
