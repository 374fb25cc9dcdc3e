"""DataTable helpers: update rows in place, and never cut a column.

Clearing and re-adding rows relays out the whole table, which costs the inference thread
CPU (and the GIL) at every redraw, so rows are updated cell by cell when their number is
unchanged. Columns that do not fit the table's width are dropped whole, least useful
first, rather than cut at the right edge.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

#: Cells each column adds besides its text (DataTable's cell_padding of 1 each side).
COLUMN_PADDING = 2


def cell_width(value: str) -> int:
    """Printed width of a cell (console markup such as ``[red]…[/]`` not counted)."""
    return Text.from_markup(value).cell_len


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's printed width: its widest cell or header."""
    return [max([cell_width(h)] + [cell_width(r[i]) for r in rows]) for i, h in enumerate(headers)]


def fit_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    drop_order: Sequence[int],
    width: int,
) -> list[int]:
    """Indices of the columns to show in ``width`` cells, dropping ``drop_order`` first."""
    widths = [w + COLUMN_PADDING for w in column_widths(headers, rows)]
    kept = list(range(len(headers)))
    for index in drop_order:
        if sum(widths[i] for i in kept) <= width:
            break
        kept.remove(index)
    return kept


def show_table(
    table: DataTable[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    drop_order: Sequence[int] = (),
    width: int | None = None,
) -> None:
    """Show ``rows`` under ``headers``, keeping only the columns that fit ``width``; each
    column exactly as wide as its widest cell (rebuilt when that changes)."""
    available = width if width is not None else table.size.width - 2  # the border
    kept = fit_columns(headers, rows, drop_order, available) if available > 0 else []
    if not kept:
        kept = list(range(len(headers)))
    shown = [[row[i] for i in kept] for row in rows]
    labels = [headers[i] for i in kept]
    layout = (tuple(labels), tuple(column_widths(labels, shown)))
    if getattr(table, "_anetui_layout", None) != layout:
        table._anetui_layout = layout  # type: ignore[attr-defined]
        cursor = table.cursor_row
        table.clear(columns=True)
        for label, column_width in zip(*layout, strict=True):
            table.add_column(label, width=column_width)
        for row in shown:
            table.add_row(*row)
        if rows and table.cursor_type != "none":
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
        return
    update_rows(table, shown)


def update_rows(table: DataTable[str], rows: Sequence[Sequence[str]]) -> None:
    if table.row_count != len(rows):
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row)
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
        return
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            coordinate = Coordinate(r, c)
            if table.get_cell_at(coordinate) != value:
                table.update_cell_at(coordinate, value, update_width=True)
