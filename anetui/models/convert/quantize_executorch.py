"""PyTorch model -> int8 ExecuTorch program for the XNNPACK delegate, with the PT2E flow
(``XNNPACKQuantizer``, ``prepare_pt2e``/``convert_pt2e`` from torchao as ExecuTorch 1.x
uses them), cached.

The graph is captured with ``torch.export``, annotated by the XNNPACK quantizer (symmetric
int8, weights per output channel, static activations), observed on the calibration
inputs, converted to quantize/dequantize pairs, exported again and lowered with the
XNNPACK partitioner, which turns each pair around a convolution or linear layer into
XNNPACK's int8 kernels (QS8).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anetui.models.cache import Cache, model_fields
from anetui.models.convert.common import torch_model_and_input
from anetui.models.convert.executorch import Program, _partitioner, is_valid, quiet_pytree_log
from anetui.models.convert.quantize_common import (
    Calibration,
    QuantizationError,
    Quantized,
    cached_quantization,
    random_calibration,
)
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

ARTEFACT = "model.int8.pte"
SCHEME = "int8"
METHOD = "PT2E XNNPACKQuantizer (symmetric int8, per-channel weights, static activations)"


def quantize(
    spec: ModelSpec,
    calibration: Calibration | None = None,
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Quantized:
    """The int8 ``.pte`` of ``spec`` for the XNNPACK delegate; a cache hit costs nothing."""
    if package_version("executorch") is None:
        raise QuantizationError("executorch not installed (pip install 'anetui[executorch]')")
    if spec.kind not in ("torchvision", "export"):
        raise QuantizationError(f"ExecuTorch needs a PyTorch model, not {spec.kind}")
    calibration = calibration or random_calibration(spec)
    return cached_quantization(
        "executorch-quantized",
        {
            "target": "executorch-quantized",
            "delegate": "xnnpack",
            **model_fields(spec),
            "method": METHOD,
            "executorch": package_version("executorch"),
            "torchao": package_version("torchao"),
        },
        ARTEFACT,
        is_valid,
        lambda target: _build(spec, target, calibration),
        scheme=SCHEME,
        calibration=calibration,
        method=METHOD,
        cache=cache,
        progress=progress,
        doing=f"quantizing {spec.describe()} to int8 for ExecuTorch (XNNPACK PT2E quantizer)",
    )


def program(quantized: Quantized) -> Program:
    """The quantized artefact as the ExecuTorch backend loads a program."""
    return Program(quantized.path, quantized.cached, quantized.seconds)


def _build(spec: ModelSpec, target: Path, calibration: Calibration) -> dict[str, Any]:
    import torch

    model, examples = torch_model_and_input(spec)  # one float input: calibration allows no other
    try:
        with warnings.catch_warnings(), quiet_pytree_log():
            warnings.simplefilter("ignore")
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )
            from executorch.exir import to_edge_transform_and_lower
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

            quantizer = XNNPACKQuantizer()
            quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
            captured = torch.export.export(model, examples).module()
            prepared = prepare_pt2e(captured, quantizer)
            with torch.no_grad():
                for sample in calibration.samples:  # observers record activation ranges
                    prepared(torch.from_numpy(sample))
            converted = convert_pt2e(prepared)
            exported = torch.export.export(converted, examples)
            manager = to_edge_transform_and_lower(
                exported, partitioner=[_partitioner("xnnpack", "fp32")]
            ).to_executorch()
        target.write_bytes(manager.buffer)
    except Exception as exc:
        from anetui.errors import one_line

        raise QuantizationError(
            f"ExecuTorch int8 quantization failed with torch {package_version('torch')}, "
            f"executorch {package_version('executorch')}: {one_line(exc)}"
        ) from None
    return {"quantizer": "XNNPACKQuantizer", "delegate": "xnnpack"}
