"""`anetui doctor`: what can run here and why not, from cheap probes (no torch import);
`anetui doctor --deep` runs them and checks the results (see cli/doctor_deep.py)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anetui import __version__, privileges
from anetui.backends import cpu_features
from anetui.backends.base import BackendDescription
from anetui.backends.registry import REGISTRY
from anetui.cli.options import (
    backends_option,
    file_option,
    input_shape_option,
    interval_ms_option,
    iterations_option,
    keep_root_option,
    model_option,
)
from anetui.core.environment import cpu_model
from anetui.core.environment import privileges as privilege_state
from anetui.errors import AnetuiError
from anetui.models.spec import parse_input_shape
from anetui.models.zoo import transformer_names
from anetui.power import registry as power_registry
from anetui.report.terminal import stdout_console
from anetui.versions import package_version

PACKAGES = (
    "torch",
    "torchvision",
    "coremltools",
    "onnxruntime",
    "openvino",
    "executorch",
    "nncf",
    "nvidia-ml-py",
    "zeus-apple-silicon",
)
_POWER_WHAT = {
    "ioreport": "CPU (clusters, cores), GPU, GPU SRAM, ANE, DRAM energy counters, no root",
    "powermetrics": "CPU, GPU, ANE energy per window and thermal pressure",
    "rapl": "package, core, uncore and DRAM energy counters",
    "nvml": "per-GPU energy counter and power",
    "replay:FILE": "a recorded powermetrics stream played back (never this machine's power)",
}


@click.command()
@click.option(
    "--deep",
    is_flag=True,
    help="Also run every available backend for a few inferences and every available power "
    "source for two windows, and check the results (pass/fail with the exact error).",
)
@file_option(
    "--json",
    "json_path",
    help="With --deep: write the report (schema anetui.doctor/1) to this file.",
)
@model_option(help="With --deep.")
@input_shape_option(help="With --deep: the input shape.")
@backends_option(help="With --deep: only these backends. Default: every one.")
@click.option(
    "--power",
    "power_specs",
    metavar="SOURCE,…",
    help="With --deep: only these power sources (e.g. rapl, replay:FILE). Default: every "
    "source id.",
)
@iterations_option(default=5, help="With --deep: timed inferences per backend.")
@interval_ms_option(help="With --deep: power window length (ms).")
@keep_root_option(
    help="With --deep under sudo: stay root for the backends (default: drop to the "
    "invoking user once the power sources are checked)."
)
def doctor(
    deep: bool,
    json_path: Path | None,
    model: str,
    input_shape: str | None,
    backend_ids: tuple[str, ...] | None,
    power_specs: str | None,
    iterations: int,
    interval_ms: int,
    keep_root: bool,
) -> None:
    """List every backend known, available here or not, with the reason; fast (no torch).

    With --deep, run them: exit status 1 when any check fails.
    """
    if not deep:
        if json_path is not None:
            raise click.UsageError("--json needs --deep")
        privileges.drop_to_sudo_user()  # probing needs no root: nothing here is root's
        print_doctor()
        return
    shape = parse_input_shape(input_shape) if input_shape else None
    specs = [s.strip() for s in power_specs.split(",") if s.strip()] if power_specs else None
    code = run_deep(
        model=model,
        input_shape=shape,
        backend_ids=backend_ids,
        power_specs=specs,
        iterations=iterations,
        interval_ms=interval_ms,
        keep_root=keep_root,
        json_path=json_path,
    )
    if code:
        sys.exit(code)


def run_deep(
    *,
    model: str,
    input_shape: tuple[int, ...] | None,
    backend_ids: tuple[str, ...] | None,
    power_specs: list[str] | None,
    iterations: int,
    interval_ms: int,
    keep_root: bool,
    json_path: Path | None,
) -> int:
    """The deep check: power sources (as root under sudo), then the backends (as the user)."""
    from anetui.cli import doctor_deep
    from anetui.core.environment import collect
    from anetui.report.files import write_atomic

    out = stdout_console()
    err = Console(stderr=True, soft_wrap=True)
    started = time.monotonic()

    def progress(text: str) -> None:
        err.print(f"[dim][{time.monotonic() - started:5.1f} s] {text}[/]", highlight=False)

    power = doctor_deep.check_power_sources(
        specs=power_specs, interval_ms=interval_ms, progress=progress
    )
    if (
        not keep_root
        and privileges.drop_to_sudo_user(preload=privileges.MODEL_RUNTIMES).state == "dropped"
    ):
        progress(f"dropped root: running the backends as {privileges.current().user}")
    # After the drop: the listing imports onnxruntime, which writes its telemetry id under
    # $HOME/.cache (the user's home, under macOS's sudo) — as the user, never as root.
    print_doctor(out)
    try:
        backends = doctor_deep.check_backends(
            model=model,
            input_shape=input_shape,
            backend_ids=backend_ids,
            iterations=iterations,
            progress=progress,
        )
    except AnetuiError as exc:  # e.g. an unknown model: no backend could run it
        backends = [doctor_deep.Check("backend", "(all)", "fail", str(exc))]
    checks = backends + power
    _print_checks(out, checks, time.monotonic() - started)
    if json_path is not None:
        packages = {name: package_version(name) for name in PACKAGES}
        report = doctor_deep.report_json(collect(), packages, checks)
        write_atomic(json_path, json.dumps(report, indent=2, default=str) + "\n")
        err.print(f"wrote {json_path}")
    return 1 if any(c.verdict == "fail" for c in checks) else 0


_MARKS = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}


def _print_checks(console: Console, checks: list[Any], seconds: float) -> None:
    table = Table(title=f"deep check ({seconds:.0f} s)", title_justify="left")
    table.add_column("kind")
    table.add_column("id")
    table.add_column("verdict")
    table.add_column("detail (the exact error when it failed)", overflow="fold")
    for check in checks:
        table.add_row(check.kind, check.id, _MARKS[check.verdict], check.detail)
    console.print(table)
    failed = sum(c.verdict == "fail" for c in checks)
    passed = sum(c.verdict == "pass" for c in checks)
    console.print(f"{passed} passed, {failed} failed, {len(checks) - passed - failed} skipped")


def _print_backend(console: Console, description: BackendDescription) -> None:
    """One backend's line: what it is where it runs here, else why not (red)."""
    probe = description.probe()
    mark = "[green]✓[/]" if probe.ok else "[red]✗[/]"
    what = (
        f"{description.runtime} on {description.device}, {description.default_dtype}: "
        f"{description.summary}"
        if probe.ok
        else f"[red]{escape(probe.reason or '')}[/]"  # "anetui[quantize]" is no markup
    )
    console.print(f"  {mark} {description.id:<23} {what}", highlight=False)


def print_doctor(console: Console | None = None) -> None:
    console = console or stdout_console()
    console.print(
        f"anetui {__version__} · Python {platform.python_version()} · "
        f"{platform.system()} {platform.release()} {platform.machine()} · {cpu_model()} · "
        f"running as {privilege_state()}"
    )
    versions = ", ".join(f"{name} {package_version(name) or 'not installed'}" for name in PACKAGES)
    console.print(f"packages: {versions}")
    features = cpu_features.detect()
    console.print(f"[bold]cpu features[/] (what the CPU backends compute; from {features.source})")
    for line in features.lines():
        console.print(f"  {line}", highlight=False)
    console.print("[bold]backends[/]")
    for description in REGISTRY.values():
        if description.default:
            _print_backend(console, description)
    console.print(
        "[bold]quantized siblings[/] (each differs from its base in precision only; not run "
        "by default: name them in --backends)"
    )
    for description in REGISTRY.values():
        if not description.default:
            _print_backend(console, description)
    if package_version("onnxruntime"):
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
        console.print(f"onnxruntime providers: {providers}")
    console.print("[bold]power sources[/]")
    dropped = privileges.current().state == "dropped"
    power_probes = power_registry.probe_all()
    for source_id, probe in power_probes:
        mark = "[green]✓[/]" if probe.ok else "[red]✗[/]"
        what = _POWER_WHAT.get(source_id, "") if probe.ok else f"[red]{probe.reason}[/]"
        if not probe.ok and dropped and (probe.reason or "").startswith("needs root"):
            # Under sudo the check ran as the invoking user: the source is root-only, not
            # missing, and `sudo anetui` (or `sudo anetui doctor --deep`) starts it.
            mark = "[yellow]•[/]"
            what = (
                f"root-only: `sudo anetui` starts it ({_POWER_WHAT.get(source_id, '')}; "
                "doctor dropped root before checking)"
            )
        console.print(f"  {mark} {source_id:<17} {what}", highlight=False)
    console.print(power_registry.auto_choice(power_probes), highlight=False)
    console.print(
        f"models: {', '.join(transformer_names())} (transformers, random weights) and "
        "torchvision's classifiers; `anetui models` lists every name",
        highlight=False,
    )
    if "torch" in sys.modules:  # a regression guard the tests also check
        console.print("[yellow]note: torch was imported by doctor[/]")
