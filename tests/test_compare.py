"""`anetui report` across files and machines: results documents written by the real
writer (``to_json``) from real latency recorders, compared side by side."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from anetui.core.energy_figures import BackendEnergy
from anetui.core.results import BackendResult, BackendState, Snapshot
from anetui.core.stats import LatencyStats
from anetui.report.compare import comparison_markdown, speed_ratio
from anetui.report.results_json import to_json
from tests.conftest import anetui_cmd

MS = 1_000_000
ENV = {
    "os": "Linux 6.1",
    "machine": "x86_64",
    "cpu": "Intel Xeon",
    "cpu_count": 2,
    "python": "3.11.7",
    "torch": "2.14.1",
    "anetui": "0.1.0",
    "threads": 2,
    "privileges": "user",
}


def energy(mj_per_inference: float, rails: tuple[str, ...]) -> BackendEnergy:
    share = {rail: mj_per_inference / len(rails) for rail in rails}
    return BackendEnergy(
        rails=rails,
        total_rails=rails,
        windows=20,
        window_s=5.0,
        inferences=1000.0,
        mj_per_inference={**share, "total": mj_per_inference},
        active_mj_per_inference=None,
        mean_power_w=dict.fromkeys(rails, 1.0),
        coverage=0.9,
        thermal_pressure=(),
    )


def backend(
    backend_id: str,
    median_ms: float,
    device: str = "cpu",
    energy_: BackendEnergy | None = None,
    n: int = 2001,
    spread: float = 0.01,
) -> BackendResult:
    """A backend whose n latencies spread evenly ±spread around median_ms."""
    stats = LatencyStats()
    lat = np.linspace(median_ms * (1 - spread), median_ms * (1 + spread), n) * MS
    stats.record_many(int(v) for v in lat)
    return BackendResult(
        id=backend_id, runtime="PyTorch", device=device, dtype="fp32", available=True,
        reason=None, state=BackendState.DONE, error=None, prepare=None,
        summary=stats.summary(), throughput_per_s=1000 / median_ms, active_s=5.0,
        agreement_max_rel_err=None, energy=energy_,
    )  # fmt: skip


def write(
    path: Path,
    backends: list[BackendResult],
    env: dict[str, object] | None = None,
    source: str = "none",
) -> Path:
    snapshot = Snapshot(
        created="2026-11-29T03:00:00Z",
        model="mobilenet_v2",
        input_shape=(1, 3, 224, 224),
        environment={**ENV, **(env or {})},
        config={"model": "mobilenet_v2", "input_shape": [1, 3, 224, 224], "warmup": 10},
        backends=tuple(backends),
        reference=None,
        ratios=(),
        power={"source": source, "state": "stopped", "label": source, "interval_ms": 250},
    )
    path.write_text(json.dumps(to_json(snapshot)))
    return path


def test_before_and_after_on_one_machine(tmp_path: Path) -> None:
    before = write(
        tmp_path / "before.json", [backend("onnx-cpu", 10.0, spread=0.1), backend("torch-cpu", 8)]
    )
    after = write(
        tmp_path / "after.json",
        [backend("onnx-cpu", 8.9, spread=0.1), backend("torch-cpu", 8.0, spread=0.2)],
        env={"torch": "2.15.0"},
    )
    ref, oth = (json.loads(p.read_text())["backends"][0]["latency_ms"] for p in (before, after))
    ratio, interval = speed_ratio({"latency_ms": ref}, {"latency_ms": oth}) or (0, None)
    assert abs(ratio - 10.0 / 8.9) < 0.005
    # The conservative interval: lowest over highest, highest over lowest.
    assert interval == (
        ref["p50_ci95"][0] / oth["p50_ci95"][1],
        ref["p50_ci95"][1] / oth["p50_ci95"][0],
    )
    assert interval[0] < ratio < interval[1]
    text = comparison_markdown([before, after])
    low, high = (f"{v:.2f}" for v in interval)
    assert f"- onnx-cpu: after ran 1.12x ({low}–{high}) faster than before\n" in text
    # Same medians, wide spread: an interval across 1 is said plainly.
    assert "torch-cpu: after ran 1.00x" in text and "no clear difference" in text
    assert "| **≠ torch** | **2.14.1** | **2.15.0** |" in text
    assert "Fields that differ: torch." in text
    assert "| cpu | Intel Xeon | Intel Xeon |" in text
    assert "## Across machines" not in text and "(different machines)" not in text
    assert "| onnx-cpu | 10.00 (" in text and "n=2001" in text  # files as columns


def test_machines_as_columns_and_the_fleet_question(tmp_path: Path) -> None:
    h200 = write(
        tmp_path / "h200.json",
        [
            backend("torch-cuda-graph", 0.8, "cuda", energy(120.0, ("gpu0",))),
            backend("torch-cpu", 9.0, "cpu"),
        ],
        env={"cpu": "Intel Xeon Platinum 8480C", "cpu_count": 224},
        source="nvml",
    )
    m4 = write(
        tmp_path / "m4max.json",
        [
            backend("coreml-ane", 0.5, "ane", energy(6.0, ("cpu", "gpu", "ane"))),
            backend("torch-cpu", 6.0, "cpu", energy(300.0, ("cpu", "gpu", "ane"))),
        ],
        env={"os": "Darwin 25.2.0", "machine": "arm64", "cpu": "Apple M4 Max", "cpu_count": 16},
        source="powermetrics",
    )
    text = comparison_markdown([h200, m4])
    header = "| backend | `h200` | `m4max` |"
    assert text.count(header) == 2  # latency and energy tables: machines as columns
    assert "| coreml-ane | – | 0.500 (" in text
    assert "| torch-cuda-graph | 120.000 / –; GPU0 | – |" in text
    for field in ("cpu", "os", "machine", "cpu_count", "power source"):
        assert f"| **≠ {field}** |" in text
    assert (
        "- Least energy: coreml-ane on m4max (Apple M4 Max) used 20.0x less energy per "
        "inference than torch-cuda-graph on h200 (Intel Xeon Platinum 8480C), measured with "
        "different power sources: nvml (GPU0) vs powermetrics (CPU+GPU+ANE) — not like for like"
    ) in text
    assert "- Fastest: coreml-ane on m4max (Apple M4 Max) ran 1.60x" in text
    assert "torch-cpu: m4max ran 1.50x" in text and "(different machines)" in text
    assert "not as a controlled experiment" in text


def test_same_source_and_rails_is_said_to_be_like_for_like(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", [backend("torch-cpu", 10.0, energy_=energy(50.0, ("cpu",)))])
    b = write(tmp_path / "b.json", [backend("torch-cpu", 10.0, energy_=energy(25.0, ("cpu",)))])
    text = comparison_markdown([a, b])
    assert "- torch-cpu: b used 2.00x less energy per inference than a, CPU\n" in text
    assert "not like for like" not in text
    assert "No environment, configuration or power field differs." in text


def test_a_different_model_is_not_the_same_work(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", [backend("torch-cpu", 10.0)])
    doc = json.loads(a.read_text())
    doc["config"]["model"] = "resnet18"
    b = tmp_path / "b.json"
    b.write_text(json.dumps(doc))
    text = comparison_markdown([a, b])
    assert "torch-cpu: b ran 1.00x" in text
    assert "(a different model or input: not the same work)" in text
    assert "| **≠ model** | **mobilenet_v2** | **resnet18** |" in text


def test_report_command_across_files(tmp_path: Path) -> None:
    before = write(tmp_path / "before.json", [backend("onnx-cpu", 10.0, spread=0.1)])
    after = write(tmp_path / "after.json", [backend("onnx-cpu", 8.9, spread=0.1)])
    out = tmp_path / "cmp.md"
    done = subprocess.run(
        anetui_cmd("report", str(before), str(after), "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "onnx-cpu: after ran 1.12x (1.11–1.13) faster than before" in out.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something/else"}')
    done = subprocess.run(
        anetui_cmd("report", str(before), str(bad)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "not an anetui results file" in done.stderr
    assert "Traceback" not in done.stderr
