"""The regression gate: `bench --baseline`, against baselines made from a real run whose
figures are then changed (so no verdict depends on this machine's speed)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from anetui.report.compare import Run
from anetui.report.gate import EXIT_REFUSED, EXIT_REGRESSION, evaluate, markdown
from tests.conftest import SMALL_MODEL, anetui_cmd

#: Most tests here read a real run (a module fixture) or run bench.
pytestmark = pytest.mark.slow
SHAPE = "1,3,32,32"
BENCH = ("bench", "--backends", "torch-cpu", "--model", SMALL_MODEL, "--input-shape", SHAPE,
         "--iterations", "40", "--warmup", "2")  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(anetui_cmd(*args), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_thread_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real 2-thread run's results document."""
    path = tmp_path_factory.mktemp("gate") / "two-threads.json"
    proc = run(*BENCH, "--threads", "2", "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def fixed(doc: dict[str, Any], p50: float, half_width: float, ci975: bool = True) -> dict[str, Any]:
    """The document with torch-cpu's median set to p50 and its intervals p50 ± half_width
    (95 %) and p50 ± 1.5 half_width (97.5 %), or no 97.5 % interval (an older file)."""
    out = copy.deepcopy(doc)
    latency = out["backends"][0]["latency_ms"]
    latency["p50"] = p50
    latency["p50_ci95"] = [p50 - half_width, p50 + half_width]
    latency["p50_ci975"] = [p50 - 1.5 * half_width, p50 + 1.5 * half_width]
    if not ci975:
        del latency["p50_ci975"]
    return out


def save(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_the_results_keep_what_the_gate_needs(two_thread_run: dict[str, Any]) -> None:
    latency = two_thread_run["backends"][0]["latency_ms"]
    lo95, hi95 = latency["p50_ci95"]
    lo975, hi975 = latency["p50_ci975"]
    assert lo975 <= lo95 <= latency["p50"] <= hi95 <= hi975  # the wider interval holds more
    assert two_thread_run["backends"][0]["factors"]["threads"] == "2"
    # The achieved work rate: FLOPs of one inference × inferences/s, and ÷ the median.
    backend, flops = two_thread_run["backends"][0], two_thread_run["config"]["flops_per_inference"]
    assert flops > 0 and "FlopCounterMode" in two_thread_run["config"]["flops_method"]
    assert backend["gflops_per_s"] == pytest.approx(
        flops * backend["throughput_per_s"] / 1e9, rel=1e-3
    )
    assert backend["gflops_per_s_at_p50"] == pytest.approx(flops / latency["p50"] / 1e6, rel=1e-3)


def test_a_run_against_itself_is_no_clear_difference(two_thread_run: dict[str, Any]) -> None:
    report = evaluate(
        Run("b", Path("b.json"), two_thread_run), Run("c", Path("c"), two_thread_run), 0.05
    )
    assert report.exit_code == 0 and not report.refused and not report.settings_differ
    (finding,) = report.findings
    assert finding.ratio == pytest.approx(1.0)
    assert finding.interval is not None and finding.interval[0] <= 1 <= finding.interval[1]
    assert finding.confidence == "95 %" and finding.verdict == "no clear difference"


def test_a_one_thread_run_against_a_faster_two_thread_baseline_fails_with_3(
    two_thread_run: dict[str, Any], tmp_path: Path
) -> None:
    # The baseline's median 100 ns, with a narrow interval (a run's own interval can be
    # wide on a busy machine): no CPU runs this model that fast, so the run is slower.
    baseline = save(fixed(two_thread_run, 1e-4, 1e-6), tmp_path / "base.json")
    summary, page, report = tmp_path / "summary.md", tmp_path / "gate.html", tmp_path / "r.md"
    summary.write_text("# earlier step\n")
    proc = run(*BENCH, "--threads", "1", "--baseline", str(baseline), "--max-regression", "10%",
               "--summary", str(summary), "--html", str(page),
               "--markdown", str(report))  # fmt: skip
    assert proc.returncode == EXIT_REGRESSION, proc.stdout + proc.stderr
    verdict = next(line for line in proc.stdout.splitlines() if line.startswith("gate against"))
    assert "regression: torch-cpu: p50 latency" in verdict and "clear regression" in verdict
    assert "95 % interval" in verdict
    # Threads are a run setting: reported, not refused.
    assert "threads 2 vs 1" in proc.stdout
    text = summary.read_text()
    assert text.startswith("# earlier step\n")  # appended, as $GITHUB_STEP_SUMMARY wants
    assert "anetui regression gate" in text and "| torch-cpu | p50 latency |" in text
    assert "**clear regression**" in text
    assert "Regression gate" in page.read_text()
    assert "## Achieved work rate" in report.read_text()
    assert "achieved work rate, GFLOP/s" in proc.stdout


def test_a_baseline_of_another_model_is_refused_with_what_differs(
    two_thread_run: dict[str, Any], tmp_path: Path
) -> None:
    other = copy.deepcopy(two_thread_run)
    other["config"]["model"] = "resnet18"
    baseline = save(other, tmp_path / "resnet.json")
    proc = run(*BENCH, "--threads", "2", "--baseline", str(baseline))
    assert proc.returncode == EXIT_REFUSED, proc.stdout + proc.stderr
    refusal = next(line for line in proc.stderr.splitlines() if "not like for like" in line)
    assert f"model resnet18 vs {SMALL_MODEL}" in refusal
    assert proc.stdout == ""  # refused before measuring anything
    # After the run, the whole like-for-like check: the input and the machine too.
    other["config"]["model"] = SMALL_MODEL
    other["config"]["input_shape"] = [1, 3, 64, 64]
    other["environment"]["cpu"] = "Some Other CPU"
    report = evaluate(Run("b", baseline, other), Run("c", Path("c"), two_thread_run), 0.05)
    assert report.exit_code == EXIT_REFUSED and not report.findings
    assert "input_shape 1×3×64×64 vs 1×3×32×32" in report.headline()
    assert "machine cpu Some Other CPU vs" in report.headline()


def test_a_different_machine_is_compared_when_allowed(two_thread_run: dict[str, Any]) -> None:
    other = copy.deepcopy(two_thread_run)
    other["environment"]["cpu"] = "Some Other CPU"
    other["environment"]["torch"] = "1.0"
    base, cur = Run("b", Path("b.json"), other), Run("c", Path("c"), two_thread_run)
    refused = evaluate(base, cur, 0.05)
    assert refused.exit_code == EXIT_REFUSED
    assert any("torch 1.0 vs" in r for r in refused.refused)
    allowed = evaluate(base, cur, 0.05, allow_different_machine=True)
    assert allowed.exit_code == 0 and allowed.allowed_machine and allowed.findings
    assert "Different machines" in markdown(allowed, base, cur)


def test_a_baseline_sharing_no_backend_with_the_run_is_refused(
    two_thread_run: dict[str, Any],
) -> None:
    other = copy.deepcopy(two_thread_run)
    other["backends"][0]["id"] = "onnx-cpu"
    report = evaluate(Run("b", Path("b.json"), other), Run("c", Path("c"), two_thread_run), 0.05)
    assert report.exit_code == EXIT_REFUSED
    assert "no backend was measured in both files" in report.headline()
    assert "onnx-cpu: in the baseline, not measured in this run" in report.notes


def test_a_backend_factor_other_than_threads_is_refused(two_thread_run: dict[str, Any]) -> None:
    other = copy.deepcopy(two_thread_run)
    other["backends"][0]["factors"]["precision"] = "fp16"
    report = evaluate(Run("b", Path("b.json"), other), Run("c", Path("c"), two_thread_run), 0.05)
    assert report.refused == ("torch-cpu precision fp16 vs fp32",)


def test_an_older_file_falls_back_to_95_percent_intervals(two_thread_run: dict[str, Any]) -> None:
    older = fixed(two_thread_run, 1.0, 0.02, ci975=False)
    current = fixed(two_thread_run, 2.0, 0.04)
    report = evaluate(Run("b", Path("b.json"), older), Run("c", Path("c"), current), 0.05)
    (finding,) = report.findings
    assert finding.ratio == pytest.approx(2.0)
    assert finding.confidence == "90 %"  # two 95 % intervals hold together at >= 90 % only
    assert finding.interval == pytest.approx((1.96 / 1.02, 2.04 / 0.98))
    assert finding.regressed and report.exit_code == EXIT_REGRESSION


def test_a_regression_needs_its_whole_interval_beyond_the_threshold(
    two_thread_run: dict[str, Any],
) -> None:
    base = Run("b", Path("b.json"), fixed(two_thread_run, 1.0, 0.02))
    # 8 % slower, but the interval (1.03–1.14) reaches below the 5 % allowed: no claim.
    unclear = evaluate(base, Run("c", Path("c"), fixed(two_thread_run, 1.08, 0.02)), 0.05)
    assert unclear.findings[0].interval == pytest.approx((1.05 / 1.03, 1.11 / 0.97))
    assert unclear.exit_code == 0 and unclear.findings[0].verdict == "no clear difference"
    clear = evaluate(base, Run("c", Path("c"), fixed(two_thread_run, 1.2, 0.02)), 0.05)
    assert clear.exit_code == EXIT_REGRESSION and "clear regression" in clear.headline()
    assert evaluate(base, Run("c", Path("c"), fixed(two_thread_run, 1.2, 0.02)), 0.5).exit_code == 0


def test_too_few_inferences_give_no_verdict(two_thread_run: dict[str, Any]) -> None:
    few = fixed(two_thread_run, 0.1, 0.001)
    few["backends"][0]["count"] = 10
    report = evaluate(Run("b", Path("b.json"), few), Run("c", Path("c"), two_thread_run), 0.05)
    assert report.exit_code == 0
    assert report.findings[0].verdict.startswith("no verdict: too few inferences")


def test_energy_is_gated_only_with_an_interval_and_the_same_rails(
    two_thread_run: dict[str, Any],
) -> None:
    def with_energy(mj: float, ci: list[float] | None, rails: list[str]) -> dict[str, Any]:
        doc = copy.deepcopy(two_thread_run)
        doc["power"]["source"] = "rapl"
        doc["backends"][0]["energy"] = {
            "total_rails": rails, "mj_per_inference": mj, "mj_per_inference_ci975": ci,
        }  # fmt: skip
        return doc

    base = Run("b", Path("b.json"), with_energy(10.0, [9.5, 10.5], ["package-0"]))
    hungrier = Run("c", Path("c"), with_energy(13.0, [12.5, 13.5], ["package-0"]))
    report = evaluate(base, hungrier, 0.05, max_energy=0.1)
    energy = next(f for f in report.findings if f.metric == "energy per inference")
    assert energy.ratio == pytest.approx(1.3)
    assert energy.interval == pytest.approx((12.5 / 10.5, 13.5 / 9.5))
    assert energy.regressed and report.exit_code == EXIT_REGRESSION
    no_ci = Run("c", Path("c"), with_energy(13.0, None, ["package-0"]))
    assert not evaluate(base, no_ci, 0.05, max_energy=0.1).regressions
    other_rails = Run("c", Path("c"), with_energy(13.0, [12.5, 13.5], ["package-0", "dram"]))
    refused = evaluate(base, other_rails, 0.05, max_energy=0.1)
    assert refused.exit_code == EXIT_REFUSED and "over different rails" in refused.refused[0]


def test_a_malformed_baseline_fails_before_measuring(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "anetui.results/1", "backends": [{"id": "x", "latency_ms": '
                   '{"p50": 1, "p99": 2, "p50_ci975": "wide"}}]}')  # fmt: skip
    proc = run("bench", "--model", "no_such_model", "--baseline", str(bad))
    assert proc.returncode == 1
    assert "p50_ci975' is not a pair of numbers" in proc.stderr
    assert "no_such_model" not in proc.stderr  # refused before the model was looked at
    assert "Traceback" not in proc.stderr


def test_the_energy_interval_of_one_run_needs_30_windows_and_holds_its_figure() -> None:
    import numpy as np

    from anetui.core.energy_figures import BackendEnergy
    from anetui.core.intervals import energy_interval

    rng = np.random.default_rng(1)
    windows = tuple((float(20.0 + rng.normal(0, 1)), 10.0) for _ in range(40))
    total = sum(e for e, _ in windows) / sum(n for _, n in windows)

    def energy(per_window: tuple[tuple[float, float], ...]) -> BackendEnergy:
        return BackendEnergy(
            rails=("cpu",), total_rails=("cpu",), windows=len(per_window), window_s=10.0,
            inferences=400.0, mj_per_inference={"total": total}, active_mj_per_inference=None,
            mean_power_w={"cpu": 1.0}, coverage=1.0, thermal_pressure=(), per_window=per_window,
        )  # fmt: skip

    interval = energy_interval(energy(windows))
    assert interval is not None and interval[0] < total < interval[1]
    assert interval[1] - interval[0] < 0.1 * total  # 40 windows of 5 % noise: narrow
    assert energy_interval(energy(windows[:29])) is None
    steady = tuple((20.0, 10.0) for _ in range(40))
    assert energy_interval(energy(steady)) == pytest.approx((total, total), rel=0.01)


def test_a_busier_machine_in_one_run_is_named_beside_the_verdict(
    two_thread_run: dict[str, Any],
) -> None:
    def busy(others: float) -> dict[str, Any]:
        doc = fixed(two_thread_run, 1.0, 0.01)
        doc["backends"][0]["contention"] = {"cores": 2, "others_cores": others}
        return doc

    slower = fixed(two_thread_run, 2.0, 0.02)
    slower["backends"][0]["contention"] = {"cores": 2, "others_cores": 1.4}
    report = evaluate(Run("b", Path("b.json"), busy(0.1)), Run("c", Path("c"), slower), 0.05)
    (finding,) = report.findings
    assert finding.regressed  # still a regression: the caveat informs, it does not excuse
    assert finding.caveat is not None and "busier machine in this run" in finding.sentence()
    quiet = evaluate(Run("b", Path("b.json"), busy(1.3)), Run("c", Path("c"), slower), 0.05)
    assert quiet.findings[0].caveat is None  # both runs equally busy


def test_gate_options_are_checked_as_usage() -> None:
    bad = run("bench", "--baseline", "x.json", "--max-regression", "five")
    assert bad.returncode == 2 and "'five' is not a percentage such as 5%" in bad.stderr
    alone = run("bench", "--summary", "s.md")
    assert alone.returncode == 2 and "--summary and --max-energy-regression need --baseline" in (
        alone.stderr
    )
