"""The `anetui` command group: the dashboard when no command is given, and one module per
command in this package, loaded only when that command runs (or its help is shown).

Results go to stdout; progress, warnings and errors to stderr. Nothing heavy is imported
at module level: `anetui --help` and `anetui doctor` never import torch. Exit codes: 0
success, 1 a measurement or input error (one line on stderr), 2 a usage error, 130
interrupted. To add a command: a module with a click command, one row in COMMANDS.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import click

from anetui import __version__, privileges
from anetui.cli.metrics import metrics_option
from anetui.cli.options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FiniteFloatRange,
    keep_rail_option,
    power_option,
    run_config,
    run_options,
    sampling_options,
)
from anetui.errors import AnetuiError, one_line
from anetui.models.inputs import InputOverride

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "bench": "anetui.cli.bench:bench",
    "power": "anetui.cli.power:power",
    "convert": "anetui.cli.convert:convert",
    "plan": "anetui.cli.convert:plan",
    "report": "anetui.cli.report:report",
    "sweep": "anetui.cli.sweep:sweep",
    "doctor": "anetui.cli.doctor:doctor",
    "models": "anetui.cli.models:models",
}


#: Commands that never need root: under sudo they drop to the invoking user before doing
#: anything (reading a model, writing a file). bench, power and the dashboard drop
#: themselves, right after starting a root-only power source; so does doctor, which drops
#: first thing unless --deep asks it to check a root-only power source first.
ROOTLESS_COMMANDS = frozenset({"convert", "plan", "report", "models"})


class LazyGroup(click.Group):
    """A group whose commands are imported on use (click's documented lazy-loading
    pattern), so a command's imports never slow another."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="anetui")
@run_options
@power_option(
    default="auto",
    help="auto (the first that runs here), ioreport, powermetrics, rapl, rapl:DIR, nvml, "
    "replay:FILE, or none.",
)
@sampling_options
@keep_rail_option
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
    type=FiniteFloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds per backend when auto-cycling (a).",
)
@click.option(
    "--idle-seconds",
    type=FiniteFloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Length of an idle-baseline measurement (i).",
)
@click.option("--snapshot-on-exit", is_flag=True, help="Write a snapshot when quitting.")
@click.option(
    "--exit-after",
    "exit_after_s",
    type=FiniteFloatRange(min=1),
    metavar="SECONDS",
    help="Quit after this many seconds (scripted captures, benchmarks).",
)
@metrics_option
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the dashboard to a web browser (textual-serve) instead of this terminal: "
    "each browser session runs `anetui` with these options.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="With --serve: the address to listen on (any other than loopback exposes the "
    "dashboard to the network).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="With --serve: the TCP port.",
)
@click.pass_context
def cli(
    ctx: click.Context,
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
    reference: str | None,
    power_spec: str,
    interval_ms: int,
    speed: float,
    keep_root: bool,
    keep_rails: tuple[str, ...],
    out_dir: Path,
    auto_seconds: float,
    idle_seconds: float,
    snapshot_on_exit: bool,
    exit_after_s: float | None,
    metrics_addr: tuple[str, int] | None,
    serve: bool,
    host: str,
    port: int,
) -> None:
    """Measure how fast, and at what energy per inference, a model runs on each backend
    of this machine (PyTorch CPU/CUDA/MPS, Core ML, ONNX Runtime).

    With no command, open the live dashboard (`sudo anetui` for root-only power
    sources). `anetui doctor` shows what can run here; `anetui bench` measures headlessly.
    """
    if serve and ctx.invoked_subcommand is not None:
        raise click.UsageError("--serve serves the dashboard: give no command")
    privileges.use_roots_home()  # whatever runs as root writes nothing in the user's home
    if ctx.invoked_subcommand is not None:
        if ctx.invoked_subcommand in ROOTLESS_COMMANDS:
            runs_torch = ctx.invoked_subcommand in ("convert", "plan")
            privileges.drop_to_sudo_user(preload=privileges.MODEL_RUNTIMES if runs_torch else ())
        return
    if serve and metrics_addr is not None:
        raise click.UsageError(
            "--metrics with --serve: each browser session runs its own dashboard, and "
            "they cannot share one port; use --metrics without --serve"
        )
    for name in ("host", "port"):
        if not serve and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError(f"--{name} goes with --serve")
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
        iterations=None,
        duration_s=None,
        reference=reference,
        power=power_spec,
        interval_ms=interval_ms,
        replay_speed=speed,
        keep_root=keep_root,
        keep_rails=keep_rails,
        out_dir=out_dir,
    )  # built (and so checked) here even when serving: a bad option fails before the page
    if serve:
        from anetui.ui.serve import serve as serve_dashboard

        argv = ctx.obj.get("argv") if isinstance(ctx.obj, dict) else None
        sys.exit(serve_dashboard(argv if argv is not None else sys.argv[1:], host, port))
    from anetui.cli.dashboard import run_dashboard

    code = run_dashboard(
        config,
        auto_seconds=auto_seconds,
        idle_seconds=idle_seconds,
        snapshot_on_exit=snapshot_on_exit,
        exit_after_s=exit_after_s,
        metrics_addr=metrics_addr,
    )
    if code:
        sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (errors become one line on stderr)."""
    # torchao (which transformers and ExecuTorch import when it is installed) registers
    # Enums with torch's pytree, which logs a deprecation warning on stderr at every
    # start: it says nothing about the run, and a refusal must stay one line.
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        # The raw arguments travel along: --serve hands them to the served dashboard.
        raw = list(argv) if argv is not None else sys.argv[1:]
        cli.main(args=argv, prog_name="anetui", standalone_mode=False, obj={"argv": raw})
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
