"""PyTorch model -> Core ML ML Program (``.mlpackage``) with coremltools, cached.

Conversion runs everywhere coremltools installs (Linux included); only prediction needs
macOS. torch.export is tried first, with the program as exported (ATen ops kept, as
coremltools prefers), then with torch's default decompositions: coremltools 9.0 lacks
some ops transformers use (``new_ones`` in BERT's attention mask), which decompose into
ones it has. Tracing is the last resort; the result says which path was used.

Every named input keeps its name with fixed shapes; float inputs and outputs are fp32 by
choice (with a macOS 13+ target and no dtype given, coremltools would make them fp16,
and every comparison against PyTorch would then include an I/O cast); integer inputs
(token ids, masks) are int32, Core ML's integer type. ``precision`` sets the compute
precision (weights and activations), fp16 by default, as on the Neural Engine. The
inputs' value domains are kept in the package's metadata (``anetui.inputs``).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.models.cache import Cache, make_key, model_fields
from anetui.models.convert.common import (
    Build,
    cached_conversion,
    torch_model_and_input,
    torch_output_names,
)
from anetui.models.declared import COREML_INPUTS_KEY
from anetui.models.inputs import InputSpec
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

PRECISIONS = ("fp16", "fp32")
ARTEFACT = "model.mlpackage"
OUTPUT_NAME = "output"
#: Our short names for Core ML's compute units (``coreml-<name>``, ``plan --compute-units``)
#: -> coremltools' ``ComputeUnit`` member names.
COMPUTE_UNITS = {"all": "ALL", "cpu": "CPU_ONLY", "gpu": "CPU_AND_GPU", "ane": "CPU_AND_NE"}
#: The deployment target: ML Programs need macOS 12; 13 is where CPU_AND_NE exists.
DEPLOYMENT_TARGET = "macOS13"


class ConversionError(AnetuiError):
    """The model could not be converted; one line for the user."""


@dataclass(frozen=True)
class Conversion:
    """A converted (or cached) package and how it was made."""

    path: Path
    cached: bool
    method: str
    seconds: float
    input_name: str
    precision: str
    notes: tuple[str, ...] = field(default=())
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = (OUTPUT_NAME,)


@contextlib.contextmanager
def quiet_coremltools() -> Iterator[list[str]]:
    """Collect coremltools' log warnings instead of printing them.

    On Linux its import logs "Failed to load libcoremlpython" eight times; conversion logs
    "Torch version … has not been tested". The messages are kept as notes.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if "libcoremlpython" not in text and "libmodelpackage" not in text:
                messages.append(text.splitlines()[0][:200])

    logger = logging.getLogger("coremltools")
    handler = Collect(logging.WARNING)
    saved = (logger.level, logger.propagate, list(logger.handlers))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace deprecation
            warnings.simplefilter("ignore", DeprecationWarning)  # coremltools' own internals
            yield messages
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]


#: What coremltools logged when first imported (e.g. an untested torch version).
IMPORT_NOTES: list[str] = []


def import_coremltools() -> Any:
    try:
        with quiet_coremltools() as notes:
            import coremltools
    except ImportError:
        raise ConversionError("coremltools not installed (pip install 'anetui[coreml]')") from None
    if notes and not IMPORT_NOTES:
        IMPORT_NOTES.extend(notes)
    return coremltools


def cache_key(spec: ModelSpec, precision: str, target: str = DEPLOYMENT_TARGET) -> str:
    return make_key(
        {
            "target": "coreml",
            **model_fields(spec),
            "precision": precision,
            "deployment_target": target,
            "coremltools": package_version("coremltools"),
        }
    )


def package_is_valid(path: Path) -> bool:
    """The package parses as an ML Program (no Core ML runtime needed)."""
    ct = import_coremltools()
    with quiet_coremltools():
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    return bool(spec.WhichOneof("Type") == "mlProgram")


def convert(
    spec: ModelSpec,
    precision: str = "fp16",
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
    target: str = DEPLOYMENT_TARGET,
) -> Conversion:
    """The model as a cached ML Program; a cache hit costs no conversion.

    ``target`` is the minimum deployment target (``ct.target`` name): macOS13 unless a
    later one is needed (int8 activations, ``w8a8``, need macOS14's operations).
    """
    if precision not in PRECISIONS:
        raise ConversionError(f"unknown precision '{precision}' (fp16 or fp32)")
    if spec.kind == "mlpackage":
        raise ConversionError("the model is already a Core ML package")
    ct = import_coremltools()
    cache = cache or Cache("coreml")
    key = cache_key(spec, precision, target)
    got = cached_conversion(
        cache,
        key,
        ARTEFACT,
        package_is_valid,
        lambda: _prepare(ct, spec, precision, progress, target),
        progress=progress,
        doing=f"converting {spec.describe()} to Core ML ({precision})",
    )
    meta = cache.meta(key)  # a hit's, or the one just written
    return Conversion(
        got.path,
        got.hit,
        str(meta.get("method", "?")),
        got.seconds(),
        str(meta.get("input_name", "x")),
        precision,
        tuple(meta.get("notes", [])),
        tuple(meta.get("input_names", [meta.get("input_name", "x")])),
        tuple(meta.get("output_names", [OUTPUT_NAME])),
    )


def _prepare(
    ct: Any,
    spec: ModelSpec,
    precision: str,
    progress: Callable[[str], None] | None,
    deployment: str = DEPLOYMENT_TARGET,
) -> tuple[Build, dict[str, Any]]:
    """The model loaded, and its build and metadata (on a cache miss only)."""
    model, examples = torch_model_and_input(spec)
    # One image input keeps the model's own name for it (``x`` for torchvision).
    names = [_input_name(model)] if spec.kind == "torchvision" else [i.name for i in spec.inputs]
    outputs = torch_output_names(model, spec, examples)  # one output: "output"
    inputs = [_tensor_type(ct, name, i) for name, i in zip(names, spec.inputs, strict=True)]

    def build(target: Path) -> dict[str, Any]:
        with quiet_coremltools() as notes:
            mlmodel, method = _convert(
                ct, model, examples, inputs, outputs, precision, progress, deployment
            )
            mlmodel.user_defined_metadata[COREML_INPUTS_KEY] = json.dumps(
                [
                    {**i.as_dict(), "name": n, "domain": i.domain, "high": i.high}
                    for n, i in zip(names, spec.inputs, strict=True)
                ]
            )
            mlmodel.save(str(target))
        return {"method": method, "notes": list(dict.fromkeys(IMPORT_NOTES + notes))}

    return build, {
        "model": spec.describe(),
        "input_shape": list(spec.input_shape),
        "inputs": [i.as_dict() for i in spec.inputs],
        "precision": precision,
        "deployment_target": deployment,
        "input_name": names[0],
        "input_names": names,
        "output_name": outputs[0],
        "output_names": outputs,
        "torch": package_version("torch"),
        "coremltools": package_version("coremltools"),
    }


def _tensor_type(ct: Any, name: str, spec: InputSpec) -> Any:
    """Core ML's input: fixed shape; fp32 floats, int32 integers (Core ML has no int64)."""
    import numpy as np

    dtype = np.float32 if spec.dtype.startswith("float") else np.int32
    return ct.TensorType(name=name, shape=spec.concrete_shape(), dtype=dtype)


def _convert(
    ct: Any,
    model: Any,
    examples: tuple[Any, ...],
    inputs: list[Any],
    outputs: list[str],
    precision: str,
    progress: Callable[[str], None] | None,
    target: str = DEPLOYMENT_TARGET,
) -> tuple[Any, str]:
    """torch.export (ATen, then decomposed); tracing when both fail."""
    import numpy as np
    import torch

    kwargs = {
        "inputs": inputs,
        "outputs": [ct.TensorType(name=name, dtype=np.float32) for name in outputs],
        "convert_to": "mlprogram",
        "compute_precision": ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        "minimum_deployment_target": getattr(ct.target, target),
    }
    failures = []
    try:
        exported = torch.export.export(model, examples)
        for method, table in (("torch.export", {}), ("torch.export, decomposed", None)):
            try:
                program = exported.run_decompositions(table)
                return ct.convert(program, **kwargs), method
            except Exception as exc:  # a converter gap: decompose, then trace
                failures.append(f"{method}: {one_line(exc, 120)}")
    except Exception as exc:
        failures.append(one_line(exc, 120))
    if progress:
        progress(f"torch.export path failed ({'; '.join(failures)}); tracing instead")
    try:
        with torch.no_grad():
            traced = torch.jit.trace(model, examples, check_trace=False)  # type: ignore[no-untyped-call]
        return ct.convert(traced, **kwargs), "torch.jit.trace"
    except Exception as exc:
        raise ConversionError(f"Core ML conversion failed: {one_line(exc)}") from None


def _input_name(model: Any) -> str:
    """The model's own name for its input (``x`` for torchvision), as Core ML's input."""
    try:
        params = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        params = []
    name = params[0] if params else "input"
    return name if name.isidentifier() else "input"
