"""PyTorch model -> ONNX with ``torch.onnx.export(dynamo=True)`` (the torch.export-based
exporter), cached like the Core ML packages and keyed the same way. Weights may live in a
side file, ``model.onnx.data``, beside ``model.onnx`` in the cache entry."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.models.cache import Cache, make_key, model_fields
from anetui.models.spec import ModelSpec
from anetui.models.torch_load import load_torch_model
from anetui.versions import package_version

ARTEFACT = "model.onnx"
INPUT_NAME = "x"
OUTPUT_NAME = "output"
OPSET = 18


class OnnxExportError(AnetuiError):
    """The model could not be exported; one line for the user."""


@dataclass(frozen=True)
class Export:
    path: Path
    cached: bool
    seconds: float


def cache_key(spec: ModelSpec) -> str:
    return make_key(
        {
            "target": "onnx",
            **model_fields(spec),
            "opset": OPSET,
            "onnx": package_version("onnx"),
            "onnxscript": package_version("onnxscript"),
        }
    )


def is_valid(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return len(model.graph.input) > 0 and len(model.graph.output) > 0


def export(
    spec: ModelSpec, *, cache: Cache | None = None, progress: Callable[[str], None] | None = None
) -> Export:
    """The model as a cached ONNX file; a cache hit costs no export."""
    if spec.kind == "onnx":
        raise OnnxExportError("the model is already an ONNX file")
    for package in ("onnx", "onnxscript"):
        if package_version(package) is None:
            raise OnnxExportError(f"{package} not installed (pip install 'anetui[onnx]')")
    cache = cache or Cache("onnx")
    key = cache_key(spec)
    started = time.perf_counter()
    hit = cache.lookup(key, ARTEFACT, is_valid)
    if hit is not None:
        return Export(hit, True, time.perf_counter() - started)
    if progress:
        progress(f"exporting {spec.describe()} to ONNX (torch.export-based exporter)")
    import torch

    model = load_torch_model(spec)
    example = torch.from_numpy(spec.make_input())

    def build(target: Path) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (example,),
                    str(target),
                    dynamo=True,
                    opset_version=OPSET,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    optimize=True,
                    verbose=False,
                )
        except Exception as exc:
            raise OnnxExportError(f"ONNX export failed: {one_line(exc)}") from None
        return {"exporter": "torch.onnx.export(dynamo=True)", "opset": OPSET}

    path = cache.store(
        key,
        ARTEFACT,
        build,
        {
            "model": spec.describe(),
            "input_shape": list(spec.input_shape),
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "torch": package_version("torch"),
            "onnx": package_version("onnx"),
        },
    )
    return Export(path, False, time.perf_counter() - started)
