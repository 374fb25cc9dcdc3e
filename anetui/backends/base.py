"""The Backend protocol and the types every backend shares.

A backend turns a :class:`~anetui.models.spec.ModelSpec` into something that runs one
inference per :meth:`Backend.infer` call, device synchronisation included, so that the
runner's wall-clock timing around ``infer()`` is the latency a caller would see.
Nothing here imports torch or any other runtime.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from anetui.errors import AnetuiError, Availability

if TYPE_CHECKING:
    import numpy as np

    from anetui.models.spec import ModelSpec

#: Floating-point precisions a user may ask for with ``--dtype``.
DTYPES = ("fp32", "fp16", "bf16")
#: Quantized precisions, each a backend's own (a sibling id, never ``--dtype``):
#: int8 weights and activations (a CPU runtime's int8 kernels, e.g. VNNI); Core ML's
#: ``w8`` (int8 weights, fp16 compute), ``w8a8`` (int8 weights and activations) and
#: ``int4`` (4-bit weights).
QUANTIZED = ("int8", "w8", "w8a8", "int4")
#: Every precision a backend's factors may name.
PRECISIONS = DTYPES + QUANTIZED


def is_quantized(precision: str) -> bool:
    """Whether ``precision`` is one of :data:`QUANTIZED` (calibrated or weight-only)."""
    return precision in QUANTIZED


@dataclass(frozen=True, slots=True)
class PrepareInfo:
    """What preparing cost, apart from the steady state.

    load_s: building or loading the model and moving it to the device (s).
    compile_s: graph optimisation, tracing, CUDA graph capture … (s); 0 when none.
    first_inference_ms: the first inference after preparing, never part of the stats (ms).
    """

    load_s: float
    compile_s: float
    first_inference_ms: float
    notes: tuple[str, ...] = ()
    #: Backend-specific facts for snapshots (e.g. Core ML's compute-plan shares).
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """User choices that apply to backends; None means "the backend's own default"."""

    dtype: str | None = None
    threads: int | None = None
    #: A folder of .npy/.npz calibration inputs for the quantized siblings; None: random
    #: inputs drawn like the benchmark's.
    calibration: Path | None = None


#: The factors that make two backends' figures comparable or not, in the order sentences
#: name them (``Factors`` field -> the words a sentence uses).
FACTOR_NAMES = {
    "runtime": "runtime",
    "device": "device",
    "precision": "precision",
    "graph": "graph capture",
    "threads": "threads",
}


@dataclass(frozen=True, slots=True)
class Factors:
    """What a backend's figures depend on; two backends are like for like when only one
    of these differs.

    runtime: the software that runs the graph ("PyTorch", "OpenVINO" …).
    device: where it runs ("cpu", "cuda" …).
    precision: the arithmetic used (:data:`PRECISIONS`: "fp32", "fp16", "bf16", "int8" …).
    graph: eager, or how the graph is captured/compiled ("Inductor", "CUDA graph" …).
    threads: the intra-op thread count asked for, or "default" (the runtime's own).
    """

    runtime: str
    device: str
    precision: str
    graph: str
    threads: str

    def differing(self, other: Factors) -> tuple[str, ...]:
        """The names (keys of :data:`FACTOR_NAMES`) of the factors that differ, in order."""
        return tuple(name for name in FACTOR_NAMES if getattr(self, name) != getattr(other, name))

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FACTOR_NAMES}


@dataclass(frozen=True, slots=True)
class BackendDescription:
    """Static facts about a backend id, known without importing its runtime."""

    id: str
    runtime: str
    device: str
    default_dtype: str
    summary: str
    #: Makes the backend (its class); the runtime itself is imported only then.
    factory: Callable[[BackendDescription, BackendOptions], Backend] = field(
        repr=False, compare=False
    )
    #: Cheap availability probe: no heavy imports (used by `anetui doctor`).
    probe: Callable[[], Availability] = field(repr=False, compare=False)
    #: Model kinds (ModelSpec.kind) this backend can run.
    accepts: tuple[str, ...] = ("torchvision", "transformers", "hf", "export", "torchscript")
    #: How the graph is run: "eager", or its capture/compilation ("Inductor" …).
    graph: str = "eager"
    #: The runtime as a factor ("PyTorch", "ONNX Runtime" …); "" means ``runtime``.
    framework: str = ""
    #: A quantized sibling's base: the backend id it differs from in precision only.
    sibling_of: str | None = None
    #: In the set `anetui bench` and the dashboard run when no --backends is given.
    default: bool = True

    def factors(self, dtype: str | None = None, threads: int | None = None) -> Factors:
        """This backend's factors for a run with ``dtype`` (None: its default) and
        ``threads`` (None: the runtime's default)."""
        return Factors(
            runtime=self.framework or self.runtime,
            device=self.device,
            precision=dtype or self.default_dtype,
            graph=self.graph,
            threads=str(threads) if threads is not None else "default",
        )


def prepare_phase(backend: object) -> str:
    """The step a backend's ``prepare()`` is in, as it says it; "loading" when silent."""
    phase = getattr(backend, "phase", None)
    return phase if isinstance(phase, str) and phase else "loading"


class BackendError(AnetuiError):
    """A backend failed to prepare or run; the message is one line for the user."""


class NotAvailableHere(BackendError):
    """Raised by ``prepare()`` when it finds that the backend cannot run here after all
    (e.g. the device compiled another precision than the one asked for): the backend is
    reported *not available*, with this reason, like one whose probe said no — not as a
    failed run. The message is the reason alone, without the backend's id."""


@runtime_checkable
class Backend(Protocol):
    """One runtime on one device, prepared once and then called in a timed loop."""

    id: str
    dtype: str
    device: str

    def available(self) -> Availability:
        """Full check, may import the runtime: can this backend run here?"""
        ...

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        """Load the model, build the inputs once (``spec.make_inputs()``: every named
        input, the same arrays for every backend), optimise, run the first inference.

        While it runs, a backend may set a ``phase`` attribute to one word for the step
        it is in ("loading", "exporting", "converting", "compiling"); live views read
        it with ``getattr(backend, "phase", None)`` (see :func:`prepare_phase`).
        """
        ...

    def infer(self) -> None:
        """One inference on the prepared input, including device synchronisation."""
        ...

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        """Entered once by the thread that calls infer() (e.g. torch.inference_mode,
        which is thread-local); nullcontext where nothing is needed."""
        ...

    def outputs(self) -> list[np.ndarray]:
        """One inference's outputs on the prepared inputs, in the model's output order, as
        numpy on the host (floats as fp32, integers and booleans as they are; for the
        agreement check). A backend written before named outputs may offer ``output()``
        (the first output) instead: :func:`anetui.core.agreement.backend_outputs`."""
        ...

    def close(self) -> None:
        """Release the model and device memory; idempotent."""
        ...
