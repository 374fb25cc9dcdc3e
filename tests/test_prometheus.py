"""`--metrics`: the address rule, the metric families against the results JSON, the
exporter's server, and `anetui bench --metrics` scraped twice while it runs."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import click
import pytest
from prometheus_client.parser import text_string_to_metric_families

from anetui.cli.metrics import parse_address
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.power.monitor import PowerMonitor
from anetui.power.replay import ReplaySource
from anetui.report.prometheus import MetricsExporter
from anetui.report.results_json import to_json
from tests.conftest import SMALL_MODEL, SMALL_SHAPE, anetui_cmd
from tests.test_energy import constant_power_recording
from tests.test_session import doubles_registry  # noqa: F401  (fixture)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one /metrics page."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str):  # type: ignore[no-untyped-def]
    """The one sample called ``name`` whose labels include ``labels`` (None if absent)."""
    found = [
        v
        for (n, ls), v in page.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9464", ("127.0.0.1", 9464)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:9100", ("localhost", 9100)),
    ],
)
def test_address_rule(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [(":9464", "names no host"), ("host:http", "not HOST:PORT"), ("70000", "range")],
)
def test_bad_addresses_say_why(text: str, says: str) -> None:
    with pytest.raises(click.BadParameter, match=says):
        parse_address(text)


def test_bad_metrics_address_is_a_usage_error() -> None:
    done = subprocess.run(
        anetui_cmd("bench", "--metrics", ":9464"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "names no host" in done.stderr and "Traceback" not in done.stderr


def test_metrics_agree_with_the_results_json(
    tmp_path: Path,
    doubles_registry: None,  # noqa: F811
) -> None:
    recording = tmp_path / "constant.plist"
    constant_power_recording(recording, watts=5.0)
    monitor = PowerMonitor(ReplaySource(recording, loop=True))
    assert monitor.start()
    config = RunConfig(
        backends=("double-ok",), warmup=0, iterations=None, duration_s=1.5, idle_seconds=0.5
    )
    session = Session(config, ModelSpec(name="none", kind="none", input_shape=(1,)), monitor)
    exporter = MetricsExporter("127.0.0.1", 0)
    try:
        exporter.start()
        assert exporter.port != 0
        before = scrape(exporter.url)  # no session yet: the info metric only
        assert value(before, "anetui_info", anetui="0.1.0") == 1.0
        assert value(before, "anetui_inferences_total") is None
        exporter.follow(lambda: session)
        session.prepare()
        session.run()
        monitor.stop()
        snapshot = session.snapshot()
        exporter.freeze(snapshot, session)
        assert not exporter.wait_for_final_scrape(0)  # frozen, not yet read
        page = scrape(exporter.url)
        assert exporter.wait_for_final_scrape(10)  # once that response has been sent
    finally:
        exporter.stop()
        monitor.stop()
        session.close()
    doc = to_json(snapshot)
    backend = doc["backends"][0]
    labels = {"backend": "double-ok", "model": "none", "device": "cpu"}
    assert value(page, "anetui_inferences_total", **labels) == backend["count"] > 0
    assert value(page, "anetui_inference_latency_seconds_count", **labels) == backend["count"]
    latency = backend["latency_ms"]
    for q, name in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("0.999", "p999")):
        seconds = value(page, "anetui_inference_latency_seconds", quantile=q, **labels)
        assert seconds == pytest.approx(latency[name] / 1e3, rel=1e-5, abs=1e-9)
    mean_s = value(page, "anetui_inference_latency_seconds_sum", **labels) / backend["count"]
    assert mean_s == pytest.approx(latency["mean"] / 1e3, abs=1e-9)  # the JSON keeps ns
    energy = backend["energy"]
    assert energy is not None, "the replayed 5 W must be attributed"
    gross = value(page, "anetui_energy_per_inference_joules", **labels)
    assert gross == pytest.approx(energy["mj_per_inference"] / 1e3, rel=1e-5, abs=1e-9)
    active = value(page, "anetui_active_energy_per_inference_joules", **labels)
    assert active == pytest.approx(energy["active_mj_per_inference"] / 1e3, rel=1e-4, abs=1e-9)
    rail_j = value(page, "anetui_rail_energy_joules_total", rail="cpu", **labels)
    expected_j = energy["mj_per_inference_by_rail"]["cpu"] * energy["inferences_in_windows"] / 1e3
    assert rail_j == pytest.approx(
        expected_j,
        rel=1e-5,
        abs=1e-9 * (1 + energy["inferences_in_windows"]),  # rounded mJ/inf
    )
    assert value(page, "anetui_rail_power_watts", rail="cpu", **labels) == pytest.approx(
        energy["mean_power_w"]["cpu"], rel=1e-5, abs=1e-6
    )
    assert value(page, "anetui_rail_power_watts", rail="cpu", **labels) == pytest.approx(5.0, 0.01)
    assert value(page, "anetui_energy_coverage_ratio", **labels) == pytest.approx(
        energy["coverage"], rel=1e-5, abs=1e-6
    )
    assert value(page, "anetui_power_source_state", source="replay", state="stopped") == 1.0
    assert value(page, "anetui_power_source_state", source="replay", state="running") == 0.0
    assert value(page, "anetui_thermal_pressure", source="replay", level="Nominal") == 1.0
    assert value(page, "anetui_source_power_watts", rail="cpu") == pytest.approx(5.0, rel=0.01)
    assert value(page, "anetui_idle_power_watts", rail="cpu") == pytest.approx(5.0, rel=0.01)
    # Stopped means stopped: nothing listens there any more (SO_REUSEADDR skips the
    # closed connections' TIME_WAIT, not a listener).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", exporter.port))
        s.listen()


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            anetui_cmd("bench", "--backends", "torch-cpu", "--metrics", f"127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_bench_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    """What a new user does: scrape during the run; the counter grows between scrapes
    and its last value is the JSON's count."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    results = tmp_path / "r.json"
    args = [
        "bench", "--backends", "torch-cpu", "--model", SMALL_MODEL,
        "--input-shape", ",".join(map(str, SMALL_SHAPE)), "--warmup", "1",
        "--duration", "6", "--metrics", f"127.0.0.1:{port}", "--metrics-linger", "60",
        "--json", str(results),
    ]  # fmt: skip
    proc = subprocess.Popen(
        anetui_cmd(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    labels = {"backend": "torch-cpu", "model": SMALL_MODEL, "device": "cpu"}
    scraped: list[float] = []  # the counter at every scrape that had it
    try:
        # Scrape every 0.5 s until the bench exits: it exits only after a scrape has read
        # its final figures, so the last successful scrape is one of those.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = scrape(url)
            except OSError:
                time.sleep(0.3)  # not listening yet, or just stopped
                continue
            count = value(page, "anetui_inferences_total", **labels)
            if count:
                scraped.append(count)
                assert value(page, "anetui_inference_latency_seconds", quantile="0.5", **labels)
            time.sleep(0.5)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    final = json.loads(results.read_text())["backends"][0]["count"]
    assert len(set(scraped)) >= 2, f"the counter never grew during the run: {scraped}"
    assert scraped == sorted(scraped) and scraped[0] < scraped[-1]
    assert scraped[-1] == final
    assert f"metrics: {url}" in err


@pytest.mark.slow
def test_dashboard_serves_metrics(tmp_path: Path) -> None:
    """`anetui --metrics ADDR` (the dashboard, in a real pseudo-terminal) exposes the
    session it runs; the exporter stops when the dashboard quits."""
    import os
    import pty
    import threading

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    master, slave = pty.openpty()
    args = [
        "--backends", "torch-cpu", "--model", SMALL_MODEL, "--input-shape",
        ",".join(map(str, SMALL_SHAPE)), "--warmup", "1", "--power", "none",
        "--metrics", f"127.0.0.1:{port}", "--exit-after", "90", "--out", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(
        anetui_cmd(*args),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(slave)

    def drain() -> None:  # the dashboard's screen goes nowhere, but must not block
        with contextlib.suppress(OSError):
            while os.read(master, 65536):
                pass

    threading.Thread(target=drain, daemon=True).start()
    labels = {"backend": "torch-cpu", "model": SMALL_MODEL, "device": "cpu"}
    count = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                count = value(scrape(url), "anetui_inferences_total", **labels)
            except OSError:
                count = None
            if count:
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(master)
    assert count and count > 0, "the dashboard's torch-cpu count never reached /metrics"
    with pytest.raises(OSError):
        scrape(url)  # stopped with the dashboard
