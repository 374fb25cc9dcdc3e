"""Small inline SVG charts for the HTML report: a histogram, bars with intervals, and
lines over x. Plain strings, no library and nothing loaded: every label is escaped, and
the SVG carries no namespace URL (inline SVG in HTML needs none)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 640, 240
#: Margins (px): left for the y labels, bottom for the x labels.
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 40
#: Series colours (Okabe–Ito, readable by colour-blind readers).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _num(value: float) -> str:
    """A tick label: three significant digits, no exponent below 1e6."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _frame(kind: str, title: str, body: list[str], x_label: str, y_label: str) -> str:
    label = escape(title, quote=True)
    return "\n".join(
        [
            f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{label}">',
            f"<title>{escape(title)}</title>",
            f'<text x="{LEFT}" y="14" class="title">{escape(title)}</text>',
            *body,
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" '
            f'class="axis">{escape(x_label)}</text>',
            f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" class="axis" '
            f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2})">{escape(y_label)}</text>',
            "</svg>",
        ]
    )


def _y_axis(y_max: float, y_min: float = 0.0) -> tuple[list[str], float, float]:
    """Grid lines and labels; returns them and the (min, max) they span."""
    ticks = _ticks(y_min, y_max)
    if len(ticks) > 1 and ticks[-1] < y_max:  # one more tick above the highest value
        ticks.append(ticks[-1] + (ticks[1] - ticks[0]))
    top = max(ticks[-1], y_max)
    body = []
    for tick in ticks:
        y = _y(tick, y_min, top)
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        body.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_num(tick)}</text>"
        )
    return body, y_min, top


def _y(value: float, lo: float, hi: float) -> float:
    span = hi - lo or 1.0
    return TOP + (HEIGHT - BOTTOM - TOP) * (1 - (value - lo) / span)


def _x(value: float, lo: float, hi: float) -> float:
    span = hi - lo or 1.0
    return LEFT + (WIDTH - RIGHT - LEFT) * (value - lo) / span


def histogram(title: str, bins: Sequence[Sequence[float]], x_label: str) -> str:
    """Bars for (low, high, count) bins."""
    usable = [(float(lo), float(hi), float(n)) for lo, hi, n in bins]
    if not usable:
        return ""
    x_lo, x_hi = usable[0][0], max(b[1] for b in usable)
    if x_hi <= x_lo:
        x_hi = x_lo + 1e-9
    body, y_lo, y_hi = _y_axis(max(b[2] for b in usable) or 1.0)
    for lo, hi, n in usable:
        x0, x1 = _x(lo, x_lo, x_hi), _x(hi, x_lo, x_hi)
        y = _y(n, y_lo, y_hi)
        body.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.5):.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{_num(lo)}–{_num(hi)}: {int(n)}</title>'
            "</rect>"
        )
    for tick in _ticks(x_lo, x_hi):
        x = _x(tick, x_lo, x_hi)
        body.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" class="tick">'
            f"{_num(tick)}</text>"
        )
    return _frame("histogram", title, body, x_label, "inferences")


def bars(
    title: str,
    values: Sequence[tuple[str, float, tuple[float, float] | None]],
    y_label: str,
) -> str:
    """One bar per (name, value, interval or None), the interval as an error bar."""
    usable = [(n, v, ci) for n, v, ci in values if math.isfinite(v)]
    if not usable:
        return ""
    top = max(max(v, ci[1] if ci else v) for _, v, ci in usable)
    body, y_lo, y_hi = _y_axis(top or 1.0)
    slot = (WIDTH - RIGHT - LEFT) / len(usable)
    for i, (name, value, ci) in enumerate(usable):
        x = LEFT + slot * i + slot * 0.15
        y = _y(value, y_lo, y_hi)
        colour = COLOURS[i % len(COLOURS)]
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{colour}"><title>{escape(name)}: '
            f"{_num(value)}</title></rect>"
        )
        if ci is not None:
            cx = x + slot * 0.35
            y0, y1 = _y(ci[0], y_lo, y_hi), _y(ci[1], y_lo, y_hi)
            body.append(
                f'<line class="interval" x1="{cx:.1f}" x2="{cx:.1f}" y1="{y0:.1f}" y2="{y1:.1f}"/>'
            )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'class="tick">{escape(name)}</text>'
        )
    return _frame("bars", title, body, "", y_label)


def lines(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    x_label: str,
    y_label: str,
) -> str:
    """One polyline per named series of (x, y) points (None: a gap), with a legend."""
    points = [(x, y) for s in series.values() for x, y in s if y is not None and math.isfinite(y)]
    if not points:
        return ""
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    body, y_lo, y_hi = _y_axis(max(p[1] for p in points) or 1.0)
    for tick in _ticks(x_lo, x_hi):
        x = _x(tick, x_lo, x_hi)
        body.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" class="tick">'
            f"{_num(tick)}</text>"
        )
    for i, (name, data) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for x, y in data:
            if y is None or not math.isfinite(y):
                runs.append([])
                continue
            runs[-1].append(f"{_x(x, x_lo, x_hi):.1f},{_y(y, y_lo, y_hi):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                body.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            elif run:
                body.append(
                    f'<polyline class="series" points="{" ".join(run)}" stroke="{colour}">'
                    f"<title>{escape(name)}</title></polyline>"
                )
        body.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{TOP + 14 * (i + 1)}" text-anchor="end" '
            f'fill="{colour}" class="legend">{escape(name)}</text>'
        )
    return _frame("lines", title, body, x_label, y_label)
