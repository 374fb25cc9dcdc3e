"""Rich rendering of results for the terminal (stdout). Formatting only, no measuring."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anetui.core.results import Snapshot
from anetui.report import work_rate
from anetui.report.generation import agreement_text as token_agreement_text
from anetui.report.generation import print_generation
from anetui.report.text import (
    agreement_text,
    energy_sentence,
    fmt_ms,
    idle_basis,
    inputs_text,
    latency_cells,
    rails_label,
    ratio_sentence,
)


def stdout_console() -> Console:
    """A console on stdout; 200 columns wide when piped, so tables are not cut at 80."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


_TEXT_COLUMNS = {"backend", "runtime", "dtype", "device", "rails", "thermal"}


def _table(title: str, columns: tuple[str, ...]) -> Table:
    """A table with text columns left-aligned and figures right-aligned."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        text = name in _TEXT_COLUMNS
        table.add_column(name, justify="left" if text else "right", no_wrap=True)
    return table


def print_results(console: Console, snapshot: Snapshot, warnings: bool = True) -> None:
    """Latency table, preparation table, unavailable/failed backends, ratio summary,
    warnings (unless ``warnings`` is False).

    Two tables rather than one wide one, so each fits a 120-column terminal.
    """
    measured = snapshot.measured()
    latency = _table(
        f"{snapshot.model} {inputs_text(snapshot)}  ·  latency in ms",
        ("backend", "n", "p50 (95% CI)", "p90", "p99", "p99.9", "mean ± sd", "min", "max", "inf/s"),
    )
    preparation = _table(
        "preparation, apart from the steady state",
        ("backend", "runtime", "dtype", "device", "load s", "compile s", "first ms", "agreement"),
    )
    for b in measured:
        s = b.summary
        assert s is not None
        cell = latency_cells(s)
        ci = f" ({cell['p50_ci']})" if s.p50_ci95_ns else ""
        latency.add_row(
            b.id,
            str(s.count),
            f"[bold]{cell['p50']}[/]{ci}",
            cell["p90"],
            cell["p99"],
            cell["p999"],
            f"{cell['mean']} ± {cell['sd']}",
            cell["min"],
            cell["max"],
            f"{b.throughput_per_s:.1f}" if b.throughput_per_s else "–",
        )
        p = b.prepare
        preparation.add_row(
            b.id,
            b.runtime,
            b.dtype,
            b.device,
            f"{p.load_s:.2f}" if p else "–",
            f"{p.compile_s:.2f}" if p else "–",
            fmt_ms(p.first_inference_ms) if p else "–",
            token_agreement_text(b.generation)
            if b.generation is not None
            else agreement_text(b.agreement_max_rel_err, b.top1_agreement),
        )
    if measured:
        console.print(latency)
        console.print(preparation)
        print_generation(console, snapshot)
        print_energy(console, snapshot)
    for b in snapshot.backends:
        if b.summary is None:
            why = b.error or b.reason or b.state
            style = "red" if b.state == "error" else "dim"
            console.print(
                f"[{style}]{b.id}: {'failed' if b.state == 'error' else 'not run'} — {why}[/]"
            )
    if snapshot.ratios:
        console.print()
        for ratio in (*snapshot.ratios, *snapshot.sibling_ratios):
            spread = "" if ratio.speed_ci_from == "within-run" else f" [{ratio.speed_ci_from}]"
            console.print(ratio_sentence(ratio) + spread)
            sentence = energy_sentence(ratio)
            if sentence:
                console.print(sentence)
        console.print(
            "[dim](ratio of median latencies, 95% interval; an interval containing 1 is no "
            "clear difference; inf/s includes harness overhead)[/]"
        )
    batch = snapshot.input_shape[0]
    if measured and batch > 1:
        console.print(f"[dim]one inference is one batch of {batch}: samples/s = {batch} x inf/s[/]")
    for line in work_rate.summary_lines(snapshot):
        console.print(f"[dim]{escape(line)}[/]")
    for b in measured:
        for note in b.notes:
            console.print(f"[dim]{b.id}: {note}[/]")
    if warnings:  # `bench` prints them on stderr instead
        print_warnings(console, snapshot)


def print_warnings(console: Console, snapshot: Snapshot) -> None:
    """The snapshot's warnings, one per line (markup-escaped: they quote user input)."""
    for warning in snapshot.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def print_energy(console: Console, snapshot: Snapshot) -> None:
    """Energy per inference per backend, with the source, rails and idle baseline."""
    power = snapshot.power
    if power.get("source", "none") == "none":
        return
    replay = (
        " [yellow](a replayed recording, not this machine)[/]"
        if power["source"] == "replay"
        else ""
    )
    table = _table(
        f"energy · {power.get('label')} · {power.get('state')}{replay}",
        ("backend", "rails", "mean W", "mJ/inf", "active mJ/inf", "coverage", "windows", "thermal"),
    )
    for b in snapshot.measured():
        e = b.energy
        if e is None:
            table.add_row(b.id, "–", "–", "–", "–", "0%", "0", "no whole window in its runs")
            continue
        active = e.total_active_mj_per_inference
        table.add_row(
            b.id,
            rails_label(e.total_rails),
            f"{sum(e.mean_power_w[r] for r in e.total_rails):.3f}",
            f"[bold]{e.total_mj_per_inference:.3f}[/]",
            f"{round(active, 3) + 0.0:.3f}" if active is not None else "–",  # no "-0.000"
            f"{e.coverage:.0%}",
            str(e.windows),
            ", ".join(e.thermal_pressure) or "–",
        )
    console.print(table)
    idle = power.get("idle_w")
    if isinstance(idle, dict) and idle:
        watts = ", ".join(f"{rail} {w:.3f} W" for rail, w in idle.items())
        console.print(f"[dim]idle baseline ({idle_basis(power)}): {watts}[/]")
    else:
        console.print("[dim]no idle baseline: active energy needs --idle-seconds N[/]")
    resolution = power.get("resolution_mj")
    if isinstance(resolution, dict) and resolution:
        steps = ", ".join(f"{rail} {mj:g} mJ" for rail, mj in resolution.items())
        console.print(f"[dim]energy from counters at each stretch's edges; resolution {steps}[/]")
    if power.get("reason"):
        console.print(f"[yellow]power: {power['reason']}[/]")
