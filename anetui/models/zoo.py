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
    workload: "forward" (one forward pass over the sequence).
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
