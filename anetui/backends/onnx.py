"""ONNX Runtime backends: CPU, CUDA and Core ML execution providers.

The session is created once in ``prepare`` (graph optimisation level ALL), every named
input is bound once (IO binding) and every output is bound, and the timed call is
``run_with_iobinding``, which returns when the outputs are ready. On CUDA, inputs and
outputs are OrtValues on the device, so the timed call copies nothing between host and
GPU. An ONNX file with external data (``model.onnx.data``) is read from its own folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from typing import Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.errors import Availability, one_line
from anetui.models.convert.onnx import OnnxExportError, export
from anetui.models.spec import ModelSpec

PROVIDERS = {
    "onnx-cpu": "CPUExecutionProvider",
    "onnx-cuda": "CUDAExecutionProvider",
    "onnx-coreml": "CoreMLExecutionProvider",
}
#: The graph factor of every ONNX Runtime backend: its own optimised graph.
ORT_GRAPH = "ONNX graph, optimisation ALL"
#: Core ML EP options (onnxruntime >= 1.20): ML Program format, every compute unit.
COREML_OPTIONS = {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}


class OnnxBackend:
    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype != "fp32":
            raise BackendError(f"{self.id} runs the fp32 ONNX export, not {self.dtype}")
        self._description = description
        self._threads = options.threads
        self._session: Any = None
        self._binding: Any = None
        #: onnx-cuda: the OrtValues bound on the GPU (kept alive with the binding).
        self._device_values: list[Any] = []
        self._sync_outputs = False

    def available(self) -> Availability:
        return self._description.probe()  # installed, and the provider is there

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        import onnxruntime

        notes: list[str] = []
        started = time.perf_counter()
        if spec.kind == "onnx":
            assert spec.path is not None
            path = spec.path
        else:
            self.phase = "exporting"  # shown live: an export can take seconds
            try:
                result = export(spec)
            except OnnxExportError as exc:
                raise BackendError(f"{self.id}: {exc}") from None
            path = result.path
            notes.append(
                "exported " + ("from the cache" if result.cached else f"in {result.seconds:.1f} s")
            )
        exported = time.perf_counter()
        self.phase = "loading"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
        provider: Any = PROVIDERS[self.id]
        if self.id == "onnx-coreml":
            provider = (provider, COREML_OPTIONS)  # macOS only
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=[provider])
        except Exception as exc:
            raise BackendError(f"{self.id} could not create a session: {one_line(exc)}") from None
        used = self._session.get_providers()
        if used[0] != PROVIDERS[self.id]:
            raise BackendError(f"{self.id}: onnxruntime fell back to {used[0]}")
        self._binding = self._session.io_binding()
        arrays = spec.make_inputs()
        expected = {i.name for i in self._session.get_inputs()}
        if set(arrays) != expected:
            raise BackendError(
                f"{self.id}: the ONNX graph's inputs are {', '.join(sorted(expected))}, "
                f"not {', '.join(arrays)}"
            )
        try:
            if self.id == "onnx-cuda":
                self._bind_on_cuda(onnxruntime, arrays)
            else:
                for name, data in arrays.items():
                    self._binding.bind_cpu_input(name, data)  # bound once
                for output in self._session.get_outputs():
                    self._binding.bind_output(output.name)
        except Exception as exc:
            raise BackendError(f"{self.id} could not bind the inputs: {one_line(exc)}") from None
        loaded = time.perf_counter()
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        return PrepareInfo(
            load_s=loaded - exported,
            compile_s=exported - started,
            first_inference_ms=first_ns / 1e6,
            notes=tuple(notes),
            info={"providers": used, "onnxruntime": onnxruntime.__version__},
        )

    def _bind_on_cuda(self, onnxruntime: Any, arrays: dict[str, np.ndarray]) -> None:
        """Inputs copied to the GPU once and outputs allocated there: the timed call moves
        nothing between host and device (outputs are copied only for agreement)."""
        ortvalue = onnxruntime.OrtValue
        for name, data in arrays.items():
            value = ortvalue.ortvalue_from_numpy(data, "cuda", 0)
            self._device_values.append(value)
            self._binding.bind_ortvalue_input(name, value)
        for output in self._session.get_outputs():
            dtype = _NUMPY_TYPES.get(output.type)
            if dtype is not None and all(isinstance(d, int) for d in output.shape):
                out = ortvalue.ortvalue_from_shape_and_type(output.shape, dtype, "cuda", 0)
                self._device_values.append(out)
                self._binding.bind_ortvalue_output(output.name, out)
            else:  # a symbolic dimension: ORT allocates the output, still on the device
                self._binding.bind_output(output.name, "cuda", 0)
        self._sync_outputs = True

    def infer(self) -> None:
        self._session.run_with_iobinding(self._binding)
        if self._sync_outputs:  # returns when the device has finished, not when queued
            self._binding.synchronize_outputs()

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def outputs(self) -> list[np.ndarray]:
        self.infer()
        return [_host(np.asarray(out)) for out in self._binding.copy_outputs_to_cpu()]

    def close(self) -> None:
        self._session = self._binding = None
        self._device_values = []


#: ONNX Runtime's output type strings -> numpy dtypes (CUDA outputs allocated ahead).
_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def _host(array: np.ndarray) -> np.ndarray:
    """Floats as fp32 (agreement's convention), integers and booleans as they are."""
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def onnxruntime_installed() -> Availability:
    if importlib.util.find_spec("onnxruntime") is None:
        return Availability.no("onnxruntime not installed (pip install 'anetui[onnx]')")
    return Availability.yes()


def onnx_provider(provider: str, hint: str) -> Availability:
    """onnxruntime installed and offering ``provider`` (imports onnxruntime, not torch)."""
    base = onnxruntime_installed()
    if not base.ok:
        return base
    import onnxruntime

    if provider not in onnxruntime.get_available_providers():
        return Availability.no(f"onnxruntime has no {provider} here: {hint}")
    return Availability.yes()


_KINDS = ("torchvision", "transformers", "hf", "export", "torchscript", "onnx")
BACKENDS = (
    BackendDescription(
        "onnx-cpu",
        "ONNX Runtime",
        "cpu",
        "fp32",
        "ONNX Runtime, CPUExecutionProvider, graph optimisation ALL, IO binding",
        OnnxBackend,
        lambda: onnx_provider("CPUExecutionProvider", "reinstall onnxruntime"),
        _KINDS,
        graph=ORT_GRAPH,
    ),
    BackendDescription(
        "onnx-cuda",
        "ONNX Runtime",
        "cuda",
        "fp32",
        "ONNX Runtime, CUDAExecutionProvider, input and output bound on the GPU",
        OnnxBackend,
        lambda: onnx_provider("CUDAExecutionProvider", "install onnxruntime-gpu"),
        _KINDS,
        graph=ORT_GRAPH,
    ),
    BackendDescription(
        "onnx-coreml",
        "ONNX Runtime",
        "coreml",
        "fp32",
        "ONNX Runtime, CoreMLExecutionProvider (ML Program, all compute units)",
        OnnxBackend,
        lambda: onnx_provider("CoreMLExecutionProvider", "macOS wheels have it"),
        _KINDS,
        graph=ORT_GRAPH,
    ),
)
