"""Update a DataTable in place: clearing and re-adding rows relays out the whole table,
which costs the inference thread CPU (and the GIL) at every redraw."""

from __future__ import annotations

from collections.abc import Sequence

from textual.coordinate import Coordinate
from textual.widgets import DataTable


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
