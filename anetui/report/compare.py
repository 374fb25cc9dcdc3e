"""`anetui report A.json B.json …`: saved results (bench --json or dashboard snapshots)
turned into one Markdown comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.report.results_json import SCHEMA
from anetui.report.text import fmt_ms


def load_results(path: Path) -> dict[str, Any]:
    """A results document, checked for the schema; one-line errors otherwise."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise AnetuiError(f"cannot read {path}: {one_line(exc)}") from None
    except json.JSONDecodeError as exc:
        raise AnetuiError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise AnetuiError(f"{path} is not an anetui results file (schema {found!r}, want {SCHEMA})")
    return doc


def comparison_markdown(paths: list[Path]) -> str:
    docs = [(path, load_results(path)) for path in paths]
    lines = ["# anetui comparison", ""]
    lines += [
        "| # | file | created | model | input | OS | CPU | torch | power |",
        "|--:|---|---|---|---|---|---|---|---|",
    ]
    for i, (path, doc) in enumerate(docs, start=1):
        env, cfg, power = doc.get("environment", {}), doc.get("config", {}), doc.get("power", {})
        lines.append(
            f"| {i} | `{path.name}` | {doc.get('created')} | {cfg.get('model')} | "
            f"{tuple(cfg.get('input_shape') or ())} | {env.get('os')} | {env.get('cpu')} | "
            f"{env.get('torch')} | {power.get('label') or power.get('source')} |"
        )
    lines += [
        "",
        "## Backends",
        "",
        "| # | backend | dtype | device | n | p50 ms (95% CI) | p99 ms | inf/s | "
        "mJ/inf | active mJ/inf | rails |",
        "|--:|---|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for i, (_path, doc) in enumerate(docs, start=1):
        for b in doc.get("backends", []):
            lat = b.get("latency_ms")
            if not lat:
                continue
            ci = lat.get("p50_ci95")
            ci_text = f" ({fmt_ms(ci[0])}–{fmt_ms(ci[1])})" if ci else ""
            energy = b.get("energy") or {}
            active = energy.get("active_mj_per_inference")
            lines.append(
                f"| {i} | {b['id']} | {b.get('dtype')} | {b.get('device')} | {b.get('count')} | "
                f"{fmt_ms(lat['p50'])}{ci_text} | {fmt_ms(lat['p99'])} | "
                f"{b.get('throughput_per_s') or 0:.1f} | "
                f"{_num(energy.get('mj_per_inference'))} | {_num(active)} | "
                f"{'+'.join(energy.get('total_rails', [])) or '–'} |"
            )
    lines += ["", "## Ratios within each file", ""]
    for i, (_path, doc) in enumerate(docs, start=1):
        for ratio in doc.get("ratios", []):
            lines.append(f"- [{i}] {ratio.get('summary')}")
            if ratio.get("energy_summary"):
                lines.append(f"- [{i}] {ratio['energy_summary']}")
    lines += [
        "",
        "Numbers from different files were measured at different times, and maybe "
        "on different machines: compare them with the environment rows above in view.",
        "",
    ]
    return "\n".join(lines)


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"
