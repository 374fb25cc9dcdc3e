"""torch.compile and the CUDA family that lets one factor change at a time.

A cold torch.compile costs 40–60 s on this 2-core machine, so its real run is kept out of
``make test`` (marker ``compile``) and run by ``make test-compile``
(``ANETUI_COMPILE_TESTS=1``). Without a GPU, the CUDA backends are checked for what they
say, not run.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry as backends
from anetui.backends import torch_base
from anetui.core.runner import BackendRecord, run
from anetui.models.spec import ModelSpec
from tests.tiny_export import save_tiny_export

COMPILE_TESTS = os.environ.get("ANETUI_COMPILE_TESTS") == "1"


def test_cuda_backends_say_why_they_cannot_run_here() -> None:
    if torch_base.torch_cuda().ok:
        pytest.skip("an NVIDIA GPU is present")
    for backend_id in ("torch-cuda-fp16", "torch-cuda-compile", "torch-cuda-graph"):
        availability = backends.create(backend_id).available()
        assert not availability.ok and availability.reason is not None
        assert "NVIDIA" in availability.reason, backend_id
    assert backends.create("torch-cuda-fp16").dtype == "fp16"
    assert backends.create("torch-cuda-compile").dtype == "fp32"


@pytest.fixture
def toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the probe looks for, made here so that the tests do not depend on this
    machine's Debian packages (g++, python3-dev): an executable named by CXX, and an
    include folder (returned) holding a Python.h."""
    compiler = tmp_path / "bin" / "c++"
    compiler.parent.mkdir()
    compiler.write_text("#!/bin/sh\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    include = tmp_path / "include"
    include.mkdir()
    (include / "Python.h").write_text("")
    paths = {**torch_base.sysconfig.get_paths(), "include": str(include)}
    monkeypatch.setattr(torch_base.sysconfig, "get_paths", lambda: paths)
    return include


def test_torch_cpu_compile_needs_a_cxx_compiler(
    toolchain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backends.describe("torch-cpu-compile").probe().ok
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(torch_base.shutil, "which", lambda name: None)
    assert backends.describe("torch-cpu-compile").probe().reason == (
        "no C++ compiler for Inductor (apt-get install g++ / Xcode CLT)"
    )


def test_torch_cpu_compile_needs_pythons_headers(toolchain: Path) -> None:
    """Inductor builds its kernels against Python.h: without it (no python3-dev, or a
    Python in root's home after dropping root) the backend is unavailable, saying why,
    instead of failing in prepare with a PermissionError."""
    (toolchain / "Python.h").unlink()
    reason = backends.describe("torch-cpu-compile").probe().reason
    assert reason is not None and f"{toolchain}/Python.h is not readable" in reason
    (toolchain / "Python.h").write_text("")
    assert backends.describe("torch-cpu-compile").probe().ok


@pytest.mark.compile
@pytest.mark.skipif(not COMPILE_TESTS, reason="cold torch.compile ~1 min: make test-compile")
def test_torch_cpu_compile_compiles_in_prepare_runs_and_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from anetui.models.torch_load import load_torch_model

    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(torch_base, "_USER_INDUCTOR_DIR", None)  # as when none is set
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    spec: ModelSpec = save_tiny_export(tmp_path)
    backend = backends.create("torch-cpu-compile")
    info = backend.prepare(spec)
    assert info.compile_s > 0 and info.compile_s > info.first_inference_ms / 1e3
    with torch.inference_mode():
        reference = load_torch_model(spec)(torch.from_numpy(spec.make_input())).numpy()
    out = backend.outputs()[0]
    assert float(np.max(np.abs(out - reference)) / np.max(np.abs(reference))) < 1e-4
    record = BackendRecord()
    assert run(backend, record, threading.Event(), warmup=2, iterations=5) == 5
    inductor = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    assert inductor == tmp_path / "cache" / "inductor" and any(inductor.rglob("*"))
    backend.close()
