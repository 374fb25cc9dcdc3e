"""Live latency histogram of one backend with p50/p90/p99 marked, and a latency-over-time
sparkline beneath it (mean latency per 100 ms)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline
from textual_plotext import PlotextPlot

from anetui.core.results import BackendResult
from anetui.report.text import fmt_ms, latency_cells


class LatencyPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="histogram")
        yield Label("latency over time (mean per 100 ms)", id="latency-title")
        yield Sparkline([], id="latency-spark", summary_function=max)

    def show(self, backend: BackendResult | None) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        spark = self.query_one(Sparkline)
        if backend is None or backend.summary is None or not backend.histogram:
            self.border_title = "latency: waiting for a running backend"
            spark.data = []
            plot.refresh()
            return
        s = backend.summary
        centers = [(lo + hi) / 2 / 1e6 for lo, hi, _ in backend.histogram]
        counts = [c for _, _, c in backend.histogram]
        width = (backend.histogram[0][1] - backend.histogram[0][0]) / 1e6
        plt.bar(centers, counts, width=width or 0.01, color="cyan")
        low, high = backend.histogram[0][0] / 1e6, backend.histogram[-1][1] / 1e6
        ticks = [low + (high - low) * i / 4 for i in range(5)]
        plt.xticks(ticks, [fmt_ms(t) for t in ticks])
        hidden = s.count - sum(counts)
        for name, color in (("p50", "green"), ("p90", "yellow"), ("p99", "red")):
            plt.vline(s.quantiles_ns[name] / 1e6, color=color)
        cell = latency_cells(s)
        ci_text = f" ({cell['p50_ci']})" if s.p50_ci95_ns else ""
        self.border_title = (
            f"{backend.id} · p50 {cell['p50']}{ci_text} · p90 {cell['p90']} · "
            f"p99 {cell['p99']} ms · n={s.count}"
        )
        plt.title("latency (ms)" + (f", {hidden} above p99 not drawn" if hidden > 0 else ""))
        plt.xlabel("ms")
        plot.refresh()
        spark.data = [mean / 1e6 for _, mean in backend.latency_series[-240:]]
