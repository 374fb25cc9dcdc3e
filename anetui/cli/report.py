"""`anetui report`: saved results (bench --json, dashboard snapshots) as one Markdown
comparison."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown here instead of stdout.",
)
def report(files: tuple[Path, ...], out: Path | None) -> None:
    """Turn saved results (bench --json, dashboard snapshots) into one Markdown comparison."""
    from anetui.report.compare import comparison_markdown
    from anetui.report.files import write_atomic

    text = comparison_markdown(list(files))
    if out is None:
        click.echo(text)
    else:
        write_atomic(out, text)
        click.echo(f"wrote {out}", err=True)
