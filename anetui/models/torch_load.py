"""PyTorch modules for a :class:`ModelSpec`: torchvision models with seeded random
weights and calibrated BatchNorm, torch.export programs and TorchScript files.
Imports torch only when called.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anetui.errors import one_line
from anetui.models.spec import WEIGHTS_SEED, ModelError, ModelSpec

if TYPE_CHECKING:
    import torch


def load_exported(path: Path) -> Any:
    """A torch.export program from a .pt2 file, loaded so that it cannot run code.

    The bytes are read once, checked (:func:`check_export_archive`: no pickles, no
    compiled code, no expression sympy would ``eval``, only torch operators) and loaded
    from that same buffer, so the file cannot change between the check and the load;
    during the load ``torch.load`` is forced to ``weights_only`` as a second guard.
    """
    import torch

    from anetui.models.pt2_inspect import check_export_archive

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {one_line(exc)}") from None
    check_export_archive(data, path.name)
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    # On a bad archive torch.export logs a traceback at WARNING before raising; the
    # user gets our one-line error instead.
    export_log.setLevel(logging.ERROR)
    try:
        with _weights_only_torch_load():
            return torch.export.load(io.BytesIO(data))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"cannot load {path.name} as a torch.export program: {one_line(exc)}"
        ) from None
    finally:
        export_log.setLevel(level)


_FORCE_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"  # torch/serialization.py reads it per call
_force_lock = threading.Lock()


@contextlib.contextmanager
def _weights_only_torch_load() -> Iterator[None]:
    """Every torch.load in this block uses weights_only=True, whatever its caller asks."""
    with _force_lock:
        previous = os.environ.get(_FORCE_WEIGHTS_ONLY)
        os.environ[_FORCE_WEIGHTS_ONLY] = "1"
        try:
            yield
        finally:
            if previous is None:
                del os.environ[_FORCE_WEIGHTS_ONLY]
            else:
                os.environ[_FORCE_WEIGHTS_ONLY] = previous


def load_torchscript(path: Path) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            return torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise ModelError(
            f"cannot load {path.name} as TorchScript: {one_line(exc)} "
            "(a torch.save'd nn.Module is a pickle anetui will not load; "
            "save with torch.export or torch.jit.script)"
        ) from None


def load_torch_model(spec: ModelSpec) -> torch.nn.Module:
    """The model as an eval-mode torch module on the CPU, in fp32."""
    import torch

    if spec.kind == "torchvision":
        import torchvision

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(WEIGHTS_SEED)
            module: torch.nn.Module = torchvision.models.get_model(spec.name, weights=None)
            try:
                _calibrate_batchnorm(module, spec.input_shape)
            except RuntimeError as exc:
                raise ModelError(
                    f"{spec.name} cannot take input shape {spec.input_shape}: {one_line(exc)}"
                ) from None
    elif spec.kind in ("transformers", "hf"):
        from anetui.models.hf import build_module

        return build_module(spec)  # already in eval mode, its output names learnt
    elif spec.kind == "export":
        assert spec.path is not None
        module = load_exported(spec.path).module()
    elif spec.kind == "torchscript":
        assert spec.path is not None
        module = load_torchscript(spec.path)
    elif spec.kind == "decoder":
        raise ModelError(
            f"{spec.describe()} is a decoder: its runtimes convert it themselves when they run "
            "it (bench --prompt-len/--gen-len: ort-genai-cpu, coreml-*, llamacpp-cpu); "
            "without those options a decoder folder converts as one forward pass"
        )
    else:
        raise ModelError(f"no PyTorch model for a '{spec.kind}' model")
    if spec.kind != "export":
        # An exported GraphModule has no train/eval switch to flip (export fixed it).
        module.eval()
    return module


def tensors_to_numpy(out: Any) -> list[np.ndarray]:
    """A forward pass's result (a tensor, a tuple or list of them, or a dict such as a
    transformers ModelOutput) as host numpy arrays in order: floats as fp32, integers and
    booleans as they are; entries that are not tensors are left out."""
    import torch

    if isinstance(out, torch.Tensor):
        items = [out]
    elif isinstance(out, dict):
        items = [v for v in out.values() if isinstance(v, torch.Tensor)]
    elif isinstance(out, (tuple, list)):
        items = [v for v in out if isinstance(v, torch.Tensor)]
    else:
        items = []
    arrays = []
    for item in items:
        item = item.detach().to("cpu")
        if item.is_floating_point():
            item = item.to(torch.float32)
        arrays.append(np.asarray(item.numpy()))
    return arrays


def output_names(module: Any, spec: ModelSpec, count: int) -> list[str]:
    """The names of a PyTorch model's ``count`` outputs: the transformers wrapper's, the
    file's declared ones, ``output`` for one, else ``output_0`` …"""
    names = list(getattr(module, "output_names", None) or [o.name for o in spec.outputs])
    if len(names) == count:
        return names
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def _calibrate_batchnorm(module: torch.nn.Module, input_shape: tuple[int, ...]) -> None:
    """Give freshly initialised BatchNorm layers real running statistics.

    A random-init network in eval mode normalises with mean 0 / variance 1, so its
    activations shrink ~10x per stage: MobileNetV2's logits end near 1e-9, which fp16
    flushes to zero, making any reduced-precision result meaningless. One seeded
    forward pass in train mode (cumulative averages) sets the statistics a trained
    network would have, so activations stay near unit scale, as with real weights.
    """
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over the calibration batch
    batch = (max(4, input_shape[0]), *input_shape[1:])
    module.train()
    with torch.no_grad():
        module(torch.randn(batch))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    module.eval()
