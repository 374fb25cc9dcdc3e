"""One self-contained HTML page per report (``--html`` on bench, sweep and report):
inline CSS and inline SVG charts (``report.svg``), no script, no font, no URL to load —
a Content-Security-Policy in the page forbids any fetch, so a file attached to a pull
request or a bug report shows the same everywhere, offline.

It renders results documents (what ``--json`` writes; schema anetui.results/1 or 2), so
a saved file and a fresh run give the same page: the latency histograms, power per rail
over time, energy per inference, the ratios with their intervals and factors, the
achieved work rate, the environment and every warning; for a sweep, its curves and
table; with a gate, its verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from anetui.report import svg
from anetui.report.text import fmt_ms, fmt_ratio
from anetui.report.work_rate import gflops_text

if TYPE_CHECKING:
    from anetui.report.compare import Run
    from anetui.report.gate import GateReport

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
td:first-child,th:first-child,td.text{text-align:left}th{background:#f4f4f4}
.kv td{text-align:left}
.warn{background:#fff6db;border-left:4px solid #e6a700;padding:.4em .8em;margin:.3em 0}
.bad{color:#b00020;font-weight:bold}.good{color:#087f23}.dim{color:#666}
svg.chart{display:block;margin:.5em 0;max-width:100%;height:auto;background:#fcfcfc}
svg .grid{stroke:#e5e5e5}svg .tick{font-size:11px;fill:#555}svg .legend{font-size:11px}
svg .title{font-size:13px;font-weight:bold}svg .axis{font-size:12px;fill:#333}
svg .bar{fill:#0072B2}svg .series{fill:none;stroke-width:2}
svg .interval{stroke:#000;stroke-width:2}
.charts{display:flex;flex-wrap:wrap;gap:.5em}
"""
#: Nothing may load: no script, no image, no font, no connection; inline styles only.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def page(title: str, parts: Sequence[str]) -> str:
    """The whole document around ``parts`` (HTML fragments)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            *parts,
            '<p class="dim">Made by anetui. Self-contained: nothing in this page is loaded '
            "from the network.</p>",
            "</body></html>",
            "",
        ]
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """A table of already-escaped cells (``css``: its class)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _e(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return escape("×".join(str(v) for v in value))
    return escape(str(value))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _measured(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b
        for b in doc.get("backends") or []
        if isinstance(b, dict) and isinstance(b.get("latency_ms"), dict)
    ]


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _percent(value: object) -> str:
    return f"{value:.0%}" if _is_num(value) else "–"


def _fixed(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if _is_num(value) else "–"


def _bins(value: object) -> list[tuple[float, float, float]]:
    """The (low ms, high ms, count) bins of a histogram_ms entry; [] if malformed."""
    if not isinstance(value, list):
        return []
    bins = [b for b in value if isinstance(b, list) and len(b) == 3 and all(map(_is_num, b))]
    return (
        [(float(lo), float(hi), float(n)) for lo, hi, n in bins] if len(bins) == len(value) else []
    )


def _pair(value: object) -> tuple[float, float] | None:
    if isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value):
        return float(value[0]), float(value[1])
    return None


def _p50_cell(latency: dict[str, Any]) -> str:
    ci = _pair(latency.get("p50_ci95"))
    text = f"<b>{fmt_ms(latency.get('p50'))}</b>"
    return text + (f" ({fmt_ms(ci[0])}–{fmt_ms(ci[1])})" if ci else "")


def _mj(entry: dict[str, Any]) -> float | None:
    value = _dict(entry.get("energy")).get("mj_per_inference")
    return float(value) if isinstance(value, (int, float)) else None


# -- one results document -----------------------------------------------------------
def results_sections(doc: dict[str, Any], level: int = 2) -> list[str]:
    """Every section of one results document, headings at ``level``."""
    h = f"h{level}"
    config, measured = _dict(doc.get("config")), _measured(doc)
    version = _dict(doc.get("environment")).get("anetui")
    parts = [
        f"<p>Model <b>{_e(config.get('model'))}</b>, input {_e(config.get('input_shape'))}, "
        f"created {_e(doc.get('created'))}, anetui {_e(version)}.</p>"
    ]
    warnings = [w for w in doc.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        parts.append(f"<{h}>Warnings</{h}>")
        parts += [f'<div class="warn">{escape(w)}</div>' for w in warnings]
    parts.append(f"<{h}>Results</{h}>")
    rows = []
    for b in measured:
        mj = _mj(b)
        rows.append(
            [
                f'<span class="text">{_e(b["id"])}</span>',
                _e(b.get("count")),
                _p50_cell(b["latency_ms"]),
                fmt_ms(b["latency_ms"].get("p90")),
                fmt_ms(b["latency_ms"].get("p99")),
                _fixed(b.get("throughput_per_s"), 1),
                f"{mj:.3f}" if mj is not None else "–",
                gflops_text(b.get("gflops_per_s")),
            ]
        )
    parts.append(
        _table(
            ["backend", "n", "p50 ms (95% CI)", "p90 ms", "p99 ms", "inf/s", "mJ/inf", "GFLOP/s"],
            rows,
        )
    )
    for b in doc.get("backends") or []:
        if isinstance(b, dict) and not isinstance(b.get("latency_ms"), dict):
            why = b.get("error") or b.get("reason") or b.get("state")
            parts.append(f'<p class="dim">{_e(b.get("id"))}: not measured — {_e(why)}</p>')
    charts = [
        svg.histogram(f"{b['id']}: latency", bins, "latency, ms")
        for b in measured
        if (bins := _bins(b.get("histogram_ms")))
    ]
    if charts:
        parts += [f"<{h}>Latency histograms</{h}>", '<div class="charts">', *charts, "</div>"]
    parts += _energy(doc, measured, h)
    parts += _ratios(doc, h)
    parts += _work_rate(config, h)
    parts += _environment(doc, h)
    return parts


def _energy(doc: dict[str, Any], measured: list[dict[str, Any]], h: str) -> list[str]:
    power = _dict(doc.get("power"))
    parts: list[str] = []
    if power.get("source", "none") == "none":
        return [f"<{h}>Energy</{h}>", '<p class="dim">No power source ran (--power none).</p>']
    parts.append(f"<{h}>Energy</{h}>")
    parts.append(
        f"<p>Source: {_e(power.get('label') or power.get('source'))}, "
        f"state {_e(power.get('state'))}, every {_e(power.get('interval_ms'))} ms.</p>"
    )
    values = [
        (str(b["id"]), mj, _pair(_dict(b.get("energy")).get("mj_per_inference_ci975")))
        for b in measured
        if (mj := _mj(b)) is not None
    ]
    chart = svg.bars("energy per inference, mJ (97.5% interval)", values, "mJ per inference")
    series = _dict(power.get("series"))
    t_s: list[Any] = series["t_s"] if isinstance(series.get("t_s"), list) else []
    rails = {
        str(rail): [
            (float(t), float(w) if _is_num(w) else None)
            for t, w in zip(t_s, watts, strict=False)
            if _is_num(t)
        ]
        for rail, watts in _dict(series.get("rails_w")).items()
        if isinstance(watts, list)
    }
    power_chart = svg.lines("power per rail over time", rails, "time, s", "W") if t_s else ""
    parts += ['<div class="charts">', chart, power_chart, "</div>"]
    rows = [
        [
            _e(b["id"]),
            _e(", ".join(_dict(b.get("energy")).get("total_rails") or [])),
            f"{mj:.3f}",
            _fixed(_dict(b.get("energy")).get("active_mj_per_inference"), 3),
            _percent(_dict(b.get("energy")).get("coverage")),
        ]
        for b in measured
        if (mj := _mj(b)) is not None
    ]
    parts.append(_table(["backend", "rails", "mJ/inf", "active mJ/inf", "coverage"], rows))
    return parts


def _ratios(doc: dict[str, Any], h: str) -> list[str]:
    ratios = [r for r in doc.get("ratios") or [] if isinstance(r, dict)]
    if not ratios:
        return []
    rows = []
    for r in ratios:
        ci = _pair(r.get("speed_ci95"))
        rows.append(
            [
                _e(r.get("backend")),
                _e(r.get("reference")),
                f"{fmt_ratio(r['speed'])}x" if isinstance(r.get("speed"), (int, float)) else "–",
                f"{fmt_ratio(ci[0])}–{fmt_ratio(ci[1])}" if ci else _e(r.get("speed_note")),
                _e(", ".join(r.get("differs") or [])),
                _e(r.get("summary")),
            ]
        )
    bars = [
        (f"{r.get('backend')}", float(r["speed"]), _pair(r.get("speed_ci95")))
        for r in ratios
        if isinstance(r.get("speed"), (int, float))
    ]
    chart = svg.bars("speed against the reference (ratio of medians, 95% interval)", bars, "x")
    return [
        f"<{h}>Ratios</{h}>",
        chart,
        _table(
            ["backend", "reference", "speed", "95% interval", "factors that differ", "in words"],
            rows,
        ),
    ]


def _work_rate(config: dict[str, Any], h: str) -> list[str]:
    flops = config.get("flops_per_inference")
    if not isinstance(flops, (int, float)):
        reason = config.get("flops_reason")
        return [f'<p class="dim">No FLOP count: {_e(reason)}</p>'] if reason else []
    return [
        f"<{h}>Achieved work rate</{h}>",
        f"<p>{flops / 1e9:.4g} GFLOP per inference; GFLOP/s per backend in the results "
        f"table. FLOPs counted by {_e(config.get('flops_method'))}.</p>",
    ]


def _environment(doc: dict[str, Any], h: str) -> list[str]:
    env, config = _dict(doc.get("environment")), _dict(doc.get("config"))
    rows = [[_e(k), _e(v)] for k, v in env.items()]
    rows += [[f"config.{_e(k)}", _e(v)] for k, v in config.items()]
    rows += [[f"power.{_e(k)}", _e(v)] for k, v in _dict(doc.get("power")).items() if k != "series"]
    return [f"<{h}>Environment and configuration</{h}>", _table(["field", "value"], rows, "kv")]


# -- pages ----------------------------------------------------------------------------
def gate_section(report: GateReport) -> list[str]:
    """The regression gate's verdict."""
    style = "bad" if report.exit_code else "good"
    rows = [
        [
            _e(f.backend),
            _e(f.metric),
            _e(f.figures),
            f"{fmt_ratio(f.ratio)}x",
            f"{fmt_ratio(f.interval[0])}–{fmt_ratio(f.interval[1])} ({f.confidence})"
            if f.interval
            else "–",
            f"{fmt_ratio(f.limit)}x",
            f'<span class="{"bad" if f.regressed else ""}">{_e(f.verdict)}</span>'
            + (f'<br><span class="dim">{_e(f.caveat)}</span>' if f.caveat else ""),
        ]
        for f in report.findings
    ]
    parts = ["<h2>Regression gate</h2>", f'<p class="{style}">{_e(report.headline())}</p>']
    if rows:
        parts.append(
            _table(
                [
                    "backend",
                    "metric",
                    "baseline → this run",
                    "this run ÷ baseline",
                    "interval",
                    "allowed",
                    "verdict",
                ],
                rows,
            )
        )
    if report.allowed_machine:
        differs = _e("; ".join(report.machine_differs))
        parts.append(f'<div class="warn">Compared across machines: {differs}</div>')
    if report.settings_differ:
        parts.append(f"<p>Settings that differ: {_e('; '.join(report.settings_differ))}</p>")
    parts += [f'<p class="dim">{_e(n)}</p>' for n in report.notes]
    return parts


def results_page(doc: dict[str, Any], gate: GateReport | None = None) -> str:
    """The page for one run (``bench --html``), with the gate's verdict when gated."""
    config = _dict(doc.get("config"))
    parts = gate_section(gate) if gate is not None else []
    return page(f"anetui benchmark: {config.get('model')}", [*parts, *results_sections(doc)])


def comparison_page(runs: Sequence[Run]) -> str:
    """The page for ``report --html``: the medians side by side, the ratios across files
    (as in the Markdown comparison), then each file in full."""
    from anetui.report.compare import speed_ratio, speed_sentence

    parts = ["<h2>p50 latency per file</h2>"]
    ids: list[str] = []
    for run in runs:
        ids += [i for i in run.measured() if i not in ids]
    for backend_id in ids:
        values = [
            (run.label, float(e["latency_ms"]["p50"]), _pair(e["latency_ms"].get("p50_ci95")))
            for run in runs
            if (e := run.measured().get(backend_id)) is not None
            and isinstance(e["latency_ms"].get("p50"), (int, float))
        ]
        parts.append(svg.bars(f"{backend_id}: p50 latency, ms (95% CI)", values, "ms"))
    sentences = []
    for other in runs[1:]:
        for backend_id, ref in runs[0].measured().items():
            oth = other.measured().get(backend_id)
            speed = speed_ratio(ref, oth) if oth is not None else None
            if speed is not None:
                sentences.append(speed_sentence(backend_id, *speed, runs[0].label, other.label))
    if sentences:
        parts += [
            "<h2>Across files</h2>",
            "<ul>",
            *(f"<li>{_e(s)}</li>" for s in sentences),
            "</ul>",
        ]
    for run in runs:
        parts += [f"<h2>{_e(run.label)}</h2>", *results_sections(run.doc, level=3)]
    return page("anetui comparison", parts)


def sweep_page(sweep: dict[str, Any]) -> str:
    """The page for ``sweep --html``: the curves, the table, then each point in full."""
    from anetui.report.sweep import CURVES, rows, series

    axes = list(_dict(sweep.get("axes")))
    parts = [f"<p>Axes: {_e(', '.join(axes))}; created {_e(sweep.get('created'))}.</p>"]
    warnings = [w for w in sweep.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        parts += ["<h2>Warnings</h2>", *(f'<div class="warn">{escape(w)}</div>' for w in warnings)]
    charts = []
    for metric, label in CURVES:
        x_name, data = series(sweep, metric)
        if data:
            ordered = {name: sorted(points) for name, points in data.items()}
            charts.append(svg.lines(f"{label} against {x_name}", ordered, x_name, label))
    parts += ["<h2>Curves</h2>", '<div class="charts">', *charts, "</div>"]
    table_rows = []
    for row in rows(sweep):
        ci = _pair(row["p50_ci95"])
        table_rows.append(
            [
                *(_e(row["point"].get(name)) for name in axes),
                f'<span class="text">{_e(row["backend"])}</span>',
                f"<b>{fmt_ms(row['p50_ms'])}</b>"
                + (f" ({fmt_ms(ci[0])}–{fmt_ms(ci[1])})" if ci else ""),
                _fixed(row["throughput_per_s"], 1),
                _fixed(row["samples_per_s"], 1),
                _fixed(row["mj_per_inference"], 3),
                gflops_text(row["gflops_per_s"]),
            ]
        )
    header = [*axes, "backend", "p50 ms (95% CI)", "inf/s", "samples/s", "mJ/inf", "GFLOP/s"]
    parts += ["<h2>Table</h2>", _table(header, table_rows)]
    for item in sweep.get("points") or []:
        if isinstance(item, dict) and isinstance(item.get("results"), dict):
            point = ", ".join(f"{k} {v}" for k, v in _dict(item.get("point")).items())
            parts += [
                f"<details><summary>Point: {_e(point)}</summary>",
                *results_sections(item["results"], level=3),
                "</details>",
            ]
    return page("anetui sweep", parts)
