"""`anetui convert` and `anetui plan`: model conversion and Core ML's compute plan."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console

from anetui.cli.options import (
    batch_size_option,
    check_output_path,
    input_options,
    input_shape_option,
    model_option,
)
from anetui.errors import AnetuiError
from anetui.models.inputs import InputOverride
from anetui.models.resolve import resolve_model

#: Both commands convert (plan: unless given an .mlpackage) at this precision.
precision_option = click.option(
    "--precision",
    type=click.Choice(["fp16", "fp32"]),
    default="fp16",
    show_default=True,
    help="Compute precision of the converted model.",
)


@click.command()
@model_option(
    help="A model name (`anetui models`), a Hugging Face folder, a .pt2 or TorchScript .pt file."
)
@precision_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Also copy the package here (default: print its cache path).",
)
@input_shape_option(help="The first input's shape (default: the model's).")
@input_options()
@batch_size_option()
@click.option(
    "--to",
    type=click.Choice(["coreml", "onnx"]),
    default="coreml",
    show_default=True,
    help="Core ML ML Program (.mlpackage) or ONNX (.onnx, fp32).",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8", "w8", "w8a8", "int4"]),
    help="Quantize: int8 for ONNX (static QDQ); w8, w8a8 (macOS) or int4 for Core ML.",
)
@click.option(
    "--calibration",
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of .npy/.npz inputs to calibrate int8/w8a8 on (default: random "
    "inputs drawn like the benchmark's).",
)
def convert(
    model: str,
    precision: str,
    out: Path | None,
    input_shape: str | None,
    input_specs: tuple[InputOverride, ...],
    seq_len: int | None,
    batch_size: int,
    to: str,
    quantize: str | None,
    calibration: Path | None,
) -> None:
    """Convert a model to a Core ML ML Program (.mlpackage) or ONNX, cached.

    Conversion runs on any OS; the result lands in the user's cache (keyed by model,
    inputs, precision, torch and converter versions), so a second call is free. Every
    named input keeps its name and its fixed shape; float inputs and outputs are fp32,
    integer inputs int32 in Core ML (int64 in ONNX); the path is printed on stdout.
    --quantize writes the quantized model the coreml-*-w8 … and onnx-cpu-int8 backends run.
    """
    if calibration is not None and quantize not in ("int8", "w8a8"):
        raise click.UsageError("--calibration goes with --quantize int8 or w8a8")
    if quantize is not None:
        if input_specs or seq_len is not None:
            raise click.UsageError(
                "--quantize takes models with one float input: no --input/--seq-len"
            )
        sys.exit(quantize_command(model, quantize, out, input_shape, batch_size, to, calibration))
    sys.exit(
        convert_command(
            model, precision, out, input_shape, batch_size, to, inputs=input_specs, seq_len=seq_len
        )
    )


@click.command()
@model_option(help="A torchvision model name, a model file, or an .mlpackage.")
@click.option(
    "--compute-units",
    type=click.Choice(["all", "cpu", "gpu", "ane"]),
    default="ane",
    show_default=True,
    help="The compute units to plan for.",
)
@precision_option
def plan(model: str, compute_units: str, precision: str) -> None:
    """Core ML's compute plan: the device each operation is planned for and the
    cost-weighted share on the Neural Engine, GPU and CPU (macOS 14.4+)."""
    sys.exit(plan_command(model, compute_units, precision))


def convert_command(
    model: str,
    precision: str,
    out: Path | None,
    input_shape: str | None,
    batch_size: int,
    to: str = "coreml",
    *,
    inputs: tuple[InputOverride, ...] = (),
    seq_len: int | None = None,
) -> int:
    """Convert (or fetch from the cache) and say where the package is, how it was made."""
    from anetui.models.convert.coreml import convert
    from anetui.models.spec import parse_input_shape

    err = Console(stderr=True, soft_wrap=True)
    if out is not None and out.exists():
        raise AnetuiError(f"{out} already exists; choose another --out")
    check_output_path(out, "--out")  # before a conversion that may take minutes
    spec = resolve_model(
        model,
        batch_size=batch_size,
        input_shape=parse_input_shape(input_shape) if input_shape else None,
        inputs=inputs,
        seq_len=seq_len,
    )
    if out is not None and out.exists():
        raise AnetuiError(f"{out} already exists; choose another --out")
    if to == "onnx":
        return _to_onnx(spec, out, err)
    with err.status(f"converting {spec.describe()} ({spec.describe_inputs()}) to Core ML…"):
        result = convert(spec, precision, progress=lambda text: err.print(f"[dim]{text}[/]"))
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    path = result.path
    if out is not None:
        shutil.copytree(result.path, out)
        path = out
    how = (
        "from the cache (no conversion)"
        if result.cached
        else (f"converted via {result.method} in {result.seconds:.1f} s")
    )
    err.print(
        f"{spec.describe()} ({spec.describe_inputs()}) → Core ML ML Program, {precision}, {how}"
    )
    print(path)
    return 0


def plan_command(model: str, compute_units: str, precision: str) -> int:
    """Print Core ML's compute plan for the model, or why there is none here."""
    from anetui.models.convert.coreml import COMPUTE_UNITS, convert, import_coremltools
    from anetui.models.convert.coreml_plan import compute_plan, plan_unavailable_reason

    reason = plan_unavailable_reason()
    if reason is not None:
        raise AnetuiError(reason)
    unit = COMPUTE_UNITS[compute_units]
    spec = resolve_model(model)  # macOS only from here
    package = spec.path if spec.kind == "mlpackage" else convert(spec, precision).path
    assert package is not None
    ct = import_coremltools()
    with tempfile.TemporaryDirectory(prefix="anetui-plan-") as work:
        # Compiled without loading: the plan needs the .mlmodelc, not a model in memory.
        compiled = ct.utils.compile_model(str(package), str(Path(work) / "model.mlmodelc"))
        plan = compute_plan(ct, Path(compiled), unit)
    out = Console()
    shares = ", ".join(f"{device} {share:.1%}" for device, share in plan.share.items())
    out.print(f"{spec.describe()}, compute units {unit}: cost-weighted share {shares}")
    for op, why in plan.fallbacks:
        out.print(f"  {op.operator:<20} {op.output:<32} {op.preferred}: {why}")
    if not plan.fallbacks:
        out.print("  every operation is planned for the best device the compute units allow")
    sys.stdout.flush()
    return 0


def _to_onnx(spec: object, out: Path | None, err: Console) -> int:
    from anetui.models.convert.onnx import export
    from anetui.models.spec import ModelSpec

    assert isinstance(spec, ModelSpec)
    with err.status(f"exporting {spec.describe()} ({spec.describe_inputs()}) to ONNX…"):
        result = export(spec)
    path = result.path
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.path, out)
        data = result.path.with_name(result.path.name + ".data")
        if data.exists():  # weights in a side file, referenced by its name
            shutil.copyfile(data, out.with_name(result.path.name + ".data"))
        path = out
    how = "from the cache (no export)" if result.cached else f"exported in {result.seconds:.1f} s"
    err.print(f"{spec.describe()} ({spec.describe_inputs()}) → ONNX (fp32), {how}")
    print(path)
    return 0


#: --to -> the --quantize schemes it takes.
SCHEMES = {"onnx": ("int8",), "coreml": ("w8", "w8a8", "int4")}


def quantize_command(
    model: str,
    scheme: str,
    out: Path | None,
    input_shape: str | None,
    batch_size: int,
    to: str,
    calibration: Path | None,
) -> int:
    """Quantize (or fetch from the cache), say how and how big, print the path."""
    from anetui.models.convert.quantize_common import calibration_for, size_bytes
    from anetui.models.spec import parse_input_shape

    if scheme not in SCHEMES[to]:
        raise click.UsageError(
            f"--to {to} takes --quantize {' or '.join(SCHEMES[to])}, not {scheme}"
        )
    err = Console(stderr=True, soft_wrap=True)
    if out is not None and out.exists():
        raise AnetuiError(f"{out} already exists; choose another --out")
    check_output_path(out, "--out")
    spec = resolve_model(
        model,
        batch_size=batch_size,
        input_shape=parse_input_shape(input_shape) if input_shape else None,
    )
    progress = lambda text: err.print(f"[dim]{text}[/]")  # noqa: E731
    samples = calibration_for(spec, calibration) if scheme in ("int8", "w8a8") else None
    with err.status(f"quantizing {spec.describe()} {spec.input_shape} ({scheme})…"):
        if to == "onnx":
            from anetui.models.convert import quantize_onnx

            result = quantize_onnx.quantize(spec, samples, progress=progress)
            base_name, base = "fp32 ONNX", _onnx_size(spec)
        else:
            from anetui.models.convert import quantize_coreml
            from anetui.models.convert.coreml import convert as to_coreml

            result = quantize_coreml.quantize(spec, scheme, samples, progress=progress)
            base_name, base = "fp16", size_bytes(to_coreml(spec, "fp16").path)
    path = result.path
    if out is not None:
        if path.is_dir():
            shutil.copytree(path, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
        path = out
    size = size_bytes(result.path)
    err.print(
        f"{spec.describe()} {spec.input_shape} → {'ONNX' if to == 'onnx' else 'Core ML'} "
        f"{scheme}, {result.describe()}: {size / 1e6:.1f} MB "
        f"({size / base:.0%} of the {base_name} model's {base / 1e6:.1f} MB)"
    )
    if result.calibration_note:
        err.print(f"[yellow]note:[/] {result.calibration_note}")
    print(path)
    return 0


def _onnx_size(spec: object) -> int:
    """Bytes of the fp32 export with its weights file (exported now if not cached)."""
    from anetui.models.convert.onnx import export
    from anetui.models.convert.quantize_common import size_bytes
    from anetui.models.spec import ModelSpec

    assert isinstance(spec, ModelSpec)
    if spec.kind == "onnx":
        assert spec.path is not None
        onnx_path = spec.path
    else:
        onnx_path = export(spec).path
    data = onnx_path.with_name(onnx_path.name + ".data")
    return size_bytes(onnx_path) + (size_bytes(data) if data.exists() else 0)
