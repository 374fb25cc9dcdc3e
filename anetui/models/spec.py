"""What to run: the model's identity, its input, and the one error type of models/.

A :class:`ModelSpec` is made by :mod:`anetui.models.resolve`; the input is made once,
from a fixed seed, so every backend sees the same tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anetui.errors import AnetuiError

DEFAULT_MODEL = "mobilenet_v2"
DEFAULT_RESOLUTION = 224
INPUT_SEED = 0
#: Seed for the random weights, so every backend (and the agreement check) runs the
#: same network, not a differently initialised one.
WEIGHTS_SEED = 0
MODEL_FILE_SUFFIXES = (".pt2", ".pt", ".mlpackage", ".onnx")


class ModelError(AnetuiError):
    """The model cannot be resolved or loaded; the message is one line for the user."""


@dataclass(frozen=True)
class ModelSpec:
    """What to run and on what input.

    kind: "torchvision", "export" (.pt2) or "torchscript" (.pt).
    input_shape: the one input tensor's shape, batch first.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    path: Path | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    #: For a Core ML package: its input and output feature names.
    input_name: str | None = None
    output_name: str | None = None

    def make_input(self) -> np.ndarray:
        """The benchmark input: standard normal fp32 from a fixed seed (same everywhere)."""
        rng = np.random.default_rng(INPUT_SEED)
        return rng.standard_normal(self.input_shape, dtype=np.float32)

    def describe(self) -> str:
        return self.name if self.path is None else str(self.path)


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
