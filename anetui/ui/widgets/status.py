"""The status lines: what is happening (feedback for the last key), the model, then the
machine's CPU load and this process's share, power source and state, privileges,
thermal pressure, and the snapshot's warnings. The most important parts come first, so
that a narrow terminal cuts the least useful ones."""

from __future__ import annotations

from dataclasses import dataclass

import psutil
from rich.text import Text
from textual.widgets import Static

from anetui.core.results import Snapshot
from anetui.report.text import inputs_text

_STATE_STYLE = {
    "running": "green",
    "lost": "bold red",
    "needs-root": "yellow",
    "unavailable": "dim",
    "ended": "yellow",
    "stopped": "dim",
}
#: Other processes using more than this share of the machine (%): say so in yellow.
BUSY_OTHERS_PCT = 25.0


@dataclass(frozen=True)
class CpuLoad:
    """CPU use since the previous reading, in % of the whole machine (all cores)."""

    machine_pct: float
    anetui_pct: float

    @property
    def others_pct(self) -> float:
        return max(self.machine_pct - self.anetui_pct, 0.0)


class CpuMeter:
    """Reads the machine's and this process's CPU use (psutil), between two calls."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        psutil.cpu_percent(interval=None)  # the first reading only starts the interval
        self._process.cpu_percent(interval=None)

    def read(self) -> CpuLoad:
        machine = psutil.cpu_percent(interval=None)
        mine = self._process.cpu_percent(interval=None) / self._cores
        return CpuLoad(machine, min(mine, 100.0))


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
        cpu: CpuLoad | None = None,
    ) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("anetui ", style="bold")
        if message:
            text.append(message, style="bold yellow")
            text.append(" · ")
        if snapshot is not None:
            dtypes = sorted({b.dtype for b in snapshot.backends if b.available})
            text.append(f"{snapshot.model} {inputs_text(snapshot)}")
            if dtypes:
                text.append(f" · {'/'.join(dtypes)}")
            # Issue 10's contention and other warnings, where the snapshot has them.
            for warning in getattr(snapshot, "warnings", ()) or ():
                text.append(f" · ⚠ {warning}", style="yellow")
        text.append("\n")
        if cpu is not None:
            busy = cpu.others_pct > BUSY_OTHERS_PCT
            text.append(f"cpu {cpu.machine_pct:.0f}% (anetui {cpu.anetui_pct:.0f}%")
            text.append(f", others {cpu.others_pct:.0f}%", style="bold yellow" if busy else "")
            text.append(") · ")
        text.append("power: ")
        text.append(power_label)
        if power_state != "none":
            text.append(f" ({power_state})", style=_STATE_STYLE.get(power_state, ""))
        text.append(" · thermal: ")
        text.append(thermal or "–", style="yellow" if thermal not in (None, "Nominal") else "")
        text.append(f" · privileges: {privileges}")
        self.update(text)
