"""The status line: model, input, dtype, power source and state, privileges, thermal."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anetui.core.results import Snapshot

_STATE_STYLE = {
    "running": "green",
    "lost": "bold red",
    "needs-root": "yellow",
    "unavailable": "dim",
    "ended": "yellow",
    "stopped": "dim",
}


class StatusBar(Static):
    """Two lines at the top; what every number below was measured on."""

    def show(
        self,
        snapshot: Snapshot | None,
        message: str,
        power_label: str,
        power_state: str,
        thermal: str | None,
        privileges: str,
    ) -> None:
        text = Text()
        text.append("anetui ", style="bold")
        if snapshot is not None:
            dtypes = sorted({b.dtype for b in snapshot.backends if b.available})
            text.append(f"{snapshot.model} {snapshot.input_shape}")
            if dtypes:
                text.append(f" · {'/'.join(dtypes)}")
        else:
            text.append(message)
        text.append("\npower: ")
        text.append(power_label)
        if power_state != "none":
            text.append(f" ({power_state})", style=_STATE_STYLE.get(power_state, ""))
        text.append(f" · privileges: {privileges}")
        text.append(" · thermal: ")
        text.append(thermal or "–", style="yellow" if thermal not in (None, "Nominal") else "")
        if snapshot is not None and message:
            text.append(f" · {message}", style="italic")
        self.update(text)
