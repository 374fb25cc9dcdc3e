"""OpenVINO IR fp32 -> int8 with NNCF post-training quantization (``nncf.quantize``), cached.

NNCF inserts FakeQuantize operations (8-bit, symmetric weights per output channel: the
PERFORMANCE preset) from statistics gathered on the calibration inputs, with its fast
bias correction; OpenVINO's CPU plugin then runs the quantized convolutions and matrix
products in int8 (VNNI or AMX where the CPU has them). The result is saved with fp32
weights for what stays in floating point, as the fp32 conversion is.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anetui.models.cache import Cache, model_fields
from anetui.models.convert.common import failures_as
from anetui.models.convert.openvino import OpenVinoConversionError, convert
from anetui.models.convert.openvino import cache_key as ir_key
from anetui.models.convert.quantize_common import (
    Calibration,
    QuantizationError,
    Quantized,
    cached_quantization,
    quiet_progress,
    random_calibration,
)
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

ARTEFACT = "model.int8.xml"
SCHEME = "int8"
METHOD = "nncf.quantize (8-bit, PERFORMANCE preset, fast bias correction)"
#: What to install when NNCF is missing.
NNCF_HINT = "nncf not installed (pip install 'anetui[quantize]')"


def is_valid(path: Path) -> bool:
    """The IR and its weights are there and hold FakeQuantize operations."""
    if not (path.with_suffix(".bin").is_file() and path.stat().st_size > 0):
        return False
    return "FakeQuantize" in path.read_text(errors="replace")


def quantize(
    spec: ModelSpec,
    calibration: Calibration | None = None,
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Quantized:
    """The int8 IR of ``spec`` (converted to OpenVINO IR first, cached), quantized by NNCF."""
    if package_version("openvino") is None:
        raise QuantizationError("openvino not installed (pip install 'anetui[openvino]')")
    if importlib.util.find_spec("nncf") is None:
        raise QuantizationError(NNCF_HINT)
    calibration = calibration or random_calibration(spec)
    try:
        base = convert(spec, progress=progress).path
    except OpenVinoConversionError as exc:
        raise QuantizationError(str(exc)) from None
    base_id = model_fields(spec) if spec.kind == "onnx" else {"ir": ir_key(spec)}
    return cached_quantization(
        "openvino-quantized",
        {
            "target": "openvino-quantized",
            "base": base_id,
            "method": METHOD,
            "openvino": package_version("openvino"),
            "nncf": package_version("nncf"),
        },
        ARTEFACT,
        is_valid,
        lambda target: _build(base, target, calibration),
        scheme=SCHEME,
        calibration=calibration,
        method=METHOD,
        cache=cache,
        progress=progress,
        doing=f"quantizing {spec.describe()} to int8 (NNCF post-training quantization)",
    )


def _build(base: Path, target: Path, calibration: Calibration) -> dict[str, Any]:
    import openvino

    nncf_logger = logging.getLogger("nncf")
    saved = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # its progress bars and INFO lines, per layer
    try:
        with (
            failures_as(QuantizationError, "NNCF quantization failed"),
            warnings.catch_warnings(),
            quiet_progress(),
        ):
            warnings.simplefilter("ignore")
            import nncf

            model = openvino.Core().read_model(str(base))
            quantized = nncf.quantize(
                model,
                nncf.Dataset(list(calibration.samples)),
                preset=nncf.QuantizationPreset.PERFORMANCE,
                subset_size=len(calibration.samples),
            )
            openvino.save_model(quantized, str(target), compress_to_fp16=False)
    finally:
        nncf_logger.setLevel(saved)
    return {"preset": "PERFORMANCE", "subset_size": len(calibration.samples)}
