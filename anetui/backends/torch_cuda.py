"""PyTorch on NVIDIA GPUs: eager (fp32 and fp16), one CUDA graph captured and replayed,
and torch.compile with mode="reduce-overhead". Every ``infer()`` ends in
``torch.cuda.synchronize``, so the runner's wall-clock latency is what a caller waits.

Not a runtime module of its own: these classes are listed in :mod:`anetui.backends.torch`'s
``BACKENDS`` (one registry row per runtime), with the probe
:func:`~anetui.backends.torch_base.torch_cuda`. torch is imported only when a backend is
created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anetui.backends.torch_base import TorchBackend, TorchCompiled
from anetui.errors import Availability

if TYPE_CHECKING:
    import torch

    from anetui.backends.torch_base import Examples


class TorchCuda(TorchBackend):
    def _place(
        self, model: torch.nn.Module, examples: Examples, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, Examples]:
        import torch

        # Fixed shapes: let cuDNN pick its fastest kernels, as any tuned deployment would.
        torch.backends.cudnn.benchmark = True
        return super()._place(model, examples, dtype)

    def _notes(self) -> tuple[str, ...]:
        import torch

        if self.dtype == "fp32" and torch.backends.cudnn.allow_tf32:
            # torch's default: fp32 convolutions run in TF32 on Ampere and later, which
            # is why fp32 agreement on CUDA is ~1e-2 rather than ~1e-6.
            return ("cuDNN TF32 convolutions enabled (torch default for fp32)",)
        return ()

    def _runtime_available(self) -> Availability:
        import torch

        if not torch.cuda.is_available():
            return Availability.no("torch.cuda.is_available() is False (no usable CUDA device)")
        return Availability.yes()

    def _sync(self) -> None:
        import torch

        torch.cuda.synchronize()

    def infer(self) -> None:
        assert self._forward is not None, "prepare() first"
        self._forward()
        self._sync()

    def close(self) -> None:
        import torch

        super().close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class TorchCudaGraph(TorchCuda):
    """The whole forward pass captured once as a CUDA graph and replayed.

    Replay removes the per-kernel launch overhead that dominates small models at batch 1;
    input and output live in static buffers bound at capture.
    """

    def _optimise(self, model: torch.nn.Module, examples: Examples) -> Callable[[], Any]:
        import torch

        # Warm up on a side stream, as CUDA graph capture requires (cuDNN autotuning,
        # lazy allocations must not happen during capture).
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(*examples)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(*examples)

        def replay() -> Any:
            graph.replay()
            return static_out

        return replay


class TorchCudaCompiled(TorchCompiled, TorchCuda):
    """torch.compile with mode="reduce-overhead": Inductor kernels replayed as CUDA graphs."""

    mode = "reduce-overhead"

    def _step(self, call: Callable[[], Any]) -> Callable[[], Any]:
        import torch

        def step() -> Any:
            # Each call is a new inference: the graph may reuse the previous output buffer.
            torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
            return call()

        return step
