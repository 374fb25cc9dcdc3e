"""A real Prometheus (Debian's `prometheus`) scrapes `anetui bench --metrics`; its HTTP
API then holds the run's inference count and energy figures, as in the results JSON.

Everything on loopback, bounded in time; Prometheus and the bench are stopped on every
exit path. `make test` installs the package when it runs as root with apt-get.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SMALL_MODEL, SMALL_SHAPE, anetui_cmd
from tests.test_energy import constant_power_recording
from tests.test_prometheus import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="needs Debian's prometheus: apt-get update && apt-get install -y prometheus "
        "(`make test` installs it when run as root)",
    ),
]


def query(base: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(base: str, promql: str) -> float | None:
    result = query(base, promql)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """terminate → wait with a timeout → kill."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prometheus_scrapes_bench_and_agrees_with_its_json(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: anetui\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        "        labels: {machine: test}\n"
    )
    base = f"http://127.0.0.1:{prom_port}"
    prom_log = (tmp_path / "prometheus.log").open("wb")
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    bench: subprocess.Popen[bytes] | None = None
    doc: dict[str, Any] | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus never became ready"
            time.sleep(0.3)

        recording = tmp_path / "constant.plist"
        constant_power_recording(recording, watts=5.0, windows=20, window_ms=250)
        results = tmp_path / "run.json"
        args = [
            "bench", "--backends", "torch-cpu", "--model", SMALL_MODEL,
            "--input-shape", ",".join(map(str, SMALL_SHAPE)), "--warmup", "1",
            "--duration", "5", "--power", f"replay:{recording}", "--idle-seconds", "1",
            "--metrics", f"127.0.0.1:{metrics_port}", "--metrics-linger", "30",
            "--json", str(results),
        ]  # fmt: skip
        bench = subprocess.Popen(anetui_cmd(*args), stdout=subprocess.DEVNULL)
        assert bench.wait(240) == 0
        doc = json.loads(results.read_text())
    finally:
        if bench is not None:
            stop(bench)
        try:
            selector = '{job="anetui",backend="torch-cpu",machine="test"}'
            # The bench lingers until a scrape has read its final figures; wait until
            # Prometheus has committed that scrape (a state, bounded), then read back.
            final = doc["backends"][0]["count"] if doc is not None else None
            deadline = time.monotonic() + 30
            while final is not None and time.monotonic() < deadline:
                expr = f"last_over_time(anetui_inferences_total{selector}[10m])"
                if scalar(base, expr) == final:
                    break
                time.sleep(0.2)
            scrapes = scalar(base, f"count_over_time(anetui_inferences_total{selector}[10m])")
            first = scalar(base, f"min_over_time(anetui_inferences_total{selector}[10m])")
            last = scalar(base, f"last_over_time(anetui_inferences_total{selector}[10m])")
            gross = scalar(
                base, f"last_over_time(anetui_energy_per_inference_joules{selector}[10m])"
            )
            rail = scalar(
                base,
                'last_over_time(anetui_rail_energy_joules_total{job="anetui",'
                'backend="torch-cpu",rail="cpu"}[10m])',
            )
            p50 = scalar(
                base,
                'last_over_time(anetui_inference_latency_seconds{job="anetui",'
                'backend="torch-cpu",quantile="0.5"}[10m])',
            )
            info = query(base, 'last_over_time(anetui_info{job="anetui"}[10m])')
            # Scrapes after the bench exited failed and marked its series stale: ask the
            # dashboard's (instant) queries at the time of the last good scrape.
            samples = query(base, 'anetui_info{job="anetui"}[10m]')
            last_scrape = max(float(t) for series in samples for t, _v in series["values"])
            empty_panels = [
                expr for expr in dashboard_queries() if not query(base, expr, at=last_scrape)
            ]
        finally:
            stop(prometheus)
            prom_log.close()
    assert doc is not None
    backend = doc["backends"][0]
    assert scrapes is not None and scrapes >= 2, f"{scrapes} scrapes"
    assert first is not None and last is not None and first <= last
    assert last == backend["count"] > 0
    energy = backend["energy"]
    assert energy is not None, "the replayed 5 W must be attributed to torch-cpu"
    assert gross == pytest.approx(energy["mj_per_inference"] / 1e3, rel=1e-5, abs=1e-9)
    expected_rail_j = energy["mj_per_inference_by_rail"]["cpu"] * energy["inferences_in_windows"]
    assert rail == pytest.approx(
        expected_rail_j / 1e3, rel=1e-5, abs=1e-9 * (1 + energy["inferences_in_windows"])
    )
    assert p50 == pytest.approx(backend["latency_ms"]["p50"] / 1e3, rel=1e-5, abs=1e-9)
    # Scrapes before the session existed gave a series without the runtime labels.
    torch_labels = [i["metric"]["torch"] for i in info if "torch" in i["metric"]]
    assert torch_labels == [doc["environment"]["torch"]]
    assert not empty_panels, f"Grafana queries with no data from a real run: {empty_panels}"


def dashboard_queries() -> list[str]:
    """Every query of deploy/grafana-dashboard.json, with Grafana's variables filled in
    as Grafana would for "All" (a regex) and a 1 m rate window."""
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    fill = {"$machine": ".*", "$backend": ".*", "$__rate_interval": "1m"}
    return [re.sub(r"\$\w+", lambda m: fill[m.group(0)], e) for e in exprs]
