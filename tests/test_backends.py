"""The real torch backends on the CPU, with a small model and input."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from anetui.backends import registry as backends
from anetui.backends import torch_base
from anetui.backends.base import BackendError, BackendOptions
from anetui.core.runner import BackendRecord, run
from anetui.models.spec import ModelSpec
from anetui.models.torch_load import load_torch_model


def reference_output(spec: ModelSpec) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return load_torch_model(spec)(torch.from_numpy(spec.make_input())).numpy()


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_registry_knows_the_design_ids_and_rejects_others() -> None:
    assert {"torch-cpu", "torch-cpu-opt", "torch-cuda", "torch-cuda-graph", "torch-mps"} <= set(
        backends.REGISTRY
    )
    with pytest.raises(backends.UnknownBackendError, match="unknown backend 'torch-tpu'"):
        backends.create("torch-tpu")


def test_unavailable_backends_say_why_on_this_machine() -> None:
    # This machine class has no NVIDIA GPU and is not a Mac; where one is, skip.
    if torch_base.torch_cuda().ok:
        pytest.skip("an NVIDIA GPU is present")
    cuda = backends.create("torch-cuda").available()
    assert not cuda.ok and cuda.reason and "NVIDIA" in cuda.reason
    mps = backends.create("torch-mps").available()
    assert not mps.ok and mps.reason == "MPS needs macOS on Apple silicon"


@pytest.mark.parametrize("backend_id", ["torch-cpu", "torch-cpu-opt"])
def test_cpu_backends_run_and_agree_with_eager_fp32(backend_id: str, small_spec: ModelSpec) -> None:
    backend = backends.create(backend_id)
    assert backend.available().ok
    info = backend.prepare(small_spec)
    assert info.load_s > 0 and info.first_inference_ms > 0
    if backend_id == "torch-cpu-opt":
        assert info.compile_s > 0  # trace + freeze + optimise is reported apart
    assert rel_err(backend.outputs()[0], reference_output(small_spec)) < 1e-4
    record = BackendRecord()
    assert run(backend, record, threading.Event(), warmup=2, iterations=5) == 5
    summary = record.stats.summary()
    assert summary is not None and summary.min_ns > 0
    backend.close()


def test_bf16_runs_on_the_cpu_and_is_close_but_not_exact(small_spec: ModelSpec) -> None:
    backend = backends.create("torch-cpu", BackendOptions(dtype="bf16"))
    assert backend.dtype == "bf16"
    backend.prepare(small_spec)
    err = rel_err(backend.outputs()[0], reference_output(small_spec))
    assert 1e-6 < err < 0.2  # bf16 keeps 8 bits of mantissa: visibly not fp32


def test_threads_option_sets_torch_threads(small_spec: ModelSpec) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        backends.create("torch-cpu", BackendOptions(threads=1)).prepare(small_spec)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unknown_dtype_and_a_shape_the_model_rejects_are_backend_errors() -> None:
    with pytest.raises(BackendError, match="unknown dtype 'int4'"):
        backends.create("torch-cpu", BackendOptions(dtype="int4"))
    wrong = ModelSpec(name="mobilenet_v3_small", kind="torchvision", input_shape=(1, 5, 32, 32))
    with pytest.raises(BackendError) as info:
        backends.create("torch-cpu").prepare(wrong)
    assert "mobilenet_v3_small cannot take input shape (1, 5, 32, 32)" in str(info.value)
    assert "\n" not in str(info.value)


def test_timed_loop_holds_inference_mode(small_spec: ModelSpec) -> None:
    import torch

    backend = backends.create("torch-cpu")
    backend.prepare(small_spec)
    seen: list[bool] = []
    original = backend.infer

    def spy() -> None:
        seen.append(torch.is_inference_mode_enabled())
        original()

    backend.infer = spy  # type: ignore[method-assign]
    run(backend, BackendRecord(), threading.Event(), warmup=1, iterations=2)
    assert seen == [True, True, True]
