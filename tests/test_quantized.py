"""Quantized siblings on the CPU (onnx-cpu-int8, openvino-cpu-int8, executorch-xnnpack-int8):
real quantizations of a tiny classifier, run beside their fp32 bases in one session. What
is checked: the factors differ in precision only and a ratio says so, agreement is
finite, top-1 is reported, the calibration is said to be random (and is never the timed
input), the artefacts are cached by scheme and calibration, and `convert --quantize`
writes the file. Never speed: whether int8 is faster depends on the CPU (VNNI or not)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry
from anetui.backends.base import PRECISIONS, BackendOptions, is_quantized
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.core.top1 import top1_agreement
from anetui.models.convert import quantize_onnx
from anetui.models.convert.quantize_common import (
    RANDOM_NOTE,
    QuantizationError,
    folder_calibration,
    random_calibration,
)
from anetui.models.spec import ModelSpec
from anetui.report.results_json import to_json
from tests.tiny_export import save_tiny_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return save_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


def test_every_sibling_differs_from_its_base_in_precision_only() -> None:
    siblings = [d for d in registry.REGISTRY.values() if d.sibling_of is not None]
    assert {"onnx-cpu-int8", "openvino-cpu-int8", "executorch-xnnpack-int8"} <= {
        d.id for d in siblings
    }
    assert {"torch-cpu-int8", "coreml-ane-w8", "coreml-ane-w8a8", "coreml-all-int4"} <= {
        d.id for d in siblings
    }
    for sibling in siblings:
        base = registry.describe(sibling.sibling_of or "")
        assert sibling.factors().differing(base.factors()) == ("precision",), sibling.id
        assert is_quantized(sibling.default_dtype) and sibling.default_dtype in PRECISIONS
        assert not sibling.default and sibling.id not in registry.default_ids()
    assert "onnx-cpu" in registry.default_ids()


def test_doctor_lists_the_siblings_and_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import io

    from rich.console import Console

    from anetui.cli.doctor import print_doctor

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a)
    )
    out = io.StringIO()
    print_doctor(Console(file=out, width=200))
    text = out.getvalue()
    siblings = text[text.index("quantized siblings") :]
    assert "openvino-cpu-int8       nncf not installed (pip install 'anetui[quantize]')" in siblings
    assert "onnx-cpu-int8" in siblings and "coreml-ane-w8a8" in siblings
    assert "onnx-cpu-int8" not in text[: text.index("quantized siblings")]


def test_a_float_dtype_makes_a_sibling_unavailable_with_the_reason(tiny: ModelSpec) -> None:
    session = Session(RunConfig(backends=("onnx-cpu-int8",), dtype="fp32"), tiny)
    reason = session.availability()["onnx-cpu-int8"].reason
    assert reason is not None and "computes in int8" in reason and "not fp32" in reason


def test_calibration_is_drawn_like_the_input_but_never_is_it(tiny: ModelSpec) -> None:
    calibration = random_calibration(tiny)
    timed = tiny.make_input()
    assert len(calibration.samples) == 16 and calibration.is_random
    assert all(s.shape == timed.shape and s.dtype == np.float32 for s in calibration.samples)
    assert not any(np.array_equal(s, timed) for s in calibration.samples)
    again = random_calibration(tiny)
    assert all(
        np.array_equal(a, b) for a, b in zip(calibration.samples, again.samples, strict=True)
    )
    assert calibration.note == RANDOM_NOTE


def test_a_calibration_folder_is_read_and_checked(tiny: ModelSpec, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    np.save(tmp_path / "a.npy", rng.standard_normal(tiny.input_shape).astype(np.float64))
    np.savez(
        tmp_path / "b.npz", one=rng.standard_normal(tiny.input_shape), two=np.ones(tiny.input_shape)
    )
    calibration = folder_calibration(tiny, tmp_path)
    assert len(calibration.samples) == 3 and not calibration.is_random
    assert all(s.dtype == np.float32 for s in calibration.samples)
    assert calibration.key["count"] == 3 and "accuracy on real data is not" in calibration.note
    np.save(tmp_path / "c.npy", np.zeros((1, 3, 8, 8)))
    with pytest.raises(QuantizationError, match=r"c.npy holds an array of shape \(1, 3, 8, 8\)"):
        folder_calibration(tiny, tmp_path)
    with pytest.raises(QuantizationError, match=r"a\.npy: not a folder"):
        folder_calibration(tiny, tmp_path / "a.npy")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QuantizationError, match=r"no \.npy or \.npz arrays"):
        folder_calibration(tiny, empty)


def test_top1_agreement_for_classifiers_only() -> None:
    reference = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert top1_agreement(reference + 0.01, reference) == 1.0
    assert top1_agreement(np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1]]), reference) == 0.5
    assert top1_agreement(np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 4))) is None
    assert top1_agreement(np.full((2, 3), np.nan), reference) is None


def test_onnx_int8_is_cached_by_scheme_and_calibration(
    tiny: ModelSpec, isolated_cache: Path, tmp_path: Path
) -> None:
    first = quantize_onnx.quantize(tiny)
    assert quantize_onnx.is_valid(first.path) and first.calibration_note == RANDOM_NOTE
    assert quantize_onnx.quantize(tiny).cached
    for i in range(2):
        np.save(tmp_path / f"{i}.npy", np.random.default_rng(i).standard_normal(tiny.input_shape))
    own = quantize_onnx.quantize(tiny, folder_calibration(tiny, tmp_path))
    assert not own.cached and own.path != first.path  # another calibration, another entry
    meta = json.loads((own.path.parent / "meta.json").read_text())
    assert meta["scheme"] == "int8" and meta["calibration"] == str(tmp_path)


def test_cpu_siblings_run_beside_their_bases(tiny: ModelSpec, isolated_cache: Path) -> None:
    ids = (
        "onnx-cpu",
        "onnx-cpu-int8",
        "openvino-cpu",
        "openvino-cpu-int8",
        "executorch-xnnpack",
        "executorch-xnnpack-int8",
    )
    config = RunConfig(backends=ids, iterations=30, duration_s=None, warmup=2)
    session = Session(config, tiny)
    assert session.runnable() == list(ids)
    session.prepare()
    session.run()
    snapshot = session.snapshot()
    session.close()
    by_id = {b.id: b for b in snapshot.backends}
    for backend_id in ids[1::2]:
        result = by_id[backend_id]
        assert result.state == "done", (backend_id, result.error)
        assert result.dtype == "int8" and result.factors is not None
        base = by_id[backend_id.removesuffix("-int8")]
        assert base.factors is not None
        assert result.factors.differing(base.factors) == ("precision",)
        error = result.agreement_max_rel_err
        assert error is not None and np.isfinite(error) and error > 0  # quantized: not exact
        assert result.top1_agreement is not None and 0.0 <= result.top1_agreement <= 1.0
        assert RANDOM_NOTE in result.notes
        assert result.prepare is not None and result.prepare.compile_s > 0
        assert result.prepare.info["quantization"]["scheme"] == "int8"  # type: ignore[index]
    # onnx-cpu is the reference: its sibling's ratio is one of the ratios; the others are
    # compared with their own base in sibling_ratios.
    direct = next(r for r in snapshot.ratios if r.backend == "onnx-cpu-int8")
    assert direct.reference == "onnx-cpu" and direct.differs == ("precision",)
    pairs = {(r.reference, r.backend): r for r in snapshot.sibling_ratios}
    assert set(pairs) == {
        ("openvino-cpu", "openvino-cpu-int8"),
        ("executorch-xnnpack", "executorch-xnnpack-int8"),
    }
    assert all(r.differs == ("precision",) for r in pairs.values())
    document = to_json(snapshot)
    assert any(RANDOM_NOTE in w for w in document["warnings"])
    siblings = {r["backend"]: r for r in document["sibling_ratios"]}
    summary = siblings["executorch-xnnpack-int8"]["summary"]
    assert "differs in precision only" in summary or "no speed ratio" in summary
    int8 = next(b for b in document["backends"] if b["id"] == "openvino-cpu-int8")
    assert int8["factors"]["precision"] == "int8" and int8["top1_agreement"] is not None
    # Second time round everything is in the cache.
    again = registry.create("onnx-cpu-int8", BackendOptions())
    info = again.prepare(tiny)
    again.close()
    assert info.info["quantization"]["cached"] is True  # type: ignore[index]


def test_convert_quantize_writes_the_file(
    tiny: ModelSpec, isolated_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import click

    from anetui.cli.convert import quantize_command

    out = tmp_path / "tiny.int8.onnx"
    assert quantize_command(str(tiny.path), "int8", out, None, 1, "onnx", None) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out) and quantize_onnx.is_valid(out)
    assert "of the fp32 ONNX model's" in printed.err and RANDOM_NOTE in printed.err
    with pytest.raises(click.UsageError, match="--to onnx takes --quantize int8, not w8"):
        quantize_command(str(tiny.path), "w8", None, None, 1, "onnx", None)


def test_calibration_refuses_several_or_integer_inputs_in_one_line(tmp_path: Path) -> None:
    """Token ids and masks are not calibrated by guessing: one line naming the inputs,
    from the random draw and from a user's folder alike."""
    from anetui.models.convert.quantize_common import (
        QuantizationError,
        folder_calibration,
        random_calibration,
    )
    from anetui.models.inputs import InputSpec
    from anetui.models.spec import ModelSpec

    spec = ModelSpec(
        name="enc",
        kind="export",
        inputs=(
            InputSpec("input_ids", (1, 8), "int64", "tokens"),
            InputSpec("attention_mask", (1, 8), "int64", "ones"),
        ),
    )
    expected = "one float input for now; this one has input_ids int64, attention_mask int64"
    with pytest.raises(QuantizationError, match=expected):
        random_calibration(spec)
    with pytest.raises(QuantizationError, match=expected):
        folder_calibration(spec, tmp_path)
