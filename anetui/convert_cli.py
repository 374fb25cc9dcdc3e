"""`anetui convert` and `anetui plan`: model conversion and Core ML's compute plan."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rich.console import Console

from anetui.errors import AnetuiError
from anetui.models import resolve_model


def convert_command(
    model: str,
    precision: str,
    out: Path | None,
    input_shape: str | None,
    batch_size: int,
    to: str = "coreml",
) -> int:
    """Convert (or fetch from the cache) and say where the package is, how it was made."""
    from anetui.coreml_convert import convert
    from anetui.models import parse_input_shape

    err = Console(stderr=True, soft_wrap=True)
    spec = resolve_model(
        model,
        batch_size=batch_size,
        input_shape=parse_input_shape(input_shape) if input_shape else None,
    )
    if out is not None and out.exists():
        raise AnetuiError(f"{out} already exists; choose another --out")
    if to == "onnx":
        return _to_onnx(spec, out, err)
    with err.status(f"converting {spec.describe()} {spec.input_shape} to Core ML ({precision})…"):
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
    err.print(f"{spec.describe()} {spec.input_shape} → Core ML ML Program, {precision}, {how}")
    print(path)
    return 0


def plan_command(model: str, compute_units: str, precision: str) -> int:
    """Print Core ML's compute plan for the model, or why there is none here."""
    from anetui.coreml_convert import convert, import_coremltools
    from anetui.coreml_plan import compute_plan, plan_unavailable_reason

    reason = plan_unavailable_reason()
    if reason is not None:
        raise AnetuiError(reason)
    unit = {"all": "ALL", "cpu": "CPU_ONLY", "gpu": "CPU_AND_GPU", "ane": "CPU_AND_NE"}[
        compute_units
    ]
    spec = resolve_model(model)  # macOS only from here
    package = spec.path if spec.kind == "mlpackage" else convert(spec, precision).path
    assert package is not None
    ct = import_coremltools()
    compiled = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, unit))
    plan = compute_plan(ct, Path(compiled.get_compiled_model_path()), unit)
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
    from anetui.models import ModelSpec
    from anetui.onnx_convert import export

    assert isinstance(spec, ModelSpec)
    with err.status(f"exporting {spec.describe()} {spec.input_shape} to ONNX…"):
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
    err.print(f"{spec.describe()} {spec.input_shape} → ONNX (fp32), {how}")
    print(path)
    return 0
