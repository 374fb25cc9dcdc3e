"""The backend list: the backends that can run here, numbered 1…n, each with what it is
doing now (loading, exporting, warming up 4/10, running …), p50 and inf/s; the ones that
cannot run here fold into one last line (`d` lists them with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import DataTable

from anetui.core.results import BackendResult, Snapshot
from anetui.report.text import fmt_ms
from anetui.ui.widgets.tables import show_table

_PHASE_STYLE = {
    "running": "bold green",
    "failed": "red",
    "paused": "cyan",
    "ready": "",
    "not run": "dim",
}
HEADERS = ("key", "backend", "state", "p50 ms", "inf/s")
#: The generative workload: time to first token (p50) and decoded tokens per second.
GENERATION_HEADERS = ("key", "backend", "state", "TTFT ms", "tok/s")
#: Columns dropped first when the list is narrow: inf/s, then p50 (both are in the
#: energy table too); the key never goes.
DROP_ORDER = (4, 3)
#: Longest failure reason kept in the row (the full text is in a notification).
REASON_WIDTH = 24


def phase_text(b: BackendResult, active: str | None, paused: bool) -> str:
    """The row's state word: the session's phase, with the dashboard's pause applied."""
    phase = b.phase or str(b.state)
    if b.id == active and paused and b.state in ("paused", "ready", "running"):
        phase = "paused"
    elif b.id == active and not paused and b.state in ("paused", "ready"):
        phase = "starting"  # chosen, queued behind the run being stopped
    elif b.id != active and b.state == "paused":
        phase = "stopped"
    if phase not in _PHASE_STYLE and b.state in ("preparing", "running"):
        return f"[yellow]{phase}…[/]" if b.state == "preparing" else f"[yellow]{phase}[/]"
    if phase == "failed" and b.error:
        reason = b.error.removeprefix(f"{b.id} ").removeprefix(f"{b.id}: ")
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 1] + "…"
        return f"[red]failed: {reason}[/]"
    style = _PHASE_STYLE.get(phase, "")
    return f"[{style}]{phase}[/]" if style else phase


def _figures(b: BackendResult) -> tuple[str, str]:
    """(p50 ms, inf/s), or for the generative workload (TTFT p50 ms, decode tokens/s)."""
    gen = b.generation
    if gen is not None:
        ttft = fmt_ms(gen.ttft.p50_ns / 1e6) if gen.ttft else "–"
        return ttft, f"{gen.decode_tokens_per_s:.1f}" if gen.decode_tokens_per_s else "–"
    p50 = fmt_ms(b.summary.p50_ns / 1e6) if b.summary else "–"
    return p50, f"{b.throughput_per_s:.1f}" if b.throughput_per_s else "–"


@dataclass(frozen=True)
class ListedRow:
    """What a row of the list stands for: a backend id, or the folded unavailable line."""

    backend_id: str | None


class BackendList(DataTable[str]):
    """Runnable backends in key order, then one line for the ones that cannot run."""

    class Clicked(Message):
        """A row was clicked (a single click runs it, as Enter does)."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.rows_shown: list[ListedRow] = []

    def show(
        self,
        snapshot: Snapshot,
        keyed: list[str],
        active: str | None,
        paused: bool,
        reference: str | None,
    ) -> None:
        by_id = {b.id: b for b in snapshot.backends}
        rows: list[tuple[str, ...]] = []
        self.rows_shown = []
        for key, backend_id in enumerate(keyed, start=1):
            b = by_id[backend_id]
            marker = "▶ " if b.id == active else "  "
            name = marker + b.id + (" [b]ref[/]" if b.id == reference else "")
            p50, tput = _figures(b)
            rows.append(
                (str(key) if key <= 9 else "", name, phase_text(b, active, paused), p50, tput)
            )
            self.rows_shown.append(ListedRow(b.id))
        missing = [b for b in snapshot.backends if b.id not in keyed]
        if missing:
            rows.append(
                ("d", f"[dim]+{len(missing)} not available here[/]", "[dim]d: why[/]", "", "")
            )
            self.rows_shown.append(ListedRow(None))
        generative = any(b.generation is not None for b in snapshot.backends)
        show_table(self, GENERATION_HEADERS if generative else HEADERS, rows, DROP_ORDER)

    def row_backend(self, row: int) -> str | None:
        """The backend id on ``row`` (None for the folded line or no row)."""
        shown = getattr(self, "rows_shown", [])
        return shown[row].backend_id if 0 <= row < len(shown) else None

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if isinstance(row, int) and row >= 0:
            self.post_message(self.Clicked(row))
