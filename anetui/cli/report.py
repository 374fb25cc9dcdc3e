"""`anetui report`: saved results (bench --json, dashboard snapshots) from one or several
machines as one Markdown comparison (anetui.report.compare)."""

from __future__ import annotations

from pathlib import Path

import click

from anetui.cli.options import check_output_path, file_option
from anetui.errors import AnetuiError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@file_option("--out", help="Write the Markdown here instead of stdout.")
def report(files: tuple[Path, ...], out: Path | None) -> None:
    """Compare saved results (bench --json, dashboard snapshots) in one Markdown report.

    Each file is a column. The same backend is compared across files, each against the
    first ("onnx-cpu: after ran 1.12x (1.08–1.15) faster than before"); environment
    fields that differ are marked; files from different machines get each machine's
    fastest and least-energy backend compared, with the caveat on power sources.
    """
    from anetui.report.compare import comparison_markdown
    from anetui.report.files import write_atomic

    check_output_path(out, "--out")
    try:
        text = comparison_markdown(list(files))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # load_results checks each file's shape; this is the net for a field it missed.
        raise AnetuiError(f"a results file is malformed: {type(exc).__name__}: {exc}") from None
    if out is None:
        click.echo(text)
    else:
        write_atomic(out, text)
        click.echo(f"wrote {out}", err=True)
