"""`anetui sweep`: axes, points, a real sweep over batch sizes, and the axes that wait."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from anetui.core.config import RunConfig
from anetui.core.sweep import BY_NAME, Axis, config_for, points
from anetui.report.sweep import rows, series
from tests.conftest import SMALL_MODEL, anetui_cmd


def test_points_are_the_product_of_the_axes_first_axis_slowest() -> None:
    assert points({"batch_size": [1, 2], "threads": [1, 2]}) == [
        {"batch_size": 1, "threads": 1},
        {"batch_size": 1, "threads": 2},
        {"batch_size": 2, "threads": 1},
        {"batch_size": 2, "threads": 2},
    ]


def test_a_point_sets_the_batch_of_an_explicit_input_shape_too() -> None:
    base = RunConfig(input_shape=(1, 3, 32, 32), iterations=5, duration_s=None)
    config = config_for(base, {"batch_size": 4, "threads": 2})
    assert config.batch_size == 4 and config.input_shape == (4, 3, 32, 32)
    assert config.threads == 2 and config.iterations == 5
    assert config_for(RunConfig(), {"batch_size": 8}).input_shape is None


def test_axes_without_a_config_field_say_what_they_wait_for() -> None:
    assert BY_NAME["batch_size"].available() is None
    assert BY_NAME["threads"].available() is None
    assert BY_NAME["seq_len"].available() is None  # named inputs have landed
    assert BY_NAME["prompt_len"].available() is None  # and the generative workload
    assert BY_NAME["gen_len"].available() is None
    # An axis whose RunConfig field does not exist says so instead of running.
    waiting = Axis("beams", "--beams", "beams", "beam search is supported")
    assert waiting.available() == "--beams is not available until beam search is supported"


def test_a_seq_len_sweep_of_an_image_model_is_refused_in_one_line() -> None:
    proc = subprocess.run(
        anetui_cmd("sweep", "--seq-len", "8,16", "--model", "mobilenet_v3_small"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    why = "mobilenet_v3_small is an image classifier with no sequence dimension"
    assert [line for line in lines if line.startswith("error at ")] == [
        f"error at seq_len {n}: --seq-len: {why} (--input-shape sets its input)" for n in (8, 16)
    ]
    assert lines[-1] == "anetui: error: no point of the sweep could be measured"
    assert "Traceback" not in proc.stderr


def test_a_prompt_length_sweep_of_a_decoder_and_its_refusal_for_an_image_model(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        anetui_cmd(
            "sweep",
            "--prompt-len",
            "8,16",
            "--gen-len",
            "4",
            "--model",
            "llama-tiny",
            "--backends",
            "torch-cpu",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--json",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "prompt len" in proc.stdout and "Traceback" not in proc.stderr
    doc = json.loads(out.read_text())
    assert [p["point"] for p in doc["points"]] == [
        {"prompt_len": 8, "gen_len": 4},
        {"prompt_len": 16, "gen_len": 4},
    ]
    image = subprocess.run(
        anetui_cmd("sweep", "--gen-len", "4,8", "--model", "mobilenet_v3_small"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert image.returncode == 1
    assert "mobilenet_v3_small is not a decoder" in image.stderr
    assert "Traceback" not in image.stderr


def test_sweep_needs_an_axis_and_refuses_bad_lists() -> None:
    none = subprocess.run(anetui_cmd("sweep"), capture_output=True, text=True, timeout=120)
    assert none.returncode == 2 and "give at least one axis" in none.stderr
    bad = subprocess.run(
        anetui_cmd("sweep", "--batch-size", "1,x"), capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "not a list of integers" in bad.stderr
    assert "Traceback" not in none.stderr + bad.stderr


@pytest.mark.slow
def test_a_batch_size_sweep_prints_a_row_per_batch_size(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        anetui_cmd("sweep", "--backends", "torch-cpu", "--model", SMALL_MODEL,
                   "--input-shape", "1,3,32,32", "--batch-size", "1,2,4", "--threads", "1",
                   "--iterations", "20", "--warmup", "1", "--json", str(out)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("│ ")]
    assert [row.split("│")[1].strip() for row in table_rows] == ["1", "2", "4"]
    assert "p50 latency, ms against batch size" in proc.stdout  # the plotext curve
    assert "\x1b[" not in proc.stdout  # plain text for logs
    document = json.loads(out.read_text())
    assert document["schema"] == "anetui.sweep/1"
    assert document["axes"] == {"batch_size": [1, 2, 4], "threads": [1]}
    shapes = [p["results"]["config"]["input_shape"] for p in document["points"]]
    assert shapes == [[1, 3, 32, 32], [2, 3, 32, 32], [4, 3, 32, 32]]
    flops = [p["results"]["config"]["flops_per_inference"] for p in document["points"]]
    assert flops[1] == pytest.approx(2 * flops[0], rel=0.01)  # FLOPs scale with the batch
    assert all(p["results"]["schema"].startswith("anetui.results/") for p in document["points"])
    per_row = rows(document)
    assert [r["point"]["batch_size"] for r in per_row] == [1, 2, 4]
    for row in per_row:  # samples/s = batch × inferences/s
        assert row["samples_per_s"] == pytest.approx(
            row["point"]["batch_size"] * row["throughput_per_s"], rel=1e-3
        )
    x_name, curves = series(document, "p50_ms")
    assert x_name == "batch_size" and [x for x, _ in curves["torch-cpu"]] == [1, 2, 4]
