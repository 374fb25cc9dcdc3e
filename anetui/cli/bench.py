"""`anetui bench`: a headless session with a progress display on stderr and the results
on stdout (and in files). The session runs in a worker thread so that the main thread
keeps the progress display live and turns Ctrl+C into a clean stop with partial results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from anetui import privileges
from anetui.cli.metrics import metrics_option, start_exporter
from anetui.cli.options import (
    EXIT_INTERRUPTED,
    FiniteFloatRange,
    StopRequests,
    check_output_path,
    duration_option,
    file_option,
    iterations_option,
    keep_rail_option,
    power_option,
    run_config,
    run_options,
    sampling_options,
)
from anetui.cli.outputs import After, enrich, gate_from_options, gate_options, html_option, now_ns
from anetui.cli.progress import run_with_progress
from anetui.core.config import DEFAULT_DURATION_S, RunConfig
from anetui.core.results import Snapshot
from anetui.core.session import Session
from anetui.errors import AnetuiError
from anetui.models.inputs import InputOverride
from anetui.models.resolve import resolve_model
from anetui.power import registry as power_registry
from anetui.power.monitor import PowerMonitor
from anetui.report import files, terminal

if TYPE_CHECKING:
    from anetui.report.prometheus import MetricsExporter


def _consoles() -> tuple[Console, Console]:
    return terminal.stdout_console(), Console(stderr=True, soft_wrap=True)


@click.command()
@run_options
@iterations_option(help="Timed inferences per backend (instead of --duration).")
@duration_option(help="Seconds of timed inference per backend.  [default: 10]")
@click.option(
    "--interleave",
    is_flag=True,
    help="Alternate the backends in ~1 s rounds so drift and heat fall on all equally.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Measure N runs, each of the whole --duration/--iterations per backend: the "
    "spread of the per-run medians is reported, and a ratio's interval uses it when wider.",
)
@power_option(
    default="none",
    help="Measure energy: auto, ioreport (macOS, no root), powermetrics (macOS, root), "
    "rapl (Linux, root), rapl:DIR (a powercap tree at DIR), nvml "
    "(NVIDIA), replay:FILE (a recorded powermetrics stream, looped), or none.",
)
@click.option(
    "--idle-seconds",
    type=FiniteFloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Measure the idle baseline (power with nothing running) for this long first.",
)
@file_option(
    "--json", "json_path", help="Write the results (schema anetui.results/2) to this file."
)
@file_option("--markdown", "markdown_path", help="Write the Markdown report to this file.")
@html_option
@gate_options
@keep_rail_option
@sampling_options
@metrics_option
@click.option(
    "--metrics-linger",
    "metrics_linger_s",
    type=FiniteFloatRange(min=0),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="With --metrics: after the run, serve the final figures until one more scrape "
    "has read them, for at most this long (0: stop at once).",
)
def bench(
    backend_ids: tuple[str, ...] | None,
    model: str,
    batch_size: int,
    input_shape: str | None,
    input_specs: tuple[InputOverride, ...],
    seq_len: int | None,
    prompt_len: int | None,
    gen_len: int | None,
    dtype: str | None,
    threads: int | None,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
    interleave: bool,
    repeat: int,
    reference: str | None,
    power_spec: str,
    interval_ms: int,
    idle_seconds: float,
    speed: float,
    keep_root: bool,
    keep_rails: tuple[str, ...],
    json_path: Path | None,
    markdown_path: Path | None,
    html_path: Path | None,
    baseline_path: Path | None,
    max_regression: float,
    max_energy_regression: float | None,
    allow_different_machine: bool,
    summary_path: Path | None,
    metrics_addr: tuple[str, int] | None,
    metrics_linger_s: float,
) -> None:
    """Benchmark backends headlessly and print a results table and ratio summary.

    Latencies are in milliseconds: p50 with its 95% confidence interval, p90, p99,
    p99.9, mean, stddev, min, max; throughput in inferences per second of wall time
    including the harness. Load, compile and first-inference times are shown apart.
    """
    if iterations is not None and duration_s is not None:
        raise click.UsageError("give --iterations or --duration, not both")
    if reference is not None and backend_ids is not None and reference not in backend_ids:
        raise click.UsageError(f"--reference {reference} is not among --backends")
    if iterations is None and duration_s is None:
        duration_s = DEFAULT_DURATION_S
    gate = gate_from_options(  # the baseline is read and checked before anything runs
        baseline_path, max_regression, max_energy_regression, allow_different_machine, summary_path
    )
    config = run_config(
        model=model,
        batch_size=batch_size,
        input_shape=input_shape,
        input_specs=input_specs,
        seq_len=seq_len,
        prompt_len=prompt_len,
        gen_len=gen_len,
        backend_ids=backend_ids,
        dtype=dtype,
        threads=threads,
        warmup=warmup,
        iterations=iterations,
        duration_s=duration_s,
        interleave=interleave,
        repeat=repeat,
        reference=reference,
        power=power_spec,
        interval_ms=interval_ms,
        idle_seconds=idle_seconds,
        replay_speed=speed,
        keep_root=keep_root,
        keep_rails=keep_rails,
    )
    if gate is not None:
        gate.refuse_early(model)
    code = run_bench(
        config,
        json_path=json_path,
        markdown_path=markdown_path,
        metrics_addr=metrics_addr,
        metrics_linger_s=metrics_linger_s,
        after=After(html_path, gate),
    )
    if code:
        sys.exit(code)


def run_bench(
    config: RunConfig,
    *,
    json_path: Path | None = None,
    markdown_path: Path | None = None,
    metrics_addr: tuple[str, int] | None = None,
    metrics_linger_s: float = 0.0,
    after: After | None = None,
) -> int:
    """Measure, print and write results. Returns the exit code (1 if a backend failed;
    ``after``'s gate: 3 for a clear regression, 4 for a baseline not like for like)."""
    after = after or After()
    out, err = _consoles()
    # SIGTERM (timeout, kill, a CI runner) and SIGHUP (a closed terminal) stop the run
    # as Ctrl+C does, from the start: one arriving while models load stops the session
    # as soon as it exists, and the (partial) results are still printed and written.
    stops = StopRequests()
    with stops.handling((signal.SIGTERM, signal.SIGHUP)):
        monitor = start_power(config, err)  # privileged work first …
        exporter = None
        try:
            exporter = start_exporter(metrics_addr, err) if metrics_addr else None
            if (
                not config.keep_root
                and privileges.drop_to_sudo_user(preload=privileges.MODEL_RUNTIMES).state
                == "dropped"
            ):
                err.print(f"[dim]dropped root: running as {privileges.current().user}[/]")
            # Fail now, as the user who will write them, not after the whole run.
            check_output_path(json_path, "--json")
            check_output_path(markdown_path, "--markdown")
            after.check_paths()
            # … then models
            code = _measure(
                config, monitor, out, err, json_path, markdown_path, stops, exporter, after
            )
            if exporter is not None and code != EXIT_INTERRUPTED:  # Ctrl+C means leave now
                _linger(exporter, metrics_linger_s, err)
            return code
        finally:
            if exporter is not None:
                exporter.stop()
            if monitor is not None:
                monitor.stop()


def _linger(exporter: MetricsExporter, timeout_s: float, err: Console) -> None:
    """Serve the final figures until a scrape reads them (or timeout_s, or Ctrl+C)."""
    if timeout_s <= 0:
        return
    err.print(
        f"[dim]metrics: serving the final figures until the next scrape (≤ {timeout_s:g} s)[/]"
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: stop waiting, keep the exit code
        exporter.wait_for_final_scrape(timeout_s)


def start_power(config: RunConfig, err: Console) -> PowerMonitor | None:
    """Start the chosen power source, or None for `--power none` (or `auto` finding none,
    which says why). A source that cannot start is an error."""
    monitor, notes = power_registry.monitor_for(
        config.power, config.interval_ms, config.replay_speed
    )
    for note in notes:  # e.g. without sudo: powermetrics and RAPL need root
        err.print(f"[dim]power: {note}[/]")
    if monitor is None:
        return None
    if not monitor.start():
        raise AnetuiError(f"power source {monitor.source.id}: {monitor.reason}")
    err.print(f"[dim]power: {monitor.source.label}[/]")
    return monitor


def _measure(
    config: RunConfig,
    monitor: PowerMonitor | None,
    out: Console,
    err: Console,
    json_path: Path | None,
    markdown_path: Path | None,
    stops: StopRequests,
    exporter: MetricsExporter | None = None,
    after: After | None = None,
) -> int:
    snapshot, stopped_by, abandoned = measure(config, monitor, err, stops, exporter)
    written = []  # the files first: nothing that follows may lose them
    if json_path is not None:
        files.write_json(json_path, snapshot)
        written.append(json_path)
    if markdown_path is not None:
        files.write_markdown(markdown_path, snapshot)
        written.append(markdown_path)
    terminal.print_results(out, snapshot, warnings=False)
    terminal.print_warnings(err, snapshot)  # on stderr: stdout keeps only the results
    for path in written:
        err.print(f"wrote {path}")
    if monitor is not None and monitor.state == "lost":
        err.print(f"[red]power source lost:[/] {monitor.reason}")
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        err.print(f"[yellow]interrupted ({name}): the results above are partial[/]")
        if abandoned:
            # The worker is still inside a conversion or compilation (native code): an
            # interpreter shutting down around it aborts the process. Everything is written
            # and the power source is stopped, so leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + stopped_by)
        return 128 + stopped_by
    failed = [b for b in snapshot.backends if b.state == "error"]
    for b in failed:
        err.print(f"[red]error:[/] {b.error}")
    # Asked for by name and found unavailable only while preparing (e.g. the device
    # compiled another precision): exit 1, like one its probe refused.
    refused = [b for b in snapshot.backends if config.backends is not None and not b.available]
    for b in refused:
        err.print(f"[red]error:[/] {b.id}: not run — {b.reason}")
    code = 1 if failed or refused else 0
    return after.finish(snapshot, out, err, code) if after is not None else code


def measure(
    config: RunConfig,
    monitor: PowerMonitor | None,
    err: Console,
    stops: StopRequests,
    exporter: MetricsExporter | None = None,
    stop_monitor: bool = True,
) -> tuple[Snapshot, int | None, bool]:
    """One session of ``config`` with the progress display: (its final snapshot, with
    the FLOP count and power series, the signal that stopped it or None, whether the
    worker was abandoned). ``stop_monitor``: stop the power source before the snapshot
    (a sweep keeps one source running over all its points)."""
    started_ns = now_ns()
    spec = resolve_model(
        config.model,
        batch_size=config.batch_size,
        input_shape=config.input_shape,
        inputs=config.inputs,
        seq_len=config.seq_len,
        prompt_len=config.prompt_len,
        gen_len=config.gen_len,
    )
    for note in spec.notes:
        err.print(f"[yellow]note:[/] {note}")
    session = Session(config, spec, monitor)
    stops.stop(session.stop_event)
    if exporter is not None:
        exporter.follow(lambda: session)
    if config.backends is not None:
        session.require_available()  # asked for by name: say why not, exit non-zero
    if not session.runnable():
        reasons = "; ".join(f"{i}: {a.reason}" for i, a in session.availability().items())
        raise AnetuiError(f"no backend can run here ({reasons})")
    for backend_id, availability in session.availability().items():
        if not availability.ok:
            err.print(f"[dim]skipping {backend_id}: {availability.reason}[/]")

    stopped_by, abandoned = run_with_progress(session, err, stops)
    if monitor is not None and stop_monitor:
        monitor.stop()  # before the snapshot, so the last windows are in
    snapshot = session.snapshot()
    if stopped_by is not None:  # the files must say so, not only the terminal
        snapshot = dataclasses.replace(
            snapshot, warnings=(_interrupted(stopped_by, snapshot), *snapshot.warnings)
        )
    if exporter is not None:
        exporter.freeze(snapshot, session)
    session.close()
    if not abandoned:  # a worker still converting: add nothing, leave
        # Interrupted: no FLOP count (it loads the model again), leave soon.
        snapshot = enrich(snapshot, spec, monitor, started_ns, flops=stopped_by is None)
    return snapshot, stopped_by, abandoned


def _interrupted(signum: int, snapshot: Snapshot) -> str:
    """The results' warning for a run a signal stopped: what it holds, and what not."""
    runnable = [b for b in snapshot.backends if b.available]
    measured = [b.id for b in runnable if b.summary is not None]
    held = f"measured: {', '.join(measured)}" if measured else "no backend was measured yet"
    return (
        f"interrupted by {signal.Signals(signum).name}: these results are partial "
        f"({len(measured)} of {len(runnable)} backends; {held})"
    )
