"""FLOPs of one inference, counted by PyTorch's own counter
(``torch.utils.flop_counter.FlopCounterMode``) on the eager model with the benchmark
input: what lets a reader see how far a backend's achieved GFLOP/s is from the machine.

How torch counts: matrix multiplications and convolutions (and attention) as 2 FLOPs per
multiply-accumulate; elementwise operations, activations, normalisation and pooling are
not counted. So the figure is a floor on the arithmetic, dominated by what a
compute-bound model spends its time on. TorchScript models are not counted (their ops do
not pass through the Python dispatcher the counter hooks into).
"""

from __future__ import annotations

from dataclasses import dataclass

from anetui.errors import one_line
from anetui.models.spec import ModelSpec

#: How the figure was counted, as written into the results.
METHOD = (
    "torch.utils.flop_counter.FlopCounterMode on the eager fp32 model and benchmark input "
    "(matmul/conv/attention: 2 FLOPs per multiply-accumulate; elementwise ops not counted)"
)
#: Model kinds the counter can see into.
COUNTABLE_KINDS = frozenset({"torchvision", "export"})


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one inference (one batch), or None with the reason."""

    flops: int | None
    method: str | None
    reason: str | None = None


def count_flops(spec: ModelSpec) -> FlopCount:
    """FLOPs of one inference of ``spec`` on its benchmark input (one batch). An answer,
    never an exception: a model the counter cannot run says why."""
    if spec.kind not in COUNTABLE_KINDS:
        return FlopCount(None, None, f"not counted for a '{spec.kind}' model (torch models only)")
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from anetui.models.torch_load import load_torch_model

        module = load_torch_model(spec)
        sample = torch.from_numpy(spec.make_input())
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            module(sample)
        total = int(counter.get_total_flops())
    except Exception as exc:  # any model: the bench goes on without the figure
        return FlopCount(None, None, f"the FLOP counter failed: {one_line(exc)}")
    if total <= 0:
        return FlopCount(None, None, "the FLOP counter found no matmul or convolution")
    return FlopCount(total, METHOD)
