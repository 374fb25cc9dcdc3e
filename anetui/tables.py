"""Rich rendering of results for the terminal (stdout). Formatting only, no measuring."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from anetui.report import fmt_ms, ratio_sentence
from anetui.session import Snapshot


def stdout_console() -> Console:
    """A console on stdout; 200 columns wide when piped, so tables are not cut at 80."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def print_results(console: Console, snapshot: Snapshot) -> None:
    """The results table, the unavailable/failed backends, then the ratio summary."""
    measured = snapshot.measured()
    title = f"{snapshot.model} {snapshot.input_shape}  ·  latency in ms"
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (
        ("backend", "left"),
        ("dtype", "left"),
        ("device", "left"),
        ("n", "right"),
        ("p50 (95% CI)", "right"),
        ("p90", "right"),
        ("p99", "right"),
        ("p99.9", "right"),
        ("mean ± sd", "right"),
        ("min", "right"),
        ("max", "right"),
        ("inf/s", "right"),
        ("load s", "right"),
        ("compile s", "right"),
        ("first ms", "right"),
        ("agreement", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for b in measured:
        s = b.summary
        assert s is not None
        ci = (
            f" ({fmt_ms(s.p50_ci95_ns[0] / 1e6)}–{fmt_ms(s.p50_ci95_ns[1] / 1e6)})"
            if s.p50_ci95_ns
            else ""
        )
        p = b.prepare
        table.add_row(
            b.id,
            b.dtype,
            b.device,
            str(s.count),
            f"[bold]{fmt_ms(s.p50_ns / 1e6)}[/]{ci}",
            fmt_ms(s.quantiles_ns["p90"] / 1e6),
            fmt_ms(s.quantiles_ns["p99"] / 1e6),
            fmt_ms(s.quantiles_ns["p999"] / 1e6),
            f"{fmt_ms(s.mean_ns / 1e6)} ± {fmt_ms(s.stddev_ns / 1e6)}",
            fmt_ms(s.min_ns / 1e6),
            fmt_ms(s.max_ns / 1e6),
            f"{b.throughput_per_s:.1f}" if b.throughput_per_s else "–",
            f"{p.load_s:.2f}" if p else "–",
            f"{p.compile_s:.2f}" if p else "–",
            fmt_ms(p.first_inference_ms) if p else "–",
            f"{b.agreement_max_rel_err:.1e}" if b.agreement_max_rel_err is not None else "–",
        )
    if measured:
        console.print(table)
    for b in snapshot.backends:
        if b.summary is None:
            why = b.error or b.reason or b.state
            style = "red" if b.state == "error" else "dim"
            console.print(
                f"[{style}]{b.id}: {'failed' if b.state == 'error' else 'not run'} — {why}[/]"
            )
    if snapshot.ratios:
        console.print()
        for ratio in snapshot.ratios:
            console.print(ratio_sentence(ratio))
        console.print(
            "[dim](ratio of median latencies, 95% interval; inf/s includes harness overhead)[/]"
        )
    batch = snapshot.input_shape[0]
    if measured and batch > 1:
        console.print(f"[dim]one inference is one batch of {batch}: samples/s = {batch} x inf/s[/]")
    for b in measured:
        for note in b.notes:
            console.print(f"[dim]{b.id}: {note}[/]")
