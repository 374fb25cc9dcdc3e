"""PyTorch model -> OpenVINO IR (``model.xml`` + ``model.bin``) with ``ov.convert_model``
on the ``torch.export`` program (TorchScript models as they are), cached like the Core ML
and ONNX conversions and keyed the same way.

The weights are saved in fp32 (``compress_to_fp16=False``; ``ov.save_model`` would halve
them by default): the precision a backend computes in is chosen when it compiles the
model, never baked into the cached file. An ONNX model needs no conversion: OpenVINO
reads ``.onnx`` files directly.
"""

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
    if spec.kind == "onnx":
        assert spec.path is not None
        return OpenVinoModel(spec.path, True, 0.0)
    cache = cache or Cache("openvino")
    key = cache_key(spec)
    started = time.perf_counter()
    hit = cache.lookup(key, ARTEFACT, is_valid)
    if hit is not None:
        return OpenVinoModel(hit, True, time.perf_counter() - started)
    if progress:
        progress(f"converting {spec.describe()} to OpenVINO IR (ov.convert_model)")
    import openvino
    import torch

    model = load_torch_model(spec)
    example = torch.from_numpy(spec.make_input())

    def build(target: Path) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.trace's deprecation, per call
                if isinstance(model, torch.jit.ScriptModule):
                    converted = openvino.convert_model(model, example_input=example)
                    method = "openvino.convert_model(TorchScript)"
                else:  # OpenVINO's frontend for torch.export programs
                    converted = openvino.convert_model(torch.export.export(model, (example,)))
                    method = "openvino.convert_model(torch.export)"
                converted.reshape(list(spec.input_shape))  # static: the benchmark's shape
                openvino.save_model(converted, str(target), compress_to_fp16=False)
        except Exception as exc:
            raise OpenVinoConversionError(f"OpenVINO conversion failed: {one_line(exc)}") from None
        return {"converter": method, "weights": "fp32"}

    path = cache.store(
        key,
        ARTEFACT,
        build,
        {
            "model": spec.describe(),
            "input_shape": list(spec.input_shape),
            "torch": package_version("torch"),
            "openvino": package_version("openvino"),
        },
    )
    return OpenVinoModel(path, False, time.perf_counter() - started)
