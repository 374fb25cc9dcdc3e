"""ONNX Runtime: a real export of MobileNetV2, onnx-cpu run for a short time, agreement
with PyTorch, the cache, a .onnx file as --model, and the missing-provider messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from anetui.backends import base
from anetui.backends import registry as backends
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.cache import Cache
from anetui.models.resolve import resolve_model

ort = pytest.importorskip("onnxruntime")


def test_mobilenet_v2_exports_runs_and_agrees_with_pytorch(isolated_cache: Path) -> None:
    spec = resolve_model("mobilenet_v2")
    session = Session(RunConfig(backends=("onnx-cpu",), iterations=20, duration_s=None), spec)
    session.prepare()
    session.run()
    result = session.snapshot().backends[0]
    assert result.state == "done" and result.summary is not None and result.summary.count == 20
    assert result.agreement_max_rel_err is not None and result.agreement_max_rel_err < 1e-4
    assert (
        result.prepare is not None and result.prepare.info["providers"][0] == "CPUExecutionProvider"
    )
    files = {p.name for p in isolated_cache.glob("onnx/*/*")}
    assert {"model.onnx", "model.onnx.data", "meta.json"} <= files  # weights in a side file


def test_export_cache_hit_and_changed_key(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from anetui.models.convert.onnx import export

    spec = resolve_model("mobilenet_v2")
    first = export(spec)  # exported by the test above, or now

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not export")

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", no_export)
        hit = export(spec)
    assert hit.cached and hit.path == first.path
    other = export(
        resolve_model("mobilenet_v3_small", input_shape=(1, 3, 64, 64)),
        cache=Cache("onnx", isolated_cache),
    )
    assert other.path != first.path and not other.cached


def test_an_onnx_file_is_used_as_it_is(isolated_cache: Path) -> None:
    from anetui.models.convert.onnx import export

    path = export(resolve_model("mobilenet_v3_small", input_shape=(1, 3, 64, 64))).path
    spec = resolve_model(str(path))
    assert spec.kind == "onnx" and spec.input_shape == (1, 3, 64, 64)
    assert spec.input_name == "x" and spec.output_name == "output"
    session = Session(RunConfig(model=str(path), backends=("onnx-cpu", "torch-cpu")), spec)
    reasons = {i: a.reason for i, a in session.availability().items()}
    assert reasons == {
        "onnx-cpu": None,
        "torch-cpu": "no PyTorch model (the model is an ONNX file)",
    }


def test_missing_providers_are_named_precisely() -> None:
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        assert backends.describe("onnx-cuda").probe().reason == (
            "onnxruntime has no CUDAExecutionProvider here: install onnxruntime-gpu"
        )
    if "CoreMLExecutionProvider" not in providers:
        reason = backends.describe("onnx-coreml").probe().reason
        assert reason is not None and reason.startswith(
            "onnxruntime has no CoreMLExecutionProvider"
        )
    with pytest.raises(base.BackendError, match="runs the fp32 ONNX export, not fp16"):
        backends.create("onnx-cpu", base.BackendOptions(dtype="fp16"))
