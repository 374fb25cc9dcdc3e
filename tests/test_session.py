from __future__ import annotations

import json

import pytest

from anetui.backends import registry as backends
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from anetui.report import markdown, results_json
from tests import doubles
from tests.conftest import SMALL_MODEL, SMALL_SHAPE


def small_config(**kwargs: object) -> RunConfig:
    base: dict[str, object] = {
        "model": SMALL_MODEL,
        "input_shape": SMALL_SHAPE,
        "warmup": 2,
        "iterations": 12,
        "duration_s": None,
    }
    base.update(kwargs)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def doubles_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers the test doubles as backends, the way real ones are registered."""
    for backend_id, target in (
        ("double-ok", "CountingBackend"),
        ("double-fails", "FailingBackend"),
        ("double-nan", "NanOutputBackend"),
    ):
        monkeypatch.setitem(
            backends.REGISTRY,
            backend_id,
            doubles.describe_double(backend_id, getattr(doubles, target)),
        )


def test_two_real_backends_interleaved_give_a_full_snapshot(small_spec: ModelSpec) -> None:
    session = Session(
        small_config(backends=("torch-cpu", "torch-cpu-opt"), interleave=True), small_spec
    )
    events: list[tuple[str, str, int]] = []
    session.prepare(progress=lambda *e: events.append(e))
    session.run(progress=lambda *e: events.append(e))
    snap = session.snapshot()
    session.close()
    by_id = {b.id: b for b in snap.backends}
    for backend_id in ("torch-cpu", "torch-cpu-opt"):
        result = by_id[backend_id]
        assert result.state == "done" and result.summary is not None
        assert result.summary.count == 12
        assert result.agreement_max_rel_err is not None and result.agreement_max_rel_err < 1e-4
    # Interleaved: 10 rounds, alternating, the counts split 2,2,1,… per round.
    running = [e[0] for e in events if e[1] == "running"]
    assert running[:4] == ["torch-cpu", "torch-cpu-opt", "torch-cpu", "torch-cpu-opt"]
    assert len(running) == 20
    assert snap.reference == "torch-cpu"
    assert [r.backend for r in snap.ratios] == ["torch-cpu-opt"]
    doc = results_json.to_json(snap)
    json.dumps(doc)  # serialisable
    assert doc["schema"] == "anetui.results/2"
    assert doc["environment"]["threads"] is not None
    entry = doc["backends"][1]
    for key in (
        "id",
        "available",
        "reason",
        "dtype",
        "device",
        "load_s",
        "first_inference_ms",
        "count",
        "latency_ms",
        "throughput_per_s",
        "agreement_max_rel_err",
        "energy",
    ):
        assert key in entry
    for key in ("p50", "p50_ci95", "p90", "p99", "p999", "mean", "stddev", "min", "max"):
        assert key in entry["latency_ms"]
    # 12 inferences each: too few for a ratio, so none is claimed, and the JSON says why.
    ratio = doc["ratios"][0]
    assert ratio["speed"] is None and ratio["speed_ci95"] is None
    assert ratio["speed_note"] == "12 and 12 inferences: too few for a ratio (needs 30 each)"
    assert ratio["summary"] == (
        "torch-cpu-opt against torch-cpu: no speed ratio claimed: " + ratio["speed_note"]
    )
    assert any(w.startswith("no speed ratio for torch-cpu-opt") for w in doc["warnings"])


def test_a_failing_backend_is_reported_and_the_others_go_on(doubles_registry: None) -> None:
    spec = ModelSpec(name="none", kind="none", input_shape=(1,))
    session = Session(small_config(backends=("double-fails", "double-ok"), interleave=True), spec)
    session.prepare()
    session.run()
    snap = session.snapshot()
    by_id = {b.id: b for b in snap.backends}
    assert by_id["double-fails"].state == "error"
    assert by_id["double-fails"].error == "double-fails failed while running: device lost"
    assert by_id["double-ok"].state == "done" and by_id["double-ok"].summary is not None
    assert by_id["double-ok"].summary.count == 12


def test_unavailable_backends_are_listed_not_run(small_spec: ModelSpec) -> None:
    from anetui.backends import torch_base

    if torch_base.torch_cuda().ok:
        pytest.skip("an NVIDIA GPU is present")
    session = Session(small_config(backends=("torch-cpu", "torch-cuda")), small_spec)
    assert session.runnable() == ["torch-cpu"]
    with pytest.raises(Exception, match="torch-cuda: not run — no NVIDIA GPU"):
        session.require_available()
    snap = session.snapshot()
    cuda = next(b for b in snap.backends if b.id == "torch-cuda")
    assert cuda.state == "unavailable" and not cuda.available and cuda.summary is None


def test_reference_choice(doubles_registry: None) -> None:
    spec = ModelSpec(name="none", kind="none", input_shape=(1,))
    session = Session(
        small_config(backends=("double-ok", "double-fails"), reference="double-fails"), spec
    )
    session.prepare()
    session.run()
    snap = session.snapshot()
    # The asked-for reference failed mid-run (2 warmup calls, 3 timed, then an error),
    # but the 3 latencies it did record still make it the reference it was asked to be.
    fails = next(b for b in snap.backends if b.id == "double-fails")
    assert fails.state == "error" and fails.summary is not None and fails.summary.count == 3
    assert snap.reference == "double-fails"
    assert [r.backend for r in snap.ratios] == ["double-ok"]
    session2 = Session(small_config(backends=("double-ok",), reference=None), spec)
    session2.prepare()
    session2.run()
    assert session2.snapshot().reference == "double-ok"


def test_agreement_that_cannot_be_computed_is_null_with_a_reason(
    doubles_registry: None, small_spec: ModelSpec
) -> None:
    session = Session(small_config(backends=("double-ok", "double-nan")), small_spec)
    session.prepare()
    session.run()
    snap = session.snapshot()
    by_id = {b.id: b for b in snap.backends}
    assert by_id["double-ok"].agreement_max_rel_err is None
    assert by_id["double-ok"].notes == ("agreement not computed: NotImplementedError",)
    assert by_id["double-nan"].agreement_max_rel_err is None
    assert "output contains NaN or Inf" in by_id["double-nan"].notes[0]
    assert by_id["double-nan"].summary is not None  # it still ran
    doc = results_json.to_json(snap)
    assert doc["backends"][1]["notes"] == ["output contains NaN or Inf: agreement not computed"]
    assert "`double-nan`: output contains NaN" in markdown.to_markdown(snap)
