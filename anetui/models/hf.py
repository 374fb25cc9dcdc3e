"""Hugging Face ``transformers`` models: the zoo's rows built from config classes (random
weights, offline) and folders written by ``save_pretrained`` (``config.json`` +
``*.safetensors``), their declared inputs, and the module every backend runs.

The module is :class:`NamedIO` around the ``transformers`` model: positional inputs in
the declared order (what torch.export, the ONNX exporter, coremltools and ExecuTorch
want) and a tuple of its tensor outputs (``last_hidden_state``, ``pooler_output``,
``logits`` …), their names in ``output_names``. transformers is imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anetui.errors import one_line
from anetui.models.inputs import BATCH, Dim, InputSpec
from anetui.models.spec import WEIGHTS_SEED, ModelError, ModelSpec
from anetui.models.zoo import ZOO, ZooModel

if TYPE_CHECKING:
    import torch

#: The sequence length of text models when --seq-len is not given.
DEFAULT_SEQ_LEN = 128
CONFIG_FILE = "config.json"


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError(
            "transformers not installed (pip install 'anetui[transformers]')"
        ) from None
    return transformers


def zoo_config(row: ZooModel) -> Any:
    """The row's config object (its class's defaults are the base model's shapes)."""
    transformers = _transformers()
    # A copy: config classes may rewrite nested arguments in place (transformers 5 moves
    # rope_theta into a rope_scaling dict), which would change the row and its cache key.
    return getattr(transformers, row.config)(**copy.deepcopy(dict(row.config_args)))


def folder_config(path: Path) -> tuple[Any, str]:
    """A Hugging Face folder's config and its architecture class name; one-line errors
    for a folder without weights or of an architecture transformers does not know."""
    transformers = _transformers()
    try:
        raw = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path / CONFIG_FILE}: {one_line(exc)}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path / CONFIG_FILE} is not a JSON object")
    architectures = raw.get("architectures") or []
    arch = str(architectures[0]) if architectures else None
    if arch is not None and not hasattr(transformers, arch):
        raise ModelError(
            f"{path.name}: architecture '{arch}' is unknown to transformers "
            f"{transformers.__version__}"
        )
    if not any(path.glob("*.safetensors")):
        extra = (
            " (a pytorch_model.bin is a pickle anetui will not load)"
            if any(path.glob("*.bin"))
            else ""
        )
        raise ModelError(
            f"{path.name} has {CONFIG_FILE} but no *.safetensors weights "
            f"(save_pretrained writes model.safetensors){extra}"
        )
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelError(
            f"{path.name}: transformers cannot read its config: {one_line(exc)}"
        ) from None
    if arch is None:  # no head named: the base model of this model type
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        try:
            base: Any = MODEL_MAPPING[type(config)]
            arch = str(base.__name__)
        except KeyError:
            raise ModelError(
                f"{path.name}: no architectures in {CONFIG_FILE} and no base model for "
                f"model type '{config.model_type}'"
            ) from None
    return config, arch


def _max_length(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def declared_inputs(
    config: Any, model_class: str, *, seq_len: int | None, part: str | None = None
) -> tuple[InputSpec, ...]:
    """The inputs a ``transformers`` model takes, from its class's ``main_input_name``
    and its config (batch symbolic, sequence ``seq_len`` or ``DEFAULT_SEQ_LEN``)."""
    transformers = _transformers()
    cls = getattr(transformers, model_class)
    main = "input_features" if part == "encoder" else cls.main_input_name
    batch: Dim = BATCH
    if main == "input_ids":
        longest = _max_length(config)
        seq = seq_len or min(DEFAULT_SEQ_LEN, longest or DEFAULT_SEQ_LEN)
        if longest is not None and seq > longest:
            raise ModelError(f"--seq-len {seq} is longer than the model's {longest} positions")
        shape: tuple[Dim, ...] = (batch, seq)
        inputs = [InputSpec("input_ids", shape, "int64", "tokens", int(config.vocab_size))]
        causal = model_class.endswith(("ForCausalLM", "LMHeadModel")) or getattr(
            config, "is_decoder", False
        )
        if not causal and "attention_mask" in inspect.signature(cls.forward).parameters:
            inputs.append(InputSpec("attention_mask", shape, "int64", "ones"))
        return tuple(inputs)
    if main == "pixel_values":
        size = config.image_size
        channels = getattr(config, "num_channels", 3)
        return (InputSpec("pixel_values", (batch, channels, size, size)),)
    if main == "input_features":
        frames = 2 * int(config.max_source_positions)  # Whisper's encoder wants 3000
        return (InputSpec("input_features", (batch, int(config.num_mel_bins), frames)),)
    raise ModelError(f"{model_class}: anetui does not know how to feed '{main}'")


def zoo_inputs(row: ZooModel, seq_len: int | None) -> tuple[InputSpec, ...]:
    """A zoo row's declared inputs (imports transformers, builds no weights)."""
    return declared_inputs(zoo_config(row), row.model, seq_len=seq_len, part=row.part)


def folder_inputs(path: Path, seq_len: int | None) -> tuple[InputSpec, ...]:
    config, arch = folder_config(path)
    return declared_inputs(config, arch, seq_len=seq_len)


# -- the module ----------------------------------------------------------------------
@contextlib.contextmanager
def quiet_transformers() -> Iterator[Any]:
    """transformers with its logging kept to errors and no progress bars (it reports
    weights left unused and draws "Loading weights" on the terminal; anetui's own messages
    are one line); yields the module."""
    transformers = _transformers()
    verbosity = transformers.logging.get_verbosity()
    bars = transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield transformers
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()


def from_folder(path: Path, arch: str, dtype: Any) -> Any:
    """``arch``'s ``from_pretrained`` on a folder: safetensors only (never a pickle), no
    network, no code from the folder, in ``dtype``; a one-line ModelError if it fails."""
    with quiet_transformers() as transformers:
        try:
            return getattr(transformers, arch).from_pretrained(
                str(path),
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
                dtype=dtype,
            )
        except Exception as exc:
            raise ModelError(f"cannot load {path.name}: {one_line(exc)}") from None


def build_module(spec: ModelSpec) -> torch.nn.Module:
    """The eval-mode :class:`NamedIO` module for a "transformers" or "hf" spec, fp32 on the
    CPU; zoo models get random weights from ``WEIGHTS_SEED``."""
    import torch

    transformers = _transformers()
    names = [i.name for i in spec.inputs]
    if spec.kind == "transformers":
        row = ZOO[spec.name]
        config = zoo_config(row)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(WEIGHTS_SEED)
            model = getattr(transformers, row.model)(config)
        if row.part == "encoder":
            model = model.get_encoder()
    else:
        assert spec.path is not None
        _, arch = folder_config(spec.path)
        model = from_folder(spec.path, arch, torch.float32)
    model.eval()
    wrapped = NamedIO(model, names)
    with torch.inference_mode():
        wrapped.learn_outputs(tuple(torch.from_numpy(a) for a in spec.make_inputs().values()))
    module: torch.nn.Module = wrapped
    return module


@functools.cache
def _named_io_class() -> type:
    import torch

    class _NamedIO(torch.nn.Module):
        """A transformers model called with positional inputs in the declared order,
        returning a tuple of its tensor outputs (names in ``output_names``)."""

        def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
            super().__init__()
            self.model = model
            self.input_names = list(input_names)
            self.output_names: list[str] = []

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            kwargs = dict(zip(self.input_names, args, strict=True))
            out = self.model(**kwargs, return_dict=True)
            return tuple(out[name] for name in self.output_names)

        def learn_outputs(self, args: tuple[torch.Tensor, ...]) -> None:
            kwargs = dict(zip(self.input_names, args, strict=True))
            out = self.model(**kwargs, return_dict=True)
            self.output_names = [k for k, v in out.items() if isinstance(v, torch.Tensor)]

    return _NamedIO


def NamedIO(model: Any, input_names: list[str]) -> Any:
    return _named_io_class()(model, input_names)
