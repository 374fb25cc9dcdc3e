"""`anetui sweep`: how latency, throughput and energy scale with the batch size or the
thread count. Each point is one bench session (the same measuring path as `bench`,
``cli.bench.measure``); one power source runs over all the points."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from anetui import privileges
from anetui.cli.bench import measure, start_power
from anetui.cli.options import (
    EXIT_USAGE,
    FiniteFloatRange,
    StopRequests,
    backends_option,
    check_output_path,
    duration_option,
    file_option,
    input_shape_option,
    iterations_option,
    keep_rail_option,
    model_option,
    power_option,
    run_config,
    sampling_options,
)
from anetui.cli.outputs import html_option
from anetui.core.config import RunConfig
from anetui.core.sweep import AXES, BY_NAME, config_for, points
from anetui.errors import AnetuiError
from anetui.report import files, html, terminal
from anetui.report import sweep as sweep_report
from anetui.report.results_json import to_json

#: Seconds of timed inference per backend and point when neither limit is given.
DEFAULT_POINT_S = 3.0


def int_list(_ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4): positive integers, duplicates dropped, order kept."""
    if value is None:
        return ()
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of integers such as 1,2,4") from None
    if not numbers or min(numbers) < 1:
        raise click.BadParameter(f"{value!r}: give positive integers such as 1,2,4")
    return tuple(dict.fromkeys(numbers))


def _axis_options(command: Callable[..., None]) -> Callable[..., None]:
    for axis in reversed(AXES):
        command = click.option(
            axis.option,
            axis.name,
            callback=int_list,
            metavar="N,N,…",
            help=axis.help + (f" Not available until {axis.needs}." if axis.available() else ""),
        )(command)
    return command


@click.command()
@backends_option(help="Backends to run at each point. Default: every backend available here.")
@model_option()
@input_shape_option(help="Input shape; its first dimension is replaced by each --batch-size.")
@click.option(
    "--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), help="Precision, as for bench."
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Untimed inferences per backend and point before timing.",
)
@iterations_option(help="Timed inferences per backend and point (instead of --duration).")
@duration_option(
    help=f"Seconds of timed inference per backend and point.  [default: {DEFAULT_POINT_S:g}]"
)
@click.option(
    "--reference", metavar="ID", help="Backend the ratios at each point are taken against."
)
@power_option(default="none", help="Measure energy at each point (as for bench).")
@click.option(
    "--idle-seconds",
    type=FiniteFloatRange(min=0),
    default=0.0,
    show_default=True,
    help="At each point, measure the idle baseline for this long first (active energy).",
)
@keep_rail_option
@sampling_options
@_axis_options
@file_option("--json", "json_path", help="Write the sweep (schema anetui.sweep/1) to this file.")
@html_option
def sweep(
    backend_ids: tuple[str, ...] | None,
    model: str,
    input_shape: str | None,
    dtype: str | None,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
    reference: str | None,
    power_spec: str,
    idle_seconds: float,
    keep_rails: tuple[str, ...],
    interval_ms: int,
    speed: float,
    keep_root: bool,
    json_path: Path | None,
    html_path: Path | None,
    **axis_values: tuple[int, ...],
) -> None:
    """Measure the backends at each point of a sweep: a table with a row per point and
    backend (p50 with its 95% interval in ms, inferences/s, samples/s, mJ per inference
    when a power source runs, GFLOP/s), the curves against the swept axis, and JSON.

    Several axes give their product (first axis slowest), e.g.
    `--batch-size 1,2,4 --threads 1,2`: six points.
    """
    for name, values in axis_values.items():
        why = BY_NAME[name].available() if values else None
        if why is not None:
            click.echo(f"anetui sweep: {why}", err=True)
            raise SystemExit(EXIT_USAGE)
    chosen = {name: values for name, values in axis_values.items() if values}
    if not chosen:
        raise click.UsageError("give at least one axis, e.g. --batch-size 1,2,4")
    if iterations is not None and duration_s is not None:
        raise click.UsageError("give --iterations or --duration, not both")
    if iterations is None and duration_s is None:
        duration_s = DEFAULT_POINT_S
    base = run_config(
        model=model, input_shape=input_shape, backend_ids=backend_ids, dtype=dtype,
        warmup=warmup, iterations=iterations, duration_s=duration_s, reference=reference,
        power=power_spec, idle_seconds=idle_seconds, interval_ms=interval_ms,
        replay_speed=speed, keep_root=keep_root, keep_rails=keep_rails,
    )  # fmt: skip
    code = run_sweep(base, chosen, json_path, html_path)
    if code:
        raise SystemExit(code)


def run_sweep(
    base: RunConfig,
    axes: dict[str, tuple[int, ...]],
    json_path: Path | None,
    html_path: Path | None,
) -> int:
    """Measure every point, print the table and curves, write the files; the exit code
    (1 when a point or a backend failed, 128 + N after signal N)."""
    out, err = terminal.stdout_console(), Console(stderr=True, soft_wrap=True)
    stops = StopRequests()
    results: list[tuple[dict[str, int], dict[str, Any]]] = []
    stopped: int | None = None
    planned = points(axes)
    with stops.handling((signal.SIGTERM, signal.SIGHUP)):
        monitor = start_power(base, err)  # privileged work first, then drop root
        try:
            if not base.keep_root:
                privileges.drop_to_sudo_user(preload=privileges.MODEL_RUNTIMES)
            check_output_path(json_path, "--json")
            check_output_path(html_path, "--html")
            for point in planned:
                label = ", ".join(f"{k} {v}" for k, v in point.items())
                err.print(f"sweep point: {label}", markup=False)
                try:
                    snapshot, stopped, _abandoned = measure(
                        config_for(base, point), monitor, err, stops, stop_monitor=False
                    )
                except AnetuiError as exc:  # e.g. a batch size the model cannot take
                    err.print(f"[red]error at {escape(label)}:[/] {escape(str(exc))}")
                    continue
                results.append((point, to_json(snapshot)))
                if stopped is not None:
                    break
        finally:
            if monitor is not None:
                monitor.stop()
    if not results:
        raise AnetuiError("no point of the sweep could be measured")
    document = sweep_report.sweep_json(axes, results)
    if json_path is not None:
        files.write_atomic(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
        err.print(f"wrote {json_path}")
    if html_path is not None:
        files.write_atomic(html_path, html.sweep_page(document))
        err.print(f"wrote {html_path}")
    out.print(sweep_report.table(document))
    out.print(sweep_report.curves_text(document), markup=False, highlight=False)
    for warning in document["warnings"]:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if stopped is not None:
        err.print("[yellow]interrupted: the sweep above is partial[/]")
        return 128 + stopped
    failed = len(results) < len(planned) or any(
        b.get("state") == "error" for _, doc in results for b in doc["backends"]
    )
    return 1 if failed else 0
