"""The backend list: key, id, state (with the reason when it cannot run), p50, inf/s."""

from __future__ import annotations

from textual.widgets import DataTable

from anetui.core.results import Snapshot
from anetui.report.text import fmt_ms
from anetui.ui.widgets.tables import update_rows

_STATE_STYLE = {
    "running": "bold green",
    "error": "red",
    "unavailable": "dim",
    "preparing": "yellow",
    "paused": "cyan",
}


REASON_WIDTH = 26


class BackendList(DataTable[str]):
    """One row per backend, in key order (1–9)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("key", "backend", "state", "p50 ms", "inf/s")

    def show(self, snapshot: Snapshot, active: str | None, paused: bool) -> None:
        rows = []
        for i, b in enumerate(snapshot.backends, start=1):
            state: str = b.state
            if b.id == active and state in ("running", "paused", "ready"):
                state = "paused" if paused else "running"
            if state == "preparing":
                state = "loading…"
            detail = f": {b.reason or b.error}" if state in ("unavailable", "error") else ""
            if len(detail) > REASON_WIDTH:  # the full reason is in the notification on its key
                detail = detail[: REASON_WIDTH - 1] + "…"
            style = _STATE_STYLE.get(b.state if state != "loading…" else "preparing", "")
            p50 = fmt_ms(b.summary.p50_ns / 1e6) if b.summary else "–"
            tput = f"{b.throughput_per_s:.1f}" if b.throughput_per_s else "–"
            key = str(i) if i <= 9 else ""
            marker = "▶ " if b.id == active else "  "
            rows.append(
                (
                    key,
                    marker + b.id,
                    f"[{style}]{state}{detail}[/]" if style else state + detail,
                    p50,
                    tput,
                )
            )
        update_rows(self, rows)
