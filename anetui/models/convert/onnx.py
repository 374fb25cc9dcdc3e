"""PyTorch model -> ONNX with ``torch.onnx.export(dynamo=True)`` (the torch.export-based
exporter), cached like the Core ML packages and keyed the same way. The graph's inputs
and outputs carry the model's names (``x`` and ``output`` for one-input image models).
Weights may live in a side file, ``model.onnx.data``, beside ``model.onnx`` in the cache
entry; an entry is valid only with every external data file it names."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError
from anetui.models.cache import Cache, make_key, model_fields
from anetui.models.convert.common import (
    Build,
    cached_conversion,
    failures_as,
    quiet_logger,
    torch_model_and_input,
    torch_output_names,
)
from anetui.models.spec import ModelSpec
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
    """The graph parses, has inputs and outputs, and its external data files are there."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    missing = [f for f in external_data_files(model) if not (path.parent / f).is_file()]
    return len(model.graph.input) > 0 and len(model.graph.output) > 0 and not missing


def external_data_files(model: Any) -> set[str]:
    """The files (relative to the model's folder) its initializers keep their data in."""
    import onnx

    files: set[str] = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            files.update(e.value for e in tensor.external_data if e.key == "location")
    return files


def export(
    spec: ModelSpec, *, cache: Cache | None = None, progress: Callable[[str], None] | None = None
) -> Export:
    """The model as a cached ONNX file; a cache hit costs no export."""
    if spec.kind == "onnx":
        raise OnnxExportError("the model is already an ONNX file")
    for package in ("onnx", "onnxscript"):
        if package_version(package) is None:
            raise OnnxExportError(f"{package} not installed (pip install 'anetui[onnx]')")
    got = cached_conversion(
        cache or Cache("onnx"),
        cache_key(spec),
        ARTEFACT,
        is_valid,
        lambda: _prepare(spec),
        progress=progress,
        doing=f"exporting {spec.describe()} to ONNX (torch.export-based exporter)",
    )
    return Export(got.path, got.hit, got.seconds())


def _quiet_constant_folding() -> contextlib.AbstractContextManager[None]:
    """onnxscript's optimizer logs "Evaluation failed: …" on stderr for every constant it
    cannot fold (transformers' attention masks): it folds less, the export is right."""
    return quiet_logger("onnxscript.optimizer._constant_folding")


def _prepare(spec: ModelSpec) -> tuple[Build, dict[str, Any]]:
    """The model loaded, and its build and metadata (on a cache miss only)."""
    import torch

    model, examples = torch_model_and_input(spec)
    inputs = [i.name for i in spec.inputs]
    outputs = torch_output_names(model, spec, examples)

    def build(target: Path) -> dict[str, Any]:
        with (
            failures_as(OnnxExportError, "ONNX export failed"),
            warnings.catch_warnings(),
            _quiet_constant_folding(),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                examples,
                str(target),
                dynamo=True,
                opset_version=OPSET,
                input_names=inputs,
                output_names=outputs,
                optimize=True,
                verbose=False,
            )
        return {"exporter": "torch.onnx.export(dynamo=True)", "opset": OPSET}

    return build, {
        "model": spec.describe(),
        "input_shape": list(spec.input_shape),
        "inputs": [i.as_dict() for i in spec.inputs],
        "input_names": inputs,
        "output_names": outputs,
        "torch": package_version("torch"),
        "onnx": package_version("onnx"),
    }
