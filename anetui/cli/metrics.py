"""`--metrics ADDR` (dashboard and bench): the option, its address rule, and starting the
Prometheus exporter of :mod:`anetui.report.prometheus` (imported only when asked for).

``ADDR`` is ``HOST:PORT`` or a bare ``PORT`` (this machine only, 127.0.0.1). Binding to
another interface happens only when that host is written out (``0.0.0.0:9464``), and
says so on stderr. Port 0 picks a free port and prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from anetui.report.prometheus import MetricsExporter

#: Prometheus's registry of default ports lists 9464 for OpenTelemetry/generic exporters.
EXAMPLE = "127.0.0.1:9464"


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or PORT -> (host, port); click.BadParameter otherwise."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    elif not host:
        raise click.BadParameter(
            f"{text!r} names no host: give {EXAMPLE} (this machine only) or "
            "0.0.0.0:PORT (every interface)"
        )
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (e.g. {EXAMPLE})") from None
    if not 0 <= port <= 65535:
        raise click.BadParameter(f"port {port} is out of range 0–65535")
    return host, port


def _address(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    return None if value is None else parse_address(value)


def metrics_option(command: Callable[..., None]) -> Callable[..., None]:
    """--metrics ADDR: serve Prometheus metrics while measuring."""
    return click.option(
        "--metrics",
        "metrics_addr",
        callback=_address,
        metavar="ADDR",
        help=f"Serve Prometheus metrics at http://ADDR/metrics while measuring (e.g. "
        f"{EXAMPLE}; a bare PORT means 127.0.0.1). Off by default.",
    )(command)


def start_exporter(addr: tuple[str, int], err: Console) -> MetricsExporter:
    """Start serving; one line on stderr says where (and warns off loopback)."""
    from anetui.report.prometheus import LOOPBACK_HOSTS, MetricsExporter

    exporter = MetricsExporter(*addr)
    exporter.start()
    err.print(f"[dim]metrics: {exporter.url}[/]")
    if addr[0] not in LOOPBACK_HOSTS:
        err.print(
            f"[yellow]metrics: {exporter.address} is reachable from other machines "
            "(no authentication; the figures and versions are readable by anyone there)[/]"
        )
    return exporter
