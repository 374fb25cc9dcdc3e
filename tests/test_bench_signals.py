"""SIGTERM and SIGHUP stop `anetui bench` as Ctrl+C does: the partial results are
printed and written, and the exit code says which signal (128 + N). Real subprocesses,
real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_MODEL, anetui_cmd
from tests.test_prometheus import free_port, scrape, value


def wait_for_inferences(port: int, proc: subprocess.Popen[str], at_least: int) -> None:
    """Until the running bench's /metrics counts ``at_least`` timed inferences: a state
    of the run, not a time (one inference may take a second on a slow, busy machine)."""
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 120  # bounded; nothing is asserted about the time
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            count = value(scrape(url), "anetui_inferences_total", backend="torch-cpu")
        except OSError:
            count = None
        if count is not None and count >= at_least:
            return
        time.sleep(0.1)
    pytest.fail(f"the bench never counted {at_least} inferences")


def bench_until(tmp_path: Path, phase: str, signum: int) -> tuple[int, str, dict]:
    """Start a long bench, send ``signum`` once its log shows ``phase`` (and, while
    running, once some inferences are done), collect."""
    out = tmp_path / "out.json"
    port = free_port()
    proc = subprocess.Popen(
        anetui_cmd(
            "bench",
            "--model",
            SMALL_MODEL,
            "--input-shape",
            "1,3,64,64",
            "--backends",
            "torch-cpu",
            "--warmup",
            "1",
            "--duration",
            "300",
            "--json",
            str(out),
            "--metrics",
            f"127.0.0.1:{port}",
            "--metrics-linger",
            "0",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if f"torch-cpu: {phase}" in line:
                break
        else:
            pytest.fail("bench ended before the phase: " + "".join(seen))
        if phase == "running":
            wait_for_inferences(port, proc, at_least=3)
        proc.send_signal(signum)
        stdout, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    stderr = "".join(seen) + rest
    assert out.exists(), stderr
    return proc.returncode, stdout + "\n" + stderr, json.loads(out.read_text())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_while_running_keeps_the_partial_results(
    tmp_path: Path, signum: int, code: int
) -> None:
    returncode, text, results = bench_until(tmp_path, "running", signum)
    assert returncode == code, text
    (backend,) = [b for b in results["backends"] if b["id"] == "torch-cpu"]
    assert backend["count"] > 0
    assert f"interrupted ({signal.Signals(signum).name})" in text
    # The file says so too: a partial result must never pass for a whole one.
    assert results["warnings"][0] == (
        f"interrupted by {signal.Signals(signum).name}: these results are partial "
        "(1 of 1 backends; measured: torch-cpu)"
    )
    assert "torch-cpu" in text.split("interrupted")[0]  # the table came first


def test_sigterm_while_preparing_still_writes_the_results(tmp_path: Path) -> None:
    returncode, text, results = bench_until(tmp_path, "preparing", signal.SIGTERM)
    assert returncode == 143, text
    assert results["schema"] == "anetui.results/2"
    assert results["warnings"][0].endswith("(0 of 1 backends; no backend was measured yet)")
    assert "Traceback" not in text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_live_power_stops_cleanly_on_a_signal(signum: int) -> None:
    recording = (
        Path(__file__).parent
        / "data/powermetrics/m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist"
    )
    proc = subprocess.Popen(
        anetui_cmd("power", "--source", f"replay:{recording}", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # a sample arrived: the source runs
        assert "rails_mj" in first
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "error" not in stderr
