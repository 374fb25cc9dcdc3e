"""Quantized siblings: each runs its base backend's runtime, device, graph and threads on a
quantized model, so that it differs from the base in precision only (``sibling_of``).

A sibling makes (or finds in the cache) its quantized artefact with
:mod:`anetui.models.convert` (``quantize_*``), then hands it to an instance of its base
backend as a model file of the kind that backend runs (an ``.onnx``, an OpenVINO IR, an
``.mlpackage``, a ``.pte``), so input binding, the timed call and the output are the
base's own. The quantization is reported apart (``compile_s``), and so is what it was
calibrated on. ``torch-cpu-int8`` is :class:`~anetui.backends.torch_int8.TorchCpuInt8`.

The siblings are not in the default set (``default=False``): `anetui bench` without
``--backends`` would otherwise run every model twice and calibrate each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anetui.backends.base import (
    Backend,
    BackendDescription,
    BackendError,
    BackendOptions,
    PrepareInfo,
)
from anetui.errors import Availability
from anetui.models.convert.quantize_common import Calibration, QuantizationError, Quantized
from anetui.models.inputs import OutputSpec, float_input
from anetui.models.spec import ModelSpec

#: What to install for NNCF (openvino-*-int8).
QUANTIZE_HINT = "pip install 'anetui[quantize]'"


class QuantizedSibling:
    """A base backend running a quantized model; subclasses say how it is made and given."""

    #: The base's notes that the quantization note replaces (by their first words).
    base_notes_replaced: tuple[str, ...] = ()

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        from anetui.backends import registry  # at call time: the registry imports this module

        self.id = description.id
        self.dtype = description.default_dtype
        if options.dtype is not None and options.dtype != self.dtype:
            raise BackendError(
                f"{self.id} computes in {self.dtype} (the quantized sibling of "
                f"{description.sibling_of}), not {options.dtype}"
            )
        assert description.sibling_of is not None
        self.device = description.device
        self._description = description
        base = registry.describe(description.sibling_of)
        self._base: Backend = self._make_base(base, BackendOptions(threads=options.threads))
        self._phase: str | None = None
        #: The user's calibration folder; None: random inputs drawn like the benchmark's.
        self.calibration_dir = options.calibration
        self.calibration: Calibration | None = None

    def _make_base(self, base: BackendDescription, options: BackendOptions) -> Backend:
        return base.factory(base, options)

    @property
    def phase(self) -> str | None:
        """ "quantizing" while the quantized model is made, then the base's own step."""
        return self._phase or getattr(self._base, "phase", None)

    def available(self) -> Availability:
        probe = self._description.probe()
        return self._base.available() if probe.ok else probe

    def _quantize(self, spec: ModelSpec) -> Quantized:
        raise NotImplementedError

    def _base_spec(self, spec: ModelSpec, quantized: Quantized) -> ModelSpec:
        """``spec`` as the base backend runs the quantized file (same shape and input)."""
        raise NotImplementedError

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        from anetui.models.convert.quantize_common import calibration_for

        started = time.perf_counter()
        self._phase = "quantizing"  # shown live: a calibration takes seconds
        try:
            self.calibration = calibration_for(spec, self.calibration_dir)
            quantized = self._quantize(spec)
        except QuantizationError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        finally:
            self._phase = None
        quantized_s = time.perf_counter() - started
        info = self._base.prepare(self._base_spec(spec, quantized))
        base_notes = [n for n in info.notes if not n.startswith(self.base_notes_replaced)]
        notes = [quantized.describe(), *base_notes, *quantized.notes]
        if quantized.calibration_note:
            notes.append(quantized.calibration_note)
        return dataclasses.replace(
            info,
            compile_s=info.compile_s + quantized_s,
            notes=tuple(dict.fromkeys(notes)),
            info={
                **info.info,
                "quantization": {
                    "scheme": quantized.scheme,
                    "method": quantized.method,
                    "artefact": str(quantized.path),
                    "cached": quantized.cached,
                    "seconds": round(quantized_s, 3),
                    "calibration": quantized.calibration_note or None,
                },
            },
        )

    # The timed call is the base's (one Python call more, well under a microsecond).
    def infer(self) -> None:
        self._base.infer()

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return self._base.thread_context()

    def outputs(self) -> list[np.ndarray]:
        return self._base.outputs()

    def close(self) -> None:
        self._base.close()


class OnnxInt8(QuantizedSibling):
    """onnx-cpu on ONNX Runtime's static QDQ int8 model."""

    def _quantize(self, spec: ModelSpec) -> Quantized:
        from anetui.models.convert import quantize_onnx

        return quantize_onnx.quantize(spec, self.calibration)

    def _base_spec(self, spec: ModelSpec, quantized: Quantized) -> ModelSpec:
        from anetui.models.convert.onnx import INPUT_NAME, OUTPUT_NAME

        # The export's own names for the one image input and its output.
        return _as_file(spec, "onnx", quantized.path, INPUT_NAME, OUTPUT_NAME)


class OpenVinoInt8(QuantizedSibling):
    """openvino-cpu (f32 inference precision, as the base) on NNCF's int8 IR."""

    def _quantize(self, spec: ModelSpec) -> Quantized:
        from anetui.models.convert import quantize_openvino

        return quantize_openvino.quantize(spec, self.calibration)

    def _base_spec(self, spec: ModelSpec, quantized: Quantized) -> ModelSpec:
        # The OpenVINO backend reads a given model file (an IR) as it is.
        return _as_file(spec, "openvino", quantized.path, spec.input_name, None)


class ExecuTorchInt8(QuantizedSibling):
    """executorch-xnnpack on the PT2E int8 program."""

    base_notes_replaced = ("lowered ",)  # the quantization lowered it

    def _make_base(self, base: BackendDescription, options: BackendOptions) -> Backend:
        from anetui.backends.executorch import ExecuTorchBackend
        from anetui.models.convert.executorch import Program

        sibling = self

        class Given(ExecuTorchBackend):
            def _program(self, spec: ModelSpec) -> Program:
                from anetui.models.convert.quantize_executorch import program

                assert sibling.quantized is not None
                return program(sibling.quantized)

        return Given(base, options)

    def _quantize(self, spec: ModelSpec) -> Quantized:
        from anetui.models.convert import quantize_executorch

        self.quantized: Quantized | None = quantize_executorch.quantize(spec, self.calibration)
        return self.quantized

    def _base_spec(self, spec: ModelSpec, quantized: Quantized) -> ModelSpec:
        return spec


class CoreMLQuantized(QuantizedSibling):
    """coreml-<unit> on a weight-compressed (w8, int4) or w8a8 package."""

    def _quantize(self, spec: ModelSpec) -> Quantized:
        from anetui.models.convert import quantize_coreml

        return quantize_coreml.quantize(spec, self.dtype, self.calibration)

    def _base_spec(self, spec: ModelSpec, quantized: Quantized) -> ModelSpec:
        from anetui.models.convert.coreml import OUTPUT_NAME

        name = quantized.input_name or spec.input_name
        return _as_file(spec, "mlpackage", quantized.path, name, OUTPUT_NAME)

    def runtime_latency_ns(self) -> int | None:
        """Core ML's own duration of the prediction just timed (the base's)."""
        hook: Callable[[], int | None] | None = getattr(self._base, "runtime_latency_ns", None)
        return hook() if hook is not None else None


def _as_file(
    spec: ModelSpec, kind: str, path: Path, input_name: str, output_name: str | None
) -> ModelSpec:
    """``spec`` (one float input: the siblings calibrate nothing else) as the quantized
    file the base backend runs, with the file's names for its input and output."""
    return dataclasses.replace(
        spec,
        kind=kind,
        path=path,
        inputs=(float_input(input_name, spec.input_shape),),
        outputs=(OutputSpec(output_name),) if output_name else (),
    )


# -- availability probes: no heavy imports ------------------------------------------
def _installed(module: str, hint: str) -> Availability:
    if importlib.util.find_spec(module) is None:
        return Availability.no(f"{module} not installed ({hint})")
    return Availability.yes()


def _both(first: Callable[[], Availability], second: Callable[[], Availability]) -> Availability:
    got = first()
    return second() if got.ok else got


def _w8a8_probe(backend_id: str) -> Callable[[], Availability]:
    """Core ML on macOS 14+ (int8 activation operations); off macOS, the calibration
    (Core ML predictions) cannot run either."""

    def probe() -> Availability:
        from anetui.backends.coreml import coreml_probe
        from anetui.versions import macos_version

        if macos_version() is None and importlib.util.find_spec("coremltools") is not None:
            return Availability.no("Core ML prediction and w8a8's calibration need macOS")
        return coreml_probe((14,), backend_id)

    return probe


def _sibling(
    backend_id: str,
    base: BackendDescription,
    precision: str,
    summary: str,
    factory: Callable[[BackendDescription, BackendOptions], Backend],
    probe: Callable[[], Availability] | None = None,
) -> BackendDescription:
    """A row that differs from ``base`` in its precision (and what only follows from it)."""
    return dataclasses.replace(
        base,
        id=backend_id,
        default_dtype=precision,
        summary=summary,
        factory=factory,
        probe=probe or base.probe,
        sibling_of=base.id,
        default=False,
    )


def _rows() -> tuple[BackendDescription, ...]:
    from anetui.backends import coreml, executorch, onnx, openvino

    def base(module: Any, backend_id: str) -> BackendDescription:
        found: BackendDescription = next(d for d in module.BACKENDS if d.id == backend_id)
        return found

    onnx_cpu = base(onnx, "onnx-cpu")
    openvino_cpu = base(openvino, "openvino-cpu")
    xnnpack = base(executorch, "executorch-xnnpack")
    rows = [
        _sibling(
            "onnx-cpu-int8",
            onnx_cpu,
            "int8",
            "onnx-cpu on a static int8 QDQ model (per-channel weights; VNNI kernels on x86)",
            OnnxInt8,
        ),
        _sibling(
            "openvino-cpu-int8",
            openvino_cpu,
            "int8",
            "openvino-cpu on an NNCF post-training int8 model",
            OpenVinoInt8,
            lambda: _both(openvino_cpu.probe, lambda: _installed("nncf", QUANTIZE_HINT)),
        ),
        _sibling(
            "executorch-xnnpack-int8",
            xnnpack,
            "int8",
            "executorch-xnnpack on a PT2E int8 program (XNNPACKQuantizer)",
            ExecuTorchInt8,
            lambda: _both(
                xnnpack.probe, lambda: _installed("torchao", "pip install 'anetui[executorch]'")
            ),
        ),
    ]
    texts = {
        "w8": "int8 weights (linear_quantize_weights), fp16 compute",
        "w8a8": "int8 weights and activations (linear_quantize_activations + weights)",
        "int4": "4-bit weights (palettized: a 16-entry k-means table per tensor)",
    }
    for unit_row in coreml.BACKENDS:
        for precision, text in texts.items():
            backend_id = f"{unit_row.id}-{precision}"
            rows.append(
                _sibling(
                    backend_id,
                    unit_row,
                    precision,
                    f"{unit_row.id} on a package with {text}",
                    CoreMLQuantized,
                    _w8a8_probe(backend_id) if precision == "w8a8" else None,
                )
            )
    return tuple(rows)


def _torch_row() -> BackendDescription:
    from anetui.backends import torch as torch_backends
    from anetui.backends.torch_int8 import TorchCpuInt8

    compiled = next(d for d in torch_backends.BACKENDS if d.id == "torch-cpu-compile")
    row = _sibling(
        "torch-cpu-int8",
        compiled,
        "int8",
        "torch-cpu-compile on a PT2E int8 model (X86InductorQuantizer, Inductor with "
        "freezing); compile time reported apart",
        TorchCpuInt8,
        lambda: _both(
            compiled.probe, lambda: _installed("torchao", "pip install 'anetui[executorch]'")
        ),
    )
    # PT2E exports the model: a TorchScript file cannot be quantized this way.
    return dataclasses.replace(row, accepts=("torchvision", "export"))


BACKENDS = (_torch_row(), *_rows())
