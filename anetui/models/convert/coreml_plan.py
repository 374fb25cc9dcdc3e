"""Core ML's compute plan: which device each ML Program operation is planned for, and
the cost-weighted share of the model on the Neural Engine, GPU and CPU.

Needs macOS 14.4+ (``MLComputePlan``) and coremltools 8.1+; elsewhere
:class:`PlanUnavailable` says why in one line. :func:`summarize` is pure and tested
everywhere; :func:`compute_plan` walks Core ML's objects (macOS only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError
from anetui.versions import macos_version, package_version

#: coremltools device classes -> our device names.
_DEVICES = {
    "MLCPUComputeDevice": "cpu",
    "MLGPUComputeDevice": "gpu",
    "MLNeuralEngineComputeDevice": "ane",
}
#: ComputeUnit member name -> the devices it allows.
_UNIT_DEVICES = {
    "ALL": ("cpu", "gpu", "ane"),
    "CPU_ONLY": ("cpu",),
    "CPU_AND_GPU": ("cpu", "gpu"),
    "CPU_AND_NE": ("cpu", "ane"),
}


class PlanUnavailable(AnetuiError):
    """No compute plan here; the message says why."""


@dataclass(frozen=True)
class OpPlan:
    operator: str
    output: str
    preferred: str | None
    supported: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Plan:
    compute_unit: str
    ops: tuple[OpPlan, ...]
    #: Cost-weighted share of the model per device (sums to 1 over planned ops).
    share: dict[str, float]
    #: (op, why) for ops not planned on the best device the compute unit allows.
    fallbacks: tuple[tuple[OpPlan, str], ...] = field(default=())


def plan_unavailable_reason() -> str | None:
    """Why no compute plan can be made here, or None when one can."""
    version = macos_version()
    if version is None:
        return "the compute plan needs macOS 14.4+ (MLComputePlan); this is not macOS"
    if version < (14, 4):
        return f"the compute plan needs macOS 14.4+; this is macOS {'.'.join(map(str, version))}"
    ct_version = package_version("coremltools")
    if ct_version is None:
        return "coremltools not installed (pip install 'anetui[coreml]')"
    major_minor = tuple(int(p) for p in ct_version.split(".")[:2] if p.isdigit())
    if major_minor < (8, 1):
        return f"the compute plan needs coremltools 8.1+; this is {ct_version}"
    return None


def summarize(ops: Sequence[OpPlan], compute_unit: str) -> Plan:
    """Shares per device and the ops that fall back, from per-op plans."""
    total = sum(op.weight for op in ops if op.preferred is not None)
    share: dict[str, float] = {}
    for op in ops:
        if op.preferred is not None and total > 0:
            share[op.preferred] = share.get(op.preferred, 0.0) + op.weight / total
    allowed = _UNIT_DEVICES[compute_unit]
    best = "ane" if "ane" in allowed else ("gpu" if "gpu" in allowed else "cpu")
    fallbacks = []
    for op in ops:
        if op.preferred is None or op.preferred == best or op.operator == "const":
            continue
        if best not in op.supported:
            why = f"not supported on the {_LONG[best]}"
        else:
            planned = _LONG.get(op.preferred, op.preferred)
            why = f"supported on the {_LONG[best]}, but Core ML planned it for the {planned}"
        fallbacks.append((op, why))
    return Plan(compute_unit, tuple(ops), dict(sorted(share.items())), tuple(fallbacks))


_LONG = {"ane": "Neural Engine", "gpu": "GPU", "cpu": "CPU"}


def compute_plan(ct: Any, compiled_path: Path, compute_unit: str) -> Plan:  # macOS only
    reason = plan_unavailable_reason()
    if reason is not None:
        raise PlanUnavailable(reason)
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(
        str(compiled_path), compute_units=getattr(ct.ComputeUnit, compute_unit)
    )
    program = plan.model_structure.program
    if program is None:
        raise PlanUnavailable("the model is not an ML Program")
    ops = []
    for operation in program.functions["main"].block.operations:
        usage = plan.get_compute_device_usage_for_mlprogram_operation(operation)
        cost = plan.get_estimated_cost_for_mlprogram_operation(operation)
        ops.append(
            OpPlan(
                operator=operation.operator_name,
                output=operation.outputs[0].name if operation.outputs else "",
                preferred=_device(usage.preferred_compute_device) if usage else None,
                supported=tuple(_device(d) for d in usage.supported_compute_devices)
                if usage
                else (),
                weight=float(cost.weight) if cost else 0.0,
            )
        )
    return summarize(ops, compute_unit)


def _device(device: Any) -> str:
    """Our name for a coremltools compute device (by class, subclasses included)."""
    from coremltools.models import compute_device

    for class_name, name in _DEVICES.items():
        if isinstance(device, getattr(compute_device, class_name)):
            return name
    return type(device).__name__
