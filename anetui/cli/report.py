"""`anetui report`: saved results (bench --json, dashboard snapshots) from one or several
machines as one Markdown comparison (anetui.report.compare)."""

from __future__ import annotations

from pathlib import Path

import click

from anetui.cli.options import check_output_path, file_option
from anetui.cli.outputs import html_option
from anetui.errors import AnetuiError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@file_option("--out", help="Write the Markdown here instead of stdout.")
@html_option
def report(files: tuple[Path, ...], out: Path | None, html_path: Path | None) -> None:
    """Compare saved results (bench --json, dashboard snapshots) in one Markdown report.

    Each file is a column. The same backend is compared across files, each against the
    first ("onnx-cpu: after ran 1.12x (1.08–1.15) faster than before"); environment
    fields that differ are marked; files from different machines get each machine's
    fastest and least-energy backend compared, with the caveat on power sources.
    With --html, also one self-contained HTML page with the charts.
    """
    from anetui.report.compare import comparison_markdown, load_runs
    from anetui.report.files import write_atomic
    from anetui.report.html import comparison_page

    check_output_path(out, "--out")
    check_output_path(html_path, "--html")
    try:
        text = comparison_markdown(list(files))
        page = comparison_page(load_runs(list(files))) if html_path is not None else None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # load_results checks each file's shape; this is the net for a field it missed.
        raise AnetuiError(f"a results file is malformed: {type(exc).__name__}: {exc}") from None
    if html_path is not None and page is not None:
        write_atomic(html_path, page)
        click.echo(f"wrote {html_path}", err=True)
    if out is None:
        click.echo(text)
    else:
        write_atomic(out, text)
        click.echo(f"wrote {out}", err=True)
