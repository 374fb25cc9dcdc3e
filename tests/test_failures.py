"""One failing backend never stops the others; options a backend cannot take make it
unavailable; Ctrl+C during a preparation stops `bench` promptly; and `bench` survives
every combination of the options the CLI offers over the default backend list."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry as backends
from anetui.backends.base import BackendDescription, BackendError, PrepareInfo
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.errors import Availability
from anetui.models.spec import ModelSpec
from tests import doubles
from tests.conftest import REPO, SMALL_MODEL, anetui_cmd

HERE = Path(__file__).parent
REPLAY = (
    HERE / "data/powermetrics/m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist"
)


class PrepareRaises(doubles.CountingBackend):
    """A runtime that throws its own exception type while preparing."""

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        raise KeyError("CoreMLExecutionProvider: model has no output named 'logits'")


class FirstInferenceRaises(doubles.CountingBackend):
    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        self.infer()
        return PrepareInfo(0.0, 0.0, 0.0)

    def infer(self) -> None:
        raise MemoryError("out of device memory")


class OutputFine(doubles.CountingBackend):
    def output(self) -> np.ndarray:
        return np.zeros((1, 1000), dtype=np.float32)


class RefusesBf16(OutputFine):
    def __init__(self, description: BackendDescription, options: object) -> None:
        super().__init__(description)
        if getattr(options, "dtype", None) == "bf16":
            raise BackendError(f"{description.id} runs the fp32 export, not bf16")


def broken_probe() -> Availability:
    raise OSError("libfoo.so: cannot open shared object file")


def register(
    monkeypatch: pytest.MonkeyPatch, backend_id: str, factory: object, probe: object
) -> None:
    monkeypatch.setitem(
        backends.REGISTRY,
        backend_id,
        doubles.describe_double(backend_id, factory, accepts=("none",), probe=probe),
    )


@pytest.fixture
def failing_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, "d-ok", OutputFine, Availability.yes)
    register(monkeypatch, "d-prepare", PrepareRaises, Availability.yes)
    register(monkeypatch, "d-first", FirstInferenceRaises, Availability.yes)
    register(monkeypatch, "d-probe", OutputFine, broken_probe)
    register(monkeypatch, "d-bf16", RefusesBf16, Availability.yes)


def config(**kwargs: object) -> RunConfig:
    base: dict[str, object] = {"model": "none", "warmup": 1, "iterations": 5, "duration_s": None}
    base.update(kwargs)
    return RunConfig(**base)  # type: ignore[arg-type]


def none_spec() -> ModelSpec:
    return ModelSpec(name="none", kind="none", input_shape=(1, 3, 8, 8))


def test_any_exception_is_that_backends_error(
    failing_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anetui.core import agreement

    monkeypatch.setattr(agreement, "reference_output", lambda spec: np.zeros((1, 1000), "f4"))
    ids = ("d-prepare", "d-first", "d-probe", "d-ok")
    session = Session(config(backends=ids), none_spec())
    reasons = {i: a.reason for i, a in session.availability().items()}
    assert reasons["d-probe"] == (
        "its availability check failed: OSError: libfoo.so: cannot open shared object file"
    )
    session.prepare()
    session.run()
    results = {b.id: b for b in session.snapshot().backends}
    assert results["d-prepare"].state == "error"
    assert results["d-prepare"].error == (
        'd-prepare failed to prepare: KeyError: "CoreMLExecutionProvider: model has no '
        "output named 'logits'\""
    )
    assert (
        results["d-first"].error == "d-first failed to prepare: MemoryError: out of device memory"
    )
    assert results["d-ok"].state == "done" and results["d-ok"].summary is not None
    assert results["d-ok"].summary.count == 5


def test_a_dtype_a_backend_cannot_run_makes_it_unavailable(failing_registry: None) -> None:
    session = Session(config(backends=("d-bf16", "d-ok"), dtype="bf16"), none_spec())
    availability = session.availability()
    assert availability["d-bf16"] == Availability.no("runs the fp32 export, not bf16")
    assert session.runnable() == ["d-ok"]


def test_a_stopped_session_prepares_nothing(failing_registry: None) -> None:
    session = Session(config(backends=("d-ok",)), none_spec())
    session.stop_event.set()
    assert session.prepare_backend("d-ok") is False
    assert session.live()["d-ok"].state == "pending"


def test_ctrl_c_during_an_export_stops_bench(tmp_path: Path) -> None:
    """The worker is abandoned mid-export (it cannot be interrupted); bench prints what
    it has, exits 130, and the half-made export never becomes a cache entry."""
    pytest.importorskip("onnxruntime")
    env = {**os.environ, "ANETUI_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        anetui_cmd("bench", "--backends", "onnx-cpu", "--model", "resnet50", "--iterations", "1"),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Interrupt once the export is under way: its staging folder exists (a state on
        # disk, not a time). The wait is bounded by the process ending.
        staging = tmp_path / "cache" / "onnx"
        while proc.poll() is None and not any(staging.glob(".*")):
            threading.Event().wait(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "stopped (abandoned while preparing onnx-cpu)" in err
    assert "interrupted (SIGINT): the results above are partial" in err
    assert "Traceback" not in err and "terminate called" not in err
    entries = [p for p in (tmp_path / "cache" / "onnx").glob("*") if not p.name.startswith(".")]
    assert entries == []  # stopped before the export finished


DTYPES = (None, "fp32", "fp16", "bf16")
THREADS = (None, 1)
BATCHES = (1, 2)
POWER = ("none", f"replay:{REPLAY}")


@pytest.mark.slow
def test_bench_survives_every_option_combination(tmp_path: Path) -> None:
    """dtype × threads × batch × power over the default backend list, a few inferences
    each, in one process (imports once). No combination may crash; a backend either
    measures, is unavailable with a reason, or fails with its own message."""
    from anetui.cli.main import main

    pytest.importorskip("onnxruntime")
    os.environ["ANETUI_CACHE_DIR"] = str(tmp_path / "cache")
    import torch

    threads_before = torch.get_num_threads()
    failures: list[str] = []
    try:
        for n, (dtype, threads, batch, power) in enumerate(
            itertools.product(DTYPES, THREADS, BATCHES, POWER)
        ):
            out = tmp_path / f"run{n}.json"
            argv = ["bench", "--model", SMALL_MODEL, "--input-shape", f"{batch},3,32,32"]
            argv += ["--warmup", "1", "--iterations", "2", "--json", str(out), "--power", power]
            argv += ["--speed", "50"] if power != "none" else []
            argv += ["--dtype", dtype] if dtype else []
            argv += ["--threads", str(threads)] if threads else []
            code = main(argv)
            label = f"dtype={dtype} threads={threads} batch={batch} power={power[:6]}"
            assert code in (0, 1), f"{label}: exit {code}"
            assert out.exists(), f"{label}: exit {code} without results (a crash)"
            data = json.loads(out.read_text())
            rows = data["backends"]
            # The default set less the decoder-only runtimes (mlx, ort-genai): an image model.
            expected = [
                i for i in backends.default_ids() if "torchvision" in backends.describe(i).accepts
            ]
            assert [r["id"] for r in rows] == expected and "mlx-cpu" not in expected, label
            errors = [r for r in rows if r.get("state") == "error"]
            assert (code == 1) == bool(errors), label
            for row in rows:
                if not row["available"]:
                    assert row["reason"], f"{label}: {row['id']} unavailable without a reason"
                elif row.get("state") == "error":
                    assert row["error"], f"{label}: {row['id']} failed without a message"
                    failures.append(f"{label}: {row['error']}")
                else:
                    assert row["count"] == 2, f"{label}: {row['id']}"
                    assert row["dtype"] == (dtype or row["dtype"]), label
            measured = [r["id"] for r in rows if r.get("count")]
            assert "torch-cpu" in measured, label
            assert data["power"]["source"] == ("none" if power == "none" else "replay"), label
    finally:
        torch.set_num_threads(threads_before)
        os.environ.pop("ANETUI_CACHE_DIR", None)
    assert failures == [], failures


def test_model_thread_runs_in_order_and_is_abandoned_without_waiting() -> None:
    """The API a quitting dashboard needs: queued work cancelled, the running job left
    behind, the caller never blocked, the process free to exit."""
    from anetui.ui.modelthread import ModelThread

    worker = ModelThread()
    order: list[int] = []
    assert [worker.submit(order.append, i).result(timeout=60) for i in range(3)] == [None] * 3
    assert order == [0, 1, 2]
    failing = worker.submit(int, "not a number")
    with pytest.raises(ValueError):
        failing.result(timeout=60)

    started, release, stop = threading.Event(), threading.Event(), threading.Event()

    def preparation() -> bool:  # one that does not look at `stop`
        started.set()
        return release.wait()

    running = worker.submit(preparation)
    queued = worker.submit(order.append, 99)
    assert started.wait(60)
    stop.set()  # what the dashboard does to the session before leaving
    assert worker.shutdown(0) is False  # returns at once, the job still running
    assert queued.cancelled() and not running.done()
    assert worker.submit(order.append, 100).cancelled()
    release.set()
    assert running.result(timeout=60) is True
    assert order == [0, 1, 2]

    code = (
        "import threading\n"
        "from anetui.ui.modelthread import ModelThread\n"
        "worker = ModelThread()\n"
        "worker.submit(threading.Event().wait)\n"  # never returns
        "worker.shutdown(0)\n"
        "print('left')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0 and proc.stdout == "left\n", proc.stderr
