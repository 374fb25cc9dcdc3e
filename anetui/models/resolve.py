"""The model zoo and model files, resolved into a :class:`ModelSpec`.

A model is either a torchvision classification model by name, always built with
``weights=None`` (nothing is ever downloaded), or a file: ``.pt2`` (torch.export), a
TorchScript ``.pt``, a Core ML ``.mlpackage`` or an ``.onnx`` file. Every failure is a
:class:`ModelError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anetui.errors import one_line
from anetui.models.spec import (
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    MODEL_FILE_SUFFIXES,
    ModelError,
    ModelSpec,
)
from anetui.models.torch_load import load_exported, load_torchscript


def classification_models() -> list[str]:
    """Names of torchvision's classification models (imports torchvision)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def default_resolution(name: str) -> int:
    """The model's own evaluation crop size (e.g. 299 for inception_v3), else 224."""
    import torchvision

    try:
        weights_enum: Any = torchvision.models.get_model_weights(name)
        transforms = next(iter(weights_enum)).transforms
        crop = transforms.keywords.get("crop_size")
    except (ValueError, StopIteration, AttributeError, KeyError):
        return DEFAULT_RESOLUTION
    if isinstance(crop, (list, tuple)):
        crop = crop[0]
    return int(crop) if crop else DEFAULT_RESOLUTION


def resolve_model(
    model: str = DEFAULT_MODEL,
    *,
    batch_size: int = 1,
    input_shape: tuple[int, ...] | None = None,
) -> ModelSpec:
    """Turn a name or a path into a ModelSpec, checking what can be checked cheaply."""
    if batch_size < 1:
        raise ModelError(f"bad batch size {batch_size}: must be at least 1")
    if input_shape is not None and batch_size != 1 and input_shape[0] != batch_size:
        raise ModelError(
            f"--batch-size {batch_size} disagrees with --input-shape batch {input_shape[0]}"
        )
    looks_like_path = model.endswith(MODEL_FILE_SUFFIXES) or "/" in model or Path(model).exists()
    if looks_like_path:
        return _resolve_file(Path(model), batch_size, input_shape)
    names = classification_models()
    if model not in names:
        close = [n for n in names if model.lower() in n or n in model.lower()][:4]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. mobilenet_v2, resnet18)"
        raise ModelError(f"unknown model '{model}': not a torchvision classification model{hint}")
    if input_shape is None:
        resolution = default_resolution(model)
        input_shape = (batch_size, 3, resolution, resolution)
    return ModelSpec(name=model, kind="torchvision", input_shape=input_shape)


def _resolve_file(path: Path, batch_size: int, input_shape: tuple[int, ...] | None) -> ModelSpec:
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.suffix.lower() == ".mlpackage":  # a package is a directory
        return _resolve_mlpackage(path, input_shape)
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _resolve_onnx(path, batch_size, input_shape)
    if suffix not in MODEL_FILE_SUFFIXES:
        raise ModelError(
            f"unsupported model file '{path.name}': expected .pt2 (torch.export), "
            ".pt (TorchScript), .mlpackage (Core ML) or .onnx"
        )
    name = path.stem
    if suffix == ".pt2":
        program = load_exported(path)
        shape = input_shape or _exported_input_shape(program, batch_size, path)
        return ModelSpec(name=name, kind="export", input_shape=shape, path=path)
    load_torchscript(path)  # fail now, with a clear message, not inside a backend
    notes: tuple[str, ...] = ()
    if input_shape is None:
        input_shape = (batch_size, 3, DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)
        notes = (f"TorchScript holds no input shape; assumed {input_shape} (--input-shape)",)
    return ModelSpec(name=name, kind="torchscript", input_shape=input_shape, path=path, notes=notes)


def _resolve_mlpackage(path: Path, input_shape: tuple[int, ...] | None) -> ModelSpec:
    """A Core ML package used as it is: its first input's name and shape, read from the
    package's spec (no Core ML runtime needed)."""
    from anetui.models.convert.coreml import ConversionError, import_coremltools, quiet_coremltools

    try:
        ct = import_coremltools()
        with quiet_coremltools():
            description = ct.models.MLModel(str(path), skip_model_load=True).get_spec().description
    except ConversionError as exc:
        raise ModelError(str(exc)) from None
    except Exception as exc:
        raise ModelError(f"cannot read {path.name} as a Core ML package: {one_line(exc)}") from None
    if not description.input or not description.output:
        raise ModelError(f"{path.name}: the package has no input or no output")
    first = description.input[0]
    shape = tuple(int(d) for d in first.type.multiArrayType.shape)
    if input_shape is not None:
        shape = input_shape
    if not shape:
        raise ModelError(f"{path.name}: input '{first.name}' is not a fixed-shape array")
    return ModelSpec(
        name=path.stem,
        kind="mlpackage",
        input_shape=shape,
        path=path,
        input_name=first.name,
        output_name=description.output[0].name,
    )


def _resolve_onnx(path: Path, batch_size: int, input_shape: tuple[int, ...] | None) -> ModelSpec:
    """An ONNX file used as it is: its first input's name and shape (a symbolic batch
    dimension takes --batch-size)."""
    try:
        import onnx
    except ImportError:
        raise ModelError("onnx not installed (pip install 'anetui[onnx]')") from None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise ModelError(f"cannot read {path.name} as ONNX: {one_line(exc)}") from None
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs or not graph.output:
        raise ModelError(f"{path.name}: the graph has no input or no output")
    dims = []
    for i, dim in enumerate(inputs[0].type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif i == 0:
            dims.append(batch_size)
        elif input_shape is None:
            raise ModelError(f"{path.name}: dynamic dimension {i}; give --input-shape")
    shape = input_shape or tuple(dims)
    return ModelSpec(
        name=path.stem,
        kind="onnx",
        input_shape=shape,
        path=path,
        input_name=inputs[0].name,
        output_name=graph.output[0].name,
    )


def _exported_input_shape(program: Any, batch_size: int, path: Path) -> tuple[int, ...]:
    user_inputs = set(program.graph_signature.user_inputs)
    shapes = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            if value is None or not hasattr(value, "shape"):
                raise ModelError(f"{path.name}: an input is not a tensor")
            shapes.append(value.shape)
    if len(shapes) != 1:
        raise ModelError(f"{path.name}: expected one tensor input, found {len(shapes)}")
    dims = []
    for i, dim in enumerate(shapes[0]):
        if isinstance(dim, int):
            dims.append(dim)
        elif i == 0:
            dims.append(batch_size)  # a dynamic batch dimension takes --batch-size
        else:
            raise ModelError(f"{path.name}: dynamic dimension {i}; give --input-shape")
    return tuple(dims)
