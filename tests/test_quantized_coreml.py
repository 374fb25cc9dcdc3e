"""Core ML's compressed siblings (coreml-*-w8, -w8a8, -int4): real coremltools compression
of a tiny model here, prediction under the macOS personality (tests/macos.py), whose
stand-ins answer what only Core ML on a Mac computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry
from anetui.models.convert import quantize_coreml
from anetui.models.convert.coreml import convert
from anetui.models.convert.quantize_common import RANDOM_NOTE, QuantizationError, size_bytes
from anetui.models.spec import ModelSpec
from tests.macos import MacOS
from tests.tiny_export import save_tiny_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    """Big enough for coremltools to compress its weights (>= 2048 elements)."""
    return save_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


def const_dtypes(path: Path) -> set[str]:
    """The element types of the package's constant operations' values."""
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    ops = spec.mlProgram.functions["main"].block_specializations.values()
    return {op.type for block in ops for op in block.operations}


def test_w8_halves_the_package_and_int4_quarters_it(tiny: ModelSpec, isolated_cache: Path) -> None:
    fp16 = size_bytes(convert(tiny, "fp16").path)
    w8 = quantize_coreml.quantize(tiny, "w8")
    assert not w8.cached and w8.calibration_note == ""  # weight-only: no calibration
    assert "constexpr_affine_dequantize" in const_dtypes(w8.path)
    int4 = quantize_coreml.quantize(tiny, "int4")
    assert "constexpr_lut_to_dense" in const_dtypes(int4.path)
    # The tiny model's weights are a small part of its package; still smaller each time.
    assert size_bytes(int4.path) < size_bytes(w8.path) < fp16
    again = quantize_coreml.quantize(tiny, "w8")
    assert again.cached and again.path == w8.path


def test_w8a8_needs_macos_here(tiny: ModelSpec, isolated_cache: Path) -> None:
    with pytest.raises(QuantizationError, match="w8a8 calibrates by running the model in Core ML"):
        quantize_coreml.quantize(tiny, "w8a8")
    assert not registry.create("coreml-ane-w8a8").available().ok


def test_w8_and_w8a8_run_on_macos(macos: MacOS, tiny: ModelSpec, isolated_cache: Path) -> None:
    w8 = registry.create("coreml-ane-w8")
    base = registry.describe("coreml-ane").factors()
    assert w8.available().ok and w8.dtype == "w8"
    assert registry.describe("coreml-ane-w8").factors().differing(base) == ("precision",)
    info = w8.prepare(tiny)
    assert macos.coreml.loads[-1][2] == "CPU_AND_NE"
    assert info.info["quantization"]["scheme"] == "w8"  # type: ignore[index]
    assert np.array_equal(w8.outputs()[0], macos.coreml.output)
    w8.close()

    w8a8 = registry.create("coreml-ane-w8a8")
    info = w8a8.prepare(tiny)
    assert RANDOM_NOTE in info.notes
    package = Path(info.info["quantization"]["artefact"])  # type: ignore[index]
    ops = const_dtypes(package)
    assert {"quantize", "dequantize"} <= ops  # activations int8
    assert "constexpr_affine_dequantize" in ops  # weights int8
    w8a8.close()
