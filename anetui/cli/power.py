"""`anetui power`: live samples from a source, or a recorded powermetrics file parsed.

Both print one JSON object per sample with ``--json`` (or always, for ``--parse``): the
fields of DESIGN.md §6. Without ``--json`` the live samples are a table on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from anetui import privileges
from anetui.cli.options import STOP_SIGNALS, duration_option, file_option, sampling_options
from anetui.errors import AnetuiError, one_line
from anetui.power import registry
from anetui.power.base import CounterSource, PowerSample, PowerSource, PowerSourceError
from anetui.power.powermetrics_parse import detect_format, make_parser
from anetui.power.powermetrics_window import windows_to_samples


@click.command()
@click.option(
    "--source",
    "spec",
    default="auto",
    show_default=True,
    metavar="SOURCE",
    help="auto, ioreport, powermetrics, rapl, rapl:DIR (a powercap tree at DIR), nvml or "
    "replay:FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sample (JSON lines).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many samples.")
@duration_option(help="Stop after this many seconds.")
@file_option(
    "--parse",
    "parse_path",
    help="Parse a recorded powermetrics file instead: one JSON object per sample.",
)
@click.option(
    "--parse-limit-mb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Stop reading a --parse file past this size (MiB): an endless stream is an error.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["plist", "text"]),
    help="Format of the --parse file. Default: detected from its first bytes.",
)
@sampling_options
def power(
    spec: str,
    interval_ms: int,
    as_json: bool,
    count: int | None,
    duration_s: float | None,
    speed: float,
    keep_root: bool,
    parse_path: Path | None,
    parse_limit_mb: int,
    fmt: str | None,
) -> None:
    """Show power samples live, or parse a powermetrics recording (--parse).

    Each sample is a window: t_start_ns, t_end_ns, elapsed_ms, rails_mj (energy per rail,
    mJ), rails_w (mean power, W), thermal_pressure and clusters (frequency in MHz, active
    share 0–1). Rails a source does not report are absent, never 0.
    """
    if parse_path is not None:
        privileges.drop_to_sudo_user()  # parsing a file needs no root: read it as the user
        code = parse_file(parse_path, fmt, parse_limit_mb << 20)
    else:  # stream samples until --count, --duration or Ctrl+C; 1 if the source is lost
        source = registry.create(spec, interval_ms, speed=speed, loop_replay=False)
        code = asyncio.run(_live(source, as_json, count, duration_s, keep_root))
    if code:
        sys.exit(code)


def parse_file(path: Path, fmt: str | None, limit_bytes: int = 1 << 30) -> int:
    """Print every window of a recording as a JSON line; 1 with a one-line error if none.

    Read in chunks through the streaming parser, so memory is bounded by the windows,
    and never past ``limit_bytes`` (``/dev/zero`` or an endless pipe is an error)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AnetuiError(f"cannot read {path}: {one_line(exc)}") from None
    with handle:
        try:
            data = handle.read(min(limit_bytes + 1, 1 << 16))
            parser = make_parser(fmt or detect_format(data))
            total = 0
            windows = []
            while data:
                total += len(data)
                if total > limit_bytes:
                    raise AnetuiError(
                        f"{path} goes on past {limit_bytes >> 20} MiB: stopped reading "
                        "(not a recording? --parse-limit-mb raises the limit)"
                    )
                windows += parser.feed(data)
                data = handle.read(min(limit_bytes + 1 - total, 1 << 20))
        except OSError as exc:
            raise AnetuiError(f"cannot read {path}: {one_line(exc)}") from None
    windows += parser.close()
    for error in parser.errors:
        print(f"anetui: warning: {path.name}: {error}", file=sys.stderr)
    if parser.error_count > len(parser.errors):
        more = parser.error_count - len(parser.errors)
        print(f"anetui: warning: {path.name}: … and {more} more skipped", file=sys.stderr)
    if not windows:
        raise AnetuiError(f"{path} holds no powermetrics sample")
    out = sys.stdout
    for sample in windows_to_samples(windows):
        out.write(json.dumps(sample.to_json()) + "\n")
    return 0


async def _live(
    source: PowerSource, as_json: bool, count: int | None, duration_s: float | None, keep_root: bool
) -> int:
    err = Console(stderr=True, soft_wrap=True)
    try:
        await source.start()
    except PowerSourceError as exc:
        raise AnetuiError(f"{source.id}: {exc}") from None
    if not keep_root:
        privileges.drop_to_sudo_user()  # the source is open; nothing else needs root
    err.print(f"[dim]{source.label}; Ctrl+C to stop[/]")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:  # Ctrl+C, SIGTERM, SIGHUP: stop and close the source
        loop.add_signal_handler(signum, stop.set)
    deadline = time.monotonic() + duration_s if duration_s else None
    seen = 0
    stream = source.samples()
    try:
        while not stop.is_set():
            timeout = max(0.0, deadline - time.monotonic()) if deadline else None
            next_sample = asyncio.ensure_future(anext(stream))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait(
                {next_sample, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            if next_sample not in done:
                next_sample.cancel()
                # Let the cancellation reach the generator before it is closed (closing a
                # generator that is still running is a RuntimeError).
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await next_sample
                break
            try:
                sample = next_sample.result()
            except StopAsyncIteration:
                break
            _print(sample, as_json)
            seen += 1
            if count is not None and seen >= count:
                break
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await stream.aclose()  # type: ignore[attr-defined]
        if isinstance(source, CounterSource) and seen:  # the steps seen while streaming
            steps = ", ".join(f"{r} {mj:g} mJ" for r, mj in source.resolution_mj.items())
            err.print(f"[dim]counter resolution: {steps} (no window is finer than that)[/]")
        await source.aclose()
    if source.state == "lost":
        err.print(f"[red]anetui: error: {source.id} lost: {source.reason}[/]")
        return 1
    return 0


def _print(sample: PowerSample, as_json: bool) -> None:
    if as_json:
        print(json.dumps(sample.to_json()), flush=True)
        return
    cells = [f"{sample.elapsed_ns / 1e6:7.1f} ms"]
    cells += [f"{rail} {watts:8.3f} W" for rail, watts in sample.rails_w.items()]
    if sample.thermal_pressure:
        cells.append(f"thermal {sample.thermal_pressure}")
    print("  ".join(cells), flush=True)
