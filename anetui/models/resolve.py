"""Model names and model files, resolved into a :class:`ModelSpec` with concrete inputs.

A model is a name (a transformer of :mod:`anetui.models.zoo`, built from its
``transformers`` config class with random weights, or a torchvision classifier, always
``weights=None``: nothing is ever downloaded), a Hugging Face folder (``config.json`` +
``*.safetensors``), or a file: ``.pt2`` (torch.export), TorchScript ``.pt``, Core ML
``.mlpackage``, ``.onnx`` (external data beside it), ExecuTorch ``.pte`` or OpenVINO IR
``.xml``. The inputs the model declares (:mod:`anetui.models.declared`,
:mod:`anetui.models.hf`) are completed by ``--input``, ``--seq-len`` and
``--batch-size`` (:func:`anetui.models.inputs.resolve_inputs`). Every failure is a
:class:`ModelError` (or an ``InputError``) with a one-line message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anetui.errors import one_line
from anetui.models.inputs import BATCH, InputOverride, InputSpec, OutputSpec, resolve_inputs
from anetui.models.spec import (
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    MODEL_FILE_SUFFIXES,
    ModelError,
    ModelSpec,
)
from anetui.models.torch_load import load_exported, load_torchscript
from anetui.models.zoo import ZOO, torchvision_names

#: File kinds by suffix.
FILE_KINDS = {
    ".pt2": "export",
    ".pt": "torchscript",
    ".onnx": "onnx",
    ".mlpackage": "mlpackage",
    ".pte": "pte",
    ".xml": "openvino",
}


def classification_models() -> list[str]:
    """Names of torchvision's classification models (imports torchvision)."""
    return torchvision_names()


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
    inputs: Sequence[InputOverride] = (),
    seq_len: int | None = None,
    prompt_len: int | None = None,
    gen_len: int | None = None,
) -> ModelSpec:
    """Turn a name or a path into a ModelSpec, checking what can be checked cheaply.

    A decoder (a zoo row whose workload is "generate", or with ``prompt_len`` /
    ``gen_len`` a Hugging Face folder of a causal LM) gives the generative workload
    (:func:`anetui.models.decoders.decoder_spec`); a zoo decoder's folder is made here,
    once, in the cache.

    ``input_shape`` (``--input-shape``) sets the first input's shape; ``inputs``
    (``--input NAME:SHAPE[:DTYPE]``) set any; ``seq_len`` every symbolic non-batch
    dimension (and the sequence of zoo text models); ``batch_size`` the batch.
    """
    if batch_size < 1:
        raise ModelError(f"bad batch size {batch_size}: must be at least 1")
    if seq_len is not None and seq_len < 1:
        raise ModelError(f"bad sequence length {seq_len}: must be at least 1")
    if input_shape is not None and batch_size != 1 and input_shape[0] != batch_size:
        raise ModelError(
            f"--batch-size {batch_size} disagrees with --input-shape batch {input_shape[0]}"
        )
    ask = _Ask(batch_size, input_shape, tuple(inputs), seq_len)
    path = Path(model)
    looks_like_path = model.endswith(MODEL_FILE_SUFFIXES) or "/" in model or path.exists()
    generating = prompt_len is not None or gen_len is not None
    row = ZOO.get(model) if not path.exists() else None
    if (row is not None and row.workload == "generate") or (generating and looks_like_path):
        return _resolve_decoder(model, path, ask, prompt_len, gen_len)
    if generating:
        raise ModelError(
            f"--prompt-len/--gen-len: {model} is not a decoder (a decoder name of `anetui "
            "models`, or a Hugging Face folder of a …ForCausalLM model)"
        )
    if model in ZOO and not path.exists():
        return _resolve_zoo(model, ask)
    if looks_like_path:
        return _resolve_path(path, ask)
    names = classification_models()
    if model not in names:
        known = [*ZOO, *names]
        close = [n for n in known if model.lower() in n or n in model.lower()][:4]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (`anetui models` lists them)"
        raise ModelError(f"unknown model '{model}': not a model name anetui knows{hint}")
    if seq_len is not None:  # silently ignored, a sweep over it would repeat one point
        raise ModelError(
            f"--seq-len: {model} is an image classifier with no sequence dimension "
            "(--input-shape sets its input)"
        )
    resolution = default_resolution(model)
    declared = (InputSpec("x", (BATCH, 3, resolution, resolution)),)
    return ModelSpec(name=model, kind="torchvision", inputs=ask.resolve(declared, fixed=False))


class _Ask:
    """What the user asked of the inputs."""

    def __init__(
        self,
        batch_size: int,
        input_shape: tuple[int, ...] | None,
        overrides: tuple[InputOverride, ...],
        seq_len: int | None,
    ) -> None:
        self.batch_size = batch_size
        self.input_shape = input_shape
        self.overrides = overrides
        self.seq_len = seq_len

    def resolve(self, declared: Sequence[InputSpec], *, fixed: bool) -> tuple[InputSpec, ...]:
        overrides = list(self.overrides)
        if self.input_shape is not None and declared:  # --input-shape: the first input's
            overrides.insert(0, InputOverride(declared[0].name, self.input_shape))
        return resolve_inputs(
            declared,
            overrides=overrides,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            dtype_fixed=fixed,
        )


def _resolve_decoder(
    model: str, path: Path, ask: _Ask, prompt_len: int | None, gen_len: int | None
) -> ModelSpec:
    from anetui.models import decoders
    from anetui.models.hf import is_hf_folder

    row = ZOO.get(model)
    if row is not None and not path.exists():
        folder, name = decoders.decoder_folder(row), model
    else:
        if not path.exists():
            raise ModelError(f"model folder not found: {path}")
        if not is_hf_folder(path):
            raise ModelError(
                f"{path}: --prompt-len/--gen-len need a Hugging Face folder (config.json + "
                "*.safetensors) of a causal language model"
            )
        folder, name = path, path.name
    overrides = len(ask.overrides) + (ask.input_shape is not None)
    return decoders.decoder_spec(
        name,
        folder,
        prompt_len=prompt_len,
        gen_len=gen_len,
        batch_size=ask.batch_size,
        seq_len=ask.seq_len,
        overrides=overrides,
    )


def _resolve_zoo(name: str, ask: _Ask) -> ModelSpec:
    from anetui.models.hf import zoo_inputs

    declared = zoo_inputs(ZOO[name], ask.seq_len)
    return ModelSpec(name=name, kind="transformers", inputs=ask.resolve(declared, fixed=False))


def _resolve_path(path: Path, ask: _Ask) -> ModelSpec:
    from anetui.models import declared as read

    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if path.is_dir() and suffix != ".mlpackage":
        from anetui.models.hf import folder_inputs, is_hf_folder

        if not is_hf_folder(path):
            raise ModelError(
                f"{path} is a folder without config.json: not a Hugging Face model folder"
            )
        declared = folder_inputs(path, ask.seq_len)
        spec = ModelSpec(
            name=path.name, kind="hf", path=path, inputs=ask.resolve(declared, fixed=False)
        )
        return spec
    if suffix == ".mlpackage":
        ins, outs = _read_mlpackage(path)
        return _file_spec(path, "mlpackage", ins, outs, ask)
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    kind = FILE_KINDS.get(suffix)
    if kind is None:
        raise ModelError(
            f"unsupported model file '{path.name}': expected .pt2 (torch.export), .pt "
            "(TorchScript), .mlpackage (Core ML), .onnx, .pte (ExecuTorch), .xml (OpenVINO "
            "IR) or a Hugging Face folder"
        )
    if kind == "onnx":
        return _file_spec(path, kind, *read.onnx_io(path), ask)
    if kind == "pte":
        return _file_spec(path, kind, *read.pte_io(path), ask)
    if kind == "openvino":
        return _file_spec(path, kind, *read.openvino_io(path), ask)
    if kind == "export":
        program = load_exported(path)
        return _file_spec(path, kind, *read.export_io(program, path), ask)
    load_torchscript(path)  # fail now, with a clear message, not inside a backend
    notes: tuple[str, ...] = ()
    shape = ask.input_shape
    if shape is None:
        shape = (ask.batch_size, 3, DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)
        notes = (f"TorchScript holds no input shape; assumed {shape} (--input-shape)",)
    declared = (InputSpec("x", shape),)
    return ModelSpec(
        name=path.stem,
        kind="torchscript",
        path=path,
        notes=notes,
        inputs=ask.resolve(declared, fixed=False),
    )


def _file_spec(
    path: Path,
    kind: str,
    declared: tuple[InputSpec, ...],
    outputs: tuple[OutputSpec, ...],
    ask: _Ask,
) -> ModelSpec:
    if not declared or not outputs:
        raise ModelError(f"{path.name}: the model has no input or no output")
    return ModelSpec(
        name=path.stem,
        kind=kind,
        path=path,
        inputs=ask.resolve(declared, fixed=True),
        outputs=outputs,
    )


def _read_mlpackage(path: Path) -> tuple[tuple[InputSpec, ...], tuple[OutputSpec, ...]]:
    """A Core ML package's inputs and outputs, read from its spec (no Core ML runtime)."""
    from anetui.models.convert.coreml import ConversionError, import_coremltools, quiet_coremltools
    from anetui.models.declared import coreml_io

    try:
        ct = import_coremltools()
        with quiet_coremltools():
            description = ct.models.MLModel(str(path), skip_model_load=True).get_spec().description
    except ConversionError as exc:
        raise ModelError(str(exc)) from None
    except Exception as exc:
        raise ModelError(f"cannot read {path.name} as a Core ML package: {one_line(exc)}") from None
    return coreml_io(description)
