"""OpenVINO: a real conversion of a tiny network, openvino-cpu run for a short time with
its agreement, f32 forced and recorded (bf16 only when asked), the cache hit and miss,
threads, and the messages of a missing package or device."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry as backends
from anetui.backends.base import BackendError, BackendOptions
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.convert import openvino as ov_convert
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

openvino = pytest.importorskip("openvino")


def test_openvino_cpu_runs_in_f32_and_agrees_with_eager_fp32(
    isolated_cache: Path, tiny: ModelSpec
) -> None:
    session = Session(RunConfig(backends=("openvino-cpu",), iterations=20, duration_s=None), tiny)
    session.prepare()
    session.run()
    result = session.snapshot().backends[0]
    assert result.state == "done" and result.summary is not None and result.summary.count == 20
    assert result.agreement_max_rel_err is not None and result.agreement_max_rel_err < 1e-4
    assert result.prepare is not None
    assert result.prepare.info["inference_precision"] == "f32"
    assert result.prepare.info["performance_hint"] == "LATENCY"
    assert result.factors is not None and result.factors.runtime == "OpenVINO"
    entry = next(isolated_cache.glob("openvino/*/model.xml")).parent
    assert {p.name for p in entry.iterdir()} == {"model.xml", "model.bin", "meta.json"}


def test_conversion_cache_hit_and_changed_key(
    isolated_cache: Path, tiny: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ov_convert.convert(tiny)  # converted by the test above, or now

    def no_convert(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not convert")

    with monkeypatch.context() as patch:
        patch.setattr(openvino, "convert_model", no_convert)
        hit = ov_convert.convert(tiny)
    assert hit.cached and hit.path == first.path
    # A new OpenVINO release is a different key: a miss, converted again.
    monkeypatch.setattr(
        ov_convert,
        "package_version",
        lambda name: "0.0-test" if name == "openvino" else package_version(name),
    )
    other = ov_convert.convert(tiny)
    assert not other.cached and other.path != first.path
    assert np.isfinite(other.seconds) and other.seconds > 0


def test_bf16_is_its_own_precision_and_is_recorded(isolated_cache: Path, tiny: ModelSpec) -> None:
    backend = backends.create("openvino-cpu", BackendOptions(dtype="bf16"))
    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in capabilities:
        with pytest.raises(BackendError, match="asked OpenVINO for bf16"):
            backend.prepare(tiny)
        return
    info = backend.prepare(tiny)
    assert info.info["inference_precision"] == "bf16"
    assert backend.dtype == "bf16"
    backend.close()


def test_threads_follow_the_option(isolated_cache: Path, tiny: ModelSpec) -> None:
    backend = backends.create("openvino-cpu", BackendOptions(threads=1))
    assert backend.prepare(tiny).info["threads"] == 1
    backend.close()


def test_missing_package_device_and_dtype_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = openvino.Core().available_devices
    if "GPU" not in devices:
        reason = backends.describe("openvino-gpu").probe().reason
        assert reason is not None and reason.startswith("OpenVINO lists no GPU here")
    if "NPU" not in devices:
        reason = backends.describe("openvino-npu").probe().reason
        assert reason is not None and "intel-npu-driver" in reason
    with pytest.raises(BackendError, match="unknown dtype 'int8'"):
        backends.create("openvino-cpu", BackendOptions(dtype="int8"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openvino" else real_find_spec(name, *a),
    )
    assert backends.describe("openvino-cpu").probe().reason == (
        "openvino not installed (pip install 'anetui[openvino]')"
    )


def test_doctor_lists_the_new_runtimes_and_their_versions() -> None:
    import subprocess

    from tests.conftest import anetui_cmd

    proc = subprocess.run(
        anetui_cmd("doctor"), capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for backend_id in (
        "openvino-cpu",
        "executorch-xnnpack",
        "torch-cpu-compile",
        "torch-cuda-fp16",
    ):
        assert backend_id in proc.stdout
    assert f"openvino {package_version('openvino')}" in proc.stdout
    # ExecuTorch's cpuinfo chatter, not doctor's own "cpu features (… from /proc/cpuinfo)".
    chatter = proc.stdout.replace("/proc/cpuinfo", "") + proc.stderr
    assert "executorch " in proc.stdout and "cpuinfo" not in chatter
    assert "torch was imported" not in proc.stdout
