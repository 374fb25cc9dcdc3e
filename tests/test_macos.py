"""The Mac path, run under the macOS personality (tests/macos.py): Core ML on a compiled-
cache miss and hit, the compute plan, `anetui plan`, PyTorch MPS, the darwin and sudo
branches of the cache, all against autospecs of the real coremltools and torch APIs."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from anetui import versions
from anetui.backends import registry
from anetui.backends.base import BackendError, BackendOptions
from anetui.backends.coreml import CoreMLBackend
from anetui.backends.torch import TorchMps
from anetui.core import agreement
from anetui.core.config import RunConfig
from anetui.core.runner import BackendRecord, run
from anetui.core.session import Session
from anetui.models import cache as cache_module
from anetui.models.cache import Cache
from anetui.models.convert.coreml import convert
from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelSpec
from tests.conftest import SMALL_MODEL
from tests.macos import MACOS_LACKS, MacOS

ct = pytest.importorskip("coremltools")

SHAPE = (1, 3, 64, 64)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding one real conversion of the small model (made once)."""
    root = tmp_path_factory.mktemp("converted")
    convert(resolve_model(SMALL_MODEL, input_shape=SHAPE), "fp16", cache=Cache("coreml", root))
    return root


@pytest.fixture
def cache_dir(converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    shutil.copytree(converted, root)
    monkeypatch.setenv("ANETUI_CACHE_DIR", str(root))
    return root


def small() -> ModelSpec:
    return resolve_model(SMALL_MODEL, input_shape=SHAPE)


def test_the_personality_is_macos(macos: MacOS) -> None:
    import platform

    assert sys.platform == "darwin" and versions.macos_version() == (15, 5)
    assert platform.mac_ver()[0] == "15.5" and platform.machine() == "arm64"
    for name in ("setresuid", "setresgid", "getresuid", "getresgid", "sched_getaffinity"):
        assert name in MACOS_LACKS and not hasattr(os, name)
    # The autospecs refuse what the real classes lack.
    package = Path(macos.coreml.work_dir) / "pkg"
    package.mkdir(parents=True)
    compiled = ct.utils.compile_model(str(package), str(package.parent / "m.mlmodelc"))
    model = ct.models.CompiledMLModel(compiled, ct.ComputeUnit.CPU_ONLY)
    for missing in ("path", "get_compiled_model_path", "last_predict_duration_in_nano_seconds"):
        with pytest.raises(AttributeError):
            getattr(model, missing)
    with pytest.raises(TypeError, match="compute_units"):
        ct.models.CompiledMLModel(compiled, "CPU_ONLY")
    with pytest.raises(TypeError):  # the real constructor's signature
        ct.models.MLModel(str(package), units=ct.ComputeUnit.ALL)


def test_coreml_backends_are_available_on_macos(macos: MacOS) -> None:
    for backend_id in ("coreml-all", "coreml-cpu", "coreml-gpu", "coreml-ane"):
        assert registry.describe(backend_id).probe().ok
    assert registry.describe("torch-mps").probe().ok
    assert registry.describe("torch-cuda").probe().reason == (
        "no NVIDIA GPU (CUDA does not run on macOS)"
    )


def test_coreml_miss_then_compiled_cache_hit(macos: MacOS, cache_dir: Path) -> None:
    """The second run loads a CompiledMLModel: no path, no duration; the plan still
    comes from the compiled model that was loaded, and the results say what is missing."""
    fake = macos.coreml
    first = registry.create("coreml-ane")
    info = first.prepare(small())
    assert [(kind, unit) for kind, _, unit in fake.loads] == [("MLModel", "CPU_AND_NE")]
    stored = cache_dir / "coreml-compiled"
    (entry,) = [p for p in stored.iterdir() if not p.name.startswith(".")]
    assert (entry / "compiled.mlmodelc" / "coremldata.bin").exists()
    assert info.info["compiled"] == str(entry / "compiled.mlmodelc")
    assert info.info["runtime_latency"] == "Core ML prediction duration"
    assert info.info["compute_plan_share"] == pytest.approx({"ane": 0.8, "cpu": 0.2})
    assert fake.plans == [(str(entry / "compiled.mlmodelc"), "CPU_AND_NE")]
    record = BackendRecord()
    run(first, record, threading.Event(), warmup=2, iterations=5)
    runtime = record.runtime_stats.summary()
    assert runtime is not None and runtime.count == 5 and runtime.p50_ns == pytest.approx(9e5, 1e-3)
    first.close()

    second = registry.create("coreml-ane")
    info = second.prepare(small())
    assert fake.loads[-1] == ("CompiledMLModel", str(entry / "compiled.mlmodelc"), "CPU_AND_NE")
    assert "loaded the compiled model from the cache" in info.notes
    assert (
        "no Core ML prediction duration: CompiledMLModel does not offer it; only wall-clock "
        "latency" in info.notes
    )
    assert info.info["runtime_latency"] is None
    assert info.info["compute_plan_share"] == pytest.approx({"ane": 0.8, "cpu": 0.2})
    assert fake.plans[-1] == (str(entry / "compiled.mlmodelc"), "CPU_AND_NE")
    record = BackendRecord()
    run(second, record, threading.Event(), warmup=1, iterations=4)
    assert record.count == 4 and record.runtime_stats.summary() is None
    assert second.runtime_latency_ns() is None  # type: ignore[attr-defined]
    out = second.outputs()[0]
    assert out.dtype == np.float32 and out.shape == (1, 1000)
    assert np.array_equal(out, fake.output)


def test_a_failing_compute_plan_is_a_note(macos: MacOS, cache_dir: Path) -> None:
    macos.coreml.plan_ops = [dataclasses.replace(macos.coreml.plan_ops[1], operator="broken")]
    original = macos.coreml.plan_ops

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("MLComputePlan: unexpected model structure")

    from coremltools.models import compute_plan as module

    module.MLComputePlan.load_from_path.side_effect = broken
    info = registry.create("coreml-all").prepare(small())
    assert "compute_plan_share" not in info.info and original
    assert any(
        n == "no compute plan: Core ML failed to make one: MLComputePlan: unexpected model "
        "structure"
        for n in info.notes
    )


def test_a_failing_first_prediction_is_a_backend_error(macos: MacOS, cache_dir: Path) -> None:
    macos.coreml.predict_error = RuntimeError("Error computing NN outputs\nE5RT: …")
    with pytest.raises(BackendError, match="coreml-gpu: the first prediction failed: Error comp"):
        registry.create("coreml-gpu").prepare(small())


def test_a_session_on_macos_measures_coreml_and_marks_the_failure(
    macos: MacOS, cache_dir: Path
) -> None:
    """torch-cpu and coreml-cpu run; coreml-gpu fails in its first prediction; the rest go on."""
    spec = small()
    macos.coreml.output = agreement.reference_output(spec).astype(np.float16).astype(np.float32)
    config = RunConfig(
        model=SMALL_MODEL,
        backends=("torch-cpu", "coreml-gpu", "coreml-cpu"),
        warmup=1,
        iterations=3,
        duration_s=None,
    )
    session = Session(config, spec)
    assert session.runnable() == ["torch-cpu", "coreml-gpu", "coreml-cpu"]
    original = CoreMLBackend.infer

    def gpu_fails(self: CoreMLBackend) -> None:
        if self.id == "coreml-gpu":
            raise ValueError("MPSGraph: unsupported op")  # not a BackendError
        original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CoreMLBackend, "infer", gpu_fails)
        session.prepare()
        session.run()
    snapshot = session.snapshot()
    session.close()
    by_id = {b.id: b for b in snapshot.backends}
    assert by_id["coreml-gpu"].state == "error"
    assert by_id["coreml-gpu"].error == (
        "coreml-gpu: the first prediction failed: MPSGraph: unsupported op"
    )
    assert by_id["coreml-cpu"].state == "done" and by_id["coreml-cpu"].summary is not None
    assert by_id["coreml-cpu"].summary.count == 3
    assert by_id["coreml-cpu"].agreement_max_rel_err is not None
    assert by_id["coreml-cpu"].agreement_max_rel_err < 1e-2
    assert by_id["torch-cpu"].state == "done"
    assert snapshot.environment["os_version"] == "15.5"


def test_bench_on_macos_in_process(
    macos: MacOS, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anetui.cli.main import main

    out = tmp_path / "mac.json"
    code = main(
        [
            "bench",
            "--backends",
            "coreml-ane,coreml-all",
            "--model",
            SMALL_MODEL,
            "--input-shape",
            "1,3,64,64",
            "--warmup",
            "1",
            "--iterations",
            "3",
            "--json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    rows = {b["id"]: b for b in data["backends"]}
    assert rows["coreml-ane"]["count"] == 3 and rows["coreml-all"]["count"] == 3
    assert data["environment"]["os"].startswith("Darwin")


def test_plan_command_compiles_and_prints_the_plan(
    macos: MacOS, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anetui.cli.main import main

    (package,) = cache_dir.glob("coreml/*/model.mlpackage")
    code = main(["plan", "--model", str(package), "--compute-units", "ane"])
    out, err = capsys.readouterr()
    assert code == 0, err
    flat = " ".join(out.split())  # the console wraps at its width
    assert "compute units CPU_AND_NE: cost-weighted share ane 80.0%, cpu 20.0%" in flat
    assert "gather g cpu: not supported on the Neural Engine" in flat
    (path, unit) = macos.coreml.plans[-1]
    assert unit == "CPU_AND_NE" and path.endswith("model.mlmodelc")
    assert not Path(path).exists()  # compiled into a temporary folder, removed after


def test_torch_mps_synchronises_every_inference(macos: MacOS) -> None:
    """TorchMps's own code on the personality; the tensors stay on the CPU (no Apple GPU
    here), the synchronisation is the real torch.mps API, autospecced."""
    description = dataclasses.replace(registry.describe("torch-mps"), device="cpu")
    backend = TorchMps(description, BackendOptions(threads=1))
    assert backend.available().ok
    backend.prepare(small())
    assert macos.mps.is_available.called
    before = macos.mps.synchronize.call_count
    assert before >= 3  # after placing, after optimising, after the first inference
    record = BackendRecord()
    run(backend, record, threading.Event(), warmup=1, iterations=4)
    assert macos.mps.synchronize.call_count == before + 5
    macos.mps.is_available.return_value = False
    assert backend.available().reason == "torch.backends.mps.is_available() is False"


def test_cache_root_on_macos_under_sudo(
    macos: MacOS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """platformdirs' macOS folder; while still root under sudo (where macOS keeps the
    user's HOME) root's own folder, never the invoking user's, and nothing is chowned
    (issue 12: root must not write into a folder the user controls)."""
    import pwd

    monkeypatch.delenv("ANETUI_CACHE_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("HOME", "/var/root")
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert cache_module.cache_root() == Path("/var/root/Library/Caches/anetui")
    monkeypatch.setenv("SUDO_UID", "65534")
    monkeypatch.setenv("SUDO_GID", "65534")
    monkeypatch.setenv("HOME", pwd.getpwuid(65534).pw_dir)  # sudo on macOS keeps HOME
    root_home = Path(pwd.getpwuid(0).pw_dir)
    assert cache_module.cache_root() == root_home / "Library/Caches/anetui"
    if os.getuid() == 0:  # really root: an entry stays root's, nothing is handed over
        root = tmp_path / "c"
        path = Cache("coreml", root).store(
            "k", "a.bin", lambda target: target.write_bytes(b"x") and {}, {}
        )
        assert path.stat().st_uid == 0 and (root / "coreml").stat().st_uid == 0
