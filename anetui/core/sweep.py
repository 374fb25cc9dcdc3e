"""Sweep axes: what `anetui sweep` varies, and the RunConfig of each point.

An axis is a CLI option taking a list of values and the RunConfig field it sets; a point
is one value per axis (the product of the axes, first axis slowest). An axis whose field
RunConfig does not have yet is declared with what it waits for, so the CLI can say so in
one line; it becomes available by adding the field (and its meaning in the model path),
with no change here.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from anetui.core.config import RunConfig


@dataclass(frozen=True)
class Axis:
    """``option`` (e.g. ``--batch-size``) sets ``field`` of RunConfig for each point."""

    name: str
    option: str
    field: str
    #: What the axis waits for while RunConfig lacks ``field``.
    needs: str = ""
    #: What the values are, for --help.
    help: str = ""

    def available(self) -> str | None:
        """None when the axis can be swept here, else why not (one line)."""
        if self.field in {f.name for f in dataclasses.fields(RunConfig)}:
            return None
        return f"{self.option} is not available until {self.needs}"


_NAMED = "named model inputs (token ids of a set length) are supported"
_GENERATIVE = "generative workloads (prefill + decode) are supported"
AXES: tuple[Axis, ...] = (
    Axis("batch_size", "--batch-size", "batch_size", help="Batch sizes, e.g. 1,2,4,8."),
    Axis("threads", "--threads", "threads", help="Intra-op CPU thread counts, e.g. 1,2,4."),
    Axis("seq_len", "--seq-len", "seq_len", _NAMED, "Sequence lengths (tokens)."),
    Axis("prompt_len", "--prompt-len", "prompt_len", _GENERATIVE, "Prompt lengths (tokens)."),
    Axis("gen_len", "--gen-len", "gen_len", _GENERATIVE, "Generated tokens per run."),
)
BY_NAME = {axis.name: axis for axis in AXES}


def points(values: Mapping[str, Sequence[int]]) -> list[dict[str, int]]:
    """Every combination of the axes' values, in the order given (first axis slowest)."""
    names = [n for n in values if values[n]]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(values[n] for n in names))
    ]


def config_for(base: RunConfig, point: Mapping[str, int]) -> RunConfig:
    """``base`` with the point's values set. The batch size also replaces the first
    dimension of an explicit input shape (which otherwise overrides it)."""
    changes: dict[str, object] = {BY_NAME[name].field: value for name, value in point.items()}
    if "batch_size" in point and base.input_shape is not None:
        changes["input_shape"] = (point["batch_size"], *base.input_shape[1:])
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
