"""Hugging Face Llama or Qwen2 folder -> GGUF (llama.cpp's file format), offline and without a
tokenizer, cached like the other conversions and keyed by the folder's digest.

llama.cpp's own converter (``convert_hf_to_gguf.py``) ships in its source tree, not in
any installable package, and wants a tokenizer in the folder. The workload never
tokenizes (its prompt is token ids), so the file is written here with the ``gguf``
package's :class:`gguf.GGUFWriter` (the library that converter writes with), following
that converter's ``LlamaModel`` and ``Qwen2Model`` (``conversion/llama.py``, ``qwen.py``
and ``base.py`` in llama.cpp): the hyperparameters it writes, the tensor names from
``gguf``'s own ``TensorNameMap``, for Llama the query/key rows permuted from Hugging
Face's rotate-half rotary layout to the interleaved one llama.cpp's ``llama`` runs (its
``qwen2`` runs rotate-half: no permutation), and Llama 3's rotary frequency factors as
the ``rope_freqs`` tensor. The vocabulary is llama.cpp's ``no_vocab`` type with
``llama.vocab_size`` dummy tokens: token ids in, logits over the whole vocabulary out.

Weights are written as F32 (``--dtype fp32``) or, for fp16, F16 matrices with F32
vectors (llama.cpp's ``MOSTLY_F16``): the precision is baked into the file, so it is in
the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.models.cache import Cache, make_key, model_digest
from anetui.models.convert.common import cached_conversion
from anetui.versions import package_version

ARTEFACT = "model.gguf"
#: Bump when what :func:`write_gguf` writes changes (a new key, a fixed permutation).
WRITER_VERSION = 1
#: The architectures written (config.json's ``architectures[0]``) -> (llama.cpp's
#: architecture, whether its rotary needs the query/key rows permuted).
ARCHITECTURES = {"LlamaForCausalLM": ("llama", True), "Qwen2ForCausalLM": ("qwen2", False)}
#: Precision -> GGUF file type (``gguf.LlamaFileType``: ALL_F32, MOSTLY_F16).
FILE_TYPES = {"fp32": 0, "fp16": 1}
INSTALL_HINT = "pip install 'anetui[llamacpp]'"


class GgufConversionError(AnetuiError):
    """The folder could not be written as GGUF; one line for the user."""


@dataclass(frozen=True)
class GgufModel:
    """A written (or cached) GGUF file."""

    path: Path
    cached: bool
    #: Seconds the lookup and, on a miss, the conversion took.
    seconds: float


def cache_key(folder: Path, dtype: str) -> str:
    return make_key(
        {
            "target": "gguf",
            "model": {"folder": model_digest(folder)},
            "dtype": dtype,
            "gguf": package_version("gguf"),
            "writer": WRITER_VERSION,
        }
    )


def is_valid(path: Path) -> bool:
    """The file parses as GGUF, names an architecture written here and holds tensors."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.get_field("general.architecture")
    return (
        field is not None
        and field.contents() in {a for a, _ in ARCHITECTURES.values()}
        and len(reader.tensors) > 0
    )


def convert(
    folder: Path,
    dtype: str = "fp32",
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> GgufModel:
    """The folder's model as a GGUF file; a cache hit costs the folder's digest alone."""
    if package_version("gguf") is None:
        raise GgufConversionError(f"the gguf package is not installed ({INSTALL_HINT})")
    if dtype not in FILE_TYPES:
        raise GgufConversionError(f"GGUF is written in {' or '.join(FILE_TYPES)}, not {dtype}")
    config = read_config(folder)  # fails early, before the digest, on what cannot be written
    got = cached_conversion(
        cache or Cache("gguf"),
        cache_key(folder, dtype),
        ARTEFACT,
        is_valid,
        lambda: (lambda target: write_gguf(folder, config, target, dtype), _meta(folder, dtype)),
        progress=progress,
        doing=f"writing {folder.name} as GGUF ({dtype}, gguf.GGUFWriter)",
    )
    return GgufModel(got.path, got.hit, got.seconds())


def _meta(folder: Path, dtype: str) -> dict[str, Any]:
    return {"model": str(folder), "dtype": dtype, "gguf": package_version("gguf")}


def read_config(folder: Path) -> dict[str, Any]:
    """config.json, checked to be an architecture this writer knows."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise GgufConversionError(
            f"cannot read {folder / 'config.json'}: {one_line(exc)}"
        ) from None
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in ARCHITECTURES:
        raise GgufConversionError(
            f"GGUF is written here for {', '.join(ARCHITECTURES)}, not {arch}"
        )
    rope_type = rope_parameters(config).get("rope_type")
    if rope_type not in (None, "default", "linear", "llama3") or (
        rope_type == "llama3" and arch != "LlamaForCausalLM"
    ):
        raise GgufConversionError(f"rotary scaling {rope_type!r} is not written to GGUF here")
    return dict(config)


def rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """transformers 5's ``rope_parameters``, or older configs' ``rope_theta`` and
    ``rope_scaling`` (as llama.cpp's converter merges them)."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    if "rope_theta" not in params and "rope_theta" in config:
        params["rope_theta"] = config["rope_theta"]
    if "rope_type" not in params and "type" in params:
        params["rope_type"] = params["type"]
    return params


def write_gguf(folder: Path, config: dict[str, Any], target: Path, dtype: str) -> dict[str, Any]:
    """Write the folder's model as GGUF at ``target``; returns what goes in meta.json."""
    import gguf
    import numpy as np

    n_layers = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    head_dim = int(config.get("head_dim") or config["hidden_size"] // n_head)
    rope = rope_parameters(config)
    arch, permuted = ARCHITECTURES[config["architectures"][0]]
    writer = gguf.GGUFWriter(str(target), arch)
    writer.add_name(folder.name)
    writer.add_block_count(n_layers)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    if rope.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(FILE_TYPES[dtype])
    # No tokenizer: llama.cpp's "no_vocab" type makes vocab_size dummy tokens.
    writer.add_tokenizer_model("no_vocab")

    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), n_layers)
    written = 0
    for hf_name, array in _tensors(folder):
        if hf_name.endswith(".rotary_emb.inv_freq"):  # recomputed by every runtime
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise GgufConversionError(f"no GGUF name for the tensor {hf_name}")
        if permuted and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            array = permute(array, n_head, n_head)
        elif permuted and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            array = permute(array, n_head, n_head_kv)
        # F16 for matrices only: llama.cpp keeps norms (vectors) in F32 (MOSTLY_F16).
        wanted = np.float16 if dtype == "fp16" and array.ndim > 1 else np.float32
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=wanted))
        written += 1
    if rope.get("rope_type") == "llama3":
        factors = llama3_rope_factors(rope, head_dim)
        writer.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", factors)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"writer": "gguf.GGUFWriter", "arch": arch, "tensors": written, "vocab": "no_vocab"}


def _tensors(folder: Path) -> Iterator[tuple[str, Any]]:
    """Every tensor of the folder's safetensors files as fp32 numpy (bf16 included, which
    numpy cannot hold: read through torch)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise GgufConversionError(f"no *.safetensors in {folder}")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is no dict)
                yield key, handle.get_tensor(key).float().numpy()


def permute(weights: Any, n_head: int, n_head_kv: int) -> Any:
    """Query/key rows from Hugging Face's rotate-half rotary layout to llama.cpp's
    interleaved pairs (``LlamaModel.permute`` in llama.cpp's converter)."""
    if n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> Any:
    """Llama 3's per-frequency rotary factors (``LlamaModel.generate_extra_tensors``)."""
    import numpy as np

    base = float(rope.get("rope_theta", 10000.0))
    factor = float(rope.get("factor", 8.0))
    low = float(rope.get("low_freq_factor", 1.0))
    high = float(rope.get("high_freq_factor", 4.0))
    old_context = float(rope.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_context / low, old_context / high
    factors = []
    for freq in 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)):
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)
