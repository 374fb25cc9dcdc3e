"""A sweep's results: one document (schema ``anetui.sweep/1``) holding a full results
document (anetui.results) per point, a table with a row per point and backend, and the
curves in the terminal (plotext).

Document::

    {"schema": "anetui.sweep/1", "created": "…", "axes": {"batch_size": [1, 2, 4]},
     "points": [{"point": {"batch_size": 1}, "results": {anetui.results document}}, …],
     "warnings": ["…"]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from anetui.report.text import fmt_ms
from anetui.report.work_rate import gflops_text

SCHEMA = "anetui.sweep/1"


def sweep_json(
    axes: Mapping[str, Sequence[int]], results: Sequence[tuple[dict[str, int], dict[str, Any]]]
) -> dict[str, Any]:
    """The sweep document from each point and its results document."""
    warnings = [
        f"{_point_text(point)}: {w}"
        for point, doc in results
        for w in doc.get("warnings") or []
        if isinstance(w, str)
    ]
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "axes": {name: list(values) for name, values in axes.items()},
        "points": [{"point": dict(point), "results": doc} for point, doc in results],
        "warnings": warnings,
    }


def _point_text(point: Mapping[str, object]) -> str:
    return ", ".join(f"{name} {value}" for name, value in point.items())


def rows(sweep: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per point and measured backend: the point's values, the backend id, p50
    and its 95 % interval (ms), inferences/s, samples/s, mJ per inference, GFLOP/s."""
    out = []
    for item in sweep.get("points") or []:
        if not isinstance(item, dict) or not isinstance(item.get("results"), dict):
            continue
        point = item.get("point") if isinstance(item.get("point"), dict) else {}
        for b in item["results"].get("backends") or []:
            if not isinstance(b, dict) or not isinstance(b.get("latency_ms"), dict):
                continue
            energy: dict[str, Any] = b["energy"] if isinstance(b.get("energy"), dict) else {}
            out.append(
                {
                    "point": point,
                    "backend": str(b.get("id")),
                    "p50_ms": b["latency_ms"].get("p50"),
                    "p50_ci95": b["latency_ms"].get("p50_ci95"),
                    "throughput_per_s": b.get("throughput_per_s"),
                    "samples_per_s": b.get("samples_per_s"),
                    "mj_per_inference": energy.get("mj_per_inference"),
                    "gflops_per_s": b.get("gflops_per_s"),
                }
            )
    return out


def table(sweep: Mapping[str, Any]) -> Table:
    """The sweep as one rich table."""
    axes = list(sweep.get("axes") or {})
    out = Table(title="sweep · latency in ms", title_justify="left", header_style="bold")
    for name in axes:
        out.add_column(name.replace("_", " "), justify="right")
    out.add_column("backend")
    for name in ("p50 (95% CI)", "inf/s", "samples/s", "mJ/inf", "GFLOP/s"):
        out.add_column(name, justify="right")
    for row in rows(sweep):
        ci = row["p50_ci95"]
        ci_text = f" ({fmt_ms(ci[0])}–{fmt_ms(ci[1])})" if isinstance(ci, list) else ""
        out.add_row(
            *(str(row["point"].get(name, "–")) for name in axes),
            row["backend"],
            f"{fmt_ms(row['p50_ms'])}{ci_text}",
            _num(row["throughput_per_s"], ".1f"),
            _num(row["samples_per_s"], ".1f"),
            _num(row["mj_per_inference"], ".3f"),
            gflops_text(row["gflops_per_s"]),
        )
    return out


def _num(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def series(
    sweep: Mapping[str, Any], metric: str
) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    """(x axis name, {series name: [(x, metric value)]}): x is the first axis with more
    than one value; a series per backend (and per value of the other varying axes)."""
    axes = {k: v for k, v in (sweep.get("axes") or {}).items() if isinstance(v, list)}
    varying = [name for name, values in axes.items() if len(values) > 1] or list(axes)
    x_name = varying[0] if varying else "point"
    out: dict[str, list[tuple[float, float]]] = {}
    for row in rows(sweep):
        value, x = row[metric], row["point"].get(x_name)
        if not isinstance(value, (int, float)) or not isinstance(x, (int, float)):
            continue
        others = ", ".join(
            f"{k} {v}" for k, v in row["point"].items() if k != x_name and k in varying
        )
        name = f"{row['backend']} ({others})" if others else row["backend"]
        out.setdefault(name, []).append((float(x), float(value)))
    return x_name, out


#: The curves drawn: (row metric, y label).
CURVES = (
    ("p50_ms", "p50 latency, ms"),
    ("samples_per_s", "samples/s"),
    ("mj_per_inference", "mJ per inference"),
)


def curves_text(sweep: Mapping[str, Any], width: int = 100, height: int = 18) -> str:
    """The curves as plain text (plotext, no colour): p50, samples/s and, when a power
    source ran, energy per inference, against the swept axis."""
    import plotext as plt

    blocks = []
    for metric, label in CURVES:
        x_name, data = series(sweep, metric)
        if not data:
            continue
        plt.clear_figure()
        plt.theme("clear")
        plt.plotsize(width, height)
        for name, points in data.items():
            xs, ys = zip(*sorted(points), strict=True)
            plt.plot(list(xs), list(ys), label=name, marker="braille")
        plt.title(f"{label} against {x_name.replace('_', ' ')}")
        plt.xlabel(x_name.replace("_", " "))
        plt.ylabel(label)
        blocks.append(str(plt.uncolorize(plt.build())))  # plain text: logs and pipes too
    plt.clear_figure()
    return "\n".join(blocks)
