"""One sparkline per rail the power source reports, with current and mean watts. Rails
the source lacks are not drawn (never as zero)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from anetui.power.base import PowerSample

HISTORY = 120


class PowerPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("power", id="power-title")

    def on_mount(self) -> None:
        self._rails: dict[str, tuple[Label, Sparkline]] = {}

    def show(self, samples: list[PowerSample], label: str, state: str) -> None:
        title = self.query_one("#power-title", Label)
        if state == "none":
            title.update(
                "no power source: run with --power auto, rapl, nvml, powermetrics "
                "(sudo) or replay:FILE to measure energy"
            )
            return
        if not samples:
            title.update(f"power · {label} · {state} · no samples yet")
            return
        recent = samples[-HISTORY:]
        title.update(f"power · {label} · {state} · {len(samples)} windows")
        for rail in dict.fromkeys(r for s in recent for r in s.rails_mj):
            series = [s.rails_w[rail] for s in recent if rail in s.rails_mj]
            if rail not in self._rails:
                widgets = (Label(classes="rail-label"), Sparkline(series, classes="rail-spark"))
                self._rails[rail] = widgets
                self.mount(Horizontal(*widgets, classes="rail"))
            text, spark = self._rails[rail]
            text.update(f"{rail:<9}{series[-1]:8.3f} W  mean{sum(series) / len(series):8.3f} W")
            spark.data = series
