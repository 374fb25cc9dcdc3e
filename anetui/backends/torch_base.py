"""What every PyTorch backend shares: :class:`TorchBackend` (load, place on device and
dtype, optimise, first inference, the timed call), :class:`TorchCompiled` (torch.compile,
with Inductor's cache folder in anetui's cache), the dtype names and their torch dtypes,
and the availability probes (torch installed, an NVIDIA GPU, Apple's MPS, a C++ compiler
for Inductor). torch itself is imported only when a backend is created, never by the
probes (`anetui doctor` stays fast).

Not a runtime module of its own: the PyTorch backends are in :mod:`anetui.backends.torch`
(CPU, MPS and the runtime's one ``BACKENDS``) and :mod:`anetui.backends.torch_cuda`
(NVIDIA).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anetui.backends import cpu_features
from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.errors import Availability, one_line
from anetui.models.spec import DECODER_KIND, ModelError, ModelSpec
from anetui.models.torch_load import load_torch_model, tensors_to_numpy
from anetui.versions import package_version

if TYPE_CHECKING:
    import torch

    from anetui.backends.torch_generate import TorchGeneration

    #: A model's inputs as tensors, in its declared order.
    Examples = tuple[torch.Tensor, ...]

TORCH_DTYPES = ("fp32", "fp16", "bf16")
#: Inductor's cache folder as the user set it before anetui started (None: ours is used).
_USER_INDUCTOR_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    # int8: a quantized sibling loads and places the fp32 model, then quantizes it.
    return {
        "fp32": torch.float32,
        "fp16": torch.float16,
        "bf16": torch.bfloat16,
        "int8": torch.float32,
    }[name]


def _emulated_precision(device: str, dtype: str) -> tuple[str, ...]:
    """A note when PyTorch computes ``dtype`` on a CPU without instructions for it
    (:mod:`anetui.backends.cpu_features`): the figures are that precision's, reached
    through conversions, usually slower than fp32."""
    if device != "cpu" or dtype == "fp32" or cpu_features.detect().has(dtype):
        return ()
    return (
        f"this CPU has no {dtype} arithmetic: PyTorch emulates {dtype}, usually slower than "
        "fp32 (`anetui doctor` lists the cpu features)",
    )


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


def cxx_compiler() -> Availability:
    """torch installed, a C++ compiler on PATH and Python's headers readable (Inductor
    compiles its CPU kernels against them)."""
    base = torch_installed()
    if not base.ok:
        return base
    names = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    if not any(name and shutil.which(name) for name in names):
        return Availability.no("no C++ compiler for Inductor (apt-get install g++ / Xcode CLT)")
    try:
        include = Path(sysconfig.get_paths()["include"])
    except Exception as exc:  # sysconfig without its build data: nothing to compile with
        return Availability.no(f"Inductor cannot find Python's headers: {one_line(exc)}")
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


class TorchBackend:
    """Shared preparation: load, place on device/dtype, optimise, first inference.

    Subclasses set how the model is placed (:meth:`_place`), optimised
    (:meth:`_optimise`) and synchronised (:meth:`infer`).
    """

    #: The precisions this backend computes in (a quantized sibling: its own only).
    dtypes: tuple[str, ...] = TORCH_DTYPES

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in self.dtypes:
            raise BackendError(
                f"{self.id}: unknown dtype '{self.dtype}' ({', '.join(self.dtypes)})"
            )
        self._description = description
        self._threads = options.threads
        self._forward: Callable[[], Any] | None = None
        #: The generative workload, when the spec is a decoder (issue 22).
        self._generation: TorchGeneration | None = None

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
        if spec.kind == DECODER_KIND:
            return self._prepare_generation(spec)
        torch_dtype = _torch_dtype(self.dtype)
        started = time.perf_counter()
        self.phase = "loading"
        try:
            model = load_torch_model(spec)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        examples = tuple(torch.from_numpy(a) for a in spec.make_inputs().values())
        try:
            model, examples = self._place(model, examples, torch_dtype)
            self._sync()
            loaded = time.perf_counter()
            self.phase = "compiling"  # shown live (graph optimisation, CUDA graph capture)
            with torch.inference_mode():
                self._forward = self._optimise(model, examples)
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
            notes=spec.notes + self._notes() + _emulated_precision(self.device, self.dtype),
        )

    def _prepare_generation(self, spec: ModelSpec) -> PrepareInfo:
        """The generative workload (:mod:`anetui.backends.torch_generate`): infer() is one
        whole generation, each token stamped."""
        from anetui.backends.torch_generate import prepare_generation

        self.phase = "loading"
        try:
            generation, load_s, compile_s = prepare_generation(
                spec,
                _torch_dtype(self.dtype),
                self.device,
                sync=self._sync,
                compile_mode=self._generation_compile(),
            )
            self._generation = generation
            self._forward = generation.generate
            with self.thread_context():
                first_start = time.perf_counter_ns()
                self.infer()
                first_ns = time.perf_counter_ns() - first_start
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
            raise BackendError(
                f"{self.id} ({self.dtype}) failed to prepare: {one_line(exc)}"
            ) from None
        return PrepareInfo(
            load_s=load_s,
            compile_s=compile_s,
            first_inference_ms=first_ns / 1e6,
            notes=spec.notes + self._notes() + _emulated_precision(self.device, self.dtype),
        )

    def _generation_compile(self) -> str | None:
        """torch.compile's mode for a decoder's one-token step; None: eager."""
        return None

    # -- the generative workload's hooks (anetui.backends.generation) ---------------
    @property
    def tokens_per_run(self) -> int:
        return self._generation.tokens_per_run if self._generation is not None else 0

    @tokens_per_run.setter
    def tokens_per_run(self, count: int) -> None:
        if self._generation is not None:
            self._generation.tokens_per_run = count

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None:
        return self._generation.token_times_ns() if self._generation is not None else None

    def generated_tokens(self) -> list[int]:
        return self._generation.generated_tokens() if self._generation is not None else []

    def device_memory_mb(self) -> float | None:
        """Peak device memory torch allocated (MB), where the device tells (CUDA)."""
        if self.device != "cuda":
            return None
        import torch

        return float(torch.cuda.max_memory_allocated()) / 1e6

    def _notes(self) -> tuple[str, ...]:
        """Facts about how this backend ran that a reader of a ratio should know."""
        return ()

    def _place(
        self, model: torch.nn.Module, examples: Examples, dtype: torch.dtype
    ) -> tuple[torch.nn.Module, Examples]:
        """Model and inputs on the device; float inputs in ``dtype``, integer and boolean
        inputs (token ids, masks) as they are."""
        placed = tuple(
            e.to(self.device, dtype) if e.is_floating_point() else e.to(self.device)
            for e in examples
        )
        return model.to(device=self.device, dtype=dtype), placed

    def _optimise(self, model: torch.nn.Module, examples: Examples) -> Callable[[], Any]:
        """A no-argument callable running one forward pass on the bound inputs."""
        return lambda: model(*examples)

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

    def outputs(self) -> list[np.ndarray]:
        import torch

        assert self._forward is not None, "prepare() first"
        if self._generation is not None:
            return self._generation.outputs()
        with torch.inference_mode():
            out = self._forward()
            self._sync()
        return tensors_to_numpy(out)

    def close(self) -> None:
        self._forward = None
        self._generation = None


class TorchCompiled(TorchBackend):
    """torch.compile (TorchDynamo + Inductor), compiled in prepare() by one call.

    Inductor's FX graph cache lives in anetui's cache folder unless the user set
    ``TORCHINDUCTOR_CACHE_DIR``, so a second run reuses the generated
    kernels; Dynamo's tracing is still paid at every start (compile s in the table).
    """

    #: torch.compile's mode: "default" on the CPU, "reduce-overhead" (CUDA graphs) on CUDA.
    mode = "default"

    def _generation_compile(self) -> str | None:
        """A decoder's one-token step is compiled in the same mode."""
        return self.mode

    def _optimise(self, model: torch.nn.Module, examples: Examples) -> Callable[[], Any]:
        import torch

        from anetui.models.cache import cache_root

        if _USER_INDUCTOR_DIR is None:
            # Not setdefault: torch itself fills the variable in (with its /tmp default)
            # the first time anything asks for the cache folder, e.g. loading a .pt2.
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root() / "inductor")
        compiled = torch.compile(model, mode=self.mode, fullgraph=False)
        forward = self._step(lambda: compiled(*examples))
        forward()  # the compilation happens here, inside prepare's compile_s
        return forward

    def _step(self, call: Callable[[], Any]) -> Callable[[], Any]:
        return call
