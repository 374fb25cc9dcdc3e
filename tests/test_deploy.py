"""deploy/: the fleet's Prometheus config is valid for promtool, and the Grafana
dashboard asks only for metrics the exporter writes, by the labels it and the config set.
(test_prometheus_server.py runs every dashboard query against a real Prometheus.)"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from anetui.core.results import Snapshot
from anetui.power.base import PowerSample
from anetui.report.prometheus import View, metric_families
from tests.conftest import REPO
from tests.test_compare import backend, energy

DEPLOY = REPO / "deploy"


def exporter_text() -> str:
    """The /metrics page for a run with energy, an idle baseline and thermal pressure."""
    gross = energy(6.0, ("cpu", "gpu", "ane"))
    with_active = dataclasses.replace(
        gross, active_mj_per_inference={r: v * 0.8 for r, v in gross.mj_per_inference.items()}
    )
    snapshot = Snapshot(
        created="2026-11-29T03:00:00Z",
        model="mobilenet_v2",
        input_shape=(1, 3, 224, 224),
        environment={"torch": "2.14.1", "cpu": "Apple M4 Max"},
        config={},
        backends=(backend("coreml-ane", 0.5, "ane", with_active),),
        reference=None,
        ratios=(),
        power={"source": "powermetrics", "state": "running", "idle_w": {"cpu": 0.4}},
    )
    latest = PowerSample(0, 250_000_000, {"cpu": 100.0, "ane": 50.0}, "Nominal")

    class Once:
        def collect(self):  # type: ignore[no-untyped-def]
            return metric_families(View(snapshot, latest), host="m4max")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Once())
    return generate_latest(registry).decode()


def test_prometheus_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian's prometheus): apt-get install -y prometheus")
    done = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_machine_is_labelled() -> None:
    config = (DEPLOY / "prometheus.yml").read_text()
    targets = re.findall(r"- targets: \[\"([^\"]+)\"\]\n\s+labels: \{machine: (\S+)\}", config)
    assert len(targets) >= 2, "a fleet: several machines, each with a machine label"
    assert len({m for _t, m in targets}) == len(targets)


def test_dashboard_asks_only_for_what_the_exporter_writes() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    written = set(re.findall(r"^(anetui_\w+)", exporter_text(), flags=re.MULTILINE))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    asked = {name for e in exprs for name in re.findall(r"anetui_\w+", e)}
    assert asked and asked <= written, asked - written
    # What the issue asks the dashboard to show.
    for metric in (
        "anetui_inference_latency_seconds",
        "anetui_energy_per_inference_joules",
        "anetui_rail_power_watts",
    ):
        assert metric in asked
    assert all('machine=~"$machine"' in e for e in exprs if "anetui_" in e and "label_" not in e)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
