"""Options shared by several commands, and the one builder of a RunConfig from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from anetui.core.config import RunConfig
from anetui.models.spec import parse_input_shape

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def backend_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    ids = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not ids:
        raise click.BadParameter("give at least one backend id, e.g. torch-cpu,torch-cpu-opt")
    from anetui.backends.registry import REGISTRY

    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise click.BadParameter(
            f"unknown backend {', '.join(unknown)} (known: {', '.join(REGISTRY)})"
        )
    return ids


def sampling_options(command: Callable[..., None]) -> Callable[..., None]:
    """--interval-ms, --speed and --keep-root, shared by `bench` and `power`."""
    for option in reversed(
        (
            click.option(
                "--interval-ms",
                type=click.IntRange(min=10),
                default=250,
                show_default=True,
                help="Power sampling interval (ms).",
            ),
            click.option(
                "--speed",
                type=click.FloatRange(min=0, min_open=True),
                default=1.0,
                show_default=True,
                help="Replay speed for replay:FILE.",
            ),
            click.option(
                "--keep-root",
                is_flag=True,
                help="Under sudo, stay root after starting the power source (default: "
                "drop to the invoking user before loading models or writing files).",
            ),
        )
    ):
        command = option(command)
    return command


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """What to run and how: shared by `bench` and the dashboard."""
    for option in reversed(
        (
            click.option(
                "--backends",
                "backend_ids",
                callback=backend_list,
                metavar="ID,ID,…",
                help="Backends to run, comma-separated. Default: every backend available here.",
            ),
            click.option(
                "--model",
                default="mobilenet_v2",
                show_default=True,
                help="A torchvision classification model (random weights, nothing downloaded) "
                "or a model file: .pt2 (torch.export), TorchScript .pt, Core ML .mlpackage "
                "or .onnx.",
            ),
            click.option(
                "--batch-size",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Batch size; the input is (N, 3, R, R) with the model's own resolution R.",
            ),
            click.option(
                "--input-shape", metavar="N,C,H,W", help="Input shape, overriding --batch-size."
            ),
            click.option(
                "--dtype",
                type=click.Choice(["fp32", "fp16", "bf16"]),
                help="Precision for the backends that can compute in it (the others "
                "say why not). Default: each backend's own (fp32; fp16 for Core ML and "
                "torch-cuda-graph).",
            ),
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                help="Intra-op CPU threads (torch, ONNX Runtime, OpenVINO, ExecuTorch). "
                "Default: each runtime's own.",
            ),
            click.option(
                "--warmup",
                type=click.IntRange(min=0),
                default=10,
                show_default=True,
                help="Untimed inferences per backend before timing.",
            ),
            click.option(
                "--reference",
                metavar="ID",
                help="Backend the ratios are taken against. Default: torch-cpu, else the first.",
            ),
        )
    ):
        command = option(command)
    return command


def run_config(
    *, input_shape: str | None, backend_ids: tuple[str, ...] | None, **fields: Any
) -> RunConfig:
    """The RunConfig for the shared options (``--input-shape`` parsed here)."""
    shape = parse_input_shape(input_shape) if input_shape else None
    return RunConfig(input_shape=shape, backends=backend_ids, **fields)
