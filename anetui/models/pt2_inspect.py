"""Checks a ``.pt2`` (torch.export) archive for anything that would run code when loaded.

``torch.export.load`` is documented as unsafe for untrusted files, and in torch 2.14 it
runs code from the file in five places (``torch/export/pt2_archive/_package.py`` and
``torch/_export/serde/serialize.py``):

* weights or tensor constants marked ``use_pickle`` -> torch's unpickler with
  ``weights_only=False``;
* legacy ``data/weights/<model>.pt`` / ``data/constants/<model>.pt`` files, and sample
  inputs that ``weights_only`` refuses -> a fallback to that same unrestricted unpickler;
* custom-object and opaque-object constants -> ``pickle.loads``;
* symbolic-shape expressions -> ``sympy.sympify``, which ``eval``\\ s the string;
* node targets -> ``getattr`` chains from ``torch``: ``torch.serialization.os.system``
  would be called when the model runs; AOTInductor entries load native libraries.

:func:`check_export_archive` reads the archive with torch's own zip reader (the one
``torch.export.load`` uses, so both see the same entries) and refuses every one of
these with a one-line reason. Plain tensors stored raw, graphs of ``torch.ops``
operators and sample inputs that load with ``weights_only=True`` pass.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from anetui.models.spec import ModelError

# Archive layout (torch/export/pt2_archive/constants.py, torch 2.14).
_FORMAT_PATH, _FORMAT_VALUE = "archive_format", "pt2"
_MODELS_DIR, _MODEL_SUFFIX = "models/", ".json"
_WEIGHTS_DIR, _CONSTANTS_DIR = "data/weights/", "data/constants/"
_TENSOR_CONSTANT_PREFIX = "tensor_"
_SAMPLE_INPUTS = "data/sample_inputs/{}.pt"
#: Directories whose mere presence means native code or a foreign runtime is loaded.
_REFUSED_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")

#: Node targets the deserializer resolves: torch.ops.<namespace>.<op>[.<overload>],
#: the symbolic helpers torch.sym_* / torch._sym_*, and operator / math functions.
_SAFE_TARGET = re.compile(
    r"^(?:torch\.ops\.[A-Za-z]\w*\.[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?"
    r"|torch\.(?:sym_|_sym_)\w+"
    r"|_operator\.[a-z]\w*"
    r"|math\.[a-z]\w*)$"
)
#: A symbolic expression: numbers, operators, parentheses and names (checked below).
_EXPR_TOKEN = re.compile(
    r"\s+|[A-Za-z_]\w*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[-+*/%(),<>=!&|~^]"
    # quoted: a symbol name or a number (torch writes sympy's srepr: Symbol('s0', …))
    r"|'(?:[A-Za-z_]\w*|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'"
)
_SYMBOL = re.compile(r"^[a-z]+\d+$")  # s0, s12, u3: export's symbol names
#: Names that appear in expressions torch writes (sympy classes and torch's own
#: torch.utils._sympy.functions); none of them reaches a Python builtin.
_EXPR_NAMES = frozenset(
    {
        "Max", "Min", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Abs",
        "Mod", "floor", "ceiling", "sqrt", "Piecewise", "True", "False", "oo", "zoo",
        "Integer", "Rational", "FloorDiv", "ModularIndexing", "Where", "PythonMod",
        "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift",
        "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "TruncToFloat",
        "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
        "IsNonOverlappingAndDenseIndicator", "OpaqueUnaryFn_sqrt", "BitwiseFn_bitwise_and",
        "BitwiseFn_bitwise_or", "BitwiseFn_bitwise_xor",
        # sympy's srepr, which torch writes: constructors and their assumption keywords
        "Add", "Mul", "Pow", "Symbol", "Float", "Half", "One", "Zero", "NegativeOne",
        "Infinity", "NegativeInfinity", "BooleanTrue", "BooleanFalse", "true", "false",
        "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan",
        "GreaterThan", "ExprCondPair", "precision", "positive", "negative", "integer",
        "real", "nonnegative", "nonpositive", "finite", "infinite", "zero", "nonzero",
        "commutative", "rational", "even", "odd", "extended_real", "extended_positive",
        "extended_nonnegative",
    }
)  # fmt: skip


def check_export_archive(data: bytes, name: str) -> None:
    """Raise ModelError naming the first thing in the archive that would run code."""
    import torch

    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        records = set(reader.get_all_records())
    except Exception:
        raise ModelError(
            f"cannot load {name} as a torch.export program: not a zip archive"
        ) from None

    def read(record: str) -> bytes:
        return bytes(reader.get_record(record))

    def refuse(what: str) -> ModelError:
        return ModelError(
            f"cannot load {name}: {what}; anetui loads no code from model files "
            "(re-export it with torch.export.save from plain tensors and torch ops)"
        )

    if _FORMAT_PATH not in records or read(_FORMAT_PATH).decode(errors="replace") != _FORMAT_VALUE:
        raise refuse("not a torch.export archive of the current format (older ones are pickles)")
    for record in sorted(records):
        if record.startswith(_REFUSED_DIRS):
            raise refuse(f"it holds compiled code ({record})")
    models = sorted(
        r[len(_MODELS_DIR) : -len(_MODEL_SUFFIX)]
        for r in records
        if r.startswith(_MODELS_DIR) and r.endswith(_MODEL_SUFFIX)
    )
    if not models:
        raise refuse("no exported program in the archive")
    for model in models:
        for legacy in (f"{_WEIGHTS_DIR}{model}.pt", f"{_CONSTANTS_DIR}{model}.pt"):
            if legacy in records:
                raise refuse(f"its {legacy} is a pickle (legacy format)")
        for kind, directory in (("weights", _WEIGHTS_DIR), ("constants", _CONSTANTS_DIR)):
            config_path = f"{directory}{model}_{kind}_config.json"
            if config_path in records:
                _check_payloads(_json(read(config_path), config_path, refuse), kind, refuse)
        program = _json(read(f"{_MODELS_DIR}{model}{_MODEL_SUFFIX}"), model, refuse)
        _check_program(program, refuse)
        sample = _SAMPLE_INPUTS.format(model)
        if sample in records:
            _check_sample_inputs(read(sample), refuse)


def _json(data: bytes, what: str, refuse: Any) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise refuse(f"{what} is not valid JSON") from None


def _check_payloads(config: Any, kind: str, refuse: Any) -> None:
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise refuse(f"its {kind} table is malformed")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict):
            raise refuse(f"its {kind} entry {fqn!r} is malformed")
        if meta.get("use_pickle"):
            raise refuse(f"{kind[:-1]} {fqn!r} is stored as a pickle")
        path_name = meta.get("path_name")
        if kind == "constants" and not (
            isinstance(path_name, str) and path_name.startswith(_TENSOR_CONSTANT_PREFIX)
        ):
            raise refuse(f"constant {fqn!r} is a pickled object ({path_name})")


def _check_program(program: Any, refuse: Any) -> None:
    """Every node target and symbolic expression in the serialized graph, iteratively
    (a deeply nested document must not overflow the stack)."""
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        target = item.get("target")
        is_node = isinstance(target, str) and "inputs" in item and "outputs" in item
        if is_node and (not _SAFE_TARGET.match(str(target)) or "__" in str(target)):
            raise refuse(f"the graph calls {str(target)[:80]!r}, which is not a torch operator")
        expr = item.get("expr_str")
        if expr is not None and not _safe_expression(expr):
            raise refuse(f"a shape expression is not arithmetic: {str(expr)[:80]!r}")
        stack.extend(item.values())


def _safe_expression(expr: object) -> bool:
    """True for an arithmetic expression over export's symbols and sympy's functions:
    nothing sympify could turn into a call of a Python builtin (no attribute access, no
    other names, quotes only around a symbol name or a number)."""
    if not isinstance(expr, str) or len(expr) > 10_000 or "__" in expr:
        return False
    position = 0
    while position < len(expr):
        token = _EXPR_TOKEN.match(expr, position)
        if token is None:
            return False
        word = token.group()
        name = word.strip("'")
        if (name[:1].isalpha() or name[:1] == "_") and not (
            name in _EXPR_NAMES or _SYMBOL.match(name)
        ):
            return False
        position = token.end()
    return True


def _check_sample_inputs(data: bytes, refuse: Any) -> None:
    """torch.export.load retries a sample-input file that weights_only refuses with a
    full unpickler: refuse those here, having loaded it only the safe way."""
    if not data:
        return
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:
        raise refuse("its sample inputs are a pickle of more than tensors") from None
