"""Achieved work rate: FLOPs per inference (``config.flops_per_inference``, counted by
``models.flops``) times the measured rate, per backend, in GFLOP/s."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from anetui.core.results import BackendResult, Snapshot


def flops_of(config: Mapping[str, object]) -> float | None:
    """The FLOPs of one inference a results ``config`` holds, or None."""
    value = config.get("flops_per_inference")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def gflops_json(flops: float | None, result: BackendResult) -> dict[str, Any]:
    """``gflops_per_s``: FLOPs × throughput (inferences/s of wall time, harness
    included); ``gflops_per_s_at_p50``: FLOPs ÷ median latency. Null when either is
    unknown."""
    rate = at_p50 = None
    if flops is not None:
        if result.throughput_per_s and math.isfinite(result.throughput_per_s):
            rate = round(flops * result.throughput_per_s / 1e9, 6)
        if result.summary is not None and result.summary.p50_ns > 0:
            at_p50 = round(flops / result.summary.p50_ns, 6)  # FLOP/ns = GFLOP/s
    return {"gflops_per_s": rate, "gflops_per_s_at_p50": at_p50}


def gflops_text(value: object) -> str:
    """'12.3' (GFLOP/s) or '–'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _rates(snapshot: Snapshot) -> tuple[float, list[tuple[str, dict[str, Any]]]] | None:
    flops = flops_of(snapshot.config)
    if flops is None:
        return None
    return flops, [(b.id, gflops_json(flops, b)) for b in snapshot.measured()]


def summary_lines(snapshot: Snapshot) -> list[str]:
    """Plain lines for the terminal: FLOPs per inference, how they were counted, and
    each backend's achieved GFLOP/s (or why there is no figure)."""
    rates = _rates(snapshot)
    if rates is None:
        reason = snapshot.config.get("flops_reason")
        return [f"achieved work rate: no FLOP count ({reason})"] if reason else []
    flops, per_backend = rates
    cells = ", ".join(
        f"{i} {gflops_text(r['gflops_per_s'])} ({gflops_text(r['gflops_per_s_at_p50'])} at p50)"
        for i, r in per_backend
    )
    return [
        f"achieved work rate, GFLOP/s ({flops / 1e9:.4g} GFLOP per inference): {cells}",
        f"  FLOPs counted by {snapshot.config.get('flops_method')}",
    ]


def markdown_section(snapshot: Snapshot) -> list[str]:
    """'## Achieved work rate': a table of GFLOP/s per backend and how FLOPs were counted."""
    rates = _rates(snapshot)
    if rates is None:
        return []
    flops, per_backend = rates
    lines = [
        "## Achieved work rate",
        "",
        f"{flops / 1e9:.4g} GFLOP per inference.",
        "",
        "| backend | GFLOP/s (throughput) | GFLOP/s (at p50) |",
        "|---|--:|--:|",
    ]
    for backend_id, r in per_backend:
        lines.append(
            f"| {backend_id} | {gflops_text(r['gflops_per_s'])} | "
            f"{gflops_text(r['gflops_per_s_at_p50'])} |"
        )
    return [*lines, "", f"FLOPs counted by {snapshot.config.get('flops_method')}.", ""]
