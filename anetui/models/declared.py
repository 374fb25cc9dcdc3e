"""What a model file says about its inputs and outputs, read without running it: the
ONNX graph (symbolic dimensions included), a ``.pt2`` program's signature and example
metadata, a Core ML spec, an ExecuTorch program's method metadata, an OpenVINO IR.

Each reader returns the declared :class:`InputSpec` rows (dimensions may be symbolic
strings) and :class:`OutputSpec` rows; integer inputs that index an embedding table get
its row count as their token range, so random ids are always valid indices.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from anetui.errors import one_line
from anetui.models.inputs import Dim, InputSpec, OutputSpec, default_domain
from anetui.models.spec import ModelError

#: Declared inputs and outputs of a model file.
Declared = tuple[tuple[InputSpec, ...], tuple[OutputSpec, ...]]
#: Core ML's user-defined metadata key where anetui's conversions keep the inputs.
COREML_INPUTS_KEY = "anetui.inputs"
#: Token range assumed for integer inputs when no embedding table says one.
FALLBACK_VOCAB = 2

_ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 9: "bool"}
_TORCH_DTYPES = {
    "torch.float32": "float32",
    "torch.float16": "float16",
    "torch.int64": "int64",
    "torch.int32": "int32",
    "torch.bool": "bool",
}
#: c10::ScalarType codes (ExecuTorch's TensorInfo.dtype()).
_SCALAR_TYPES = {6: "float32", 5: "float16", 4: "int64", 3: "int32", 11: "bool"}
#: Core ML's ArrayFeatureType data types.
_COREML_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64"}
_OV_DTYPES = {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "boolean": "bool"}


def _input(name: str, shape: tuple[Dim, ...], dtype: str | None, vocab: int | None) -> InputSpec:
    if dtype is None:
        raise ModelError(
            f"input '{name}' has a dtype anetui cannot make ({', '.join(_ONNX_DTYPES.values())})"
        )
    domain = default_domain(name, dtype)
    return InputSpec(
        name, shape, dtype, domain, (vocab or FALLBACK_VOCAB) if domain == "tokens" else None
    )


# -- ONNX ---------------------------------------------------------------------------
def onnx_io(path: Path) -> Declared:
    try:
        import onnx
    except ImportError:
        raise ModelError("onnx not installed (pip install 'anetui[onnx]')") from None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise ModelError(f"cannot read {path.name} as ONNX: {one_line(exc)}") from None
    initializers = {init.name: init for init in graph.initializer}
    graph_inputs = [i for i in graph.input if i.name not in initializers]
    if not graph_inputs or not graph.output:
        raise ModelError(f"{path.name}: the graph has no input or no output")
    vocab = _onnx_vocab(graph, initializers)
    inputs = tuple(
        _input(
            i.name,
            _onnx_shape(i),
            _ONNX_DTYPES.get(i.type.tensor_type.elem_type),
            vocab,
        )
        for i in graph_inputs
    )
    outputs = tuple(
        OutputSpec(o.name, _onnx_shape(o), _ONNX_DTYPES.get(o.type.tensor_type.elem_type))
        for o in graph.output
    )
    return inputs, outputs


def _onnx_shape(value: Any) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for index, dim in enumerate(value.type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"d{index}")
    return tuple(dims)


def _onnx_vocab(graph: Any, initializers: dict[str, Any]) -> int | None:
    """The fewest rows of any 2-D table a Gather reads (embeddings): ids below it index
    every table. Subgraphs are not searched."""
    rows = [
        int(initializers[node.input[0]].dims[0])
        for node in graph.node
        if node.op_type == "Gather"
        and node.input
        and node.input[0] in initializers
        and len(initializers[node.input[0]].dims) == 2
    ]
    rows = [r for r in rows if r > FALLBACK_VOCAB]
    return min(rows) if rows else None


# -- torch.export ---------------------------------------------------------------------
def export_io(program: Any, path: Path) -> Declared:
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = {
        n.name: n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs
    }
    vocab = _export_vocab(program)
    inputs = []
    for name in user_inputs:
        value = placeholders[name].meta.get("val")
        if value is None or not hasattr(value, "shape"):
            raise ModelError(f"{path.name}: input '{name}' is not a tensor")
        shape = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
        inputs.append(_input(name, shape, _TORCH_DTYPES.get(str(value.dtype)), vocab))
    outputs = []
    values: dict[str, Any] = {n.name: n.meta.get("val") for n in program.graph.nodes}
    for name in program.graph_signature.user_outputs:
        out: Any = values.get(name) if isinstance(name, str) else None
        out_shape: tuple[Dim, ...] | None = None
        if hasattr(out, "shape"):
            out_shape = tuple(d if isinstance(d, int) else str(d) for d in out.shape)
        dtype = _TORCH_DTYPES.get(str(out.dtype)) if hasattr(out, "dtype") else None
        outputs.append(OutputSpec(str(name), out_shape, dtype))
    return tuple(inputs), tuple(outputs)


def _export_vocab(program: Any) -> int | None:
    """The fewest rows of any embedding table the program looks up."""
    rows = []
    for node in program.graph.nodes:
        if node.op == "call_function" and "embedding" in str(node.target) and node.args:
            weight = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
            if weight is not None and len(weight.shape) == 2 and isinstance(weight.shape[0], int):
                rows.append(int(weight.shape[0]))
    rows = [r for r in rows if r > FALLBACK_VOCAB]
    return min(rows) if rows else None


# -- Core ML --------------------------------------------------------------------------
def coreml_io(description: Any) -> Declared:
    """From a Core ML spec's description; anetui's own packages keep the inputs' value
    domains in their metadata (Core ML has int32, not int64, token ids)."""
    kept: dict[str, dict[str, Any]] = {}
    raw = dict(description.metadata.userDefined).get(COREML_INPUTS_KEY)
    if raw:
        try:
            kept = {row["name"]: row for row in json.loads(raw)}
        except (ValueError, KeyError, TypeError):
            kept = {}
    inputs = []
    for feature in description.input:
        array = feature.type.multiArrayType
        shape = tuple(int(d) for d in array.shape)
        dtype = _COREML_DTYPES.get(array.dataType)
        row = kept.get(feature.name, {})
        spec = _input(feature.name, shape, dtype, row.get("high"))
        if row.get("domain") in ("normal", "tokens", "ones", "zeros"):
            spec = InputSpec(spec.name, shape, spec.dtype, str(row["domain"]), row.get("high"))
        inputs.append(spec)
    outputs = tuple(
        OutputSpec(
            o.name,
            tuple(int(d) for d in o.type.multiArrayType.shape) or None,
            _COREML_DTYPES.get(o.type.multiArrayType.dataType),
        )
        for o in description.output
    )
    return tuple(inputs), outputs


# -- ExecuTorch -----------------------------------------------------------------------
def pte_io(path: Path) -> Declared:
    # torchao (imported by executorch) logs a pytree deprecation on every start.
    pytree_log = logging.getLogger("torch.utils._pytree")
    saved = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        from executorch.runtime import Runtime

        program = Runtime.get().load_program(path)
        meta = program.metadata("forward")
    except ImportError:
        raise ModelError("executorch not installed (pip install 'anetui[executorch]')") from None
    except Exception as exc:
        raise ModelError(
            f"cannot read {path.name} as an ExecuTorch program: {one_line(exc)}"
        ) from None
    finally:
        pytree_log.setLevel(saved)
    count = meta.num_inputs()
    inputs = []
    for index in range(count):
        info = meta.input_tensor_meta(index)
        name = "x" if count == 1 else f"input_{index}"
        inputs.append(
            _input(name, tuple(int(d) for d in info.sizes()), _SCALAR_TYPES.get(info.dtype()), None)
        )
    outputs = tuple(
        OutputSpec(
            f"output_{index}",
            tuple(int(d) for d in meta.output_tensor_meta(index).sizes()),
            _SCALAR_TYPES.get(meta.output_tensor_meta(index).dtype()),
        )
        for index in range(meta.num_outputs())
    )
    return tuple(inputs), outputs


# -- OpenVINO IR ----------------------------------------------------------------------
def openvino_io(path: Path) -> Declared:
    try:
        import openvino
    except ImportError:
        raise ModelError("openvino not installed (pip install 'anetui[openvino]')") from None
    if not path.with_suffix(".bin").is_file():
        raise ModelError(f"{path.name}: its weights {path.with_suffix('.bin').name} are missing")
    try:
        model = openvino.Core().read_model(str(path))
    except Exception as exc:
        raise ModelError(f"cannot read {path.name} as OpenVINO IR: {one_line(exc)}") from None
    inputs = []
    for index, port in enumerate(model.inputs):
        names = port.get_names()
        name = port.get_any_name() if names else f"input_{index}"
        shape = tuple(
            d.get_length() if d.is_static else ("batch" if i == 0 else f"d{i}")
            for i, d in enumerate(port.get_partial_shape())
        )
        dtype = _OV_DTYPES.get(port.get_element_type().get_type_name())
        inputs.append(_input(name, shape, dtype, None))
    outputs = tuple(
        OutputSpec(port.get_any_name() if port.get_names() else f"output_{index}")
        for index, port in enumerate(model.outputs)
    )
    return tuple(inputs), outputs
