"""ONNX fp32 -> int8 with ONNX Runtime's static quantization, QDQ format, cached.

Static, not dynamic: dynamic quantization quantizes only MatMul/Gemm-like operators
(activations quantized at run time, per inference), so a convolutional network stays
mostly fp32; static quantization calibrates activation ranges once and quantizes every
Conv and MatMul. QDQ (QuantizeLinear/DequantizeLinear pairs around fp32 operators) is
the format ONNX Runtime recommends since 1.11: its graph optimiser fuses each pair into
the int8 kernel (QLinearConv, MatMulInteger …), which on x86 with AVX512-VNNI or AVX-VNNI
runs VNNI dot products. Weights are int8 per output channel, activations uint8 (U8S8):
ONNX Runtime's x86 int8 convolutions are written for U8S8, which is what VNNI's
``vpdpbusd`` multiplies (unsigned by signed bytes). Measured on this project's AVX512-VNNI
machine (ResNet-18, 1x3x224x224, ONNX Runtime 1.32): U8S8 19 ms, S8S8 51 ms, fp32 50 ms.
Calibration: min/max over the inputs of :mod:`~anetui.models.convert.quantize_common`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from anetui.models.cache import Cache, model_fields
from anetui.models.convert.common import failures_as
from anetui.models.convert.onnx import OnnxExportError, export
from anetui.models.convert.onnx import cache_key as export_key
from anetui.models.convert.quantize_common import (
    Calibration,
    QuantizationError,
    Quantized,
    cached_quantization,
    random_calibration,
)
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

ARTEFACT = "model.int8.onnx"
SCHEME = "int8"
METHOD = "onnxruntime quantize_static (QDQ, per-channel U8S8, MinMax)"


def is_valid(path: Path) -> bool:
    """The file parses and holds QuantizeLinear nodes (it is quantized)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def quantize(
    spec: ModelSpec,
    calibration: Calibration | None = None,
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Quantized:
    """The int8 QDQ model of ``spec`` (exported to ONNX first unless it is one), cached."""
    if package_version("onnxruntime") is None:
        raise QuantizationError("onnxruntime not installed (pip install 'anetui[onnx]')")
    calibration = calibration or random_calibration(spec)
    if spec.kind == "onnx":
        assert spec.path is not None
        base, base_id = spec.path, model_fields(spec)
    else:
        try:
            base = export(spec, progress=progress).path
        except OnnxExportError as exc:
            raise QuantizationError(str(exc)) from None
        base_id = {"export": export_key(spec)}
    return cached_quantization(
        "onnx-quantized",
        {
            "target": "onnx-quantized",
            "base": base_id,
            "method": METHOD,
            "onnxruntime": package_version("onnxruntime"),
        },
        ARTEFACT,
        is_valid,
        lambda target: _build(base, target, calibration, spec.input_name),
        scheme=SCHEME,
        calibration=calibration,
        method=METHOD,
        cache=cache,
        progress=progress,
        doing=f"quantizing {spec.describe()} to int8 (ONNX Runtime, static QDQ)",
    )


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over the calibration inputs."""

    def __init__(self, name: str, calibration: Calibration) -> None:
        self._items: Iterator[dict[str, Any]] = iter(
            [{name: sample} for sample in calibration.samples]
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


def _build(
    base: Path, target: Path, calibration: Calibration, input_name: str | None
) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with (
        failures_as(QuantizationError, "ONNX Runtime quantization failed"),
        tempfile.TemporaryDirectory(prefix="anetui-quant-") as work,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        # Shape inference first, as ONNX Runtime's docs advise: the quantizer needs every
        # tensor's shape. Its optimisation step is skipped: it writes the weights to a
        # side file it then cannot read back, and the session optimises the graph anyway.
        # The model is loaded in memory, weights included, for the same reason.
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(
            onnx.load(str(base)), str(prepared), skip_optimization=True, skip_symbolic_shape=True
        )
        name = input_name or onnx.load(str(prepared), load_external_data=False).graph.input[0].name
        quantize_static(
            str(prepared),
            str(target),
            _Reader(name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return {"input_name": name, "format": "QDQ", "per_channel": True, "types": "U8S8"}
