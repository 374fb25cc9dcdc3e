"""Power per rail on one shared, labelled scale, with current, mean and peak watts, and
the CPU clusters' (and GPU's) frequency and utilisation where the source reports them.

Every rail the source reports is listed; when the panel is too short for them all, the
last line sums up the rest ("+3 rails: …"). Rails the source lacks are not drawn (never
as zero). The sparklines are drawn here, not with textual's Sparkline, so that every
rail shares one scale (0 to the peak of all rails in view).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anetui.power.base import ClusterInfo, PowerSample

BARS = "▁▂▃▄▅▆▇█"
#: Width of a rail's name column; the figures follow the sparkline.
NAME_WIDTH = 8
#: Fewest sparkline cells before the figures shorten (mean dropped).
MIN_HISTORY = 8
#: Tallest sparkline (lines) when the panel has room.
MAX_ROWS = 3


def figures(values: list[float], short: bool) -> str:
    """' now 1.23 mean 0.98 peak 4.56 W' (or without the mean when ``short``)."""
    now, peak = values[-1], max(values)
    if short:
        return f" now{now:6.2f} peak{peak:6.2f} W"
    return f" now{now:6.2f} mean{sum(values) / len(values):6.2f} peak{peak:6.2f} W"


def spark(values: list[float], top: float, width: int, rows: int = 1) -> list[str]:
    """The last ``width`` values as bars on the scale 0…``top``, ``rows`` lines tall
    (the top line first); a zero is the lowest bar, so a rail at rest stays visible."""
    values = values[-width:] if width > 0 else []
    steps = len(BARS) * rows
    levels = [max(1, min(steps, round(v / top * steps))) if top > 0 else 1 for v in values]
    lines = []
    for row in range(rows - 1, -1, -1):  # the top line first
        cells = []
        for level in levels:
            part = level - row * len(BARS)
            cells.append(BARS[min(part, len(BARS)) - 1] if part > 0 else " ")
        lines.append("".join(cells))
    return lines


def clusters_text(clusters: dict[str, ClusterInfo]) -> str:
    """'E 1.02 GHz 34% · P0 3.20 GHz 80%' from the last window (what the source has)."""
    parts = []
    for name, c in clusters.items():
        bits = [name]
        if c.freq_mhz is not None:
            bits.append(f"{c.freq_mhz / 1000:.2f} GHz")
        if c.active_ratio is not None:
            bits.append(f"{c.active_ratio * 100:.0f}%")
        if len(bits) > 1:
            parts.append(" ".join(bits))
    return " · ".join(parts)


class PowerPanel(Static):
    """Hidden (display: none) when no power source was chosen."""

    def show(self, samples: list[PowerSample], label: str, state: str) -> None:
        self.border_title = f"power · {label}"
        if not samples:
            self.border_subtitle = state
            self.update(f"{state}: no power samples yet")
            return
        width = max(self.content_size.width, 20)
        height = max(self.content_size.height, 1)
        short = width - NAME_WIDTH - len(figures([0.0], short=False)) < MIN_HISTORY
        history = max(width - NAME_WIDTH - len(figures([0.0], short)), 1)
        recent = samples[-history:]
        series: dict[str, list[float]] = {}
        for s in recent:
            for rail, watts in s.rails_w.items():
                series.setdefault(rail, []).append(watts)
        top = max((max(v) for v in series.values() if v), default=0.0)
        elapsed_s = (recent[-1].t_end_ns - recent[0].t_start_ns) / 1e9
        self.border_subtitle = (
            f"scale 0–{top:.2f} W · {elapsed_s:.0f} s · {len(samples)} windows · {state}"
        )
        lines: list[Text] = []
        cluster_line = clusters_text(recent[-1].clusters)
        room = height - (1 if cluster_line else 0)
        rails = list(series)
        shown = rails if len(rails) <= room else rails[: max(room - 1, 0)]
        rows = max(1, min(MAX_ROWS, room // max(len(shown), 1)))  # taller when there is room
        for rail in shown:
            values = series[rail]
            bars = spark(values, top, history, rows)
            for i, bar in enumerate(bars):
                last = i == len(bars) - 1  # the name and figures sit on the bottom line
                line = Text()
                line.append(f"{rail[: NAME_WIDTH - 1] if last else '':<{NAME_WIDTH}}", style="bold")
                line.append(bar.ljust(history), style="cyan")
                if last:
                    line.append(figures(values, short))
                line.truncate(width)
                lines.append(line)
        rest = rails[len(shown) :]
        if rest:
            summary = ", ".join(f"{r} {series[r][-1]:.2f} W" for r in rest)
            lines.append(Text(f"+{len(rest)} rails: {summary}"[:width]))
        if cluster_line:
            lines.append(Text(cluster_line[:width], style="dim"))
        self.update(Text("\n").join(lines))  # every line already fits: nothing wraps
