"""What `bench` (and `sweep`) add around a run: the FLOP count and the power series in
the results, the self-contained HTML page (``--html``), and the regression gate against a
saved baseline (``--baseline``, ``--max-regression``, ``--summary``)."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from anetui.cli.options import check_output_path, file_option, option_group
from anetui.core.results import Snapshot
from anetui.models.spec import ModelSpec
from anetui.power.monitor import PowerMonitor


class Percentage(click.ParamType):  # type: ignore[type-arg]
    """'5%' or '5' (percent) -> 0.05; refuses negatives and non-numbers."""

    name = "percentage"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*", str(value))
        if match is None:
            self.fail(f"{value!r} is not a percentage such as 5%", param, ctx)
        return float(match.group(1)) / 100.0


html_option = file_option(
    "--html",
    "html_path",
    help="Write one self-contained HTML report here (inline SVG charts; loads nothing "
    "from the network).",
)

#: --baseline and what goes with it (bench only).
gate_options = option_group(
    click.option(
        "--baseline",
        "baseline_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A saved results file (bench --json) to gate against: exit 3 when a backend "
        "is clearly slower than it by more than --max-regression; exit 4 when it is not "
        "like for like (model, input, dtype, backend factors, machine).",
    ),
    click.option(
        "--max-regression",
        type=Percentage(),
        default="5%",
        show_default=True,
        metavar="PCT",
        help="With --baseline: the allowed increase of each backend's median latency.",
    ),
    click.option(
        "--max-energy-regression",
        type=Percentage(),
        metavar="PCT",
        help="With --baseline: also gate energy per inference (same power source and "
        "rails needed).",
    ),
    click.option(
        "--allow-different-machine",
        is_flag=True,
        help="With --baseline: compare even when the CPU, OS or runtime versions differ "
        "(said in the output).",
    ),
    file_option(
        "--summary",
        "summary_path",
        help="With --baseline: append the gate's Markdown summary to this file (in GitHub "
        'Actions: --summary "$GITHUB_STEP_SUMMARY").',
    ),
)


@dataclass(frozen=True)
class Gate:
    """A regression gate asked for on the command line; the baseline is read (and
    checked as untrusted input) before anything is measured."""

    baseline: Path
    doc: dict[str, Any]
    max_latency: float
    max_energy: float | None
    allow_different_machine: bool
    summary_path: Path | None

    def refuse_early(self, model: str) -> None:
        """Refuse now, before measuring anything, a baseline of another model (the rest
        of the like-for-like check needs the run's results)."""
        from anetui.report.gate import EXIT_REFUSED

        config = self.doc.get("config")
        wanted = config.get("model") if isinstance(config, dict) else None
        if isinstance(wanted, str) and wanted != str(Path(model)):
            click.echo(
                f"anetui: baseline refused, not like for like: model {wanted} vs {model} "
                f"({self.baseline})",
                err=True,
            )
            raise SystemExit(EXIT_REFUSED)


def gate_from_options(
    baseline_path: Path | None,
    max_regression: float,
    max_energy_regression: float | None,
    allow_different_machine: bool,
    summary_path: Path | None,
) -> Gate | None:
    """The Gate, or None without --baseline (the other gate options then refused)."""
    if baseline_path is None:
        if summary_path is not None or max_energy_regression is not None:
            raise click.UsageError("--summary and --max-energy-regression need --baseline")
        return None
    from anetui.report.load import load_results

    check_output_path(summary_path, "--summary")
    return Gate(
        baseline_path,
        load_results(baseline_path),
        max_regression,
        max_energy_regression,
        allow_different_machine,
        summary_path,
    )


def enrich(
    snapshot: Snapshot,
    spec: ModelSpec,
    monitor: PowerMonitor | None,
    since_ns: int | None = None,
    flops: bool = True,
) -> Snapshot:
    """The snapshot with the FLOPs of one inference in its config (counted after the run,
    so the timing is undisturbed) and the power per rail over time in its power entry."""
    from anetui.core.power_view import power_series
    from anetui.models.flops import count_flops

    counted = count_flops(spec) if flops else None
    config = {
        **snapshot.config,
        "flops_per_inference": counted.flops if counted else None,
        "flops_method": counted.method if counted else None,
        "flops_reason": counted.reason if counted else "not counted: the run was interrupted",
    }
    power = dict(snapshot.power)
    if monitor is not None:
        power["series"] = power_series(monitor, since_ns)
    return dataclasses.replace(snapshot, config=config, power=power)


def now_ns() -> int:
    """The power samples' clock (monotonic), for ``enrich``'s ``since_ns``."""
    return time.monotonic_ns()


@dataclass(frozen=True)
class After:
    """What `bench` does with its snapshot once the results are printed."""

    html_path: Path | None = None
    gate: Gate | None = None

    def check_paths(self) -> None:
        check_output_path(self.html_path, "--html")

    def finish(self, snapshot: Snapshot, out: Console, err: Console, code: int) -> int:
        """Write the HTML page, run the gate; the exit code (the gate's when it has one)."""
        from anetui.report import files, gate, html
        from anetui.report.compare import Run
        from anetui.report.results_json import to_json

        doc = to_json(snapshot)
        report = None
        if self.gate is not None:
            baseline = Run("baseline", self.gate.baseline, self.gate.doc)
            current = Run("this run", Path("this run"), doc)
            report = gate.evaluate(
                baseline,
                current,
                self.gate.max_latency,
                self.gate.max_energy,
                self.gate.allow_different_machine,
            )
            for line in gate.text_lines(report, baseline):
                out.print(escape(line), soft_wrap=True)
            if self.gate.summary_path is not None:
                files.append_text(self.gate.summary_path, gate.markdown(report, baseline, current))
                err.print(f"appended the gate summary to {self.gate.summary_path}")
            if report.refused:
                err.print(f"[red]error:[/] {escape(report.headline())}")
        if self.html_path is not None:
            files.write_atomic(self.html_path, html.results_page(doc, gate=report))
            err.print(f"wrote {self.html_path}")
        if report is not None and report.exit_code:
            return report.exit_code
        return code
