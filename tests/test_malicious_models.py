"""Model files that would run code if loaded are refused before anything runs.

Each crafted file is first shown to run code through plain ``torch.export.load`` (so the
test can fail), then given to anetui, which must refuse it with a one-line error and
leave no marker file behind.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from pathlib import Path

import pytest

from anetui.models.resolve import resolve_model
from anetui.models.spec import ModelError
from tests.conftest import anetui_cmd
from tests.malicious_models import evil_pt2_files, evil_torch_save, evil_torchscript, tiny_export

#: Crafted archives that really run code through an unchecked torch.export.load (torch
#: 2.14); the others are refused by torch too, later, but must never get that far.
RUNS_CODE_IN_TORCH = {
    "sample-inputs",
    "pickled-weight",
    "pickled-constant",
    "opaque-constant",
    "legacy-weights",
    "sympy-eval",
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], Path]:
    out = tmp_path_factory.mktemp("crafted")
    marker = out / "code-ran"
    good = tiny_export(out / "good.pt2")
    return good, evil_pt2_files(good, out, marker), marker


def test_a_genuine_archive_still_loads(crafted: tuple[Path, dict[str, Path], Path]) -> None:
    good, _, _ = crafted
    spec = resolve_model(str(good))
    assert spec.kind == "export" and spec.input_shape == (1, 3, 8, 8)


@pytest.mark.parametrize(
    "case",
    sorted(RUNS_CODE_IN_TORCH | {"os-target", "aoti"}),
)
def test_crafted_pt2_is_refused_before_any_code_runs(
    crafted: tuple[Path, dict[str, Path], Path], case: str
) -> None:
    import torch

    _, files, marker = crafted
    marker.unlink(missing_ok=True)
    if case in RUNS_CODE_IN_TORCH:
        torch_log = logging.getLogger("torch")
        level = torch_log.level
        torch_log.setLevel(logging.CRITICAL)  # torch logs the fallback it takes
        with contextlib.suppress(Exception):
            torch.export.load(str(files[case]))
        torch_log.setLevel(level)
        assert marker.exists(), f"the {case} file no longer runs code in plain torch"
        marker.unlink()
    with pytest.raises(ModelError) as refused:
        resolve_model(str(files[case]))
    assert not marker.exists()
    assert "anetui loads no code from model files" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_dynamic_shape_expressions_pass_the_check(tmp_path: Path) -> None:
    """A real export with a symbolic batch (expressions like s0, 2*s0) is accepted."""
    import torch

    from anetui.models.pt2_inspect import check_export_archive

    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, x]).flatten(1)

    batch = torch.export.Dim("batch", min=2, max=64)
    program = torch.export.export(Flat(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: batch}})
    path = tmp_path / "dynamic.pt2"
    torch.export.save(program, str(path))
    assert b"expr_str" in path.read_bytes()
    check_export_archive(path.read_bytes(), path.name)  # raises if refused


def test_torchscript_with_a_pickle_inside_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    for path in (evil_torchscript(tmp_path, marker), evil_torch_save(tmp_path, marker)):
        with pytest.raises(ModelError, match="cannot load"):
            resolve_model(str(path))
        assert not marker.exists(), path.name


def test_the_cli_refuses_a_crafted_file_in_one_line(
    crafted: tuple[Path, dict[str, Path], Path],
) -> None:
    _, files, marker = crafted
    marker.unlink(missing_ok=True)
    result = subprocess.run(
        anetui_cmd("convert", "--to", "onnx", "--model", str(files["sample-inputs"])),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert not marker.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sample inputs are a pickle" in lines[0], result.stderr
