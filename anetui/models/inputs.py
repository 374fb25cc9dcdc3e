"""A model's named inputs and outputs, as data: :class:`InputSpec`, :class:`OutputSpec`,
the arrays made from them, and the resolution of what a model file declares against what
the user asked (``--input NAME:SHAPE[:DTYPE]``, ``--seq-len``, ``--batch-size``).

Readers of model files (ONNX graph, ``.pt2`` signature, Core ML spec, Hugging Face
config) declare inputs whose dimensions may still be symbolic (a ``str``: ``"batch"``,
``"seq"``, ``"s0"`` …); :func:`resolve_inputs` turns them into concrete ones or refuses
with one line naming the dimension. Every array is drawn from one generator seeded with
``INPUT_SEED``, in input order, so every backend gets the same arrays.

To add a value domain (e.g. image-like values in [0, 1] for an int8 calibration):
one entry in ``DOMAINS`` and one branch in :func:`make_array`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from anetui.errors import AnetuiError

INPUT_SEED = 0
#: A dimension: a size, or the name of a size not yet known (symbolic).
Dim = int | str
#: The numpy dtype names an input may have; aliases users type map onto them.
DTYPES = ("float32", "float16", "int64", "int32", "bool")
DTYPE_ALIASES = {
    "fp32": "float32",
    "f32": "float32",
    "float": "float32",
    "fp16": "float16",
    "f16": "float16",
    "half": "float16",
    "i64": "int64",
    "long": "int64",
    "i32": "int32",
    "int": "int32",
}
#: Value domains: what an input's values are drawn from.
DOMAINS = {
    "normal": "standard normal",
    "tokens": "token ids uniform in [0, vocab)",
    "ones": "ones",
    "zeros": "zeros",
}
#: The sequence dimension's name in inputs anetui declares itself (zoo, HF folders).
SEQ = "seq"
BATCH = "batch"


class InputError(AnetuiError):
    """An input the model does not have, or a dimension nobody resolved; one line."""


@dataclass(frozen=True)
class InputSpec:
    """One named model input.

    shape: sizes, batch first; a ``str`` is a symbolic size still to resolve.
    dtype: a numpy dtype name (``DTYPES``).
    domain: what the values are (``DOMAINS``): ``normal`` for float data, ``tokens``
    (uniform integers in [0, ``high``)), ``ones`` (attention masks), ``zeros``.
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    domain: str = "normal"
    #: tokens: the exclusive upper bound (the vocabulary size).
    high: int | None = None

    def resolved(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def concrete_shape(self) -> tuple[int, ...]:
        """The shape as integers (call only once resolved)."""
        if not self.resolved():
            raise InputError(f"input '{self.name}' has unresolved dimensions {self.shape}")
        return tuple(int(d) for d in self.shape)

    def describe(self) -> str:
        """``input_ids int64 [1,seq]``: how the model inputs line lists an input."""
        return f"{self.name} {self.dtype} [{','.join(str(d) for d in self.shape)}]"

    def as_dict(self) -> dict[str, object]:
        """The results' ``config.inputs`` entry."""
        values = DOMAINS.get(self.domain, self.domain)
        if self.domain == "tokens" and self.high is not None:
            values = f"token ids uniform in [0, {self.high})"
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "values": values}


@dataclass(frozen=True)
class OutputSpec:
    """One named model output; shape and dtype where the model file says them."""

    name: str
    shape: tuple[Dim, ...] | None = None
    dtype: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shape": list(self.shape) if self.shape is not None else None,
            "dtype": self.dtype,
        }


def float_input(name: str, shape: tuple[Dim, ...]) -> InputSpec:
    return InputSpec(name, shape, "float32", "normal")


def describe_inputs(inputs: Iterable[InputSpec]) -> str:
    """``model inputs: input_ids int64 [1,seq], attention_mask int64 [1,seq]``."""
    return "model inputs: " + ", ".join(i.describe() for i in inputs)


def normalise_dtype(text: str) -> str:
    name = DTYPE_ALIASES.get(text.lower(), text.lower())
    if name not in DTYPES:
        raise InputError(f"unknown dtype '{text}' (one of {', '.join(DTYPES)})")
    return name


def default_domain(name: str, dtype: str) -> str:
    """What a declared input's values are, guessed from its dtype and name: masks are
    ones, token type ids zeros, other integers token ids, floats standard normal."""
    lowered = name.lower()
    if "mask" in lowered:
        return "ones"
    if dtype == "bool":
        return "ones"
    if dtype.startswith("int"):
        return "zeros" if "type" in lowered or "segment" in lowered else "tokens"
    return "normal"


@dataclass(frozen=True)
class InputOverride:
    """One ``--input NAME:SHAPE[:DTYPE]``."""

    name: str
    shape: tuple[int, ...]
    dtype: str | None = None


def parse_input_option(text: str) -> InputOverride:
    """``input_ids:1,64`` or ``mask:1x64:float32`` -> an :class:`InputOverride`."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InputError(f"bad --input '{text}': expected NAME:SHAPE[:DTYPE], e.g. input_ids:1,64")
    sizes = [p.strip() for p in parts[1].replace("x", ",").split(",")]
    try:
        shape = tuple(int(p) for p in sizes)
    except ValueError:
        raise InputError(f"bad --input '{text}': the shape must be integers like 1,64") from None
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"bad --input '{text}': every dimension must be positive")
    dtype = normalise_dtype(parts[2]) if len(parts) == 3 else None
    return InputOverride(parts[0], shape, dtype)


def resolve_inputs(
    declared: Sequence[InputSpec],
    *,
    overrides: Sequence[InputOverride] = (),
    batch_size: int | None = None,
    seq_len: int | None = None,
    dtype_fixed: bool = True,
) -> tuple[InputSpec, ...]:
    """``declared`` with every dimension concrete, or one-line :class:`InputError`.

    An override must name a declared input, keep its rank, keep its fixed sizes (where
    ``dtype_fixed``, i.e. the file fixes them, also its dtype); the batch dimension
    (index 0) when symbolic takes ``batch_size`` (default 1); any other symbolic
    dimension takes ``seq_len``, or is refused with a line naming it.
    """
    names = {i.name for i in declared}
    listing = describe_inputs(declared)
    by_name: dict[str, InputOverride] = {}
    for override in overrides:
        if override.name not in names:
            raise InputError(f"no input named '{override.name}'; {listing}")
        by_name[override.name] = override
    resolved = []
    for spec in declared:
        asked = by_name.get(spec.name)
        if asked is not None:
            spec = _apply(spec, asked, listing, dtype_fixed)
        dims: list[Dim] = []
        for index, dim in enumerate(spec.shape):
            if isinstance(dim, int):
                dims.append(dim)
            elif index == 0:
                dims.append(batch_size or 1)
            elif seq_len is not None:
                dims.append(seq_len)
            else:
                raise InputError(
                    f"input '{spec.name}' dimension {index} ('{dim}') is not fixed: give "
                    f"--seq-len N or --input {spec.name}:SHAPE; {listing}"
                )
        resolved.append(replace(spec, shape=tuple(dims)))
    if batch_size is not None and batch_size != 1:
        for spec in resolved:
            if spec.shape and spec.shape[0] != batch_size and spec.name not in by_name:
                raise InputError(
                    f"--batch-size {batch_size}: input '{spec.name}' has a fixed batch of "
                    f"{spec.shape[0]}; {listing}"
                )
    return tuple(resolved)


def _apply(spec: InputSpec, override: InputOverride, listing: str, fixed: bool) -> InputSpec:
    if fixed and len(override.shape) != len(spec.shape):
        raise InputError(
            f"--input {override.name}: {len(override.shape)} dimensions, the model's input "
            f"has {len(spec.shape)}; {listing}"
        )
    if fixed:
        for index, (asked, has) in enumerate(zip(override.shape, spec.shape, strict=True)):
            if isinstance(has, int) and asked != has:
                raise InputError(
                    f"--input {override.name}: dimension {index} is fixed at {has} in the "
                    f"model, not {asked}; {listing}"
                )
        if override.dtype is not None and override.dtype != spec.dtype:
            raise InputError(
                f"--input {override.name}: the model takes {spec.dtype}, not "
                f"{override.dtype}; {listing}"
            )
    dtype = override.dtype or spec.dtype
    domain = spec.domain if dtype == spec.dtype else default_domain(spec.name, dtype)
    return replace(spec, shape=override.shape, dtype=dtype, domain=domain)


def make_array(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    """One input's values (``spec`` resolved), drawn from ``rng``."""
    shape = spec.concrete_shape()
    dtype = np.dtype(spec.dtype)
    if spec.domain == "ones":
        return np.ones(shape, dtype=dtype)
    if spec.domain == "zeros":
        return np.zeros(shape, dtype=dtype)
    if spec.domain == "tokens":
        return rng.integers(0, spec.high or 2, size=shape, dtype=dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
    raise InputError(f"input '{spec.name}': no '{spec.domain}' values for {spec.dtype}")


def make_arrays(inputs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """Every input's array, in order, from one generator seeded with ``INPUT_SEED``: the
    same arrays for every backend and every call."""
    rng = np.random.default_rng(INPUT_SEED)
    return {spec.name: make_array(spec, rng) for spec in inputs}


def describe_values(inputs: Sequence[InputSpec]) -> str:
    """The results' ``config.input`` sentence (how the values were made); one float
    input reads as it always has."""
    if len(inputs) == 1 and inputs[0].dtype == "float32" and inputs[0].domain == "normal":
        return f"standard normal fp32, seed {INPUT_SEED}"
    parts = [f"{i.name}: {i.as_dict()['values']}" for i in inputs]
    return f"{'; '.join(parts)}; seed {INPUT_SEED}"
