from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anetui.models.resolve import classification_models, default_resolution, resolve_model
from anetui.models.spec import ModelError, parse_input_shape
from anetui.models.torch_load import load_torch_model


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    ("text", "shape"),
    [("1,3,224,224", (1, 3, 224, 224)), ("2x3x32x32", (2, 3, 32, 32)), (" 4, 10 ", (4, 10))],
)
def test_parse_input_shape(text: str, shape: tuple[int, ...]) -> None:
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["", "1,,3", "1,3,a,4", "1,0,3,3", "1,-3,3,3", "7"])
def test_bad_input_shapes_are_one_line_errors(text: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_input_shape(text)
    assert "bad input shape" in str(info.value) and "\n" not in str(info.value)


def test_torchvision_names_and_default_resolutions() -> None:
    names = classification_models()
    assert "mobilenet_v2" in names and "resnet18" in names
    assert "fasterrcnn_resnet50_fpn" not in names  # detection, not classification
    assert default_resolution("mobilenet_v2") == 224
    assert default_resolution("inception_v3") == 299
    spec = resolve_model("mobilenet_v2", batch_size=4)
    assert spec.input_shape == (4, 3, 224, 224) and spec.kind == "torchvision"


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'mobilenet'.*did you mean.*mobilenet_v2"):
        resolve_model("mobilenet")
    with pytest.raises(ModelError, match=r"unknown model 'nope'"):
        resolve_model("nope")


def test_batch_size_must_agree_with_the_shape() -> None:
    with pytest.raises(ModelError, match=r"disagrees"):
        resolve_model("mobilenet_v2", batch_size=2, input_shape=(4, 3, 224, 224))
    with pytest.raises(ModelError, match=r"batch size"):
        resolve_model("mobilenet_v2", batch_size=0)


def test_input_is_deterministic_and_weights_are_seeded() -> None:
    spec = resolve_model("mobilenet_v3_small", input_shape=(1, 3, 32, 32))
    assert np.array_equal(spec.make_input(), spec.make_input())
    assert spec.make_input().dtype == np.float32
    a, b = load_torch_model(spec), load_torch_model(spec)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not a.training


def test_torchscript_file_is_loaded_and_its_shape_assumed(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(path))
    spec = resolve_model(str(path))
    assert spec.kind == "torchscript" and spec.input_shape == (1, 3, 224, 224)
    assert spec.notes and "--input-shape" in spec.notes[0]
    model = load_torch_model(spec)
    assert model(
        torch.from_numpy(resolve_model(str(path), input_shape=(1, 3, 8, 8)).make_input())
    ).shape == (1, 5)


def test_exported_program_gives_its_own_input_shape(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(Tiny().eval(), (torch.randn(2, 3, 16, 16),)), str(path))
    spec = resolve_model(str(path))
    assert spec.kind == "export" and spec.input_shape == (2, 3, 16, 16)
    out = load_torch_model(spec)(torch.from_numpy(spec.make_input()))
    assert out.shape == (2, 5)


def test_a_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save(Tiny(), path)
    with pytest.raises(ModelError, match=r"cannot load pickled\.pt as TorchScript.*pickle"):
        resolve_model(str(path))


@pytest.mark.parametrize("name", ["broken.pt2", "broken.pt"])
def test_corrupt_files_are_one_line_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00not a model at all" * 10)
    with pytest.raises(ModelError) as info:
        resolve_model(str(path))
    assert "cannot load broken" in str(info.value) and "\n" not in str(info.value)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found"):
        resolve_model(str(tmp_path / "absent.pt2"))
    other = tmp_path / "model.tflite"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"unsupported model file 'model\.tflite'"):
        resolve_model(str(other))
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not protobuf at all \xff\xfe")
    with pytest.raises(ModelError, match=r"cannot read model\.onnx as ONNX"):
        resolve_model(str(broken))


def test_random_weights_keep_activations_at_a_realistic_scale() -> None:
    # Uncalibrated, MobileNetV2's logits end near 1e-9 and fp16 flushes them to zero.
    spec = resolve_model("mobilenet_v2", input_shape=(1, 3, 96, 96))
    model = load_torch_model(spec)
    assert not model.training
    x = torch.from_numpy(spec.make_input())
    with torch.inference_mode():
        out = model(x)
        half = model.half()(x.half()).float()
    assert 1e-2 < float(out.abs().max()) < 1e3
    assert float((half - out).abs().max() / out.abs().max()) < 0.05
