"""torch-cpu-int8: PT2E with the X86 Inductor quantizer, then torch.compile with freezing.
A cold compile costs ~1 min on this 2-core machine, so the real run is kept out of
``make test`` (marker ``compile``) and run by ``make test-compile``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry, torch_base
from anetui.backends.base import BackendError, BackendOptions
from anetui.core.agreement import compare, reference_output
from anetui.core.runner import BackendRecord, run
from anetui.core.top1 import top1_agreement
from anetui.models.convert.quantize_common import RANDOM_NOTE
from tests.tiny_export import save_tiny_classifier

COMPILE_TESTS = os.environ.get("ANETUI_COMPILE_TESTS") == "1"


def test_torch_cpu_int8_is_torch_cpu_compile_in_int8() -> None:
    description = registry.describe("torch-cpu-int8")
    assert description.sibling_of == "torch-cpu-compile"
    base = registry.describe("torch-cpu-compile").factors()
    assert description.factors().differing(base) == ("precision",)
    assert registry.create("torch-cpu-int8").dtype == "int8"
    with pytest.raises(BackendError, match=r"computes in int8 .* not bf16"):
        registry.create("torch-cpu-int8", BackendOptions(dtype="bf16"))


@pytest.mark.compile
@pytest.mark.skipif(not COMPILE_TESTS, reason="cold torch.compile ~1 min: make test-compile")
def test_torch_cpu_int8_quantizes_compiles_runs_and_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(torch_base, "_USER_INDUCTOR_DIR", None)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    spec = save_tiny_classifier(tmp_path)
    backend = registry.create("torch-cpu-int8")
    info = backend.prepare(spec)
    assert info.compile_s > 0 and RANDOM_NOTE in info.notes
    assert any(n.startswith("quantized int8 with PT2E X86InductorQuantizer") for n in info.notes)
    reference = reference_output(spec)
    error, note = compare(backend.output, reference)
    assert note is None and error is not None and np.isfinite(error) and error > 0
    assert top1_agreement(backend.outputs()[0], reference) is not None
    assert run(backend, BackendRecord(), threading.Event(), warmup=2, iterations=5) == 5
    backend.close()
