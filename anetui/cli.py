"""The `anetui` command. Results go to stdout; progress, warnings and errors to stderr.

Nothing heavy is imported at module level: `anetui --help` and `anetui doctor` never
import torch. Exit codes: 0 success, 1 a measurement or input error (one line on
stderr), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from anetui import __version__
from anetui.errors import AnetuiError, one_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _backend_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    ids = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not ids:
        raise click.BadParameter("give at least one backend id, e.g. torch-cpu,torch-cpu-opt")
    from anetui.backends import REGISTRY

    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise click.BadParameter(
            f"unknown backend {', '.join(unknown)} (known: {', '.join(REGISTRY)})"
        )
    return ids


def _sampling_options(command: Callable[..., None]) -> Callable[..., None]:
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


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    """What to run and how: shared by `bench` and the dashboard."""
    for option in reversed(
        (
            click.option(
                "--backends",
                "backend_ids",
                callback=_backend_list,
                metavar="ID,ID,…",
                help="Backends to run, comma-separated. Default: every backend available here.",
            ),
            click.option(
                "--model",
                default="mobilenet_v2",
                show_default=True,
                help="A torchvision classification model (random weights, nothing downloaded) "
                "or a model file: .pt2 (torch.export) or TorchScript .pt.",
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
                help="Precision for every backend. Default: each backend's own "
                "(fp32; fp16 for torch-cuda-graph).",
            ),
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                help="Intra-op CPU threads for torch. Default: torch's own (the core count).",
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


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="anetui")
@_run_options
@click.option(
    "--power",
    "power_spec",
    default="auto",
    show_default=True,
    metavar="SOURCE",
    help="auto (the first that runs here), powermetrics, rapl, nvml, replay:FILE, or none.",
)
@_sampling_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("anetui-snapshots"),
    show_default=True,
    help="Folder for snapshots (s).",
)
@click.option(
    "--auto-seconds",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds per backend when auto-cycling (a).",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Length of an idle-baseline measurement (i).",
)
@click.option("--snapshot-on-exit", is_flag=True, help="Write a snapshot when quitting.")
@click.option(
    "--exit-after",
    "exit_after_s",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Quit after this many seconds (scripted captures, benchmarks).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    backend_ids: tuple[str, ...] | None,
    model: str,
    batch_size: int,
    input_shape: str | None,
    dtype: str | None,
    threads: int | None,
    warmup: int,
    reference: str | None,
    power_spec: str,
    interval_ms: int,
    speed: float,
    keep_root: bool,
    out_dir: Path,
    auto_seconds: float,
    idle_seconds: float,
    snapshot_on_exit: bool,
    exit_after_s: float | None,
) -> None:
    """Measure how fast, and at what energy per inference, a model runs on each backend
    of this machine (PyTorch CPU/CUDA/MPS, Core ML, ONNX Runtime).

    With no command, open the live dashboard (`sudo anetui` for root-only power
    sources). `anetui doctor` shows what can run here; `anetui bench` measures headlessly.
    """
    if ctx.invoked_subcommand is not None:
        return
    from anetui.config import RunConfig
    from anetui.models import parse_input_shape

    config = RunConfig(
        model=model,
        batch_size=batch_size,
        input_shape=parse_input_shape(input_shape) if input_shape else None,
        backends=backend_ids,
        dtype=dtype,
        threads=threads,
        warmup=warmup,
        iterations=None,
        duration_s=None,
        reference=reference,
        power=power_spec,
        interval_ms=interval_ms,
        replay_speed=speed,
        keep_root=keep_root,
        out_dir=out_dir,
    )
    from anetui.dashboard import run_dashboard

    code = run_dashboard(
        config,
        auto_seconds=auto_seconds,
        idle_seconds=idle_seconds,
        snapshot_on_exit=snapshot_on_exit,
        exit_after_s=exit_after_s,
    )
    if code:
        sys.exit(code)


@cli.command()
@_run_options
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    help="Timed inferences per backend (instead of --duration).",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of timed inference per backend.  [default: 10]",
)
@click.option(
    "--interleave",
    is_flag=True,
    help="Alternate the backends in ~1 s rounds so drift and heat fall on all equally.",
)
@click.option(
    "--power",
    "power_spec",
    default="none",
    show_default=True,
    metavar="SOURCE",
    help="Measure energy: auto, powermetrics (macOS, root), rapl (Linux, root), nvml "
    "(NVIDIA), replay:FILE (a recorded powermetrics stream, looped), or none.",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Measure the idle baseline (power with nothing running) for this long first.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results (schema anetui.results/1) to this file.",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown report to this file.",
)
@_sampling_options
def bench(
    backend_ids: tuple[str, ...] | None,
    model: str,
    batch_size: int,
    input_shape: str | None,
    dtype: str | None,
    threads: int | None,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
    interleave: bool,
    reference: str | None,
    power_spec: str,
    interval_ms: int,
    idle_seconds: float,
    speed: float,
    keep_root: bool,
    json_path: Path | None,
    markdown_path: Path | None,
) -> None:
    """Benchmark backends headlessly and print a results table and ratio summary.

    Latencies are in milliseconds: p50 with its 95% confidence interval, p90, p99,
    p99.9, mean, stddev, min, max; throughput in inferences per second of wall time
    including the harness. Load, compile and first-inference times are shown apart.
    """
    from anetui.config import DEFAULT_DURATION_S, RunConfig
    from anetui.models import parse_input_shape

    if iterations is not None and duration_s is not None:
        raise click.UsageError("give --iterations or --duration, not both")
    if reference is not None and backend_ids is not None and reference not in backend_ids:
        raise click.UsageError(f"--reference {reference} is not among --backends")
    if iterations is None and duration_s is None:
        duration_s = DEFAULT_DURATION_S
    shape = parse_input_shape(input_shape) if input_shape else None
    config = RunConfig(
        model=model,
        batch_size=batch_size,
        input_shape=shape,
        backends=backend_ids,
        dtype=dtype,
        threads=threads,
        warmup=warmup,
        iterations=iterations,
        duration_s=duration_s,
        interleave=interleave,
        reference=reference,
        power=power_spec,
        interval_ms=interval_ms,
        idle_seconds=idle_seconds,
        replay_speed=speed,
        keep_root=keep_root,
    )
    from anetui.bench import run_bench

    code = run_bench(config, json_path=json_path, markdown_path=markdown_path)
    if code:
        sys.exit(code)


@cli.command()
@click.option(
    "--source",
    "spec",
    default="auto",
    show_default=True,
    metavar="SOURCE",
    help="auto, powermetrics, rapl, nvml or replay:FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sample (JSON lines).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many samples.")
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds.",
)
@click.option(
    "--parse",
    "parse_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Parse a recorded powermetrics file instead: one JSON object per sample.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["plist", "text"]),
    help="Format of the --parse file. Default: detected from its first bytes.",
)
@_sampling_options
def power(
    spec: str,
    interval_ms: int,
    as_json: bool,
    count: int | None,
    duration_s: float | None,
    speed: float,
    keep_root: bool,
    parse_path: Path | None,
    fmt: str | None,
) -> None:
    """Show power samples live, or parse a powermetrics recording (--parse).

    Each sample is a window: t_start_ns, t_end_ns, elapsed_ms, rails_mj (energy per rail,
    mJ), rails_w (mean power, W), thermal_pressure and clusters (frequency in MHz, active
    share 0–1). Rails a source does not report are absent, never 0.
    """
    from anetui import power_cli

    if parse_path is not None:
        code = power_cli.parse_file(parse_path, fmt)
    else:
        code = power_cli.live(spec, interval_ms, as_json, count, duration_s, speed, keep_root)
    if code:
        sys.exit(code)


@cli.command()
@click.option(
    "--model",
    default="mobilenet_v2",
    show_default=True,
    help="A torchvision model name, a .pt2 or TorchScript .pt file.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp16", "fp32"]),
    default="fp16",
    show_default=True,
    help="Compute precision of the converted model.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Also copy the package here (default: print its cache path).",
)
@click.option("--input-shape", metavar="N,C,H,W", help="Input shape (default: the model's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--to",
    type=click.Choice(["coreml", "onnx"]),
    default="coreml",
    show_default=True,
    help="Core ML ML Program (.mlpackage) or ONNX (.onnx, fp32).",
)
def convert(
    model: str,
    precision: str,
    out: Path | None,
    input_shape: str | None,
    batch_size: int,
    to: str,
) -> None:
    """Convert a model to a Core ML ML Program (.mlpackage) or ONNX, cached.

    Conversion runs on any OS; the result lands in the user's cache (keyed by model,
    input shape, precision, torch and converter versions), so a second call is free.
    Inputs and outputs are fp32; the path is printed on stdout.
    """
    from anetui.convert_cli import convert_command

    sys.exit(convert_command(model, precision, out, input_shape, batch_size, to))


@cli.command()
@click.option(
    "--model",
    default="mobilenet_v2",
    show_default=True,
    help="A torchvision model name, a model file, or an .mlpackage.",
)
@click.option(
    "--compute-units",
    type=click.Choice(["all", "cpu", "gpu", "ane"]),
    default="ane",
    show_default=True,
    help="The compute units to plan for.",
)
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
def plan(model: str, compute_units: str, precision: str) -> None:
    """Core ML's compute plan: the device each operation is planned for and the
    cost-weighted share on the Neural Engine, GPU and CPU (macOS 14.4+)."""
    from anetui.convert_cli import plan_command

    sys.exit(plan_command(model, compute_units, precision))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown here instead of stdout.",
)
def report(files: tuple[Path, ...], out: Path | None) -> None:
    """Turn saved results (bench --json, dashboard snapshots) into one Markdown comparison."""
    from anetui.compare import comparison_markdown
    from anetui.report import write_atomic

    text = comparison_markdown(list(files))
    if out is None:
        click.echo(text)
    else:
        write_atomic(out, text)
        click.echo(f"wrote {out}", err=True)


@cli.command()
def doctor() -> None:
    """List every backend known, available here or not, with the reason; fast (no torch)."""
    from anetui.doctor import print_doctor

    print_doctor()


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (errors become one line on stderr)."""
    try:
        cli.main(args=argv, prog_name="anetui", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("anetui: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except AnetuiError as exc:
        click.echo(f"anetui: error: {exc}", err=True)
        return EXIT_FAILED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    except KeyboardInterrupt:
        click.echo("anetui: interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug or an input we did not foresee: still one line
        if os.environ.get("ANETUI_DEBUG"):
            raise
        click.echo(
            f"anetui: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(ANETUI_DEBUG=1 shows the traceback)",
            err=True,
        )
        return EXIT_FAILED
    return EXIT_OK
