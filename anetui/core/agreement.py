"""Output agreement: how far a backend's output is from plain eager fp32 PyTorch on the
CPU, for the same weights and input (DESIGN.md §6, ``agreement_max_rel_err``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anetui.errors import one_line
from anetui.models.spec import ModelSpec

#: The agreement reference: plain eager PyTorch, fp32, on the CPU.
REFERENCE_RUNTIME = "torch-fp32-cpu-eager"
_TORCH_KINDS = ("torchvision", "export", "torchscript")


def reference_output(spec: ModelSpec) -> np.ndarray | None:
    """The reference output as float64, or None when the model has no PyTorch form."""
    if spec.kind not in _TORCH_KINDS:
        return None
    import torch

    from anetui.models.torch_load import load_torch_model

    model = load_torch_model(spec)
    with torch.inference_mode():
        out = model(torch.from_numpy(spec.make_input()))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return np.asarray(out.detach().to(torch.float64).numpy())


def compare(
    output: Callable[[], np.ndarray], reference: np.ndarray | None
) -> tuple[float | None, str | None]:
    """(max |out - ref| / max |ref|, None), or (None, why not) when it cannot be computed
    or the output is not finite. ``output`` runs one inference; its failure is a note,
    never an error: the check is informative and must not stop the run."""
    if reference is None:
        return None, None
    try:
        out = output()
    except Exception as exc:
        return None, f"agreement not computed: {one_line(exc)}"
    if out.shape != reference.shape:
        return None, f"agreement not computed: output shape {out.shape}"
    if not np.all(np.isfinite(out)):
        return None, "output contains NaN or Inf: agreement not computed"
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(out.astype(np.float64) - reference)) / scale), None
