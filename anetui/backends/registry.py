"""The backend registry: one row per runtime module, each declaring its backends.

A runtime module (``anetui/backends/<runtime>.py``) exports ``BACKENDS``, a tuple of
:class:`BackendDescription` with the backend class and a cheap availability probe. The
modules import their runtime (torch, coremltools, onnxruntime …) only when a backend is
created, so listing and probing backends — `anetui --help`, `anetui doctor` — stays fast.
To add a runtime: write its module, add one row to :data:`RUNTIME_MODULES`.
"""

from __future__ import annotations

import importlib

from anetui.backends.base import Backend, BackendDescription, BackendOptions

#: The runtime modules, in the order their backends are listed and run by default.
RUNTIME_MODULES = (
    "anetui.backends.torch",
    "anetui.backends.coreml",
    "anetui.backends.onnx",
    "anetui.backends.openvino",
    "anetui.backends.executorch",
    "anetui.backends.mlx",
    "anetui.backends.quantized",
    "anetui.backends.ort_genai",
    "anetui.backends.llamacpp",
)


def _collect() -> dict[str, BackendDescription]:
    registry: dict[str, BackendDescription] = {}
    for module_name in RUNTIME_MODULES:
        for description in importlib.import_module(module_name).BACKENDS:
            registry[description.id] = description
    return registry


#: Every backend id known, in listing order -> its description.
REGISTRY: dict[str, BackendDescription] = _collect()


def default_ids() -> tuple[str, ...]:
    """What runs when no --backends is given: every id but those marked ``default=False``
    (the quantized siblings, which would double the set and each cost a calibration)."""
    return tuple(i for i, d in REGISTRY.items() if d.default)


class UnknownBackendError(ValueError):
    """A backend id that the registry does not know."""


def describe(backend_id: str) -> BackendDescription:
    try:
        return REGISTRY[backend_id]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownBackendError(f"unknown backend '{backend_id}' (known: {known})") from None


def create(backend_id: str, options: BackendOptions | None = None) -> Backend:
    """Instantiate a backend (this is when its runtime is imported)."""
    description = describe(backend_id)
    return description.factory(description, options or BackendOptions())
