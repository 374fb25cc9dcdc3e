"""PyTorch model -> ExecuTorch program (``model.pte``): ``torch.export`` , then
``to_edge_transform_and_lower`` with one delegate's partitioner, then ``to_executorch``;
cached like the other conversions, keyed by the delegate and the ExecuTorch version.

Delegates: ``xnnpack`` (CPU, everywhere), ``coreml-<unit>`` (the Core ML delegate with a
compute unit: ``all``, ``cpu``, ``gpu``, ``ane`` as the ``coreml-*`` backends name them;
lowering works wherever coremltools installs, running needs macOS) and ``mps`` (the
Metal delegate that replaced ExecuTorch's MPS delegate in 1.x; lowering needs macOS).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.models.cache import Cache, make_key, model_fields
from anetui.models.convert.common import (
    Build,
    cached_conversion,
    quiet_logger,
    torch_model_and_input,
)
from anetui.models.convert.coreml import COMPUTE_UNITS, quiet_coremltools
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

ARTEFACT = "model.pte"
#: Every delegate this module lowers to.
DELEGATES = ("xnnpack", "mps", *(f"coreml-{unit}" for unit in COMPUTE_UNITS))
#: The Core ML delegate's deployment target: CPU_AND_NE exists from macOS 13 on.
COREML_TARGET = "macOS13"


class ExecuTorchExportError(AnetuiError):
    """The model could not be exported or lowered; one line for the user."""


@dataclass(frozen=True)
class Program:
    """A lowered (or cached) program, and the tensor-data file beside it if any."""

    path: Path
    cached: bool
    seconds: float
    data_path: Path | None = None


def cache_key(spec: ModelSpec, delegate: str, precision: str = "fp32") -> str:
    fields: dict[str, Any] = {
        "target": "executorch",
        "delegate": delegate,
        **model_fields(spec),
        "executorch": package_version("executorch"),
    }
    if delegate.startswith("coreml-"):
        fields["coremltools"] = package_version("coremltools")
        fields["deployment_target"] = COREML_TARGET
        fields["precision"] = precision
    return make_key(fields)


def is_valid(path: Path) -> bool:
    """A flatbuffer whose file identifier (bytes 4–8) is ExecuTorch's ("ET" + version)."""
    with path.open("rb") as handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:6] == b"ET"


def quiet_pytree_log() -> contextlib.AbstractContextManager[None]:
    """torchao, imported by executorch, registers an Enum with torch's pytree, which logs
    a deprecation warning on stderr at every start; it says nothing about our run."""
    return quiet_logger("torch.utils._pytree")


@contextlib.contextmanager
def quiet_delegate(coreml: bool) -> Iterator[None]:
    """The Core ML delegate logs coremltools' and its own warnings (an untested torch, a
    specification version): kept off the terminal, as for the coreml-* conversions."""
    if not coreml:
        yield
        return
    logger = logging.getLogger("executorch.backends.apple.coreml")
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with quiet_coremltools():
            yield
    finally:
        logger.setLevel(saved)


def _partitioner(delegate: str, precision: str) -> Any:
    if delegate == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )

        return XnnpackPartitioner()
    if delegate == "mps":
        from executorch.backends.apple.metal.metal_backend import MetalBackend
        from executorch.backends.apple.metal.metal_partitioner import MetalPartitioner

        return MetalPartitioner([MetalBackend.generate_method_name_compile_spec("forward")])
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    unit = COMPUTE_UNITS[delegate.removeprefix("coreml-")]
    specs = CoreMLBackend.generate_compile_specs(
        compute_unit=ct.ComputeUnit[unit],
        minimum_deployment_target=getattr(ct.target, COREML_TARGET),
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
    )
    return CoreMLPartitioner(compile_specs=specs)


def lower(
    spec: ModelSpec,
    delegate: str,
    *,
    precision: str = "fp32",
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Program:
    """The model as a cached ``.pte`` for ``delegate``; a cache hit costs no lowering.

    ``precision`` is the Core ML delegate's compute precision ("fp16" or "fp32"); the
    other delegates run the fp32 graph as exported.
    """
    if delegate not in DELEGATES:
        raise ExecuTorchExportError(f"unknown ExecuTorch delegate '{delegate}'")
    if package_version("executorch") is None:
        raise ExecuTorchExportError("executorch not installed (pip install 'anetui[executorch]')")
    if spec.kind == "pte":  # a program as it is
        assert spec.path is not None
        data = spec.path.with_suffix(".ptd")  # tensor data saved beside it, if any
        return Program(spec.path, True, 0.0, data if data.is_file() else None)
    if spec.kind not in ("torchvision", "transformers", "hf", "export", "torchscript"):
        raise ExecuTorchExportError(f"ExecuTorch needs a PyTorch model, not {spec.kind}")
    cache = cache or Cache("executorch")
    got = cached_conversion(
        cache,
        cache_key(spec, delegate, precision),
        ARTEFACT,
        is_valid,
        lambda: _prepare(spec, delegate, precision, cache),
        progress=progress,
        doing=f"exporting {spec.describe()} to ExecuTorch ({delegate} delegate)",
    )
    if not got.hit:
        record_outcome(cache, delegate, None)
    return Program(got.path, got.hit, got.seconds(), _data_file(got.path))


def _prepare(
    spec: ModelSpec, delegate: str, precision: str, cache: Cache
) -> tuple[Build, dict[str, Any]]:
    """The model loaded, and its build and metadata (on a cache miss only)."""
    import torch

    model, examples = torch_model_and_input(spec)
    if isinstance(model, torch.jit.ScriptModule):
        raise ExecuTorchExportError("ExecuTorch cannot export a TorchScript model (use .pt2)")

    def build(target: Path) -> dict[str, Any]:
        try:
            coreml = delegate.startswith("coreml-")
            with warnings.catch_warnings(), quiet_pytree_log(), quiet_delegate(coreml):
                warnings.simplefilter("ignore")
                from executorch.exir import to_edge_transform_and_lower

                exported = torch.export.export(model, examples)
                manager = to_edge_transform_and_lower(
                    exported, partitioner=[_partitioner(delegate, precision)]
                ).to_executorch()
            target.write_bytes(manager.buffer)
            if delegate == "mps":  # the Metal delegate keeps its weights in a .ptd file
                manager.write_tensor_data_to_file(str(target.parent))
        except ExecuTorchExportError:
            raise
        except Exception as exc:
            message = (
                f"ExecuTorch export failed with torch {package_version('torch')}, "
                f"executorch {package_version('executorch')}: {one_line(exc)}"
            )
            record_outcome(cache, delegate, message)
            raise ExecuTorchExportError(message) from None
        return {"exporter": "torch.export + to_edge_transform_and_lower", "delegate": delegate}

    return build, {
        "model": spec.describe(),
        "input_shape": list(spec.input_shape),
        "inputs": [i.as_dict() for i in spec.inputs],
        "torch": package_version("torch"),
        "executorch": package_version("executorch"),
    }


# -- the last outcome, for `anetui doctor` (which must not import torch to find out) --
OUTCOME_FILE = "last-export.json"


def record_outcome(cache: Cache, delegate: str, error: str | None) -> None:
    """Remember whether the last lowering with these versions worked (best effort)."""
    outcomes = _outcomes(cache.dir / OUTCOME_FILE)
    outcomes[delegate] = {
        "torch": package_version("torch"),
        "executorch": package_version("executorch"),
        "error": error,
    }
    with contextlib.suppress(OSError):
        cache.dir.mkdir(parents=True, exist_ok=True)
        (cache.dir / OUTCOME_FILE).write_text(json.dumps(outcomes, indent=2) + "\n")


def last_failure(delegate: str, cache: Cache | None = None) -> str | None:
    """The error of the last lowering for ``delegate`` if it failed with the torch and
    executorch installed now; None when it worked, was never tried or versions changed."""
    cache = cache or Cache("executorch")
    outcome = _outcomes(cache.dir / OUTCOME_FILE).get(delegate)
    if not isinstance(outcome, dict) or not outcome.get("error"):
        return None
    same = outcome.get("torch") == package_version("torch") and outcome.get(
        "executorch"
    ) == package_version("executorch")
    return str(outcome["error"]) if same else None


def _outcomes(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _data_file(pte: Path) -> Path | None:
    """The ``.ptd`` tensor data written beside the program, if the delegate wrote one."""
    found = sorted(pte.parent.glob("*.ptd"))
    return found[0] if found else None
