"""Live latency histogram of one backend with p50/p90/p99 marked and named, and its
latency over time (mean per 100 ms) beneath, with its scale. Before the first number
the panel says what the backend is doing (loading, exporting, warming up 4/10 …)."""

from __future__ import annotations

import dataclasses

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline
from textual_plotext import PlotextPlot

from anetui.core.results import BackendResult
from anetui.report.text import fmt_ms, latency_cells

#: Fewer timed inferences than this: no histogram yet (one bar would fill the plot).
MIN_FOR_HISTOGRAM = 20
MARKERS = (("p50", "green"), ("p90", "yellow"), ("p99", "red"))


def title_parts(backend: BackendResult) -> list[str]:
    """The title's parts, most important first at both ends: id … n."""
    assert backend.summary is not None
    s = backend.summary
    cell = latency_cells(s)
    ci = f" ({cell['p50_ci']})" if s.p50_ci95_ns else ""
    return [
        backend.id,
        f"p50 {cell['p50']}{ci} ms",
        f"p90 {cell['p90']}",
        f"p99 {cell['p99']}",
        f"n={s.count}",
    ]


def fit_title(parts: list[str], width: int) -> str:
    """Join ``parts`` with " · ", dropping from the middle (the p50 interval, then p99,
    then p90) so the backend, its p50 and n always stay."""
    parts = list(parts)
    text = " · ".join(parts)
    if len(text) <= width:
        return text
    parts[1] = parts[1].split(" (")[0] + (" ms" if " (" in parts[1] else "")
    for drop in (3, 2):  # p99, then p90
        text = " · ".join(parts)
        if len(text) <= width:
            return text
        parts.pop(drop)
    return " · ".join(parts)


def _per_token(backend: BackendResult) -> BackendResult:
    """``backend`` with its per-token figures where a histogram reads its per-inference
    ones (a view only: nothing is recomputed)."""
    gen = backend.generation
    assert gen is not None
    if gen.decode is None:
        return backend
    rate = f"{gen.decode_tokens_per_s:.1f} tok/s" if gen.decode_tokens_per_s else ""
    ttft = f"TTFT {fmt_ms(gen.ttft.p50_ns / 1e6)} ms" if gen.ttft else ""
    label = " · ".join(x for x in (ttft, rate) if x)
    return dataclasses.replace(
        backend,
        id=f"{backend.id} · {label} · per token" if label else backend.id,
        summary=gen.decode,
        histogram=gen.decode_histogram,
    )


class LatencyPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="histogram")
        yield Label("latency over time", id="latency-title")
        yield Sparkline([], id="latency-spark", summary_function=max)

    def show(self, backend: BackendResult | None, phase: str | None = None) -> None:
        """Draw ``backend``'s figures; ``phase`` says what it is doing when it has none.
        For the generative workload the histogram is of each decoded token's latency,
        the title adds the time to first token and the decode rate."""
        if backend is not None and backend.generation is not None:
            backend = _per_token(backend)
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        spark = self.query_one(Sparkline)
        width = max(self.size.width - 8, 20)  # the border and its title's corners
        s = backend.summary if backend else None
        if backend is not None and s is not None:
            parts = title_parts(backend)
            doing = phase or backend.phase
            if doing and doing != "running":
                parts[0] += f" ({doing})"  # paused, checking output …
            self.border_title = fit_title(parts, width)  # p50 from the first inference on
        if backend is None or s is None or s.count < MIN_FOR_HISTOGRAM or not backend.histogram:
            if backend is None:
                self.border_title = f"latency: {phase or 'waiting for a backend'}"[:width]
            elif s is None:
                self.border_title = f"{backend.id}: {phase or backend.phase}"[:width]
            else:
                plt.title(f"the histogram comes at n={MIN_FOR_HISTOGRAM}")
            spark.data = []
            self.query_one("#latency-title", Label).update("latency over time")
            plot.refresh()
            return
        centers = [(lo + hi) / 2 / 1e6 for lo, hi, _ in backend.histogram]
        counts = [c for _, _, c in backend.histogram]
        bin_ms = (backend.histogram[0][1] - backend.histogram[0][0]) / 1e6
        plt.bar(centers, counts, width=bin_ms or 0.01, color="cyan")
        low, high = backend.histogram[0][0] / 1e6, backend.histogram[-1][1] / 1e6
        xticks = [low + (high - low) * i / 4 for i in range(5)]
        plt.xticks(xticks, [fmt_ms(t) for t in xticks])
        peak = max(counts)
        yticks = sorted({float(round(peak * i / 4)) for i in range(5)})
        plt.yticks(yticks, [str(int(t)) for t in yticks])  # counts are whole numbers
        plt.ylim(0, peak * 1.15)
        # Names closer than a label's width (in ms at this plot's width) would print over
        # each other ("p5p90"): each such one goes a step lower than the one it meets.
        label_ms = (high - low) * 4 / max(plot.size.width - 8, 10)
        placed: list[tuple[float, float]] = []
        for name, color in MARKERS:
            at = s.quantiles_ns[name] / 1e6
            plt.vline(at, color=color)
            y = peak * 1.1
            while any(abs(at - x) < label_ms and abs(y - py) < peak * 0.05 for x, py in placed):
                y -= peak * 0.12
            placed.append((at, y))
            near_right = at > low + (high - low) * 0.9  # keep the name inside the plot
            plt.text(name, at, y, color=color, alignment="right" if near_right else "center")
        hidden = s.count - sum(counts)
        plt.title(
            # Each line carries its name: a colour word can be wrong (the default theme
            # draws plotext's "yellow" violet, as screenshots/ showed).
            "p50 · p90 · p99 named on their lines"
            + (f" · {hidden} > p99 not drawn" if hidden > 0 else "")
        )
        plt.xlabel("latency (ms)")
        plt.ylabel("count")
        plot.refresh()
        points = backend.latency_series[-max(width, 10) :]
        series = [mean / 1e6 for _, mean in points]
        spark.data = series
        if series:
            seconds = (points[-1][0] - points[0][0] + 1) / 10  # 100 ms buckets
            self.query_one("#latency-title", Label).update(
                f"mean per 100 ms, last {seconds:.0f} s · now {fmt_ms(series[-1])} · "
                f"peak {fmt_ms(max(series))} ms"
            )
