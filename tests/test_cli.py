"""The CLI as a user runs it: real subprocesses, real exit codes, real stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anetui.backends import torch_base
from tests.conftest import REPO, SMALL_MODEL, anetui_cmd

#: A model and input small enough that a run costs well under a second.
TINY_RUN = ("--model", SMALL_MODEL, "--input-shape", "1,3,32,32", "--warmup", "1")


#: Only a guard against a hang, never a figure the test checks: a run over the default
#: backends with cold caches (torch.compile, ExecuTorch lowering, conversions) took 163 s
#: on this 2-core machine under load; a machine with 1 slower core takes longer.
HANG_S = 1200


def anetui(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        anetui_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=HANG_S
    )


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], code: int, *fragments: str
) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if "error" in line.lower()]
    assert len(error_lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr


def modules_loaded_by(argv: list[str]) -> set[str]:
    """Run the CLI's main() in a fresh interpreter and list what it imported."""
    code = (
        "import sys, json, io, contextlib\n"
        "from anetui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({argv!r})\n"
        "print(json.dumps({'rc': rc, 'mods': sorted(sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0
    return set(result["mods"])


@pytest.mark.parametrize("argv", [["--help"], ["doctor"], ["bench", "--help"]])
def test_help_and_doctor_never_import_torch(argv: list[str]) -> None:
    loaded = modules_loaded_by(argv)
    assert "torch" not in loaded and "torchvision" not in loaded
    assert "textual" not in loaded


def test_doctor_lists_every_backend_with_a_reason() -> None:
    proc = anetui("doctor")
    assert proc.returncode == 0
    for backend_id in ("torch-cpu", "torch-cpu-opt", "torch-cuda", "torch-cuda-graph", "torch-mps"):
        assert backend_id in proc.stdout
    assert "MPS needs macOS on Apple silicon" in proc.stdout or sys.platform == "darwin"
    assert "power sources" in proc.stdout


def test_unknown_backend_is_a_usage_error() -> None:
    proc = anetui("bench", "--backends", "torch-cpu,torch-tpu")
    assert proc.returncode == 2 and "unknown backend torch-tpu" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_asking_for_an_unavailable_backend_exits_with_its_reason() -> None:
    if torch_base.torch_cuda().ok:
        pytest.skip("an NVIDIA GPU is present")
    proc = anetui("bench", "--backends", "torch-cuda", "--iterations", "1")
    assert_one_line_error(proc, 1, "torch-cuda: not run — no NVIDIA GPU")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--model", "resnet_nope"], 1, "unknown model 'resnet_nope'"),
        (["--model", "missing/model.pt2"], 1, "model file not found"),
        (["--input-shape", "1,3,x"], 1, "bad input shape"),
        (["--iterations", "5", "--duration", "1"], 2, "not both"),
        (["--iterations", "0"], 2, "--iterations"),
        (["--backends", "torch-cpu", "--reference", "torch-cpu-opt"], 2, "not among --backends"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args: list[str], code: int, fragment: str) -> None:
    proc = (
        anetui("bench", "--backends", "torch-cpu", *args)
        if "--backends" not in args
        else anetui("bench", *args)
    )
    assert_one_line_error(proc, code, fragment)


def test_corrupt_model_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_text("not a zip")
    proc = anetui("bench", "--backends", "torch-cpu", "--model", str(bad), "--iterations", "1")
    assert_one_line_error(proc, 1, "cannot load bad.pt2 as a torch.export program")


def test_bench_writes_results_json_and_markdown(tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "out.json", tmp_path / "report.md"
    proc = anetui(
        "bench",
        "--backends",
        "torch-cpu,torch-cpu-opt",
        "--model",
        SMALL_MODEL,
        "--input-shape",
        "1,3,64,64",
        "--warmup",
        "2",
        "--iterations",
        "30",
        "--interleave",
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
    )
    assert proc.returncode == 0, proc.stderr
    # stdout: the table and the summary sentence; stderr: progress lines, nothing else.
    # 30 inferences each: a ratio is claimed, or "no clear difference" when its
    # interval contains 1 (on a busy machine the two can overlap).
    summary = json.loads(out_json.read_text())["ratios"][0]["summary"]
    assert summary.startswith(
        ("torch-cpu-opt ran ", "torch-cpu-opt against torch-cpu: no clear difference")
    )
    assert summary in proc.stdout and summary not in proc.stderr
    assert "p50 (95% CI)" in proc.stdout
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "anetui.results/2"
    assert doc["config"]["model"] == SMALL_MODEL and doc["config"]["input_shape"] == [1, 3, 64, 64]
    assert [b["id"] for b in doc["backends"]] == ["torch-cpu", "torch-cpu-opt"]
    for backend in doc["backends"]:
        assert backend["count"] == 30 and backend["available"] is True
        latency = backend["latency_ms"]
        assert (
            latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
        )
        assert latency["p50_ci95"][0] <= latency["p50"] <= latency["p50_ci95"][1]
        assert backend["throughput_per_s"] > 0 and backend["energy"] is None
    ratio = doc["ratios"][0]
    assert ratio["reference"] == "torch-cpu" and ratio["backend"] == "torch-cpu-opt"
    assert ratio["speed_ci95"][0] <= ratio["speed"] <= ratio["speed_ci95"][1]
    env = doc["environment"]
    for key in ("os", "machine", "cpu", "python", "torch", "anetui", "threads", "privileges"):
        assert env[key] is not None
    md = out_md.read_text()
    for heading in (
        "## Test configuration",
        "## Latency",
        "## Speedup",
        "## Environment",
        "## Method",
    ):
        assert heading in md
    assert "Throughput:" in md and "Median latency:" in md


def test_default_backends_are_those_available_and_the_rest_are_listed() -> None:
    proc = anetui("bench", *TINY_RUN, "--iterations", "3")
    assert proc.returncode == 0, proc.stderr
    assert "torch-cpu-opt" in proc.stdout
    if not torch_base.torch_mps().ok:
        assert "torch-mps: not run — MPS needs macOS on Apple silicon" in proc.stdout
        assert "skipping torch-mps" in proc.stderr


def test_ctrl_c_stops_cleanly_with_partial_results() -> None:
    import signal

    from tests.test_bench_signals import wait_for_inferences
    from tests.test_prometheus import free_port

    port = free_port()
    metrics = ("--metrics", f"127.0.0.1:{port}", "--metrics-linger", "0")
    proc = subprocess.Popen(
        anetui_cmd("bench", "--backends", "torch-cpu", *TINY_RUN, "--duration", "60", *metrics),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # progress lines: stderr is not a terminal here
        if "torch-cpu: running" in line:
            break
    # Some inferences done (a state, not a sleep: on a slow machine the first may take
    # longer than any fixed wait), so that there are partial results to print.
    wait_for_inferences(port, proc, at_least=1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "torch-cpu" in out and "p50 (95% CI)" in out  # the partial results


def test_an_unforeseen_error_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from anetui import cli
    from anetui.cli import doctor

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody planned for\nsecond line")

    monkeypatch.setattr(doctor, "print_doctor", broken)
    monkeypatch.delenv("ANETUI_DEBUG", raising=False)
    assert cli.main(["doctor"]) == 1
    assert capsys.readouterr().err == (
        "anetui: internal error: RuntimeError: something nobody planned for "
        "(ANETUI_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("ANETUI_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["doctor"])
