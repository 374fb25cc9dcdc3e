"""ExecuTorch: a real export + XNNPACK lowering of a tiny network, run through
executorch.runtime with its agreement and no runtime chatter on stderr; the cache hit and
miss; the Core ML delegate's .pte built here (it runs on macOS only) and its probes under
a macOS stand-in; a failed lowering shown by the probe with versions; a missing package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from anetui.backends import executorch as et_backends
from anetui.backends import registry as backends
from anetui.backends.base import BackendError, BackendOptions
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.cache import Cache
from anetui.models.convert import executorch as et_convert
from anetui.models.spec import ModelSpec

pytest.importorskip("executorch")
pytestmark = pytest.mark.slow  # each lowering costs ~20–30 s on this 2-core machine


def test_xnnpack_lowers_once_runs_and_agrees(
    isolated_cache: Path, tiny: ModelSpec, capfd: pytest.CaptureFixture[str]
) -> None:
    first = et_convert.lower(tiny, "xnnpack")
    assert not first.cached and first.path.name == "model.pte" and et_convert.is_valid(first.path)
    session = Session(
        RunConfig(backends=("executorch-xnnpack",), iterations=20, duration_s=None), tiny
    )
    session.prepare()
    session.run()
    result = session.snapshot().backends[0]
    assert result.state == "done" and result.summary is not None and result.summary.count == 20
    assert result.agreement_max_rel_err is not None and result.agreement_max_rel_err < 1e-4
    assert result.prepare is not None and result.prepare.info["delegate"] == "xnnpack"
    assert "lowered from the cache" in result.prepare.notes
    assert result.factors is not None and result.factors.runtime == "ExecuTorch"
    err = capfd.readouterr().err
    assert "cpuinfo" not in err and "KernelPreference" not in err


def test_a_cache_hit_does_not_lower(
    isolated_cache: Path, tiny: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import executorch.exir

    first = et_convert.lower(tiny, "xnnpack")  # lowered by the test above, or now

    def no_lowering(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not lower")

    monkeypatch.setattr(executorch.exir, "to_edge_transform_and_lower", no_lowering)
    hit = et_convert.lower(tiny, "xnnpack")
    assert hit.cached and hit.path == first.path


def test_threads_follow_the_option(isolated_cache: Path, tiny: ModelSpec) -> None:
    backend = backends.create("executorch-xnnpack", BackendOptions(threads=1))
    info = backend.prepare(tiny)  # from the cache
    assert info.info["threads"] == 1
    backend.close()


def test_the_core_ml_delegate_lowers_here_and_runs_only_on_macos(
    isolated_cache: Path, tiny: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("coremltools")
    program = et_convert.lower(tiny, "coreml-ane", precision="fp16")
    assert not program.cached and et_convert.is_valid(program.path)
    assert program.path != et_convert.lower(tiny, "xnnpack").path  # its own key
    assert backends.describe("executorch-coreml-ane").probe().reason == (
        "the Core ML delegate runs on macOS only"
    )
    # A macOS stand-in: the probes are file and version checks, nothing is run.
    monkeypatch.setattr(et_backends, "macos_version", lambda: (14, 5))
    monkeypatch.setattr(et_backends.platform, "machine", lambda: "arm64")
    for backend_id in ("executorch-coreml", "executorch-coreml-ane", "executorch-mps"):
        assert backends.describe(backend_id).probe().ok, backend_id
    monkeypatch.setattr(et_backends, "macos_version", lambda: (12, 7))
    assert backends.describe("executorch-coreml-ane").probe().reason == (
        "the Core ML delegate needs macOS 13+"
    )
    assert backends.describe("executorch-coreml").probe().ok
    coreml = backends.create("executorch-coreml")
    assert coreml.dtype == "fp16" and coreml.device == "all"
    with pytest.raises(BackendError, match="runs in fp32, not fp16"):
        backends.create("executorch-xnnpack", BackendOptions(dtype="fp16"))


def test_a_failed_lowering_is_shown_by_the_probe_with_versions(
    tmp_path: Path, tiny: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import executorch.exir

    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path))

    def incompatible(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator in this torch")

    monkeypatch.setattr(executorch.exir, "to_edge_transform_and_lower", incompatible)
    with pytest.raises(et_convert.ExecuTorchExportError, match="ExecuTorch export failed with"):
        et_convert.lower(tiny, "xnnpack")
    reason = backends.describe("executorch-xnnpack").probe().reason
    assert reason is not None
    assert reason.startswith("ExecuTorch export failed with torch ")
    assert ", executorch " in reason and reason.endswith("unsupported operator in this torch")
    assert not list(Cache("executorch", tmp_path).dir.glob("*/model.pte"))  # no half entry
    # Other versions (an upgrade) clear it: the probe no longer repeats an old failure.
    monkeypatch.setattr(et_convert, "package_version", lambda name: f"{name}-other")
    assert backends.describe("executorch-xnnpack").probe().ok


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "executorch" else real_find_spec(name, *a),
    )
    assert backends.describe("executorch-xnnpack").probe().reason == (
        "executorch not installed (pip install 'anetui[executorch]')"
    )
