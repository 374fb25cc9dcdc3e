"""Core ML: real conversions with coremltools on this machine, the cache, availability on
Linux, and the prediction loop's logic against a stand-in model object."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from anetui import versions
from anetui.backends import coreml as coreml_backends
from anetui.backends import registry as backends
from anetui.core.config import RunConfig
from anetui.core.runner import BackendRecord, run
from anetui.core.session import Session
from anetui.models.cache import Cache
from anetui.models.convert.coreml import (
    ConversionError,
    convert,
    import_coremltools,
    quiet_coremltools,
)
from anetui.models.convert.coreml_plan import OpPlan, PlanUnavailable, compute_plan, summarize
from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelSpec
from tests.conftest import SMALL_MODEL

ct = pytest.importorskip("coremltools")


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("ANETUI_CACHE_DIR", str(root))
    return root


@pytest.fixture(scope="module")
def mobilenet_v2_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 (1, 3, 224, 224) converted for real, once for this module."""
    root = tmp_path_factory.mktemp("mnv2")
    spec = resolve_model("mobilenet_v2")
    return convert(spec, "fp16", cache=Cache("coreml", root)).path


def small(shape: tuple[int, ...] = (1, 3, 64, 64)) -> ModelSpec:
    return resolve_model(SMALL_MODEL, input_shape=shape)


def load_spec(path: Path) -> object:
    with quiet_coremltools():
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def const_dtypes(spec: object) -> Counter[str]:
    from coremltools.proto import MIL_pb2

    main = spec.mlProgram.functions["main"]  # type: ignore[attr-defined]
    block = main.block_specializations[main.opset]
    return Counter(
        MIL_pb2.DataType.Name(op.attributes["val"].type.tensorType.dataType)
        for op in block.operations
        if op.type == "const"
    )


def test_mobilenet_v2_package_spec(mobilenet_v2_package: Path) -> None:
    spec = load_spec(mobilenet_v2_package)
    assert spec.WhichOneof("Type") == "mlProgram"  # type: ignore[attr-defined]
    (inp,) = spec.description.input  # type: ignore[attr-defined]
    assert inp.name == "x"  # torchvision's own name for the input
    assert list(inp.type.multiArrayType.shape) == [1, 3, 224, 224]
    assert inp.type.multiArrayType.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    (out,) = spec.description.output  # type: ignore[attr-defined]
    assert out.name == "output" and list(out.type.multiArrayType.shape) == [1, 1000]
    dtypes = const_dtypes(spec)
    assert dtypes["FLOAT16"] > 100 and dtypes["FLOAT32"] == 0  # fp16 weights
    weights = mobilenet_v2_package / "Data/com.apple.CoreML/weights/weight.bin"
    assert 6e6 < weights.stat().st_size < 8e6  # 3.5 M parameters × 2 bytes
    meta = json.loads((mobilenet_v2_package.parent / "meta.json").read_text())
    assert meta["method"] == "torch.export" and meta["precision"] == "fp16"


def test_cache_hit_miss_changed_key_and_corrupt_entry(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = convert(small())
    assert not first.cached and first.method == "torch.export"
    assert first.path.is_relative_to(cache_dir)

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not convert")

    with monkeypatch.context() as patch:
        patch.setattr(ct, "convert", no_conversion)
        hit = convert(small())
    assert hit.cached and hit.path == first.path and hit.method == "torch.export"

    fp32 = convert(small(), "fp32")  # a changed key: precision
    other_shape = convert(small((1, 3, 96, 96)))  # a changed key: input shape
    assert len({first.path, fp32.path, other_shape.path}) == 3
    assert const_dtypes(load_spec(fp32.path))["FLOAT16"] == 0

    (first.path / "Data/com.apple.CoreML/model.mlmodel").write_bytes(b"corrupt")
    rebuilt = convert(small())
    assert not rebuilt.cached and rebuilt.path == first.path
    assert load_spec(rebuilt.path).WhichOneof("Type") == "mlProgram"  # type: ignore[attr-defined]
    assert not list(cache_dir.glob("coreml/.*"))  # no staging directory left behind


def test_tracing_is_the_fallback(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def broken_export(*args: object, **kwargs: object) -> None:
        raise RuntimeError("export is broken for this model")

    monkeypatch.setattr(torch.export, "export", broken_export)
    messages: list[str] = []
    result = convert(small(), progress=messages.append)
    assert result.method == "torch.jit.trace"
    assert any("torch.export path failed (export is broken" in m for m in messages)


def test_conversion_errors_are_one_line(cache_dir: Path) -> None:
    with pytest.raises(ConversionError, match="unknown precision 'int8'"):
        convert(small(), "int8")


@pytest.mark.skipif(versions.macos_version() is not None, reason="checks the non-macOS reasons")
def test_availability_messages_off_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    for backend_id in ("coreml-all", "coreml-cpu", "coreml-gpu", "coreml-ane"):
        reason = backends.describe(backend_id).probe().reason
        assert reason == "Core ML prediction needs macOS (conversion works here)"
    monkeypatch.setattr(coreml_backends, "macos_version", lambda: (12, 6))
    assert backends.describe("coreml-ane").probe().reason == "coreml-ane needs macOS 13+"
    assert backends.describe("coreml-all").probe().ok
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert backends.describe("coreml-cpu").probe().reason == (
        "coremltools not installed (pip install 'anetui[coreml]')"
    )


class StandInModel:
    """What the backend needs of an MLModel: predict() and Core ML's duration."""

    def __init__(self, output: np.ndarray) -> None:
        self.calls = 0
        self._output = output
        self.last_predict_duration_in_nano_seconds: int | None = None

    def predict(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert list(data) == ["x"] and data["x"].shape == (1, 3, 64, 64)
        self.calls += 1
        time.sleep(0.001)
        self.last_predict_duration_in_nano_seconds = 900_000  # Core ML says 0.9 ms
        return {"output": self._output}


def test_prediction_loop_logic_with_a_stand_in(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anetui.backends import coreml as coreml_backends

    stand_in = StandInModel(np.arange(1000, dtype=np.float16).reshape(1, 1000))
    monkeypatch.setattr(
        coreml_backends.CoreMLBackend, "_load", lambda self, ct, pkg, notes: stand_in
    )
    backend = backends.create("coreml-ane")
    info = backend.prepare(small())  # converts for real, loads the stand-in
    assert stand_in.calls == 1 and info.first_inference_ms >= 1.0
    assert info.info["compute_units"] == "CPU_AND_NE"
    assert any(n.startswith("converted via torch.export (fp16)") for n in info.notes)
    assert any(
        n.startswith("no compute plan: the compute plan needs macOS 14.4+") for n in info.notes
    )
    record = BackendRecord()
    run(backend, record, threading.Event(), warmup=3, iterations=20)
    assert stand_in.calls == 24 and record.count == 20
    runtime = record.runtime_stats.summary()
    assert runtime is not None and runtime.count == 20  # runtime_latency_ns, timed inferences only
    assert runtime.p50_ns == pytest.approx(900_000, rel=1e-3)
    wall = record.stats.summary()
    assert wall is not None and wall.min_ns >= 1_000_000
    out = backend.outputs()[0]
    assert out.dtype == np.float32 and out.shape == (1, 1000)


def test_mlpackage_model_is_used_as_it_is(mobilenet_v2_package: Path) -> None:
    spec = resolve_model(str(mobilenet_v2_package))
    assert spec.kind == "mlpackage" and spec.input_shape == (1, 3, 224, 224)
    assert spec.input_name == "x" and spec.output_name == "output"
    config = RunConfig(model=str(mobilenet_v2_package), backends=("torch-cpu", "coreml-cpu"))
    session = Session(config, spec)
    reasons = {i: a.reason for i, a in session.availability().items()}
    assert reasons["torch-cpu"] == "no PyTorch model (the model is a Core ML package)"


def test_compute_plan_summary_and_fallbacks() -> None:
    ops = [
        OpPlan("const", "w", "cpu", ("cpu",), 0.0),
        OpPlan("conv", "c1", "ane", ("cpu", "gpu", "ane"), 0.6),
        OpPlan("conv", "c2", "ane", ("cpu", "gpu", "ane"), 0.2),
        OpPlan("gather", "g", "cpu", ("cpu",), 0.15),
        OpPlan("softmax", "s", "gpu", ("cpu", "gpu", "ane"), 0.05),
    ]
    plan = summarize(ops, "CPU_AND_NE")
    assert plan.share == pytest.approx({"ane": 0.8, "cpu": 0.15, "gpu": 0.05})
    assert [(op.output, why) for op, why in plan.fallbacks] == [
        ("g", "not supported on the Neural Engine"),
        ("s", "supported on the Neural Engine, but Core ML planned it for the GPU"),
    ]
    assert summarize(ops, "CPU_ONLY").fallbacks[0][0].output == "c1"


@pytest.mark.skipif(versions.macos_version() is not None, reason="checks the non-macOS reason")
def test_compute_plan_off_macos_is_a_reason(mobilenet_v2_package: Path) -> None:
    with pytest.raises(PlanUnavailable, match=r"needs macOS 14\.4"):
        compute_plan(import_coremltools(), mobilenet_v2_package, "CPU_AND_NE")


@pytest.mark.skipif(versions.macos_version() is not None, reason="checks the non-macOS behaviour")
def test_cli_as_a_new_user_on_linux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_cli import TINY_RUN, anetui, assert_one_line_error

    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "copy.mlpackage"
    proc = anetui(
        "convert", "--model", SMALL_MODEL, "--input-shape", "1,3,64,64", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "converted via torch.export in" in proc.stderr
    spec = load_spec(out)
    assert spec.WhichOneof("Type") == "mlProgram"  # type: ignore[attr-defined]
    again = anetui("convert", "--model", SMALL_MODEL, "--input-shape", "1,3,64,64")
    assert "from the cache (no conversion)" in again.stderr
    assert_one_line_error(
        anetui("convert", "--model", SMALL_MODEL, "--input-shape", "1,3,64,64", "--out", str(out)),
        1,
        "already exists",
    )
    assert_one_line_error(anetui("convert", "--model", "nope"), 1, "unknown model 'nope'")
    assert_one_line_error(
        anetui("bench", "--backends", "coreml-ane", "--iterations", "1"),
        1,
        "coreml-ane: not run — Core ML prediction needs macOS (conversion works here)",
    )
    assert_one_line_error(anetui("plan"), 1, "the compute plan needs macOS 14.4+")
    default = anetui("bench", *TINY_RUN, "--iterations", "2")
    assert default.returncode == 0, default.stderr
    for backend_id in ("coreml-all", "coreml-cpu", "coreml-gpu", "coreml-ane"):
        assert f"{backend_id}: not run — Core ML prediction needs macOS" in default.stdout
    assert "torch-cpu-opt" in default.stdout
