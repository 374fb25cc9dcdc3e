"""llamacpp-cpu: the tiny Llama written as GGUF (gguf's writer, no tokenizer) and run by
llama.cpp through llama-cpp-python, greedy tokens against transformers' fp32 greedy ones.

llama-cpp-python is an optional extra that compiles llama.cpp: without it the runtime
tests skip with the install hint (the writer's tests need only ``gguf``).
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anetui.backends import llamacpp
from anetui.backends.base import BackendError, BackendOptions
from anetui.backends.registry import create, default_ids, describe
from anetui.models.cache import Cache
from anetui.models.spec import ModelSpec
from tests import decoders
from tests.decoders import decoder_spec, reference_tokens

folder = decoders.folder  # the fixture: llama-tiny's folder

PROMPT, GEN = 12, 10
needs_gguf = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None, reason=f"gguf not installed ({llamacpp.INSTALL_HINT})"
)
needs_llama_cpp = pytest.mark.skipif(
    not llamacpp.llama_cpp_installed().ok,
    reason=str(llamacpp.llama_cpp_installed().reason),
)


def test_registry_row_is_an_optional_decoder_backend() -> None:
    row = describe("llamacpp-cpu")
    assert (row.runtime, row.device, row.default_dtype) == ("llama.cpp", "cpu", "fp32")
    assert row.accepts == ("decoder",)
    assert "llamacpp-cpu" not in default_ids()  # compiles from source: never by default


def test_probe_without_llama_cpp_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name)
    )
    availability = describe("llamacpp-cpu").probe()
    assert not availability.ok
    assert "pip install 'anetui[llamacpp]'" in str(availability.reason)
    assert "compiles llama.cpp" in str(availability.reason)


def test_a_precision_gguf_is_not_written_in_is_refused() -> None:
    with pytest.raises(BackendError, match="fp32 or fp16, not bf16"):
        create("llamacpp-cpu", BackendOptions(dtype="bf16"))


def test_permute_pairs_rotate_half_halves_as_neighbours() -> None:
    """HF rotates dimension i with i + d/2 of each head; llama.cpp rotates 2i with 2i+1:
    after the permutation row 2i of a head is HF's row i and row 2i+1 HF's row i + d/2."""
    from anetui.models.convert.gguf import permute

    n_head, head_dim = 2, 8
    rows = np.arange(n_head * head_dim * 3, dtype=np.float32).reshape(n_head * head_dim, 3)
    out = permute(rows, n_head, n_head)
    for head in range(n_head):
        base = head * head_dim
        for i in range(head_dim // 2):
            np.testing.assert_array_equal(out[base + 2 * i], rows[base + i])
            np.testing.assert_array_equal(out[base + 2 * i + 1], rows[base + i + head_dim // 2])


@needs_gguf
def test_gguf_is_written_once_without_a_tokenizer(folder: Path, tmp_path: Path) -> None:
    import gguf

    from anetui.models.convert.gguf import convert

    cache = Cache("gguf", tmp_path)
    first = convert(folder, cache=cache)
    again = convert(folder, cache=cache)
    assert (first.cached, again.cached) == (False, True)
    assert again.path == first.path
    reader = gguf.GGUFReader(str(first.path))

    def field(key: str) -> Any:
        found = reader.get_field(key)
        assert found is not None, key
        return found.contents()

    assert field("general.architecture") == "llama"
    assert field("tokenizer.ggml.model") == "no_vocab"
    assert field("llama.vocab_size") == 4096
    assert (field("llama.attention.head_count"), field("llama.attention.head_count_kv")) == (4, 2)
    tensors = {t.name: t for t in reader.tensors}
    # 4 layers x 9 tensors + embedding, final norm and the untied output.
    assert len(tensors) == 4 * 9 + 3
    assert tensors["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    half = convert(folder, "fp16", cache=cache)
    assert half.path != first.path
    halves = {t.name: t.tensor_type for t in gguf.GGUFReader(str(half.path)).tensors}
    assert halves["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert halves["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32


@needs_gguf
def test_an_architecture_not_written_is_one_line(tmp_path: Path) -> None:
    from anetui.models.convert.gguf import GgufConversionError, convert

    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    with pytest.raises(GgufConversionError, match="not GPT2LMHeadModel"):
        convert(tmp_path, cache=Cache("gguf", tmp_path / "cache"))


@needs_llama_cpp
def test_tokens_equal_transformers_greedy_fp32(folder: Path, isolated_cache: Path) -> None:
    spec = decoder_spec(folder, PROMPT, GEN)
    backend: Any = create("llamacpp-cpu")
    try:
        info = backend.prepare(spec)
        assert info.info["weights"] == "F32"
        backend.infer()
        tokens = backend.generated_tokens()
        start, stamps = backend.token_times_ns()
        assert len(tokens) == GEN
        assert tokens == reference_tokens(spec)
        assert len(stamps) == GEN
        assert start < stamps[0] and all(a < b for a, b in itertools.pairwise(stamps))
        (out,) = backend.outputs()
        assert out.dtype == np.int64 and out.tolist() == tokens  # the KV cache starts afresh
        backend.tokens_per_run = 1  # the prefill-only stretch
        backend.infer()
        assert backend.generated_tokens() == tokens[:1]
        assert len(backend.token_times_ns()[1]) == 1
    finally:
        backend.close()


def tiny_folder(folder: Path, config_class: str, model_class: str, **extra: Any) -> Path:
    """A 2-layer decoder with random weights, large enough (initializer_range 0.2) for
    attention to be sharp: then the rotary layout changes the greedy tokens."""
    import torch
    import transformers

    config = getattr(transformers, config_class)(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=4096,
        initializer_range=0.2,
        tie_word_embeddings=True,  # no output tensor: llama.cpp reuses the embedding
        **extra,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        getattr(transformers, model_class)(config).save_pretrained(str(folder))
    return folder


def generate(spec: ModelSpec) -> list[int]:
    backend: Any = create("llamacpp-cpu")
    try:
        backend.prepare(spec)
        backend.infer()
        return list(backend.generated_tokens())
    finally:
        backend.close()


@needs_llama_cpp
def test_llama3_rotary_scaling_gives_the_same_tokens(tmp_path: Path, isolated_cache: Path) -> None:
    """Llama 3's rotary factors, written as ``rope_freqs`` (a long-context scaling that a
    64-position original context makes act on a 48-token prompt)."""
    rope = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0}
    rope |= {"high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    # rope_scaling: what older configs say and transformers 5 still reads (its stubs name
    # only rope_parameters).
    folder = tiny_folder(
        tmp_path / "m",
        "LlamaConfig",
        "LlamaForCausalLM",
        max_position_embeddings=131072,
        rope_scaling={**rope, "rope_theta": 500000.0},
    )
    spec = decoder_spec(folder, 48, 16)
    assert generate(spec) == reference_tokens(spec)


@needs_llama_cpp
def test_qwen2_gives_the_same_tokens(tmp_path: Path, isolated_cache: Path) -> None:
    """Qwen2: query/key/value biases, rotate-half rotary (no permutation)."""
    folder = tiny_folder(tmp_path / "m", "Qwen2Config", "Qwen2ForCausalLM")
    spec = decoder_spec(folder, 32, 16)
    assert generate(spec) == reference_tokens(spec)
