"""A decoder folder -> a stateful Core ML ML Program whose KV cache lives in Core ML states.

The model is a Hugging Face folder of a ``LlamaForCausalLM`` or ``Qwen2ForCausalLM``
(loaded in fp32 with transformers). transformers' own forward does not convert with
coremltools 9.0 (its mask utilities and dynamic cache are not traceable into Core ML), so
:func:`decoder_module` wraps the *loaded modules* (embedding, each layer's projections,
norms and MLP, the rotary tables transformers computes, the head) in a small Llama-style
forward of our own whose KV cache is two registered buffers updated in place — the
pattern of coremltools' "Stateful Models" guide (``docs-guides/source/stateful-models.md``:
slices of ``k_cache`` written at ``past:end``, ``end`` and ``past`` taken from the inputs'
shapes so that ``torch.jit.trace`` records them as shape operations). The buffers become
the package's states ``key_cache`` and ``value_cache`` (``ct.StateType``, macOS 15+).

The package's interface (a Core ML prediction; integers are int32):

- ``input_ids`` (1, q): the q new tokens; q from 1 to ``context`` (``ct.RangeDim``);
- ``causal_mask`` (1, 1, q, end): additive (0 where a query may look, -inf elsewhere),
  ``end`` = tokens in the cache after this call, so ``past = end - q`` are already there;
  fp16 for an fp16 package, fp32 for fp32;
- ``logits`` (1, 1, vocab) fp32: the last position's logits only (greedy decoding needs
  no more, and it spares a (q, vocab) output at the prefill).

Core ML keeps states in fp16 only (coremltools 9.0 refuses others:
``converters/mil/backend/mil/load.py``, "State only support fp16 dtype"), so the cache is
fp16 at either compute precision; an fp32 package computes in fp32 around it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anetui.errors import one_line
from anetui.models.cache import Cache, make_key, model_digest
from anetui.models.convert.common import Build, cached_conversion
from anetui.models.convert.coreml import (
    IMPORT_NOTES,
    PRECISIONS,
    Conversion,
    ConversionError,
    import_coremltools,
    package_is_valid,
    quiet_coremltools,
)
from anetui.models.spec import DECODER_KIND, ModelError, ModelSpec
from anetui.versions import package_version

ARTEFACT = "decoder.mlpackage"
INPUT_IDS = "input_ids"
CAUSAL_MASK = "causal_mask"
LOGITS = "logits"
STATES = ("key_cache", "value_cache")
#: Model types whose layers this forward reproduces exactly (attention with or without
#: biases, RMSNorm, gated MLP, rotary embeddings as transformers computes them).
SUPPORTED = ("llama", "qwen2")
#: Bump when the wrapper or the package's interface changes: a new key, no stale hit.
WRAPPER_VERSION = 1
DEPLOYMENT_TARGET = "macOS15"  # states exist from macOS 15 / iOS 18 on


def context_length(spec: ModelSpec) -> int:
    """Positions the cache holds: the prompt plus every generated token (tokens)."""
    if spec.kind != DECODER_KIND or spec.generation is None:
        raise ConversionError(f"{spec.describe()} is not a decoder to generate with")
    return spec.generation.prompt_len + spec.generation.gen_len


def mask_dtype(precision: str) -> type[np.floating[Any]]:
    """The causal mask's dtype in a package of ``precision`` (no cast inside the model)."""
    return np.float16 if precision == "fp16" else np.float32


def causal_mask(q_len: int, end: int, dtype: type[np.floating[Any]] = np.float32) -> np.ndarray:
    """The additive mask (1, 1, q_len, end) of ``q_len`` new tokens at positions
    ``end - q_len`` … ``end - 1``: query i sees the cache up to its own position."""
    past = end - q_len
    allowed = np.arange(end)[None, :] <= (past + np.arange(q_len))[:, None]
    return np.where(allowed, 0.0, -np.inf).astype(dtype)[None, None]


def load_causal_lm(folder: Path) -> Any:
    """The folder's model in fp32 (safetensors only, no network, no code from the folder);
    one-line errors for an architecture the wrapper does not reproduce."""
    import torch

    from anetui.models.hf import folder_config, from_folder

    config, arch = folder_config(folder)
    if config.model_type not in SUPPORTED:
        raise ConversionError(
            f"Core ML decoder conversion supports {', '.join(SUPPORTED)}; "
            f"{folder.name} is {config.model_type}"
        )
    if getattr(config, "use_sliding_window", False):
        raise ConversionError(f"{folder.name}: sliding-window attention is not supported")
    try:
        model = from_folder(folder, arch, torch.float32)
    except ModelError as exc:
        raise ConversionError(str(exc)) from None
    return model.eval()


def decoder_module(model: Any, context: int) -> Any:
    """``model`` (a loaded ``…ForCausalLM``) as the stateful module that is converted:
    ``forward(input_ids, causal_mask) -> logits`` with its KV cache in the buffers
    ``key_cache`` / ``value_cache`` of shape (layers, kv heads, ``context``, head dim), fp16."""
    return _module_class()(model, context)


@functools.cache
def _module_class() -> type:
    import torch

    class StatefulDecoder(torch.nn.Module):
        """A Llama/Qwen2 forward over the loaded modules, with an in-place KV cache."""

        def __init__(self, model: Any, context: int) -> None:
            super().__init__()
            inner, config = model.model, model.config
            self.embed, self.layers, self.norm = inner.embed_tokens, inner.layers, inner.norm
            self.lm_head = model.lm_head
            attention: Any = inner.layers[0].self_attn
            self.heads = int(config.num_attention_heads)
            self.kv_heads = int(config.num_key_value_heads)
            self.head_dim = int(attention.head_dim)
            # SDPA's default scale is 1/sqrt(head_dim): the models here use no other.
            if abs(attention.scaling - self.head_dim**-0.5) > 1e-9:
                raise ConversionError(f"attention scaling {attention.scaling} is not supported")
            # transformers' own rotary tables (rope scaling included) for every position.
            positions = torch.arange(context)[None]
            with torch.no_grad():
                cos, sin = inner.rotary_emb(torch.zeros(1), positions)
            self.register_buffer("cos", cos[0].float(), persistent=False)
            self.register_buffer("sin", sin[0].float(), persistent=False)
            shape = (len(self.layers), self.kv_heads, context, self.head_dim)
            self.register_buffer(STATES[0], torch.zeros(shape, dtype=torch.float16))
            self.register_buffer(STATES[1], torch.zeros(shape, dtype=torch.float16))

        def forward(self, input_ids: Any, mask: Any) -> Any:
            # Shapes, not values: the trace keeps them as shape operations (flexible q, end).
            q_len, end = input_ids.shape[-1], mask.shape[-1]
            past = end - q_len
            x = self.embed(input_ids)
            tables: Any = (self.cos, self.sin)
            cos, sin = (t[past:end][None, None] for t in tables)
            group, half = self.heads // self.kv_heads, self.head_dim // 2
            keys, values = getattr(self, STATES[0]), getattr(self, STATES[1])
            sizes = (self.kv_heads, group, end, self.head_dim)
            for i, layer in enumerate(self.layers):
                attn = layer.self_attn
                h = layer.input_layernorm(x)
                q = attn.q_proj(h).view(1, q_len, self.heads, self.head_dim).transpose(1, 2)
                k = attn.k_proj(h).view(1, q_len, self.kv_heads, self.head_dim).transpose(1, 2)
                v = attn.v_proj(h).view(1, q_len, self.kv_heads, self.head_dim).transpose(1, 2)
                q = q * cos + _rotate_half(q, half) * sin
                k = k * cos + _rotate_half(k, half) * sin
                # The in-place writes coremltools turns into state updates.
                keys[i : i + 1, :, past:end, :] = k.to(keys.dtype)
                values[i : i + 1, :, past:end, :] = v.to(values.dtype)
                k_all = _repeat_kv(keys[i : i + 1, :, :end, :].to(q.dtype), *sizes)
                v_all = _repeat_kv(values[i : i + 1, :, :end, :].to(q.dtype), *sizes)
                out = torch.nn.functional.scaled_dot_product_attention(
                    q, k_all, v_all, attn_mask=mask.to(q.dtype)
                )
                out = out.transpose(1, 2).reshape(1, q_len, self.heads * self.head_dim)
                x = x + attn.o_proj(out)
                x = x + layer.mlp(layer.post_attention_layernorm(x))
            return self.lm_head(self.norm(x[:, -1:, :]))

    def _rotate_half(t: Any, half: int) -> Any:
        # ``half`` is a Python int: t.shape[-1] // 2 would trace into an ``int`` op that
        # coremltools 9.0 fails to convert ("only 0-dimensional arrays …").
        return torch.cat((-t[..., half:], t[..., :half]), dim=-1)

    def _repeat_kv(t: Any, kv_heads: int, group: int, end: Any, dim: int) -> Any:
        """(1, kv heads, end, d) -> (1, kv heads × group, end, d), as transformers'
        repeat_kv; the sizes but ``end`` are Python ints (see :func:`_rotate_half`)."""
        if group == 1:
            return t
        return (
            t[:, :, None]
            .expand(1, kv_heads, group, end, dim)
            .reshape(1, kv_heads * group, end, dim)
        )

    return StatefulDecoder


def cache_key(spec: ModelSpec, precision: str) -> str:
    assert spec.path is not None
    return make_key(
        {
            "target": "coreml-decoder",
            "folder": model_digest(spec.path),
            "precision": precision,
            "context": context_length(spec),
            "deployment_target": DEPLOYMENT_TARGET,
            "wrapper": WRAPPER_VERSION,
            "coremltools": package_version("coremltools"),
            "torch": package_version("torch"),
            "transformers": package_version("transformers"),
        }
    )


def convert_decoder(
    spec: ModelSpec,
    precision: str = "fp16",
    *,
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> Conversion:
    """The decoder as a cached stateful ML Program; a cache hit costs no conversion (only
    the folder's digest, which reads its files)."""
    if precision not in PRECISIONS:
        raise ConversionError(f"unknown precision '{precision}' (fp16 or fp32)")
    context = context_length(spec)
    if spec.path is None:
        raise ConversionError(f"{spec.describe()} has no folder to convert")
    ct = import_coremltools()
    cache = cache or Cache("coreml-decoder")
    key = cache_key(spec, precision)
    got = cached_conversion(
        cache,
        key,
        ARTEFACT,
        package_is_valid,
        lambda: _prepare(ct, spec.path, context, precision),  # type: ignore[arg-type]
        progress=progress,
        doing=f"converting {spec.describe()} to a stateful Core ML decoder ({precision})",
    )
    meta = cache.meta(key)
    return Conversion(
        got.path,
        got.hit,
        str(meta.get("method", "?")),
        got.seconds(),
        INPUT_IDS,
        precision,
        tuple(meta.get("notes", [])),
        (INPUT_IDS, CAUSAL_MASK),
        (LOGITS,),
    )


def _prepare(ct: Any, folder: Path, context: int, precision: str) -> tuple[Build, dict[str, Any]]:
    """The model loaded and wrapped, and its build and metadata (on a cache miss only)."""
    model = load_causal_lm(folder)
    module = decoder_module(model, context).eval()
    shape = tuple(getattr(module, STATES[0]).shape)

    def build(target: Path) -> dict[str, Any]:
        import torch

        prompt = np.zeros((1, min(2, context)), dtype=np.int32)
        example = (
            torch.from_numpy(prompt),
            torch.from_numpy(causal_mask(prompt.shape[1], prompt.shape[1])),
        )
        queries = ct.RangeDim(lower_bound=1, upper_bound=context, default=1)
        ends = ct.RangeDim(lower_bound=1, upper_bound=context, default=1)
        with quiet_coremltools() as notes:
            try:
                with torch.no_grad():
                    traced = torch.jit.trace(module, example, check_trace=False)  # type: ignore[no-untyped-call]
                mlmodel = ct.convert(
                    traced,
                    inputs=[
                        ct.TensorType(name=INPUT_IDS, shape=(1, queries), dtype=np.int32),
                        ct.TensorType(
                            name=CAUSAL_MASK,
                            shape=(1, 1, queries, ends),
                            dtype=mask_dtype(precision),
                        ),
                    ],
                    outputs=[ct.TensorType(name=LOGITS, dtype=np.float32)],
                    states=[
                        ct.StateType(
                            wrapped_type=ct.TensorType(shape=shape, dtype=np.float16), name=name
                        )
                        for name in STATES
                    ],
                    convert_to="mlprogram",
                    compute_precision=(
                        ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
                    ),
                    minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
                    skip_model_load=True,  # no Core ML runtime here; the backend loads it
                )
            except ConversionError:
                raise
            except Exception as exc:
                raise ConversionError(
                    f"Core ML decoder conversion failed: {one_line(exc)}"
                ) from None
            mlmodel.short_description = f"{folder.name}, stateful KV cache of {context}"
            mlmodel.user_defined_metadata["anetui.decoder"] = json.dumps(
                {"context": context, "states": list(STATES), "cache_shape": list(shape)}
            )
            mlmodel.save(str(target))
        kept = [n for n in IMPORT_NOTES + notes if "added again" not in n]  # states, twice
        return {
            "method": "torch.jit.trace of a stateful Llama-style wrapper",
            "notes": list(dict.fromkeys(kept)),
        }

    return build, {
        "model": str(folder),
        "precision": precision,
        "context": context,
        "cache_shape": list(shape),
        "deployment_target": DEPLOYMENT_TARGET,
        "input_names": [INPUT_IDS, CAUSAL_MASK],
        "output_names": [LOGITS],
        "torch": package_version("torch"),
        "coremltools": package_version("coremltools"),
        "transformers": package_version("transformers"),
    }
