"""Ground truth, end to end: a powercap-like tree whose package counter a thread advances
at a known power that depends on what the measured process does — 30 W while any of its
threads is running or runnable (computing, even when the machine's other work delays
it), 10 W while all of them sleep — and the real CLI, ``anetui bench --power rapl:DIR
--idle-seconds 3``, in a subprocess. The idle baseline, mean power, mJ per inference and
active mJ per inference must match the truth within 3 %.

The counter wraps every ~9 s at 30 W, so the run crosses a wraparound too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_MODEL, anetui_cmd

IDLE_W = 10.0
BUSY_W = 30.0
MAX_RANGE_UJ = 2**28  # 268 J: wraps during the run
WIDTH = 20  # the counter is rewritten in place at a fixed width (the source keeps its fd)


def any_thread_running(pid: int) -> bool:
    """Whether any thread of ``pid`` is running or runnable (state R)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "R":
            return True
    return False


class TruthCounter:
    """Advances ``energy_uj`` by the truth's power × elapsed time every ~2 ms."""

    def __init__(self, zone: Path) -> None:
        self.path = zone / "energy_uj"
        self.pid: int | None = None
        self.energy_uj = 1_000_000.0
        self._stop = threading.Event()
        self._fd = os.open(self.path, os.O_WRONLY)
        self._write()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _write(self) -> None:
        value = int(self.energy_uj) % MAX_RANGE_UJ
        os.pwrite(self._fd, f"{value:0{WIDTH}d}\n".encode(), 0)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.002):
            busy = self.pid is not None and any_thread_running(self.pid)
            now = time.monotonic()
            self.energy_uj += (BUSY_W if busy else IDLE_W) * (now - last) * 1e6
            last = now
            self._write()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        os.close(self._fd)


def run_under_truth(truth: TruthCounter, command: list[str]) -> None:
    """``command`` in a subprocess whose threads ``truth`` watches; it must exit 0."""
    truth.start()
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        truth.pid = proc.pid
        try:
            _stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        truth.stop()
    assert proc.returncode == 0, stderr.decode()


def make_tree(root: Path) -> Path:
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{MAX_RANGE_UJ}\n")
    (zone / "energy_uj").write_text(f"{0:0{WIDTH}d}\n")
    return zone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_bench_matches_a_known_power_within_3_percent(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    truth = TruthCounter(make_tree(root))
    out = tmp_path / "results.json"
    command = anetui_cmd(
        "bench",
        "--backends",
        "torch-cpu",
        "--model",
        SMALL_MODEL,
        "--input-shape",
        "1,3,64,64",
        "--threads",
        "1",
        "--warmup",
        "3",
        "--duration",
        "4",
        "--power",
        f"rapl:{root}",
        "--idle-seconds",
        "3",
        "--json",
        str(out),
    )
    run_under_truth(truth, command)
    results = json.loads(out.read_text())
    power = results["power"]
    assert power["source"] == "rapl" and power["counters"] is True
    assert power["idle_method"] == "counters" and power["idle_s"] == pytest.approx(3.0, rel=0.05)
    assert power["idle_w"]["package-0"] == pytest.approx(IDLE_W, rel=0.03)
    backend = results["backends"][0]
    energy = backend["energy"]
    assert energy["method"] == "counters" and energy["coverage"] > 0.99
    per_second = backend["throughput_per_s"]  # inferences per second of timed wall time
    assert energy["mean_power_w"]["package-0"] == pytest.approx(BUSY_W, rel=0.03)
    assert energy["mj_per_inference"] == pytest.approx(BUSY_W / per_second * 1000, rel=0.03)
    assert energy["active_mj_per_inference"] == pytest.approx(
        (BUSY_W - IDLE_W) / per_second * 1000, rel=0.03
    )
