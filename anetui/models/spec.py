"""What to run: the model's identity, its named inputs and outputs, and the one error
type of models/.

A :class:`ModelSpec` is made by :mod:`anetui.models.resolve`; the inputs are
:class:`~anetui.models.inputs.InputSpec` rows (name, shape, dtype, value domain) and
their arrays are made from a fixed seed, so every backend sees the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anetui.errors import AnetuiError
from anetui.models.inputs import INPUT_SEED, InputSpec, OutputSpec, float_input, make_arrays

DEFAULT_MODEL = "mobilenet_v2"
DEFAULT_RESOLUTION = 224
__all__ = ["INPUT_SEED", "InputSpec", "ModelError", "ModelSpec", "OutputSpec"]
#: Seed for the random weights, so every backend (and the agreement check) runs the
#: same network, not a differently initialised one.
WEIGHTS_SEED = 0
MODEL_FILE_SUFFIXES = (".pt2", ".pt", ".mlpackage", ".onnx", ".pte", ".xml")
#: Model kinds that have a PyTorch form (a reference for agreement, a source to convert).
TORCH_KINDS = ("torchvision", "transformers", "hf", "export", "torchscript")
#: A decoder that generates tokens (a zoo decoder's cached folder, or a Hugging Face
#: folder of a causal language model): the generative workload.
DECODER_KIND = "decoder"


class ModelError(AnetuiError):
    """The model cannot be resolved or loaded; the message is one line for the user."""


@dataclass(frozen=True)
class GenerationSpec:
    """One run of the generative workload: prefill ``prompt_len`` prompt tokens, then
    generate greedily until exactly ``gen_len`` tokens exist (the first one, from the
    prefill, included; no early stop at an end-of-sequence token).

    vocab_size: the prompt's token ids are uniform in [0, vocab_size) from the input seed.
    """

    prompt_len: int
    gen_len: int
    vocab_size: int


@dataclass(frozen=True)
class ModelSpec:
    """What to run and on what inputs.

    kind: "torchvision" or "transformers" (a name in :mod:`anetui.models.zoo`), "hf" (a
    Hugging Face folder), or a file: "export" (.pt2), "torchscript" (.pt), "onnx",
    "mlpackage", "pte" (ExecuTorch), "openvino" (IR .xml); "decoder" (:data:`DECODER_KIND`:
    ``path`` is a Hugging Face folder of a causal LM, ``generation`` says what a run is).
    inputs: the named inputs, every dimension resolved, in the model's order.
    outputs: the named outputs where known before running (files declare them; for a
    PyTorch model they are learnt from its first forward pass: empty here).
    input_shape: the first input's shape (kept for image models and readers of
    ``config.input_shape``); given alone it makes the one float input ``x``.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...] = ()
    path: Path | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    #: The generative workload (kind "decoder"); None for one forward pass per inference.
    generation: GenerationSpec | None = None

    def __post_init__(self) -> None:
        if not self.inputs and self.input_shape:
            object.__setattr__(self, "inputs", (float_input("x", self.input_shape),))
        if self.inputs and not self.input_shape:
            object.__setattr__(self, "input_shape", self.inputs[0].concrete_shape())

    @property
    def input_name(self) -> str:
        """The first input's name (one-input models)."""
        return self.inputs[0].name if self.inputs else "x"

    @property
    def output_name(self) -> str:
        """The first output's name where the model file declares it, else ``output``."""
        return self.outputs[0].name if self.outputs else "output"

    @property
    def batch_size(self) -> int:
        return self.input_shape[0] if self.input_shape else 1

    def make_inputs(self) -> dict[str, np.ndarray]:
        """Every input's array by name, in order, from the fixed seed (same everywhere)."""
        return make_arrays(self.inputs)

    def make_input(self) -> np.ndarray:
        """The first input's array (one-input models): standard normal fp32 for images."""
        return next(iter(self.make_inputs().values()))

    def describe(self) -> str:
        # A zoo decoder lives in a cache folder named after it: its name says what it is.
        if self.path is None or (self.kind == DECODER_KIND and self.name != self.path.name):
            return self.name
        return str(self.path)

    def describe_inputs(self) -> str:
        """``input_ids int64 [1,64], attention_mask int64 [1,64]`` (headers, notes)."""
        return ", ".join(i.describe() for i in self.inputs)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' (or 'x'-separated) -> (1, 3, 224, 224); positive integers only."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if not parts or any(p == "" for p in parts):
        raise ModelError(f"bad input shape '{text}': expected e.g. 1,3,224,224")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ModelError(f"bad input shape '{text}': expected integers like 1,3,224,224") from None
    if any(d <= 0 for d in shape):
        raise ModelError(f"bad input shape '{text}': every dimension must be positive")
    if len(shape) < 2:
        raise ModelError(f"bad input shape '{text}': need a batch dimension and at least one more")
    return shape
