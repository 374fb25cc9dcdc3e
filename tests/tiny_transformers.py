"""Tiny transformer models for tests: a BERT classifier folder as ``save_pretrained``
writes it, and a two-input, two-output encoder (int64 token ids + a float mask) as
``.pt2`` and as ``.onnx`` with its weights in external data. Seconds to make, not minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: A BERT small enough to convert in seconds (the shape of the suite's other tiny models).
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "vocab_size": 99,
    "max_position_embeddings": 64,
}
VOCAB = 50
SEQ = 8


def save_bert_classifier(folder: Path) -> Path:
    """A BertForSequenceClassification (3 labels) with seeded random weights, saved."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    model = BertForSequenceClassification(BertConfig(num_labels=3, **TINY_BERT))
    model.save_pretrained(str(folder))
    return folder


def two_io_encoder() -> Any:
    """tokens (int64 [1, SEQ]) and mask (float32 [1, SEQ]) -> (hidden [1, SEQ, 16],
    pooled [1, 16])."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, 16)
            self.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
            self.pool = torch.nn.Linear(16, 16)

        def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> Any:
            hidden = self.layer(self.embed(tokens)) * mask.unsqueeze(-1)
            pooled = torch.tanh(self.pool(hidden.sum(1) / mask.sum(1, keepdim=True)))
            return hidden, pooled

    torch.manual_seed(2)
    return Encoder().eval()


def example_inputs() -> tuple[Any, Any]:
    import torch

    return torch.randint(0, VOCAB, (1, SEQ)), torch.ones(1, SEQ)


def save_two_io_pt2(path: Path) -> Path:
    import torch

    program = torch.export.export(two_io_encoder(), example_inputs())
    torch.export.save(program, str(path))
    return path


def save_two_io_onnx(path: Path) -> Path:
    """The encoder as ONNX with every weight in ``<name>.data`` beside it."""
    import warnings

    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            two_io_encoder(),
            example_inputs(),
            dynamo=True,
            input_names=["tokens", "mask"],
            output_names=["hidden", "pooled"],
            verbose=False,
        )
    assert program is not None
    model = program.model_proto
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=1024,
    )
    return path
