"""Model names anetui knows: transformer models built from ``transformers``' config
classes (random weights, no hub access) and torchvision's classifiers (``weights=None``).

A :class:`ZooModel` row says which config class, which model class (the task head) and
which sub-module (``encoder``) make the model, with what config arguments: the shapes of
the real model, its weights random from ``WEIGHTS_SEED``. Nothing here imports
transformers or torchvision at module level.

To add a model: one row in ``ZOO``. A decoder for generative workloads (issue 22) adds
rows whose ``workload`` is ``"generate"``; a row's inputs come from the Hugging Face
config the same way as for a folder (:func:`anetui.models.hf.declared_inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ZooModel:
    """A transformer model by name.

    config: the ``transformers`` config class; model: the model class (its head).
    part: a sub-module to run instead of the whole model ("encoder": ``get_encoder()``).
    config_args: arguments to the config class (the defaults are the base model's).
    workload: "forward" (one forward pass over the sequence) or "generate" (a decoder:
    prefill a prompt, then generate tokens; :mod:`anetui.models.decoders` makes its folder).
    """

    name: str
    config: str
    model: str
    summary: str
    config_args: Mapping[str, object] = field(default_factory=dict)
    part: str | None = None
    workload: str = "forward"


ZOO: dict[str, ZooModel] = {
    row.name: row
    for row in (
        ZooModel("bert-base", "BertConfig", "BertModel", "BERT base, 110 M parameters, encoder"),
        ZooModel(
            "distilbert", "DistilBertConfig", "DistilBertModel", "DistilBERT base, 66 M, encoder"
        ),
        ZooModel(
            "vit-base",
            "ViTConfig",
            "ViTModel",
            "ViT-B/16 at 224x224 (patch16-224), 86 M, image encoder",
        ),
        ZooModel(
            "whisper-tiny-encoder",
            "WhisperConfig",
            "WhisperModel",
            "Whisper tiny's audio encoder, 80 mel bins x 3000 frames",
            part="encoder",
        ),
        ZooModel(
            "gpt2",
            "GPT2Config",
            "GPT2LMHeadModel",
            "GPT-2 small, 124 M, one causal forward pass over the sequence (logits)",
            config_args={"use_cache": False},
        ),
        # Decoders (the generative workload): real small models' shapes, random weights.
        ZooModel(
            "llama-tiny",
            "LlamaConfig",
            "LlamaForCausalLM",
            "a tiny Llama for tests (1.6 M parameters, 4 layers, hidden 128), generates",
            config_args={
                "hidden_size": 128,
                "intermediate_size": 256,
                "num_hidden_layers": 4,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "vocab_size": 4096,
                "max_position_embeddings": 2048,
                "tie_word_embeddings": False,
            },
            workload="generate",
        ),
        ZooModel(
            "smollm2-135m",
            "LlamaConfig",
            "LlamaForCausalLM",
            "SmolLM2-135M's shapes (Llama, 30 layers, hidden 576), generates",
            config_args={
                "hidden_size": 576,
                "intermediate_size": 1536,
                "num_hidden_layers": 30,
                "num_attention_heads": 9,
                "num_key_value_heads": 3,
                "vocab_size": 49152,
                "max_position_embeddings": 8192,
                "rope_theta": 100000.0,
                "rms_norm_eps": 1e-5,
                "tie_word_embeddings": True,
            },
            workload="generate",
        ),
        ZooModel(
            "qwen2.5-0.5b",
            "Qwen2Config",
            "Qwen2ForCausalLM",
            "Qwen2.5-0.5B's shapes (24 layers, hidden 896, 494 M), generates",
            config_args={
                "hidden_size": 896,
                "intermediate_size": 4864,
                "num_hidden_layers": 24,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "vocab_size": 151936,
                "max_position_embeddings": 32768,
                "rope_theta": 1000000.0,
                "rms_norm_eps": 1e-6,
                "tie_word_embeddings": True,
            },
            workload="generate",
        ),
        ZooModel(
            "llama-3.2-1b",
            "LlamaConfig",
            "LlamaForCausalLM",
            "Llama-3.2-1B's shapes (16 layers, hidden 2048, 1.24 B; 5 GB in fp32), generates",
            config_args={
                "hidden_size": 2048,
                "intermediate_size": 8192,
                "num_hidden_layers": 16,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 64,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
                "rope_theta": 500000.0,
                "rope_scaling": {
                    "factor": 32.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192,
                    "rope_type": "llama3",
                },
                "rms_norm_eps": 1e-5,
                "tie_word_embeddings": True,
            },
            workload="generate",
        ),
    )
}


def transformer_names() -> list[str]:
    return list(ZOO)


def torchvision_names() -> list[str]:
    """Names of torchvision's classification models (imports torchvision)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def all_names() -> list[str]:
    """Every model name anetui knows: transformers first, then torchvision's."""
    return transformer_names() + torchvision_names()
