"""The PyTorch runtime: eager, TorchScript and torch.compile on the CPU; eager on Apple's
MPS; and the runtime's one ``BACKENDS``, which also lists the NVIDIA backends of
:mod:`anetui.backends.torch_cuda`. What they share — loading, placing, synchronising,
torch.compile, the availability probes — is in :mod:`anetui.backends.torch_base`. torch
itself is imported only when a backend is created, never by the probes (`anetui doctor`
stays fast).

Every ``infer()`` includes the device synchronisation (``torch.cuda.synchronize`` /
``torch.mps.synchronize``), so the runner's wall-clock latency is what a caller waits.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anetui.backends.base import BackendDescription
from anetui.backends.torch_base import (
    TorchBackend,
    TorchCompiled,
    cxx_compiler,
    torch_cuda,
    torch_installed,
    torch_mps,
)
from anetui.backends.torch_cuda import TorchCuda, TorchCudaCompiled, TorchCudaGraph
from anetui.errors import Availability
from anetui.models.spec import DECODER_KIND, TORCH_KINDS

if TYPE_CHECKING:
    import torch

    from anetui.backends.torch_base import Examples


class TorchCpuEager(TorchBackend):
    """Eager PyTorch with channels_last, the layout oneDNN's CPU convolutions prefer."""

    def _place(
        self, model: torch.nn.Module, examples: Examples, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, Examples]:
        import torch

        model, examples = super()._place(model, examples, dtype)
        if len(examples) == 1 and examples[0].dim() == 4:  # one image batch
            model = model.to(memory_format=torch.channels_last)
            examples = (examples[0].contiguous(memory_format=torch.channels_last),)
        return model, examples


class TorchCpuOptimized(TorchBackend):
    """Traced, frozen TorchScript passed through torch.jit.optimize_for_inference.

    Chosen over torch.compile: on a 2-core x86 machine it is ~2x faster than eager on
    MobileNetV2 and prepares in about a second, where torch.compile costs ~40 s cold.
    """

    def _optimise(self, model: torch.nn.Module, examples: Examples) -> Callable[[], Any]:
        import torch

        # torch 2.x marks the TorchScript API deprecated with a FutureWarning per call;
        # it still works and is still the fastest CPU path measured here, so silence them.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = (
                model
                if isinstance(model, torch.jit.ScriptModule)
                else torch.jit.trace(model, examples, check_trace=False)  # type: ignore[no-untyped-call]
            )
            frozen = torch.jit.freeze(scripted.eval())
            optimized = torch.jit.optimize_for_inference(frozen)
        return lambda: optimized(*examples)


class TorchCpuCompiled(TorchCompiled, TorchCpuEager):
    """torch.compile on the CPU, channels_last as the eager baseline."""


class TorchMps(TorchBackend):
    def _runtime_available(self) -> Availability:
        import torch

        if not torch.backends.mps.is_available():
            return Availability.no("torch.backends.mps.is_available() is False")
        return Availability.yes()

    def _sync(self) -> None:
        import torch

        torch.mps.synchronize()

    def infer(self) -> None:
        assert self._forward is not None, "prepare() first"
        self._forward()
        self._sync()


#: What the backends that also generate accept (the generative workload, issue 22).
_GENERATES = (*TORCH_KINDS, DECODER_KIND)
BACKENDS = (
    BackendDescription(
        "torch-cpu",
        "PyTorch eager",
        "cpu",
        "fp32",
        "eager, inference_mode, channels_last: the fair eager baseline",
        TorchCpuEager,
        torch_installed,
        _GENERATES,
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cpu-opt",
        "PyTorch TorchScript",
        "cpu",
        "fp32",
        "frozen TorchScript + optimize_for_inference (conv-bn folding, oneDNN)",
        TorchCpuOptimized,
        torch_installed,
        graph="TorchScript (frozen)",
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cpu-compile",
        "PyTorch torch.compile",
        "cpu",
        "fp32",
        "torch.compile (Inductor, default mode), channels_last; compile time reported apart",
        TorchCpuCompiled,
        cxx_compiler,
        _GENERATES,
        graph="Inductor",
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cuda",
        "PyTorch eager",
        "cuda",
        "fp32",
        "eager on the GPU, torch.cuda.synchronize after every inference",
        TorchCuda,
        torch_cuda,
        _GENERATES,
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cuda-fp16",
        "PyTorch eager",
        "cuda",
        "fp16",
        "eager fp16 on the GPU: torch-cuda with only the precision changed",
        TorchCuda,
        torch_cuda,
        _GENERATES,
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cuda-graph",
        "PyTorch CUDA graph",
        "cuda",
        "fp16",
        "fp16, one CUDA graph captured and replayed, synchronised per inference",
        TorchCudaGraph,
        torch_cuda,
        graph="CUDA graph",
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-cuda-compile",
        "PyTorch torch.compile",
        "cuda",
        "fp32",
        'torch.compile (Inductor, mode="reduce-overhead": CUDA graphs), synchronised',
        TorchCudaCompiled,
        torch_cuda,
        _GENERATES,
        graph="Inductor + CUDA graphs",
        framework="PyTorch",
    ),
    BackendDescription(
        "torch-mps",
        "PyTorch eager",
        "mps",
        "fp32",
        "eager on the Apple GPU, torch.mps.synchronize after every inference",
        TorchMps,
        torch_mps,
        _GENERATES,
        framework="PyTorch",
    ),
)
