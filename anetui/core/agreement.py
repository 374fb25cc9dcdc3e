"""Output agreement: how far each of a backend's outputs is from plain eager fp32 PyTorch
on the CPU, for the same weights and inputs (DESIGN.md §6, ``agreement_max_rel_err``).

Every named output is compared: floats as ``max |out - ref| / max |ref|``, integer and
boolean outputs exactly (0 when equal, 1 when any element differs); the worst is the
backend's ``agreement_max_rel_err`` and each output's figure is kept by name.

An ONNX file has no PyTorch form: its reference is ONNX Runtime on the CPU, in fp32,
with every graph optimisation off (the results' ``config.agreement_reference`` says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from anetui.errors import one_line
from anetui.models.spec import TORCH_KINDS, ModelSpec

#: The agreement reference: plain eager PyTorch, fp32, on the CPU.
REFERENCE_RUNTIME = "torch-fp32-cpu-eager"
#: … and for an ONNX file: ONNX Runtime's CPU provider, no graph optimisation.
ONNX_REFERENCE_RUNTIME = "onnxruntime-fp32-cpu-unoptimised"


def reference_runtime(spec: ModelSpec) -> str | None:
    """What ``spec``'s outputs are compared with (None: nothing)."""
    if spec.kind in TORCH_KINDS:
        return REFERENCE_RUNTIME
    if spec.generation is not None:
        return "transformers generate(), greedy, eager fp32 PyTorch on the CPU"
    return ONNX_REFERENCE_RUNTIME if spec.kind == "onnx" else None


@dataclass(frozen=True)
class Reference:
    """The reference outputs by name, in the model's order (floats as float64)."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Agreement:
    """worst: the largest per-output error (None: not computed, ``note`` says why)."""

    worst: float | None = None
    per_output: dict[str, float] = field(default_factory=dict)
    note: str | None = None


def reference(spec: ModelSpec) -> Reference | None:
    """The reference outputs, or None when the model has no reference runtime."""
    if spec.kind == "onnx":
        return _onnx_reference(spec)
    if spec.kind not in TORCH_KINDS:
        return None
    import torch

    from anetui.models.torch_load import load_torch_model, output_names, tensors_to_numpy

    model = load_torch_model(spec)
    examples = tuple(torch.from_numpy(a) for a in spec.make_inputs().values())
    with torch.inference_mode():
        arrays = tensors_to_numpy(model(*examples))
    names = output_names(model, spec, len(arrays))
    return Reference(
        tuple(names),
        tuple(a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays),
    )


def _onnx_reference(spec: ModelSpec) -> Reference | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    assert spec.path is not None
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(
        str(spec.path), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    arrays = session.run(names, spec.make_inputs())
    return Reference(
        tuple(names),
        tuple(
            np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
            for a in arrays
        ),
    )


def reference_or_note(spec: ModelSpec) -> tuple[Reference | None, str | None]:
    """The reference, or None and why not when making it failed: the check informs, it
    never stops the run."""
    try:
        return reference(spec), None
    except Exception as exc:
        return None, f"agreement not computed: the reference failed: {one_line(exc)}"


def reference_tokens_or_note(spec: ModelSpec) -> tuple[list[int] | None, str | None]:
    """The generative workload's reference: transformers' greedy ``generate()`` in eager
    fp32 on the CPU (:func:`anetui.backends.torch_generate.reference_tokens`), or None and
    why not."""
    try:
        from anetui.backends.torch_generate import reference_tokens

        return reference_tokens(spec), None
    except Exception as exc:
        return None, f"token agreement not computed: the reference failed: {one_line(exc)}"


def output_rows(spec: ModelSpec, ref: Reference | None) -> list[dict[str, object]]:
    """The results' ``config.outputs``: what the model file declares, else what the
    reference returned (names, shapes, fp32 for floats), once it was made."""
    if spec.outputs:
        return [o.as_dict() for o in spec.outputs]
    if ref is None:
        return []
    return [
        {
            "name": name,
            "shape": list(array.shape),
            "dtype": "float32" if array.dtype.kind == "f" else str(array.dtype),
        }
        for name, array in zip(ref.names, ref.arrays, strict=True)
    ]


def reference_output(spec: ModelSpec) -> np.ndarray | None:
    """The first reference output (float64), or None (one-output models)."""
    found = reference(spec)
    return found.arrays[0] if found is not None and found.arrays else None


def backend_outputs(backend: object) -> Callable[[], list[np.ndarray]]:
    """The backend's ``outputs()``, or its single ``output()`` as a one-item list (a
    backend written before named outputs)."""
    outputs = getattr(backend, "outputs", None)
    if callable(outputs):
        return outputs  # type: ignore[no-any-return]
    single = backend.output  # type: ignore[attr-defined]
    return lambda: [single()]


def compare(output: Callable[[], list[np.ndarray]], ref: Reference | None) -> Agreement:
    """Every output against the reference; an :class:`Agreement` with a note (never an
    exception) when it cannot be computed: the check is informative and must not stop
    the run. ``output`` runs one inference."""
    if ref is None:
        return Agreement()
    try:
        outs = output()
    except Exception as exc:
        return Agreement(note=f"agreement not computed: {one_line(exc)}")
    if len(outs) < len(ref.arrays):
        return Agreement(
            note=f"agreement not computed: {len(outs)} outputs, the reference has "
            f"{len(ref.arrays)} ({', '.join(ref.names)})"
        )
    per_output: dict[str, float] = {}
    for name, out, expected in zip(ref.names, outs, ref.arrays, strict=False):
        out = np.asarray(out)
        if out.shape != expected.shape:
            return Agreement(note=f"agreement not computed: output {name} has shape {out.shape}")
        if expected.dtype.kind in "biu":  # integers and booleans: exact
            per_output[name] = 0.0 if np.array_equal(out, expected) else 1.0
            continue
        if not np.all(np.isfinite(out)):
            return Agreement(note="output contains NaN or Inf: agreement not computed")
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        diff = np.abs(out.astype(np.float64) - expected)
        per_output[name] = float(np.max(diff)) / (scale or 1.0) if diff.size else 0.0
    return Agreement(max(per_output.values()) if per_output else None, per_output)
