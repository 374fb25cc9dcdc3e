"""PyTorch backends: eager, TorchScript and torch.compile on the CPU; eager fp32 and
fp16, CUDA graphs and torch.compile on NVIDIA GPUs; eager on Apple's MPS; with their
availability probes. torch itself is imported only when a backend is created, never by
the probes (`anetui doctor` stays fast).

Every ``infer()`` includes the device synchronisation (``torch.cuda.synchronize`` /
``torch.mps.synchronize``), so the runner's wall-clock latency is what a caller waits.

One module per runtime: every PyTorch variant (eager, TorchScript, torch.compile, CUDA
graphs, fp16, MPS) shares TorchBackend's loading, placing and synchronising, hence its
length.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.errors import Availability, one_line
from anetui.models.spec import ModelError, ModelSpec
from anetui.models.torch_load import load_torch_model
from anetui.versions import package_version

if TYPE_CHECKING:
    import torch

TORCH_DTYPES = ("fp32", "fp16", "bf16")
#: Inductor's cache folder as the user set it before anetui started (None: ours is used).
_USER_INDUCTOR_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


# -- availability probes: file and platform checks, no torch import ------------------
def torch_installed() -> Availability:
    if importlib.util.find_spec("torch") is None:
        return Availability.no("torch not installed (pip install torch)")
    return Availability.yes()


def torch_cuda() -> Availability:
    base = torch_installed()
    if not base.ok:
        return base
    version = package_version("torch") or ""
    if version.endswith("+cpu"):
        return Availability.no(f"torch {version} is a CPU-only build")
    if sys.platform == "darwin":
        return Availability.no("no NVIDIA GPU (CUDA does not run on macOS)")
    if not _nvidia_gpu_present():
        return Availability.no("no NVIDIA GPU (no NVIDIA driver or device found)")
    return Availability.yes()


def _nvidia_gpu_present() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    return Path("/dev/nvidia0").exists()


def torch_mps() -> Availability:
    base = torch_installed()
    if not base.ok:
        return base
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return Availability.no("MPS needs macOS on Apple silicon")
    return Availability.yes()


class TorchBackend:
    """Shared preparation: load, place on device/dtype, optimise, first inference.

    Subclasses set how the model is placed (:meth:`_place`), optimised
    (:meth:`_optimise`) and synchronised (:meth:`infer`).
    """

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in TORCH_DTYPES:
            raise BackendError(f"{self.id}: unknown dtype '{self.dtype}' (fp32, fp16, bf16)")
        self._description = description
        self._threads = options.threads
        self._forward: Callable[[], Any] | None = None

    # -- availability ---------------------------------------------------------------
    def available(self) -> Availability:
        probe = self._description.probe()
        return probe if not probe.ok else self._runtime_available()

    def _runtime_available(self) -> Availability:
        return Availability.yes()

    # -- preparation ----------------------------------------------------------------
    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        import torch

        if self._threads is not None:
            torch.set_num_threads(self._threads)
        torch_dtype = _torch_dtype(self.dtype)
        started = time.perf_counter()
        self.phase = "loading"
        try:
            model = load_torch_model(spec)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        example = torch.from_numpy(spec.make_input())
        try:
            model, example = self._place(model, example, torch_dtype)
            self._sync()
            loaded = time.perf_counter()
            self.phase = "compiling"  # shown live (graph optimisation, CUDA graph capture)
            with torch.inference_mode():
                self._forward = self._optimise(model, example)
            self._sync()
            compiled = time.perf_counter()
            with self.thread_context():
                first_start = time.perf_counter_ns()
                self.infer()
                first_ns = time.perf_counter_ns() - first_start
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
            raise BackendError(
                f"{self.id} ({self.dtype}) failed to prepare: {one_line(exc)}"
            ) from None
        return PrepareInfo(
            load_s=loaded - started,
            compile_s=compiled - loaded,
            first_inference_ms=first_ns / 1e6,
            notes=spec.notes + self._notes(),
        )

    def _notes(self) -> tuple[str, ...]:
        """Facts about how this backend ran that a reader of a ratio should know."""
        return ()

    def _place(
        self, model: torch.nn.Module, example: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, torch.Tensor]:
        return model.to(device=self.device, dtype=dtype), example.to(self.device, dtype)

    def _optimise(self, model: torch.nn.Module, example: torch.Tensor) -> Callable[[], Any]:
        """A no-argument callable running one forward pass on the bound input."""
        return lambda: model(example)

    def _sync(self) -> None:
        """Wait for the device; nothing to wait for on the CPU."""

    # -- the timed call -------------------------------------------------------------
    def infer(self) -> None:
        assert self._forward is not None, "prepare() first"
        self._forward()

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        import torch

        # inference_mode is thread-local: the runner enters it once in its own thread.
        return torch.inference_mode()

    def output(self) -> np.ndarray:
        import torch

        assert self._forward is not None, "prepare() first"
        with torch.inference_mode():
            out = self._forward()
            self._sync()
        if isinstance(out, (tuple, list)):
            out = out[0]
        return np.asarray(out.detach().to("cpu", torch.float32).numpy())

    def close(self) -> None:
        self._forward = None


class TorchCpuEager(TorchBackend):
    """Eager PyTorch with channels_last, the layout oneDNN's CPU convolutions prefer."""

    def _place(
        self, model: torch.nn.Module, example: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, torch.Tensor]:
        import torch

        model, example = super()._place(model, example, dtype)
        if example.dim() == 4:
            model = model.to(memory_format=torch.channels_last)
            example = example.contiguous(memory_format=torch.channels_last)
        return model, example


class TorchCpuOptimized(TorchBackend):
    """Traced, frozen TorchScript passed through torch.jit.optimize_for_inference.

    Chosen over torch.compile: on a 2-core x86 machine it is ~2x faster than eager on
    MobileNetV2 and prepares in about a second, where torch.compile costs ~40 s cold.
    """

    def _optimise(self, model: torch.nn.Module, example: torch.Tensor) -> Callable[[], Any]:
        import torch

        # torch 2.x marks the TorchScript API deprecated with a FutureWarning per call;
        # it still works and is still the fastest CPU path measured here, so silence them.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = (
                model
                if isinstance(model, torch.jit.ScriptModule)
                else torch.jit.trace(model, example, check_trace=False)  # type: ignore[no-untyped-call]
            )
            frozen = torch.jit.freeze(scripted.eval())
            optimized = torch.jit.optimize_for_inference(frozen)
        return lambda: optimized(example)


class TorchCuda(TorchBackend):
    def _place(
        self, model: torch.nn.Module, example: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, torch.Tensor]:
        import torch

        # Fixed shapes: let cuDNN pick its fastest kernels, as any tuned deployment would.
        torch.backends.cudnn.benchmark = True
        return super()._place(model, example, dtype)

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

    def _optimise(self, model: torch.nn.Module, example: torch.Tensor) -> Callable[[], Any]:
        import torch

        # Warm up on a side stream, as CUDA graph capture requires (cuDNN autotuning,
        # lazy allocations must not happen during capture).
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(example)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(example)

        def replay() -> Any:
            graph.replay()
            return static_out

        return replay


class TorchCompiled(TorchBackend):
    """torch.compile (TorchDynamo + Inductor), compiled in prepare() by one call.

    Inductor's FX graph cache lives in anetui's cache folder unless the user set
    ``TORCHINDUCTOR_CACHE_DIR``, so a second run reuses the generated
    kernels; Dynamo's tracing is still paid at every start (compile s in the table).
    """

    #: torch.compile's mode: "default" on the CPU, "reduce-overhead" (CUDA graphs) on CUDA.
    mode = "default"

    def _optimise(self, model: torch.nn.Module, example: torch.Tensor) -> Callable[[], Any]:
        import torch

        from anetui.models.cache import cache_root

        if _USER_INDUCTOR_DIR is None:
            # Not setdefault: torch itself fills the variable in (with its /tmp default)
            # the first time anything asks for the cache folder, e.g. loading a .pt2.
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root() / "inductor")
        compiled = torch.compile(model, mode=self.mode, fullgraph=False)
        forward = self._step(lambda: compiled(example))
        forward()  # the compilation happens here, inside prepare's compile_s
        return forward

    def _step(self, call: Callable[[], Any]) -> Callable[[], Any]:
        return call


class TorchCpuCompiled(TorchCompiled, TorchCpuEager):
    """torch.compile on the CPU, channels_last as the eager baseline."""


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


def cxx_compiler() -> Availability:
    """torch installed, a C++ compiler on PATH and Python's headers readable (Inductor
    compiles its CPU kernels against them)."""
    base = torch_installed()
    if not base.ok:
        return base
    names = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    if not any(name and shutil.which(name) for name in names):
        return Availability.no("no C++ compiler for Inductor (apt-get install g++ / Xcode CLT)")
    include = Path(sysconfig.get_paths()["include"])
    try:
        headers = (include / "Python.h").is_file()
    except OSError:  # a folder this user may not enter (e.g. after dropping root)
        headers = False
    if not headers:
        return Availability.no(
            f"Inductor needs Python's headers and {include}/Python.h is not readable here "
            "(install python3-dev, or run without sudo when Python lives in root's home)"
        )
    return Availability.yes()


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


BACKENDS = (
    BackendDescription(
        "torch-cpu",
        "PyTorch eager",
        "cpu",
        "fp32",
        "eager, inference_mode, channels_last: the fair eager baseline",
        TorchCpuEager,
        torch_installed,
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
        framework="PyTorch",
    ),
)
