"""Transformer models end to end with tiny configs: a Hugging Face folder (a BERT
classifier as save_pretrained writes it) and a two-input, two-output encoder as .pt2 and
as .onnx with external weights, each run on torch-cpu, onnx-cpu, openvino-cpu and
executorch-xnnpack where the file allows, every output agreeing; the zoo's bert-base
(made tiny here) converted to a Core ML ML Program with its two integer inputs and run
by the coreml-* backends under the macOS personality; bad input as one line."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from anetui.backends import registry
from anetui.core import agreement
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.models import zoo
from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelError
from tests.conftest import anetui_cmd
from tests.macos import MacOS
from tests.tiny_transformers import (
    TINY_BERT,
    save_bert_classifier,
    save_two_io_onnx,
    save_two_io_pt2,
)

pytest.importorskip("transformers")
CPU_BACKENDS = ("torch-cpu", "onnx-cpu", "openvino-cpu", "executorch-xnnpack")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("transformers")
    save_bert_classifier(folder / "bert-classifier")
    save_two_io_onnx(folder / "encoder.onnx")
    save_two_io_pt2(folder / "encoder.pt2")
    return folder


def run(spec_path: str, backends: tuple[str, ...], **resolve: object) -> dict[str, object]:
    """A short real run; each backend's result by id."""
    spec = resolve_model(spec_path, **resolve)  # type: ignore[arg-type]
    config = RunConfig(backends=backends, warmup=1, iterations=3, duration_s=None)
    session = Session(config, spec)
    session.prepare()
    session.run()
    snapshot = session.snapshot()
    session.close()
    return {
        "config": snapshot.config,
        "snapshot": snapshot,
        **{b.id: b for b in snapshot.backends},
    }


def assert_all_agree(
    results: dict[str, object], backends: tuple[str, ...], names: list[str]
) -> None:
    for backend_id in backends:
        result = results[backend_id]
        assert result.state == "done", (backend_id, result.error)  # type: ignore[attr-defined]
        assert sorted(result.agreement_outputs) == sorted(names), backend_id  # type: ignore[attr-defined]
        worst = result.agreement_max_rel_err  # type: ignore[attr-defined]
        assert worst is not None and worst < 1e-3, (backend_id, worst)
        assert worst == max(result.agreement_outputs.values())  # type: ignore[attr-defined]


def test_a_hugging_face_folder_runs_on_every_cpu_runtime_with_its_head(
    models_dir: Path, isolated_cache: Path
) -> None:
    results = run(str(models_dir / "bert-classifier"), CPU_BACKENDS, seq_len=16)
    assert_all_agree(results, CPU_BACKENDS, ["logits"])
    config = results["config"]
    assert config["inputs"] == [  # type: ignore[index]
        {
            "name": "input_ids",
            "shape": [1, 16],
            "dtype": "int64",
            "values": "token ids uniform in [0, 99)",
        },
        {"name": "attention_mask", "shape": [1, 16], "dtype": "int64", "values": "ones"},
    ]
    from anetui.report import markdown, results_json

    header = "input_ids int64 [1,16], attention_mask int64 [1,16]"
    assert markdown.to_markdown(results["snapshot"]).startswith(  # type: ignore[arg-type]
        f"# anetui benchmark: {models_dir / 'bert-classifier'} {header}"
    )
    doc = results_json.to_json(results["snapshot"])  # type: ignore[arg-type]
    assert doc["config"]["input_shape"] == [1, 16]  # the first input's, as in schema 1
    assert doc["backends"][1]["agreement_outputs"].keys() == {"logits"}
    # The classification head of `architectures` is kept: 3 labels.
    assert config["outputs"] == [{"name": "logits", "shape": [1, 3], "dtype": "float32"}]  # type: ignore[index]


def test_a_two_input_two_output_pt2_runs_everywhere(models_dir: Path, isolated_cache: Path) -> None:
    results = run(str(models_dir / "encoder.pt2"), CPU_BACKENDS)
    names = [o["name"] for o in results["config"]["outputs"]]  # type: ignore[index]
    assert len(names) == 2
    assert_all_agree(results, CPU_BACKENDS, names)
    from anetui.report import markdown

    report = markdown.to_markdown(results["snapshot"])  # type: ignore[arg-type]
    assert f"- **Outputs**: {names[0]} [1,8,16], {names[1]} [1,16]" in report


def test_an_onnx_file_with_external_data_runs_on_its_runtimes(
    models_dir: Path, isolated_cache: Path
) -> None:
    path = models_dir / "encoder.onnx"
    assert (models_dir / "encoder.onnx.data").stat().st_size > 1000  # weights outside
    results = run(str(path), ("onnx-cpu", "openvino-cpu"))
    assert_all_agree(results, ("onnx-cpu", "openvino-cpu"), ["hidden", "pooled"])
    assert results["config"]["agreement_reference"] == agreement.ONNX_REFERENCE_RUNTIME  # type: ignore[index]


def test_the_onnx_cache_key_covers_external_data(models_dir: Path, tmp_path: Path) -> None:
    import shutil

    from anetui.models.cache import make_key, model_fields

    copy = tmp_path / "encoder.onnx"
    shutil.copy(models_dir / "encoder.onnx", copy)
    shutil.copy(models_dir / "encoder.onnx.data", tmp_path / "encoder.onnx.data")
    before = make_key(model_fields(resolve_model(str(copy))))
    data = tmp_path / "encoder.onnx.data"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")  # other weights, same graph
    assert make_key(model_fields(resolve_model(str(copy)))) != before
    # A cache entry is valid only with the data its graph names.
    from anetui.models.convert.onnx import is_valid

    assert is_valid(copy)
    data.unlink()
    assert not is_valid(copy)


def test_folders_without_weights_or_of_unknown_architectures_are_one_line(
    models_dir: Path, tmp_path: Path
) -> None:
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(
        (models_dir / "bert-classifier" / "config.json").read_text()
    )
    with pytest.raises(ModelError, match=r"has config.json but no \*.safetensors weights"):
        resolve_model(str(no_weights))
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(
        '{"architectures": ["FooBarForMagic"], "model_type": "foo"}'
    )
    with pytest.raises(
        ModelError, match="architecture 'FooBarForMagic' is unknown to transformers"
    ):
        resolve_model(str(unknown))
    # No architectures at all: the model type's base model, the head's weights unused.
    import json
    import shutil

    headless = shutil.copytree(models_dir / "bert-classifier", tmp_path / "headless")
    config = json.loads((headless / "config.json").read_text())
    del config["architectures"]
    (headless / "config.json").write_text(json.dumps(config))
    reference = agreement.reference(resolve_model(str(headless), seq_len=8))
    assert reference is not None and reference.names == ("last_hidden_state", "pooler_output")


@pytest.fixture
def tiny_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The zoo's bert-base with the tiny config (the real one converts in a minute)."""
    row = dataclasses.replace(zoo.ZOO["bert-base"], config_args=TINY_BERT)
    monkeypatch.setitem(zoo.ZOO, "bert-base", row)


def test_bert_base_by_name_converts_to_core_ml_and_runs_on_coreml_backends(
    tiny_zoo: None, macos: MacOS, isolated_cache: Path
) -> None:
    import coremltools as ct

    from anetui.cli.convert import convert_command

    assert convert_command("bert-base", "fp16", None, None, 1, "coreml", seq_len=16) == 0
    (package,) = isolated_cache.glob("coreml/*/model.mlpackage")
    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    int32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
    assert [
        (f.name, f.type.multiArrayType.dataType, list(f.type.multiArrayType.shape))
        for f in spec.description.input
    ] == [
        ("input_ids", int32, [1, 16]),
        ("attention_mask", int32, [1, 16]),
    ]
    model_spec = resolve_model("bert-base", seq_len=16)
    reference = agreement.reference(model_spec)
    assert reference is not None and reference.names == ("last_hidden_state", "pooler_output")
    # Core ML's arithmetic is the Mac's: predictions return the reference in fp16.
    macos.coreml.outputs = {
        name: array.astype(np.float16).astype(np.float32)
        for name, array in zip(reference.names, reference.arrays, strict=True)
    }
    config = RunConfig(
        model="bert-base",
        backends=("coreml-cpu", "coreml-ane"),
        warmup=1,
        iterations=3,
        duration_s=None,
    )
    session = Session(config, model_spec)
    session.prepare()
    session.run()
    by_id = {b.id: b for b in session.snapshot().backends}
    session.close()
    for backend_id in ("coreml-cpu", "coreml-ane"):
        result = by_id[backend_id]
        assert result.state == "done", result.error
        assert sorted(result.agreement_outputs) == ["last_hidden_state", "pooler_output"]
        assert result.agreement_max_rel_err is not None and result.agreement_max_rel_err < 1e-2
    assert macos.coreml.predictions >= 8  # every prediction passed the spec's input check


def test_a_wrong_input_name_is_one_line_naming_the_real_inputs(models_dir: Path) -> None:
    done = subprocess.run(
        anetui_cmd(
            "bench",
            "--model",
            str(models_dir / "encoder.onnx"),
            "--input",
            "input_ids:1,8",
            "--backends",
            "onnx-cpu",
            "--iterations",
            "1",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "anetui: error: no input named 'input_ids'; model inputs: tokens int64 [1,8], "
        "mask float32 [1,8]"
    ]


#: Each zoo row at a tiny size: the shapes change, the code path (config class, model
#: class, sub-module, declared inputs, NamedIO) is the real one.
TINY_ZOO = {
    "bert-base": TINY_BERT,
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 37, "vocab_size": 99},
    "vit-base": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "image_size": 32,
        "patch_size": 8,
    },
    "whisper-tiny-encoder": {
        "d_model": 32,
        "encoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_layers": 1,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 37,
        "decoder_ffn_dim": 37,
        "max_source_positions": 50,
        "num_mel_bins": 16,
    },
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "use_cache": False},
}
ZOO_INPUTS = {
    "bert-base": (
        "input_ids int64 [1,16], attention_mask int64 [1,16]",
        ["last_hidden_state", "pooler_output"],
    ),
    "distilbert": ("input_ids int64 [1,16], attention_mask int64 [1,16]", ["last_hidden_state"]),
    "vit-base": ("pixel_values float32 [1,3,32,32]", ["last_hidden_state", "pooler_output"]),
    "whisper-tiny-encoder": ("input_features float32 [1,16,100]", ["last_hidden_state"]),
    "gpt2": ("input_ids int64 [1,16]", ["logits"]),
}


@pytest.mark.parametrize("name", list(ZOO_INPUTS))
def test_every_transformer_name_builds_offline_with_its_inputs_and_outputs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new row gets a tiny size here too (decoders: tests/test_generation.py).
    assert set(TINY_ZOO) == {n for n, r in zoo.ZOO.items() if r.workload == "forward"}
    row = dataclasses.replace(zoo.ZOO[name], config_args=TINY_ZOO[name])
    monkeypatch.setitem(zoo.ZOO, name, row)
    spec = resolve_model(name, seq_len=16)
    inputs, outputs = ZOO_INPUTS[name]
    assert spec.kind == "transformers" and spec.describe_inputs() == inputs
    reference = agreement.reference(spec)
    assert reference is not None and list(reference.names) == outputs
    assert all(np.all(np.isfinite(a)) and a.std() > 0 for a in reference.arrays)


def test_pte_and_openvino_ir_files_run_on_their_own_runtime_only(
    models_dir: Path, isolated_cache: Path, tmp_path: Path
) -> None:
    import shutil

    from anetui.models.convert.executorch import lower
    from anetui.models.convert.openvino import convert

    spec = resolve_model(str(models_dir / "encoder.pt2"))  # cached by the .pt2 test
    pte = shutil.copy(lower(spec, "xnnpack").path, tmp_path / "encoder.pte")
    ir = convert(spec).path
    shutil.copy(ir, tmp_path / "encoder.xml")
    shutil.copy(ir.with_name("model.bin"), tmp_path / "encoder.bin")
    for path, runs, cannot in (
        (pte, "executorch-xnnpack", "an ExecuTorch program (.pte: executorch-* only)"),
        (tmp_path / "encoder.xml", "openvino-cpu", "an OpenVINO IR (.xml: openvino-* only)"),
    ):
        file_spec = resolve_model(str(path))
        assert [i.dtype for i in file_spec.inputs] == ["int64", "float32"]
        session = Session(RunConfig(backends=(runs, "torch-cpu", "onnx-cpu")), file_spec)
        reasons = {i: a.reason for i, a in session.availability().items()}
        assert reasons == {
            runs: None,
            "torch-cpu": f"no PyTorch model (the model is {cannot})",
            "onnx-cpu": f"ONNX Runtime cannot run {cannot}",
        }
        backend = registry.create(runs)
        backend.prepare(file_spec)
        outputs = backend.outputs()
        backend.close()
        assert [o.shape for o in outputs] == [(1, 8, 16), (1, 16)]


def test_a_wrong_input_name_for_a_zoo_model_is_one_line_too() -> None:
    """A transformers name imports transformers, which imports torchao when it is
    installed: its pytree warnings must not turn the refusal into three lines."""
    done = subprocess.run(
        anetui_cmd(
            "bench",
            "--model",
            "bert-base",
            "--seq-len",
            "16",
            "--input",
            "foo:1,16",
            "--backends",
            "torch-cpu",
            "--iterations",
            "1",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "anetui: error: no input named 'foo'; model inputs: input_ids int64 [batch,16], "
        "attention_mask int64 [batch,16]"
    ]
