"""`anetui doctor`: what can run here and why not, from cheap probes (no torch import)."""

from __future__ import annotations

import platform
import sys

import click
from rich.console import Console

from anetui import __version__
from anetui.backends.registry import REGISTRY
from anetui.core.environment import cpu_model, privileges
from anetui.power import registry as power_registry
from anetui.report.terminal import stdout_console
from anetui.versions import package_version

_POWER_WHAT = {
    "powermetrics": "CPU, GPU, ANE energy per window and thermal pressure",
    "rapl": "package, core, uncore and DRAM energy counters",
    "nvml": "per-GPU energy counter and power",
    "replay:FILE": "a recorded powermetrics stream played back (never this machine's power)",
}


@click.command()
def doctor() -> None:
    """List every backend known, available here or not, with the reason; fast (no torch)."""
    print_doctor()


def print_doctor(console: Console | None = None) -> None:
    console = console or stdout_console()
    console.print(
        f"anetui {__version__} · Python {platform.python_version()} · "
        f"{platform.system()} {platform.release()} {platform.machine()} · {cpu_model()} · "
        f"running as {privileges()}"
    )
    versions = ", ".join(
        f"{name} {package_version(name) or 'not installed'}"
        for name in (
            "torch",
            "torchvision",
            "coremltools",
            "onnxruntime",
            "openvino",
            "executorch",
            "nvidia-ml-py",
        )
    )
    console.print(f"packages: {versions}")
    console.print("[bold]backends[/]")
    for description in REGISTRY.values():
        probe = description.probe()
        mark = "[green]✓[/]" if probe.ok else "[red]✗[/]"
        what = (
            f"{description.runtime} on {description.device}, {description.default_dtype}: "
            f"{description.summary}"
            if probe.ok
            else f"[red]{probe.reason}[/]"
        )
        console.print(f"  {mark} {description.id:<22} {what}", highlight=False)
    if package_version("onnxruntime"):
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
        console.print(f"onnxruntime providers: {providers}")
    console.print("[bold]power sources[/]")
    for source_id, probe in power_registry.probe_all():
        mark = "[green]✓[/]" if probe.ok else "[red]✗[/]"
        what = _POWER_WHAT.get(source_id, "") if probe.ok else f"[red]{probe.reason}[/]"
        console.print(f"  {mark} {source_id:<17} {what}", highlight=False)
    if "torch" in sys.modules:  # a regression guard the tests also check
        console.print("[yellow]note: torch was imported by doctor[/]")
