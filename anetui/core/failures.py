"""A failing backend in the user's words: one line naming the backend and the runtime's
own message, for errors in probes, creation, preparation and runs alike."""

from __future__ import annotations

from collections.abc import Callable

from anetui.backends.base import BackendDescription, BackendError
from anetui.errors import Availability, one_line
from anetui.models.spec import ModelSpec


def ask(probe: Callable[[], Availability], what: str) -> Availability:
    """A probe's answer; a probe that raises answers "no" with its error."""
    try:
        return probe()
    except Exception as exc:
        return Availability.no(f"{what}: {type(exc).__name__}: {one_line(exc)}")


def reason(backend_id: str, exc: Exception) -> str:
    """A backend's refusal as an unavailability reason, without repeating its id."""
    text = (
        one_line(exc)
        if isinstance(exc, BackendError)
        else (f"{type(exc).__name__}: {one_line(exc)}")
    )
    for prefix in (f"{backend_id}: ", f"{backend_id} "):
        if text.startswith(prefix):
            return text.removeprefix(prefix)
    return text


def failure(backend_id: str, what: str, exc: Exception) -> str:
    """One line naming the backend and the runtime's own message."""
    if isinstance(exc, BackendError):  # already says which backend, in the user's terms
        return one_line(exc, 300)
    return f"{backend_id} {what}: {type(exc).__name__}: {one_line(exc)}"


def cannot_run(description: BackendDescription, spec: ModelSpec) -> str:
    """Why a backend cannot run this kind of model, in the user's terms."""
    what = {
        "mlpackage": "a Core ML package",
        "onnx": "an ONNX file",
        "pte": "an ExecuTorch program (.pte: executorch-* only)",
        "openvino": "an OpenVINO IR (.xml: openvino-* only)",
        "decoder": "a decoder's generative workload (torch-cpu, mlx-cpu, ort-genai-cpu, "
        "coreml-*, llamacpp-cpu … generate)",
    }.get(spec.kind, spec.kind)
    if spec.kind == "decoder":
        return f"{description.runtime} does not run {what}"
    if description.runtime.startswith("PyTorch"):
        return f"no PyTorch model (the model is {what})"
    return f"{description.runtime} cannot run {what}"
