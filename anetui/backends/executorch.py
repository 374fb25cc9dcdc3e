"""ExecuTorch backends: PyTorch's on-device runtime running a lowered ``.pte`` program.

``executorch-xnnpack`` runs on every CPU; ``executorch-coreml-*`` (the Core ML delegate,
the PyTorch-native way onto the Neural Engine, with a compute unit as the ``coreml-*``
backends) and ``executorch-mps`` (the Metal delegate) need macOS. The program is lowered
once and cached (:mod:`anetui.models.convert.executorch`), loaded through
``executorch.runtime``; the timed call is ``Method.execute`` on the input made once.

The runtime prints cpuinfo and thread-pool lines on stderr (C++ ``printf``, not Python
logging) when a method is loaded: they are caught at the file-descriptor level.
Nothing here imports executorch or torch at module level.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.errors import Availability, one_line
from anetui.models.convert.coreml import COMPUTE_UNITS
from anetui.models.convert.executorch import (
    ExecuTorchExportError,
    Program,
    last_failure,
    lower,
)
from anetui.models.spec import ModelSpec
from anetui.versions import macos_version, package_version

#: The Core ML delegate's compute units, as the ``coreml-*`` backends name them.
COREML_UNITS = tuple(COMPUTE_UNITS)
#: backend id -> delegate (models.convert.executorch.DELEGATES); executorch-coreml is ALL.
DELEGATE_OF = {
    "executorch-xnnpack": "xnnpack",
    "executorch-mps": "mps",
    "executorch-coreml": "coreml-all",
    **{f"executorch-coreml-{u}": f"coreml-{u}" for u in COREML_UNITS if u != "all"},
}


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Catch what the block writes on stderr, at both levels: file descriptor 2 (C/C++
    code) and ``sys.stderr`` (the pybindings log through Python's stderr, and so does
    torch's logging). The lines are yielded (filled in on exit) instead of shown."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    python_side = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_side):
                yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())
            lines.extend(python_side.getvalue().splitlines())


class ExecuTorchBackend:
    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        self._delegate = DELEGATE_OF[description.id]
        allowed = ("fp16", "fp32") if self._delegate.startswith("coreml-") else ("fp32",)
        if self.dtype not in allowed:
            raise BackendError(f"{self.id} runs in {' or '.join(allowed)}, not {self.dtype}")
        self._description = description
        self._threads = options.threads
        self._method: Any = None
        self._inputs: list[Any] = []

    def available(self) -> Availability:
        probe = self._description.probe()
        if not probe.ok:
            return probe
        try:
            with captured_stderr():
                from executorch.runtime import Runtime

                Runtime.get()
        except Exception as exc:
            return Availability.no(
                f"executorch {package_version('executorch')} does not load with torch "
                f"{package_version('torch')}: {one_line(exc)}"
            )
        return Availability.yes()

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        started = time.perf_counter()
        try:
            program = self._program(spec)
        except ExecuTorchExportError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        lowered = time.perf_counter()
        import torch

        failure: Exception | None = None
        threads = None
        with captured_stderr() as chatter:
            try:
                from executorch.extension.pybindings import portable_lib
                from executorch.runtime import Runtime

                if self._threads is not None:
                    portable_lib._unsafe_reset_threadpool(self._threads)
                loaded = Runtime.get().load_program(program.path, data_path=program.data_path)
                self._method = loaded.load_method("forward")
                threads = portable_lib._threadpool_get_thread_count()
            except Exception as exc:
                failure = exc
        if failure is not None or self._method is None:
            why = one_line(failure) if failure else "the program has no forward method"
            raise BackendError(f"{self.id} could not load the program: {why}")
        loaded_at = time.perf_counter()
        self._inputs = [torch.from_numpy(a) for a in spec.make_inputs().values()]  # made once
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        notes = [
            "lowered " + ("from the cache" if program.cached else f"in {program.seconds:.1f} s")
        ]
        quiet = ("cpuinfo", "threadpool", "KernelPreference")
        notes += [f"runtime said: {line}" for line in chatter if not any(q in line for q in quiet)]
        return PrepareInfo(
            load_s=loaded_at - lowered,
            compile_s=lowered - started,
            first_inference_ms=first_ns / 1e6,
            notes=(*spec.notes, *notes[:4]),
            info={
                "executorch": package_version("executorch"),
                "delegate": self._delegate,
                "program": str(program.path),
                "threads": threads,
            },
        )

    def _program(self, spec: ModelSpec) -> Program:
        """The lowered program to load (a quantized sibling gives its own)."""
        return lower(spec, self._delegate, precision=self.dtype)

    def infer(self) -> None:
        self._method.execute(self._inputs)

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def outputs(self) -> list[np.ndarray]:
        from anetui.models.torch_load import tensors_to_numpy

        return tensors_to_numpy(list(self._method.execute(self._inputs)))

    def close(self) -> None:
        self._method = None
        self._inputs = []


# -- availability probes: no torch or executorch import -------------------------------
def executorch_installed(delegate: str) -> Availability:
    if importlib.util.find_spec("executorch") is None:
        return Availability.no("executorch not installed (pip install 'anetui[executorch]')")
    failed = last_failure(delegate)
    if failed is not None:
        return Availability.no(failed)  # the message names both versions
    return Availability.yes()


def executorch_macos(delegate: str, minimum: tuple[int, ...], what: str) -> Availability:
    """The delegates that run only on macOS (Apple silicon for Metal)."""
    version = macos_version()
    if version is None:
        return Availability.no(f"{what} runs on macOS only")
    if delegate == "mps" and platform.machine() != "arm64":
        return Availability.no("the Metal delegate needs Apple silicon")
    if version < minimum:
        return Availability.no(f"{what} needs macOS {'.'.join(map(str, minimum))}+")
    if delegate.startswith("coreml-") and importlib.util.find_spec("coremltools") is None:
        return Availability.no("coremltools not installed (pip install 'anetui[coreml]')")
    return executorch_installed(delegate)


_KINDS = ("torchvision", "transformers", "hf", "export", "pte")
#: A .pte file was lowered for one delegate: it runs on ExecuTorch's CPU runtime as it is.
_COREML_KINDS = ("torchvision", "transformers", "hf", "export")
_UNIT_TEXT = {
    "all": ("all", "ComputeUnit.ALL: CPU, GPU and Neural Engine as Core ML decides"),
    "cpu": ("cpu", "ComputeUnit.CPU_ONLY"),
    "gpu": ("cpu+gpu", "ComputeUnit.CPU_AND_GPU"),
    "ane": ("cpu+ane", "ComputeUnit.CPU_AND_NE: the Apple Neural Engine"),
}


def _coreml_row(unit: str) -> BackendDescription:
    device, text = _UNIT_TEXT[unit]
    minimum = (13,) if unit == "ane" else (12,)
    return BackendDescription(
        "executorch-coreml" if unit == "all" else f"executorch-coreml-{unit}",
        "ExecuTorch",
        device,
        "fp16",
        f"ExecuTorch .pte, Core ML delegate, {text}",
        ExecuTorchBackend,
        lambda: executorch_macos(f"coreml-{unit}", minimum, "the Core ML delegate"),
        _COREML_KINDS,
        graph="ExecuTorch program, Core ML delegate",
    )


BACKENDS = (
    BackendDescription(
        "executorch-xnnpack",
        "ExecuTorch",
        "cpu",
        "fp32",
        "ExecuTorch .pte lowered to the XNNPACK delegate, run by executorch.runtime",
        ExecuTorchBackend,
        lambda: executorch_installed("xnnpack"),
        _KINDS,
        graph="ExecuTorch program, XNNPACK delegate",
    ),
    *(_coreml_row(unit) for unit in COREML_UNITS),
    BackendDescription(
        "executorch-mps",
        "ExecuTorch",
        "mps",
        "fp32",
        "ExecuTorch .pte, Metal delegate (AOTInductor; ExecuTorch 1.x's MPS path)",
        ExecuTorchBackend,
        lambda: executorch_macos("mps", (14,), "the Metal delegate"),
        _COREML_KINDS,
        graph="ExecuTorch program, Metal delegate",
    ),
)
