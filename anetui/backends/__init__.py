"""The lazy backend registry: ids map to module paths, imported only when selected.

Listing backends, probing them cheaply and printing `anetui doctor` import no runtime;
:func:`create` imports one backend's module when that backend is asked for.
"""

from __future__ import annotations

import importlib

from anetui.backends import probes
from anetui.backends.base import (
    Availability,
    Backend,
    BackendDescription,
    BackendError,
    BackendOptions,
    PrepareInfo,
)

__all__ = [
    "REGISTRY",
    "Availability",
    "Backend",
    "BackendDescription",
    "BackendError",
    "BackendOptions",
    "PrepareInfo",
    "UnknownBackendError",
    "create",
    "describe",
]

_TORCH = "anetui.backends.torch_backends"
_COREML = "anetui.backends.coreml_backends"
_COREML_KINDS = ("torchvision", "export", "torchscript", "mlpackage")
_ONNX = "anetui.backends.onnx_backends"
_ONNX_KINDS = ("torchvision", "export", "torchscript", "onnx")

REGISTRY: dict[str, BackendDescription] = {
    d.id: d
    for d in (
        BackendDescription(
            "torch-cpu",
            "PyTorch eager",
            "cpu",
            "fp32",
            "eager, inference_mode, channels_last: the fair eager baseline",
            f"{_TORCH}:TorchCpuEager",
            probes.torch_installed,
        ),
        BackendDescription(
            "torch-cpu-opt",
            "PyTorch TorchScript",
            "cpu",
            "fp32",
            "frozen TorchScript + optimize_for_inference (conv-bn folding, oneDNN)",
            f"{_TORCH}:TorchCpuOptimized",
            probes.torch_installed,
        ),
        BackendDescription(
            "torch-cuda",
            "PyTorch eager",
            "cuda",
            "fp32",
            "eager on the GPU, torch.cuda.synchronize after every inference",
            f"{_TORCH}:TorchCuda",
            probes.torch_cuda,
        ),
        BackendDescription(
            "torch-cuda-graph",
            "PyTorch CUDA graph",
            "cuda",
            "fp16",
            "fp16, one CUDA graph captured and replayed, synchronised per inference",
            f"{_TORCH}:TorchCudaGraph",
            probes.torch_cuda,
        ),
        BackendDescription(
            "torch-mps",
            "PyTorch eager",
            "mps",
            "fp32",
            "eager on the Apple GPU, torch.mps.synchronize after every inference",
            f"{_TORCH}:TorchMps",
            probes.torch_mps,
        ),
        BackendDescription(
            "coreml-all",
            "Core ML",
            "all",
            "fp16",
            "Core ML, ComputeUnit.ALL: CPU, GPU and Neural Engine as Core ML decides",
            f"{_COREML}:CoreMLBackend",
            probes.coreml,
            _COREML_KINDS,
        ),
        BackendDescription(
            "coreml-cpu",
            "Core ML",
            "cpu",
            "fp16",
            "Core ML, ComputeUnit.CPU_ONLY",
            f"{_COREML}:CoreMLBackend",
            probes.coreml,
            _COREML_KINDS,
        ),
        BackendDescription(
            "coreml-gpu",
            "Core ML",
            "cpu+gpu",
            "fp16",
            "Core ML, ComputeUnit.CPU_AND_GPU",
            f"{_COREML}:CoreMLBackend",
            probes.coreml,
            _COREML_KINDS,
        ),
        BackendDescription(
            "coreml-ane",
            "Core ML",
            "cpu+ane",
            "fp16",
            "Core ML, ComputeUnit.CPU_AND_NE: the Apple Neural Engine",
            f"{_COREML}:CoreMLBackend",
            lambda: probes.coreml((13,), "coreml-ane"),
            _COREML_KINDS,
        ),
        BackendDescription(
            "onnx-cpu",
            "ONNX Runtime",
            "cpu",
            "fp32",
            "ONNX Runtime, CPUExecutionProvider, graph optimisation ALL, IO binding",
            f"{_ONNX}:OnnxBackend",
            lambda: probes.onnx_provider("CPUExecutionProvider", "reinstall onnxruntime"),
            _ONNX_KINDS,
        ),
        BackendDescription(
            "onnx-cuda",
            "ONNX Runtime",
            "cuda",
            "fp32",
            "ONNX Runtime, CUDAExecutionProvider",
            f"{_ONNX}:OnnxBackend",
            lambda: probes.onnx_provider("CUDAExecutionProvider", "install onnxruntime-gpu"),
            _ONNX_KINDS,
        ),
        BackendDescription(
            "onnx-coreml",
            "ONNX Runtime",
            "coreml",
            "fp32",
            "ONNX Runtime, CoreMLExecutionProvider (ML Program, all compute units)",
            f"{_ONNX}:OnnxBackend",
            lambda: probes.onnx_provider("CoreMLExecutionProvider", "macOS wheels have it"),
            _ONNX_KINDS,
        ),
    )
}


class UnknownBackendError(ValueError):
    """A backend id that the registry does not know."""


def describe(backend_id: str) -> BackendDescription:
    try:
        return REGISTRY[backend_id]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownBackendError(f"unknown backend '{backend_id}' (known: {known})") from None


def create(backend_id: str, options: BackendOptions | None = None) -> Backend:
    """Import the backend's module (only now) and instantiate it."""
    description = describe(backend_id)
    module_name, _, class_name = description.target.partition(":")
    module = importlib.import_module(module_name)
    backend: Backend = getattr(module, class_name)(description, options or BackendOptions())
    return backend
