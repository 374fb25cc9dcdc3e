"""Core ML fp16 ML Program -> a compressed one with ``coremltools.optimize.coreml``, cached.

Schemes (the ``coreml-<unit>-<scheme>`` backends, ``convert --to coreml --quantize``):

- ``w8``: weights int8, symmetric per output channel (``linear_quantize_weights``);
  compute stays fp16. About half the fp16 package's size.
- ``w8a8``: activations int8 too (``experimental.linear_quantize_activations``, then the
  weights), the form the Neural Engine of A17 Pro / M4 and later runs in int8. The
  activation ranges come from running the model on the calibration inputs *through Core
  ML* (coremltools adds every intermediate tensor as an output and predicts), so this
  scheme is made on macOS only, from a package with a macOS 14 deployment target (where
  int8 activation operations exist).
- ``int4``: 4-bit weights, palettized: each weight tensor becomes a 16-entry look-up
  table found by k-means and 4-bit indices (``palettize_weights``), decompressed to fp16
  at load or on the fly. About a quarter of the fp16 size.

The weight-only schemes need no calibration and run on any OS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from anetui.models.cache import Cache
from anetui.models.convert.coreml import (
    DEPLOYMENT_TARGET,
    ConversionError,
    convert,
    import_coremltools,
    package_is_valid,
    quiet_coremltools,
)
from anetui.models.convert.coreml import cache_key as package_key
from anetui.models.convert.quantize_common import (
    Calibration,
    QuantizationError,
    Quantized,
    cached_quantization,
    quiet_progress,
    random_calibration,
)
from anetui.models.spec import ModelSpec
from anetui.versions import macos_version, package_version

ARTEFACT = "model.mlpackage"
#: scheme -> how it is made (also part of the cache key).
METHODS = {
    "w8": "linear_quantize_weights (int8, linear_symmetric, per channel)",
    "w8a8": "linear_quantize_activations (int8) + linear_quantize_weights (int8)",
    "int4": "palettize_weights (4-bit k-means look-up table per tensor)",
}
SCHEMES = tuple(METHODS)
#: w8a8's package: int8 activation operations exist from this target on.
ACTIVATION_TARGET = "macOS14"


def calibration_needed(scheme: str) -> bool:
    return scheme == "w8a8"


def unavailable_reason(scheme: str) -> str | None:
    """Why ``scheme`` cannot be made here (no heavy imports), or None."""
    if calibration_needed(scheme) and macos_version() is None:
        return (
            "w8a8 calibrates by running the model in Core ML: macOS only (w8 and int4 "
            "convert on any OS)"
        )
    return None


def quantize(
    spec: ModelSpec,
    scheme: str,
    calibration: Calibration | None = None,
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Quantized:
    """The fp16 package of ``spec`` compressed by ``scheme`` (:data:`SCHEMES`), cached."""
    if scheme not in METHODS:
        raise QuantizationError(f"unknown Core ML scheme '{scheme}' ({', '.join(SCHEMES)})")
    reason = unavailable_reason(scheme)
    if reason is not None:
        raise QuantizationError(reason)
    ct = import_coremltools()
    target = ACTIVATION_TARGET if calibration_needed(scheme) else DEPLOYMENT_TARGET
    try:
        base = convert(spec, "fp16", progress=progress, target=target)
    except ConversionError as exc:
        raise QuantizationError(str(exc)) from None
    # Weight-only schemes observe nothing, so they say nothing about data.
    needed = calibration_needed(scheme)
    calibration = (calibration or random_calibration(spec)) if needed else None
    got = cached_quantization(
        "coreml-quantized",
        {
            "target": "coreml-quantized",
            "base": package_key(spec, "fp16", target),
            "method": METHODS[scheme],
            "coremltools": package_version("coremltools"),
        },
        ARTEFACT,
        package_is_valid,
        lambda out: _build(ct, base.path, out, scheme, base.input_name, calibration),
        scheme=scheme,
        calibration=calibration,
        method=METHODS[scheme],
        cache=cache,
        progress=progress,
        doing=f"compressing {spec.describe()} for Core ML ({scheme})",
    )
    return Quantized(
        got.path,
        got.cached,
        got.seconds,
        scheme,
        got.calibration_note,
        got.method,
        base.notes,
        input_name=base.input_name,
    )


def _build(
    ct: Any,
    base: Path,
    target: Path,
    scheme: str,
    input_name: str,
    calibration: Calibration | None,
) -> dict[str, Any]:
    import coremltools.optimize as cto

    try:
        with quiet_coremltools(), quiet_progress():
            model = ct.models.MLModel(str(base), skip_model_load=True)
            int8 = cto.coreml.OptimizationConfig(
                global_config=cto.coreml.OpLinearQuantizerConfig(
                    mode="linear_symmetric", dtype="int8", granularity="per_channel"
                )
            )
            if scheme == "w8":
                compressed = cto.coreml.linear_quantize_weights(model, int8)
            elif scheme == "int4":
                lut = cto.coreml.OptimizationConfig(
                    global_config=cto.coreml.OpPalettizerConfig(mode="kmeans", nbits=4)
                )
                compressed = cto.coreml.palettize_weights(model, lut)
            else:
                assert calibration is not None
                activations = cto.coreml.OptimizationConfig(
                    global_config=cto.coreml.experimental.OpActivationLinearQuantizerConfig(
                        mode="linear_symmetric"
                    )
                )
                samples = [{input_name: sample} for sample in calibration.samples]
                a8 = cto.coreml.experimental.linear_quantize_activations(
                    model, activations, samples
                )
                compressed = cto.coreml.linear_quantize_weights(a8, int8)
            compressed.save(str(target))
    except QuantizationError:
        raise
    except Exception as exc:
        from anetui.errors import one_line

        raise QuantizationError(f"Core ML {scheme} compression failed: {one_line(exc)}") from None
    return {"input_name": input_name}
