"""A tiny convolutional network saved as a torch.export ``.pt2``: real conversions and
lowerings of it take a fraction of what a torchvision model takes."""

from __future__ import annotations

from pathlib import Path

from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelSpec

TINY_SHAPE = (1, 3, 32, 32)


def save_tiny_export(folder: Path) -> ModelSpec:
    """Conv + BatchNorm + ReLU + pooling + Linear, fixed seed, saved and resolved."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.nn.functional.relu(self.bn(self.conv(x)))
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(0)
    path = folder / "tiny.pt2"
    program = torch.export.export(Tiny().eval(), (torch.randn(*TINY_SHAPE),))
    torch.export.save(program, str(path))
    return resolve_model(str(path))


def save_tiny_classifier(folder: Path) -> ModelSpec:
    """Two convolutions and a classifier head, big enough that every quantizer touches
    its weights (coremltools leaves tensors under 2048 elements alone), small enough to
    quantize in a second or two. Fixed seed, saved and resolved."""
    import torch

    class TinyClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 32, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(32)
            self.conv2 = torch.nn.Conv2d(32, 32, 3, padding=1)
            self.fc = torch.nn.Linear(32, 100)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.nn.functional.relu(self.bn(self.conv1(x)))
            y = torch.nn.functional.relu(self.conv2(y))
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(0)
    path = folder / "tiny_classifier.pt2"
    program = torch.export.export(TinyClassifier().eval(), (torch.randn(*TINY_SHAPE),))
    torch.export.save(program, str(path))
    return resolve_model(str(path))
