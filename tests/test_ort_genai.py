"""ort-genai-cpu on a real onnxruntime-genai: its model builder run offline on a tiny
random Llama folder (cached), its generation loop against transformers' fp32 greedy
generation on torch (the reference of the generative workload)."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("transformers")

from anetui.backends import registry
from anetui.backends.base import BackendError, BackendOptions, PrepareInfo
from anetui.backends.ort_genai import OrtGenAIBackend
from anetui.models.cache import file_digest
from anetui.models.spec import ModelSpec
from tests import decoders
from tests.decoders import decoder_spec, reference_tokens

folder = decoders.folder  # the fixture: llama-tiny's folder

P, N = 16, 12


@pytest.fixture(scope="module")
def env(cache_root: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANETUI_CACHE_DIR", str(cache_root))
        yield cache_root


@pytest.fixture(scope="module")
def before(folder: Path) -> tuple[list[str], str]:
    """The user's folder as it was before any build: its names and its digest."""
    return sorted(p.name for p in folder.iterdir()), file_digest(folder)


@pytest.fixture(scope="module")
def prepared(
    env: Path, folder: Path, before: tuple[list[str], str]
) -> Iterator[tuple[OrtGenAIBackend, PrepareInfo]]:
    backend = registry.create("ort-genai-cpu", BackendOptions(threads=1))
    assert isinstance(backend, OrtGenAIBackend)
    info = backend.prepare(decoder_spec(folder))
    yield backend, info
    backend.close()


@pytest.fixture(scope="module")
def reference(folder: Path) -> list[int]:
    return reference_tokens(decoder_spec(folder))


def test_tokens_equal_transformers_fp32_greedy_with_a_stamp_each(
    prepared: tuple[OrtGenAIBackend, PrepareInfo], reference: list[int]
) -> None:
    backend, info = prepared
    assert backend.tokens_per_run == N
    backend.infer()
    assert backend.generated_tokens() == reference
    times = backend.token_times_ns()
    assert times is not None
    start, stamps = times
    assert len(stamps) == N and start < stamps[0]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    (tokens,) = backend.outputs()
    assert tokens.dtype == np.int64 and tokens.tolist() == reference
    # Built on the first prepare: the build is the compile time, the threads were applied.
    assert info.compile_s > 0
    assert info.info["cached"] is False
    assert info.info["intra_op_num_threads"] == 1


def test_one_token_per_run(
    prepared: tuple[OrtGenAIBackend, PrepareInfo], reference: list[int]
) -> None:
    backend, _ = prepared
    backend.tokens_per_run = 1
    try:
        backend.infer()
        assert backend.generated_tokens() == reference[:1]
        times = backend.token_times_ns()
        assert times is not None and len(times[1]) == 1 and times[0] < times[1][0]
        # outputs() is a full generation whatever the stretch, and leaves the setting.
        assert backend.outputs()[0].tolist() == reference
        assert backend.tokens_per_run == 1
    finally:
        backend.tokens_per_run = N


def test_second_prepare_is_a_cache_hit_and_the_folder_is_untouched(
    prepared: tuple[OrtGenAIBackend, PrepareInfo],
    folder: Path,
    before: tuple[list[str], str],
    env: Path,
) -> None:
    _, first = prepared
    entry = Path(str(first.info["model_folder"]))
    onnx_mtime = (entry / "model.onnx").stat().st_mtime_ns
    again = registry.create("ort-genai-cpu")
    info = again.prepare(decoder_spec(folder))
    again.close()
    assert info.info["cached"] is True and info.compile_s == 0.0
    assert info.info["model_folder"] == str(entry)
    assert (entry / "model.onnx").stat().st_mtime_ns == onnx_mtime  # not rebuilt
    assert [p.name for p in (env / "ort-genai").iterdir()] == [entry.parent.name]
    # The placeholder tokenizer lives in the cache entry, never in the user's folder.
    assert (entry / "tokenizer.json").is_file()
    assert not (entry.parent / "source").exists()
    assert (sorted(p.name for p in folder.iterdir()), file_digest(folder)) == before


def test_an_eos_greedy_decoding_picks_is_masked_and_the_run_keeps_its_length(
    env: Path, folder: Path, reference: list[int], tmp_path: Path
) -> None:
    # A folder whose configs name as EOS a token greedy decoding picks at position 1: the
    # reference (argmax, no EOS rule) keeps it; GenAI, which always has an EOS, masks it so
    # the run keeps its N tokens, and the tokens differ from there (and the note says so).
    from anetui.backends.torch_generate import reference_tokens as anetui_reference

    eos_folder = tmp_path / "eos"
    shutil.copytree(folder, eos_folder)
    for name in ("generation_config.json", "config.json"):
        doc = json.loads((eos_folder / name).read_text())
        doc["eos_token_id"] = reference[1]
        (eos_folder / name).write_text(json.dumps(doc))
    spec = decoder_spec(eos_folder)
    assert anetui_reference(spec) == reference
    backend = registry.create("ort-genai-cpu", BackendOptions(threads=1))
    info = backend.prepare(spec)
    try:
        tokens = backend.outputs()[0].tolist()
    finally:
        backend.close()
    assert len(tokens) == N and tokens[:1] == reference[:1]
    assert tokens[1] != reference[1] and reference[1] not in tokens
    assert any(f"end-of-sequence id {reference[1]} is masked" in n for n in info.notes)


def test_an_architecture_the_builder_does_not_know_is_one_line(env: Path, tmp_path: Path) -> None:
    import transformers

    folder = tmp_path / "gpt2"
    config = transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=99, n_positions=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(str(folder))
    backend = registry.create("ort-genai-cpu")
    with pytest.raises(BackendError) as raised:
        backend.prepare(decoder_spec(folder, prompt_len=4, gen_len=2))
    message = str(raised.value)
    assert "\n" not in message
    assert "does not support the GPT2LMHeadModel architecture" in message
    assert str(folder) in message and "source" not in message
    assert not any(p.name.startswith("tokenizer") for p in folder.iterdir())


def test_unavailable_without_the_package_or_in_another_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    half = registry.create("ort-genai-cpu", BackendOptions(dtype="fp16")).available()
    assert not half.ok and half.reason and "fp32 only" in half.reason
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime_genai" else real(name, *a),
    )
    missing = registry.describe("ort-genai-cpu").probe()
    assert not missing.ok and missing.reason == (
        "onnxruntime-genai not installed (pip install 'anetui[genai]')"
    )


def test_the_phase_says_converting_while_the_builder_runs(
    prepared: tuple[OrtGenAIBackend, PrepareInfo], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anetui.backends import ort_genai

    seen: list[str] = []
    backend = registry.create("ort-genai-cpu")
    real = ort_genai.convert

    def watching(spec: ModelSpec, **kwargs: str) -> object:
        seen.append(str(getattr(backend, "phase", "")))
        return real(spec, **kwargs)

    monkeypatch.setattr(ort_genai, "convert", watching)
    backend.prepare(decoder_spec(folder))
    backend.close()
    assert seen == ["converting"] and getattr(backend, "phase", None) == "loading"


def test_the_int4_sibling_differs_in_precision_only_and_has_its_own_build(
    env: Path, folder: Path, prepared: tuple[OrtGenAIBackend, PrepareInfo]
) -> None:
    base = registry.describe("ort-genai-cpu")
    sibling = registry.describe("ort-genai-cpu-int4")
    assert sibling.sibling_of == base.id and not sibling.default
    assert sibling.factors().differing(base.factors()) == ("precision",)
    backend = registry.create("ort-genai-cpu-int4", BackendOptions(threads=1))
    info = backend.prepare(decoder_spec(folder))
    try:
        tokens = backend.outputs()[0]
    finally:
        backend.close()
    assert len(tokens) == N and info.compile_s > 0  # built now, not fp32's entry
    assert "(int4, cpu)" in info.notes[0]
    onnx_files = list(Path(str(info.info["model_folder"])).glob("*.onnx"))
    (model,) = onnx_files
    import onnx

    ops = {n.op_type for n in onnx.load(str(model), load_external_data=False).graph.node}
    assert "MatMulNBits" in ops  # the weights are int4 blocks
    assert info.info["model_folder"] != prepared[1].info["model_folder"]  # fp32's entry
