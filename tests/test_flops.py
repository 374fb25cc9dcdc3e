"""FLOPs per inference by torch's counter, and the achieved GFLOP/s in the results."""

from __future__ import annotations

from pathlib import Path

import torch

from anetui.models.flops import count_flops
from anetui.models.resolve import resolve_model


def test_an_exported_linear_layer_counts_two_flops_per_multiply_accumulate(
    tmp_path: Path,
) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    path = tmp_path / "linear.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(3, 8),)), path)
    counted = count_flops(resolve_model(str(path)))
    # 3 rows × 8 inputs × 4 outputs multiply-accumulates, 2 FLOPs each; the bias add and
    # the ReLU are elementwise: not counted.
    assert counted.flops == 2 * 3 * 8 * 4
    assert counted.method is not None and "2 FLOPs per multiply-accumulate" in counted.method


def test_a_torchscript_model_is_not_counted_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "linear.pt"
    torch.jit.script(torch.nn.Linear(8, 4)).save(str(path))
    spec = resolve_model(str(path), input_shape=(1, 8))
    counted = count_flops(spec)
    assert counted.flops is None and counted.method is None
    assert counted.reason is not None and "torchscript" in counted.reason
