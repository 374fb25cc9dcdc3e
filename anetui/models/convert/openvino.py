"""PyTorch model -> OpenVINO IR (``model.xml`` + ``model.bin``) with ``ov.convert_model``
on the ``torch.export`` program (TorchScript models as they are), cached like the Core ML
and ONNX conversions and keyed the same way.

The weights are saved in fp32 (``compress_to_fp16=False``; ``ov.save_model`` would halve
them by default): the precision a backend computes in is chosen when it compiles the
model, never baked into the cached file. An ONNX model needs no conversion: OpenVINO
reads ``.onnx`` files directly.
"""

from __future__ import annotations

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
    torch_model_and_input,
)
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

ARTEFACT = "model.xml"
WEIGHTS = "model.bin"


class OpenVinoConversionError(AnetuiError):
    """The model could not be converted to OpenVINO IR; one line for the user."""


@dataclass(frozen=True)
class OpenVinoModel:
    """A converted (or cached) IR, or the ONNX file itself."""

    path: Path
    cached: bool
    seconds: float


def cache_key(spec: ModelSpec) -> str:
    return make_key(
        {
            "target": "openvino",
            **model_fields(spec),
            "openvino": package_version("openvino"),
            "compress_to_fp16": False,
            "frontend": "torch.export",
        }
    )


def is_valid(path: Path) -> bool:
    """The IR and its weights are there and OpenVINO reads them."""
    import openvino

    if not (path.with_name(WEIGHTS).is_file() and path.stat().st_size > 0):
        return False
    model = openvino.Core().read_model(str(path))
    return len(model.inputs) > 0 and len(model.outputs) > 0


def convert(
    spec: ModelSpec, *, cache: Cache | None = None, progress: Callable[[str], None] | None = None
) -> OpenVinoModel:
    """The model as an OpenVINO-readable file; a cache hit costs no conversion."""
    if package_version("openvino") is None:
        raise OpenVinoConversionError("openvino not installed (pip install 'anetui[openvino]')")
    if spec.kind in ("onnx", "openvino"):  # read as they are
        assert spec.path is not None
        return OpenVinoModel(spec.path, True, 0.0)
    got = cached_conversion(
        cache or Cache("openvino"),
        cache_key(spec),
        ARTEFACT,
        is_valid,
        lambda: _prepare(spec),
        progress=progress,
        doing=f"converting {spec.describe()} to OpenVINO IR (ov.convert_model)",
    )
    return OpenVinoModel(got.path, got.hit, got.seconds())


def _prepare(spec: ModelSpec) -> tuple[Build, dict[str, Any]]:
    """The model loaded, and its build and metadata (on a cache miss only)."""
    import openvino
    import torch

    model, examples = torch_model_and_input(spec)

    def build(target: Path) -> dict[str, Any]:
        with (
            failures_as(OpenVinoConversionError, "OpenVINO conversion failed"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # torch.jit.trace's deprecation, per call
            if isinstance(model, torch.jit.ScriptModule):
                converted = openvino.convert_model(model, example_input=examples)
                method = "openvino.convert_model(TorchScript)"
            else:  # OpenVINO's frontend for torch.export programs
                converted = openvino.convert_model(torch.export.export(model, examples))
                method = "openvino.convert_model(torch.export)"
            # Static: the benchmark's shapes, by position (the program's input order).
            converted.reshape(
                {
                    port: list(i.concrete_shape())
                    for port, i in zip(converted.inputs, spec.inputs, strict=True)
                }
            )
            openvino.save_model(converted, str(target), compress_to_fp16=False)
        return {"converter": method, "weights": "fp32"}

    return build, {
        "model": spec.describe(),
        "input_shape": list(spec.input_shape),
        "inputs": [i.as_dict() for i in spec.inputs],
        "torch": package_version("torch"),
        "openvino": package_version("openvino"),
    }
