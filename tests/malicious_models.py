"""Crafted model files that run code (create a marker file) if a loader unpickles them,
evaluates their shape expressions or calls their graph targets. Built from a real
torch.export archive of a tiny module, rewritten entry by entry."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Opener:
    """Unpickling this opens (creates) ``path``: a stand-in for any code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (self.path, "w"))


def torch_saved(obj: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tiny_export(path: Path) -> Path:
    """A genuine .pt2 with a parameter, a buffer, a lifted constant and sample inputs."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.register_buffer("k", torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + self.k.sum() + torch.tensor([1.0]).sum()

    program = torch.export.export(Tiny().eval(), (torch.randn(1, 3, 8, 8),))
    torch.export.save(program, str(path))
    return path


def rewrite(src: Path, dst: Path, changes: dict[str, Callable[[bytes], bytes] | bytes]) -> Path:
    """Copy the archive, replacing (or adding) entries named without the root folder."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        seen = set()
        for info in zin.infolist():
            key = info.filename.split("/", 1)[1]
            data = zin.read(info.filename)
            change = changes.get(key)
            if change is not None:
                data = change if isinstance(change, bytes) else change(data)
                seen.add(key)
            zout.writestr(info.filename, data)
        for key, change in changes.items():
            if key not in seen:
                assert isinstance(change, bytes), key
                zout.writestr(f"{root}/{key}", change)
    return dst


def _edit_json(edit: Callable[[Any], None]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        doc = json.loads(data)
        edit(doc)
        return json.dumps(doc).encode()

    return apply


def evil_pt2_files(good: Path, out: Path, marker: Path) -> dict[str, Path]:
    """One crafted archive per way torch.export.load can be made to run code."""

    def pickled_weight(doc: Any) -> None:
        doc["config"]["k"]["use_pickle"] = True

    def pickled_constant(doc: Any) -> None:
        entry = doc["config"]["lifted_tensor_0"]
        entry["use_pickle"] = True

    def opaque_constant(doc: Any) -> None:
        doc["config"]["lifted_tensor_0"].update(path_name="opaque_obj_0", use_pickle=True)

    def first_tensor(doc: Any) -> dict[str, Any]:
        values: dict[str, Any] = doc["graph_module"]["graph"]["tensor_values"]
        return values[next(iter(values))]

    def eval_expression(doc: Any) -> None:
        first_tensor(doc)["sizes"][0] = {
            "as_expr": {
                "expr_str": f"__import__('builtins').open('{marker}', 'w') and 1",
                "hint": {"as_int": 1},
            }
        }

    def os_call(doc: Any) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.serialization.os.system"

    return {
        "sample-inputs": rewrite(
            good, out / "sample.pt2", {"data/sample_inputs/model.pt": torch_saved(Opener(marker))}
        ),
        "pickled-weight": rewrite(
            good,
            out / "weight.pt2",
            {
                "data/weights/model_weights_config.json": _edit_json(pickled_weight),
                "data/weights/weight_2": torch_saved(Opener(marker)),
            },
        ),
        "pickled-constant": rewrite(
            good,
            out / "constant.pt2",
            {
                "data/constants/model_constants_config.json": _edit_json(pickled_constant),
                "data/constants/tensor_0": torch_saved(Opener(marker)),
            },
        ),
        "opaque-constant": rewrite(
            good,
            out / "opaque.pt2",
            {
                "data/constants/model_constants_config.json": _edit_json(opaque_constant),
                "data/constants/opaque_obj_0": pickle.dumps(Opener(marker)),
            },
        ),
        "legacy-weights": rewrite(
            good, out / "legacy.pt2", {"data/weights/model.pt": torch_saved(Opener(marker))}
        ),
        "sympy-eval": rewrite(
            good, out / "expr.pt2", {"models/model.json": _edit_json(eval_expression)}
        ),
        "os-target": rewrite(good, out / "target.pt2", {"models/model.json": _edit_json(os_call)}),
        "aoti": rewrite(good, out / "aoti.pt2", {"data/aotinductor/model/model.so": b"\x7fELF"}),
    }


def evil_torchscript(out: Path, marker: Path) -> Path:
    """A real TorchScript archive whose data.pkl is replaced by a code-running pickle."""
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    good = out / "good_script.pt"
    torch.jit.script(Tiny()).save(str(good))
    return rewrite(good, out / "evil_script.pt", {"data.pkl": pickle.dumps(Opener(marker), 2)})


def evil_torch_save(out: Path, marker: Path) -> Path:
    """A torch.save'd object (a pickle) named like a TorchScript file."""
    path = out / "evil_save.pt"
    path.write_bytes(torch_saved(Opener(marker)))
    return path
