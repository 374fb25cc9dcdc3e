"""``torch-cpu-int8``: torch-cpu-compile with the precision changed to int8.

PT2E with the X86 Inductor quantizer (torchao's ``X86InductorQuantizer``: int8
activations, per-channel int8 weights, static ranges from the calibration inputs), then
``torch.compile`` with Inductor's freezing on, which folds the quantized weights into
constants and lowers each quantize/dequantize pattern to oneDNN's int8 convolution and
linear kernels (VNNI or AMX where the CPU has them). Chosen over torchao's
``quantize_(…)`` configs: those quantize linear layers only, and a convolutional
network would stay fp32. Without compilation the PT2E model runs its quantize/dequantize
pairs as separate fp32 operators (slower than fp32), so int8 on PyTorch's CPU means
compiling: its sibling is torch-cpu-compile, and the cost (~1 min cold on two cores) is
in compile s. Not cached on disk beyond Inductor's own FX graph cache.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anetui.backends.base import BackendDescription, BackendError, BackendOptions, PrepareInfo
from anetui.backends.torch import TorchCpuCompiled
from anetui.models.convert.executorch import quiet_pytree_log
from anetui.models.convert.quantize_common import Calibration, calibration_for
from anetui.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from anetui.backends.torch_base import Examples

METHOD = "PT2E X86InductorQuantizer (static int8, per-channel weights) + Inductor freezing"


class TorchCpuInt8(TorchCpuCompiled):
    """Quantized in ``_optimise`` (prepare's compile step), then compiled with freezing."""

    dtypes = ("int8",)

    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        if options.dtype not in (None, "int8"):
            raise BackendError(
                f"{description.id} computes in int8 (the quantized sibling of "
                f"{description.sibling_of}), not {options.dtype}"
            )
        super().__init__(description, options)
        self._calibration_dir = options.calibration
        self._calibration: Calibration | None = None
        self._quantize_s = 0.0

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        self._calibration = calibration_for(spec, self._calibration_dir)
        return super().prepare(spec)

    def _optimise(self, model: torch.nn.Module, examples: Examples) -> Callable[[], Any]:
        import torch
        from torch._inductor import config as inductor_config

        started = time.perf_counter()
        self.phase = "quantizing"
        with torch.no_grad(), warnings.catch_warnings(), quiet_pytree_log():
            warnings.simplefilter("ignore")
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
                X86InductorQuantizer,
                get_default_x86_inductor_quantization_config,
            )

            quantizer = X86InductorQuantizer()
            quantizer.set_global(get_default_x86_inductor_quantization_config())
            # Exported in contiguous layout: channels_last is the compiled graph's choice.
            # Strict (TorchDynamo) first: non-strict export gives a module called twice
            # (ResNet's one ReLU) one source partition, which the quantizer refuses
            # ("Input partition has more than one output node").
            args = tuple(example.contiguous() for example in examples)
            try:
                captured = torch.export.export(model, args, strict=True).module()
            except Exception:  # a model Dynamo cannot trace: the non-strict export
                captured = torch.export.export(model, args).module()
            prepared = prepare_pt2e(captured, quantizer)
            assert self._calibration is not None
            for sample in self._calibration.samples:  # observers record activation ranges
                prepared(torch.from_numpy(sample))
            converted = convert_pt2e(prepared)
        self._quantize_s = time.perf_counter() - started
        self.phase = "compiling"
        # Freezing makes the int8 weights constants that oneDNN prepacks; without it
        # Inductor dequantizes them at every call.
        with inductor_config.patch(freezing=True), torch.no_grad():
            return super()._optimise(converted, examples)

    def _notes(self) -> tuple[str, ...]:
        assert self._calibration is not None
        return (
            f"quantized int8 with {METHOD} in {self._quantize_s:.1f} s (part of compile s)",
            "Inductor's freezing is on here (oneDNN's int8 kernels need the weights as "
            "constants) and off in torch-cpu-compile: part of the ratio may be freezing's",
            self._calibration.note,
        )
