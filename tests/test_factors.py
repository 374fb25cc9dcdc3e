"""Like for like, said out loud: each backend's factors, the factors a ratio mixes, the
pair that differs in one factor only, and the words every output uses for them."""

from __future__ import annotations

import json

import pytest

from anetui.backends import registry
from anetui.backends.base import Factors
from anetui.core import ratios
from anetui.core.results import BackendResult, BackendState, Ratio
from anetui.core.stats import LatencyStats
from anetui.report.results_json import backend_json, to_json
from anetui.report.text import factor_clause, factor_tag, ratio_sentence


def result(backend_id: str, p50_us: int, dtype: str | None = None) -> BackendResult:
    """A measured backend: its registry factors and latencies around ``p50_us``."""
    stats = LatencyStats()
    stats.record_many(p50_us * 1000 + delta for delta in range(-500, 501, 10))
    description = registry.describe(backend_id)
    return BackendResult(
        id=backend_id,
        runtime=description.runtime,
        device=description.device,
        dtype=dtype or description.default_dtype,
        available=True,
        reason=None,
        state=BackendState.DONE,
        error=None,
        prepare=None,
        summary=stats.summary(),
        throughput_per_s=None,
        active_s=1.0,
        agreement_max_rel_err=None,
        factors=description.factors(dtype),
    )


def measured(*results: BackendResult) -> dict[str, BackendResult]:
    return {r.id: r for r in results}


def test_every_backend_declares_its_factors() -> None:
    for description in registry.REGISTRY.values():
        factors = description.factors()
        assert factors.runtime and factors.device and factors.graph
        assert factors.precision == description.default_dtype and factors.threads == "default"
    assert registry.describe("torch-cpu").factors().runtime == "PyTorch"
    assert registry.describe("torch-cpu-compile").factors().graph == "Inductor"
    assert registry.describe("openvino-cpu").factors(threads=2).threads == "2"


@pytest.mark.parametrize(
    ("a", "b", "differs"),
    [
        ("torch-cuda", "torch-cuda-fp16", ("precision",)),
        ("torch-cuda-fp16", "torch-cuda-graph", ("graph",)),
        ("torch-cuda", "torch-cuda-graph", ("precision", "graph")),
        ("torch-cuda", "torch-cuda-compile", ("graph",)),
        ("torch-cpu", "torch-cuda", ("device",)),
        ("torch-cpu", "torch-cpu-compile", ("graph",)),
        ("torch-cpu", "openvino-cpu", ("runtime", "graph")),
    ],
)
def test_the_gpu_family_has_one_pair_per_factor(a: str, b: str, differs: tuple[str, ...]) -> None:
    assert registry.describe(a).factors().differing(registry.describe(b).factors()) == differs


def test_a_mixed_ratio_names_its_factors_and_the_one_factor_pairs() -> None:
    # The GPU figures this project recorded: torch-cuda (fp32 eager) against
    # torch-cuda-graph (fp16 + CUDA graph) mixes two factors.
    runs = measured(
        result("torch-cuda", 900),
        result("torch-cuda-fp16", 500),
        result("torch-cuda-graph", 100),
    )
    by_backend = {r.backend: r for r in ratios.against("torch-cuda", runs)}
    mixed = by_backend["torch-cuda-graph"]
    assert mixed.differs == ("precision", "graph")
    assert mixed.single_factor_pairs == (
        ("torch-cuda-fp16", "torch-cuda", "precision"),
        ("torch-cuda-graph", "torch-cuda-fp16", "graph"),
    )
    sentence = ratio_sentence(mixed)
    assert sentence.startswith("torch-cuda-graph ran 9.0")
    assert sentence.endswith(
        " — differs in precision and graph capture; one factor at a time: "
        "torch-cuda-fp16 vs torch-cuda (precision only), "
        "torch-cuda-graph vs torch-cuda-fp16 (graph capture only)"
    )
    assert factor_tag(mixed) == " (mixes precision+graph)"  # the dashboard's speed cell
    alone = by_backend["torch-cuda-fp16"]
    assert alone.differs == ("precision",) and alone.single_factor_pairs == ()
    assert ratio_sentence(alone).endswith(", like for like: differs in precision only")
    assert factor_tag(alone) == " (precision only)"


def test_a_mixed_ratio_without_a_one_factor_pair_says_so() -> None:
    runs = measured(result("torch-cpu", 10_000), result("openvino-cpu", 3_000))
    (ratio,) = ratios.against("torch-cpu", runs)
    assert factor_clause(ratio) == (
        " — differs in runtime and graph capture; no measured pair differs in one of these alone"
    )


def test_a_dtype_override_and_threads_are_factors() -> None:
    runs = measured(result("torch-cpu", 10_000), result("torch-cpu-opt", 5_000, dtype="bf16"))
    (ratio,) = ratios.against("torch-cpu", runs)
    assert ratio.differs == ("precision", "graph")
    one = Factors("PyTorch", "cpu", "fp32", "eager", "1")
    assert one.differing(Factors("PyTorch", "cpu", "fp32", "eager", "default")) == ("threads",)


def test_unknown_factors_add_nothing_to_the_sentence() -> None:
    ratio = Ratio("torch-cpu", "coreml-ane", 12.0, (11.0, 13.0))
    assert factor_clause(ratio) == ""
    assert ratio_sentence(ratio) == "coreml-ane ran 12.0x (11.0–13.0) faster than torch-cpu"


def test_results_json_carries_factors_and_what_each_ratio_mixes() -> None:
    from anetui.core.results import Snapshot

    runs = measured(
        result("torch-cpu", 10_000), result("torch-cpu-opt", 5_000), result("onnx-cpu", 3_000)
    )
    snapshot = Snapshot(
        created="2026-11-29T00:00:00Z",
        model="m",
        input_shape=(1, 3, 8, 8),
        environment={},
        config={},
        backends=tuple(runs.values()),
        reference="torch-cpu",
        ratios=ratios.against("torch-cpu", runs),
    )
    document = json.loads(json.dumps(to_json(snapshot)))
    assert backend_json(runs["onnx-cpu"])["factors"] == {
        "runtime": "ONNX Runtime",
        "device": "cpu",
        "precision": "fp32",
        "graph": "ONNX graph, optimisation ALL",
        "threads": "default",
    }
    onnx = next(r for r in document["ratios"] if r["backend"] == "onnx-cpu")
    assert onnx["differs"] == ["runtime", "graph"]
    assert onnx["single_factor_pairs"] == [
        {"backend": "torch-cpu-opt", "reference": "torch-cpu", "factor": "graph"}
    ]
    assert "differs in runtime and graph capture" in onnx["summary"]


def test_the_markdown_report_has_a_factors_table() -> None:
    from anetui.report.markdown import _factors_table

    lines = _factors_table([result("torch-cpu", 10_000), result("openvino-cpu", 3_000)])
    assert lines[0] == "## Factors"
    assert "| openvino-cpu | OpenVINO | cpu | fp32 | OpenVINO graph | default |" in lines
    assert "| torch-cpu | PyTorch | cpu | fp32 | eager | default |" in lines
