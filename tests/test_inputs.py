"""Named inputs as data: what model files declare (ONNX, .pt2), how --input, --seq-len and
--batch-size complete it, the one line a wrong input gets, and the arrays (same for
every call, of the right dtype and domain). Tiny models, real files, no backend runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anetui.models.inputs import (
    InputError,
    InputOverride,
    InputSpec,
    make_arrays,
    parse_input_option,
    resolve_inputs,
)
from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelSpec
from tests.tiny_transformers import SEQ, VOCAB, save_two_io_onnx, save_two_io_pt2

TEXT = (
    InputSpec("input_ids", ("batch", "seq"), "int64", "tokens", 30),
    InputSpec("attention_mask", ("batch", "seq"), "int64", "ones"),
)


@pytest.fixture(scope="module")
def encoder_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("encoder")
    return save_two_io_onnx(folder / "enc.onnx"), save_two_io_pt2(folder / "enc.pt2")


def test_symbolic_dimensions_take_batch_and_seq_len_or_are_refused_by_name() -> None:
    resolved = resolve_inputs(TEXT, batch_size=2, seq_len=16)
    assert [i.shape for i in resolved] == [(2, 16), (2, 16)]
    with pytest.raises(InputError) as caught:
        resolve_inputs(TEXT)
    message = str(caught.value)
    assert "input 'input_ids' dimension 1 ('seq') is not fixed" in message
    assert message.endswith(
        "model inputs: input_ids int64 [batch,seq], attention_mask int64 [batch,seq]"
    )
    assert "\n" not in message


def test_overrides_must_name_a_real_input_and_respect_fixed_sizes_and_dtypes() -> None:
    fixed = (InputSpec("tokens", (1, 8), "int64", "tokens", 5),)
    with pytest.raises(
        InputError, match=r"no input named 'ids'; model inputs: tokens int64 \[1,8\]"
    ):
        resolve_inputs(fixed, overrides=[InputOverride("ids", (1, 8))])
    with pytest.raises(InputError, match="dimension 1 is fixed at 8 in the model, not 9"):
        resolve_inputs(fixed, overrides=[InputOverride("tokens", (1, 9))])
    with pytest.raises(InputError, match="the model takes int64, not float32"):
        resolve_inputs(fixed, overrides=[InputOverride("tokens", (1, 8), "float32")])
    # A model whose shapes are free (a PyTorch model): the override replaces the shape.
    free = resolve_inputs(fixed, overrides=[InputOverride("tokens", (1, 4))], dtype_fixed=False)
    assert free[0].shape == (1, 4) and free[0].high == 5


def test_parse_input_option() -> None:
    assert parse_input_option("input_ids:1,64") == InputOverride("input_ids", (1, 64))
    assert parse_input_option("mask:1x64:fp32") == InputOverride("mask", (1, 64), "float32")
    for bad in ("input_ids", "x:1,a", "x:0,3", "x:1:complex"):
        with pytest.raises(InputError):
            parse_input_option(bad)


def test_arrays_follow_dtype_and_domain_and_are_the_same_every_time() -> None:
    inputs = (*resolve_inputs(TEXT, seq_len=12), InputSpec("pixels", (1, 3, 4, 4)))
    first, second = make_arrays(inputs), make_arrays(inputs)
    for name in first:
        assert np.array_equal(first[name], second[name])
    ids = first["input_ids"]
    assert ids.dtype == np.int64 and ids.shape == (1, 12) and ids.min() >= 0 and ids.max() < 30
    assert len(np.unique(ids)) > 1  # drawn, not constant
    assert first["attention_mask"].dtype == np.int64 and np.all(first["attention_mask"] == 1)
    assert first["pixels"].dtype == np.float32 and first["pixels"].std() > 0.1


def test_an_image_model_keeps_its_one_input_and_its_array() -> None:
    """Same input as before named inputs: standard normal fp32 from seed 0, named x."""
    spec = resolve_model("mobilenet_v3_small", input_shape=(1, 3, 64, 64))
    assert [i.describe() for i in spec.inputs] == ["x float32 [1,3,64,64]"]
    assert spec.input_shape == (1, 3, 64, 64)
    expected = np.random.default_rng(0).standard_normal((1, 3, 64, 64), dtype=np.float32)
    assert np.array_equal(spec.make_input(), expected)
    legacy = ModelSpec(name="m", kind="torchvision", input_shape=(1, 3, 8, 8))
    assert legacy.inputs[0].name == "x" and legacy.inputs[0].dtype == "float32"


def test_onnx_and_pt2_files_declare_names_dtypes_outputs_and_token_range(
    encoder_files: tuple[Path, Path],
) -> None:
    onnx_file, pt2_file = encoder_files
    onnx_spec = resolve_model(str(onnx_file))
    assert onnx_spec.describe_inputs() == f"tokens int64 [1,{SEQ}], mask float32 [1,{SEQ}]"
    assert [o.name for o in onnx_spec.outputs] == ["hidden", "pooled"]
    pt2_spec = resolve_model(str(pt2_file))
    assert [(i.name, i.dtype) for i in pt2_spec.inputs] == [
        ("tokens", "int64"),
        ("mask", "float32"),
    ]
    assert len(pt2_spec.outputs) == 2
    for spec in (onnx_spec, pt2_spec):
        tokens, mask = spec.inputs
        assert tokens.domain == "tokens" and tokens.high == VOCAB  # the embedding's rows
        assert mask.domain == "ones"  # a float mask is ones too


def test_symbolic_onnx_dimension_needs_seq_len(
    tmp_path: Path, encoder_files: tuple[Path, Path]
) -> None:
    import onnx

    model = onnx.load(str(encoder_files[0]), load_external_data=False)
    for graph_input in model.graph.input:
        graph_input.type.tensor_type.shape.dim[1].dim_param = "sequence"
    dynamic = tmp_path / "dynamic.onnx"
    onnx.save(model, str(dynamic))
    with pytest.raises(
        InputError, match=r"dimension 1 \('sequence'\) is not fixed: give --seq-len"
    ):
        resolve_model(str(dynamic))
    assert resolve_model(str(dynamic), seq_len=5).inputs[0].shape == (1, 5)


def test_the_cache_key_differs_for_two_input_specs() -> None:
    from anetui.models.cache import make_key, model_fields

    short = resolve_model("bert-base", seq_len=16)
    long = resolve_model("bert-base", seq_len=32)
    assert make_key(model_fields(short)) != make_key(model_fields(long))
    assert short.describe_inputs() == "input_ids int64 [1,16], attention_mask int64 [1,16]"


def test_report_reads_both_schema_versions(tmp_path: Path) -> None:
    """anetui.results/2 is written; a /1 file from an older anetui still loads."""
    import json

    from anetui.errors import AnetuiError
    from anetui.report.load import load_results
    from anetui.report.results_json import SCHEMA

    assert SCHEMA == "anetui.results/2"
    for schema in ("anetui.results/1", "anetui.results/2"):
        path = tmp_path / f"{schema[-1]}.json"
        path.write_text(json.dumps({"schema": schema, "config": {"input_shape": [1, 3]}}))
        assert load_results(path)["schema"] == schema
    path = tmp_path / "3.json"
    path.write_text(json.dumps({"schema": "anetui.results/3"}))
    with pytest.raises(AnetuiError, match="not an anetui results file"):
        load_results(path)


def test_a_reference_that_cannot_be_made_is_a_note_not_an_error(tmp_path: Path) -> None:
    from anetui.core import agreement

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an ONNX graph")
    spec = ModelSpec(name="bad", kind="onnx", input_shape=(1, 4), path=bad)
    reference, note = agreement.reference_or_note(spec)
    assert reference is None
    assert note is not None and note.startswith("agreement not computed: the reference failed:")
    assert "\n" not in note


def test_integer_outputs_compare_exactly() -> None:
    from anetui.core.agreement import Reference, compare

    ref = Reference(("ids", "scores"), (np.array([1, 2, 3]), np.array([1.0, -2.0])))
    same = compare(lambda: [np.array([1, 2, 3]), np.array([1.0, -2.002], np.float32)], ref)
    assert same.per_output["ids"] == 0.0 and same.worst == pytest.approx(1e-3, rel=1e-3)
    off = compare(lambda: [np.array([1, 2, 4]), np.array([1.0, -2.0], np.float32)], ref)
    assert off.per_output == {"ids": 1.0, "scores": 0.0} and off.worst == 1.0
