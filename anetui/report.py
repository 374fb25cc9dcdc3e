"""Results files: the versioned JSON (schema ``anetui.results/1``) and the Markdown report.

Both are pure functions of a :class:`~anetui.session.Snapshot`; files are written
atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from anetui.energy import BackendEnergy, rails_label
from anetui.errors import AnetuiError
from anetui.results import BackendResult, Ratio, Snapshot

SCHEMA = "anetui.results/1"


# -- formatting ---------------------------------------------------------------------
def fmt_ms(value_ms: float | None) -> str:
    """A latency in ms with about three significant digits."""
    if value_ms is None:
        return "–"
    if value_ms >= 100:
        return f"{value_ms:.1f}"
    if value_ms >= 1:
        return f"{value_ms:.2f}"
    return f"{value_ms:.3f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def ratio_sentence(ratio: Ratio) -> str:
    """'torch-cpu-opt ran 2.1x (1.9–2.3) faster than torch-cpu' (ratio of medians)."""
    faster, text = factor_text(ratio.speed, ratio.speed_ci95)
    word = "faster" if faster else "slower"
    return f"{ratio.backend} ran {text} {word} than {ratio.reference}"


def factor_text(value: float, interval: tuple[float, float] | None = None) -> tuple[bool, str]:
    """(value >= 1, "2.41x (2.38–2.51)") with the factor and interval turned >= 1."""
    up = value >= 1.0
    factor = value if up else 1.0 / value
    text = f"{fmt_ratio(factor)}x"
    if interval is not None:
        lo, hi = interval if up else (1.0 / interval[1], 1.0 / interval[0])
        text += f" ({fmt_ratio(lo)}–{fmt_ratio(hi)})"
    return up, text


def energy_sentence(ratio: Ratio) -> str | None:
    """'coreml-ane used 40x (35–46) less energy per inference than torch-cpu, CPU+GPU+ANE'."""
    if ratio.energy is None:
        return None
    less, text = factor_text(ratio.energy, ratio.energy_ci95)
    word = "less" if less else "more"
    return (
        f"{ratio.backend} used {text} {word} energy per inference than {ratio.reference}, "
        f"{rails_label(ratio.energy_rails)}"
    )


def energy_json(energy: BackendEnergy | None) -> dict[str, Any] | None:
    if energy is None:
        return None
    return {
        "rails": list(energy.rails),
        "total_rails": list(energy.total_rails),
        "mj_per_inference": _round(energy.total_mj_per_inference),
        "active_mj_per_inference": _round(energy.total_active_mj_per_inference),
        "mj_per_inference_by_rail": {
            r: _round(v) for r, v in energy.mj_per_inference.items() if r != "total"
        },
        "active_mj_per_inference_by_rail": {
            r: _round(v) for r, v in energy.active_mj_per_inference.items() if r != "total"
        }
        if energy.active_mj_per_inference
        else None,
        "mean_power_w": {r: _round(v) for r, v in energy.mean_power_w.items()},
        "coverage": _round(energy.coverage),
        "windows": energy.windows,
        "window_s": _round(energy.window_s),
        "inferences_in_windows": _round(energy.inferences),
        "thermal_pressure": list(energy.thermal_pressure),
    }


# -- JSON ---------------------------------------------------------------------------
def backend_json(result: BackendResult, batch: int = 1) -> dict[str, Any]:
    """One backend's entry; an inference is one batch of ``batch`` samples."""
    prep = result.prepare
    return {
        "id": result.id,
        "available": result.available,
        "reason": result.reason,
        "state": result.state,
        "error": result.error,
        "runtime": result.runtime,
        "dtype": result.dtype,
        "device": result.device,
        "load_s": _round(prep.load_s) if prep else None,
        "compile_s": _round(prep.compile_s) if prep else None,
        "first_inference_ms": _round(prep.first_inference_ms) if prep else None,
        "count": result.summary.count if result.summary else 0,
        "latency_ms": result.summary.to_ms() if result.summary else None,
        "runtime_latency_ms": result.runtime_summary.to_ms() if result.runtime_summary else None,
        "throughput_per_s": _round(result.throughput_per_s),
        "samples_per_s": _round(result.throughput_per_s * batch)
        if result.throughput_per_s
        else None,
        "total_time_s": _round(result.active_s),
        "agreement_max_rel_err": result.agreement_max_rel_err,
        "notes": list(result.notes),
        "info": dict(prep.info) if prep else {},
        "histogram_ms": [[_round(lo / 1e6), _round(hi / 1e6), n] for lo, hi, n in result.histogram],
        "energy": energy_json(result.energy),
    }


def to_json(snapshot: Snapshot) -> dict[str, Any]:
    """The results document, schema anetui.results/1 (see DESIGN.md §6)."""
    return {
        "schema": SCHEMA,
        "created": snapshot.created,
        "environment": snapshot.environment,
        "config": snapshot.config,
        "power": {
            "source": "none",
            "interval_ms": None,
            "state": "unavailable",
            "reason": "no power source was chosen",
            "idle_w": None,
            **snapshot.power,
        },
        "backends": [backend_json(b, snapshot.input_shape[0]) for b in snapshot.backends],
        "reference": snapshot.reference,
        "ratios": [
            {
                "reference": r.reference,
                "backend": r.backend,
                "speed": _round(r.speed),
                "speed_ci95": [_round(v) for v in r.speed_ci95] if r.speed_ci95 else None,
                "energy": _round(r.energy),
                "energy_ci95": [_round(v) for v in r.energy_ci95] if r.energy_ci95 else None,
                "energy_rails": list(r.energy_rails),
                "energy_summary": energy_sentence(r),
                "summary": ratio_sentence(r),
            }
            for r in snapshot.ratios
        ],
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- Markdown -----------------------------------------------------------------------
def to_markdown(snapshot: Snapshot) -> str:
    """The report: what the reference report covered, measured, with method and env."""
    cfg = snapshot.config
    env = snapshot.environment
    shape = snapshot.input_shape
    lines = [
        f"# anetui benchmark: {snapshot.model} {shape}",
        "",
        f"Created {snapshot.created} by anetui {env['anetui']}.",
        "",
        "## Test configuration",
        "",
        f"- **Model**: {cfg['model']} ({cfg['model_kind']}"
        + (", random weights)" if cfg["model_kind"] == "torchvision" else ")")
        + f", input {shape} {cfg['input']}",
        f"- **Warmup**: {cfg['warmup']} inferences per backend, not timed",
        "- **Timed**: "
        + (
            f"{cfg['iterations']} inferences per backend"
            if cfg["iterations"] is not None
            else f"{cfg['duration_s']} s per backend"
            if cfg["duration_s"] is not None
            else "live in the dashboard, each backend for as long as it was chosen"
        )
        + (", interleaved in rounds" if cfg["interleave"] else ", one backend after another"),
        "",
    ]
    measured = snapshot.measured()
    if measured:
        lines += _results_table(measured)
        lines += _prepare_table(measured)
    if snapshot.ratios:
        lines += ["## Speedup", ""]
        ref = next(b for b in measured if b.id == snapshot.reference)
        for ratio in snapshot.ratios:
            other = next(b for b in measured if b.id == ratio.backend)
            lines.append(f"- **{ratio_sentence(ratio)}** (ratio of medians, 95% interval)")
            lines.append(_factor_line("Median latency", ref, other))
            if ref.throughput_per_s and other.throughput_per_s:
                lines.append(
                    f"  - Throughput: {other.throughput_per_s:.1f} / {ref.throughput_per_s:.1f}"
                    f" inferences/s = {other.throughput_per_s / ref.throughput_per_s:.2f}x"
                )
        lines.append("")
        lines.append(
            "Compared like for like only where one factor differs: check the dtype and "
            "device columns above before quoting a ratio."
        )
        lines.append("")
    skipped = [b for b in snapshot.backends if b.summary is None]
    if skipped:
        lines += ["## Not measured", ""]
        for b in skipped:
            why = b.error or b.reason or b.state
            lines.append(f"- `{b.id}`: {why}")
        lines.append("")
    lines += _energy_section(snapshot)
    lines += ["## Environment", ""]
    for key in (
        "os",
        "os_version",
        "machine",
        "cpu",
        "cpu_count",
        "python",
        "torch",
        "torchvision",
        "coremltools",
        "onnxruntime",
        "anetui",
        "threads",
        "privileges",
    ):
        lines.append(f"- **{key}**: {env.get(key) if env.get(key) is not None else '–'}")
    lines += ["", "## Method", "", *_METHOD, ""]
    return "\n".join(lines)


_METHOD = [
    "- Each latency is wall-clock time around one inference call "
    "(`time.perf_counter_ns`), device synchronisation included.",
    "- Percentiles come from an HDR histogram (3 significant digits, so within 0.05%); "
    "mean, stddev, min and max are exact.",
    "- The 95% interval of the median is distribution-free, from order statistics.",
    "- A ratio is a ratio of medians; its interval is the conservative one spanned by "
    "both medians' intervals.",
    "- Throughput is inferences per second of wall time including the harness.",
    "- Load, compile and the first inference are reported apart and never enter the "
    "statistics; agreement is max |out − ref| / max |ref| against eager fp32 PyTorch "
    "on the CPU, same input.",
]


def _energy_section(snapshot: Snapshot) -> list[str]:
    power = snapshot.power
    if power.get("source", "none") == "none":
        return ["## Energy", "", "Not measured: no power source was chosen for this run.", ""]
    lines = [
        "## Energy",
        "",
        f"Source: **{power.get('label')}**, state {power.get('state')}"
        + (f" ({power['reason']})" if power.get("reason") else "")
        + f"; {power.get('samples')} windows.",
        "",
    ]
    if power.get("source") == "replay":
        lines += ["A **replayed recording**, not this machine's own power.", ""]
    idle = power.get("idle_w")
    if isinstance(idle, dict) and idle:
        watts = ", ".join(f"{rail} {w:.3f} W" for rail, w in idle.items())
        lines += [f"Idle baseline ({power.get('idle_windows')} windows): {watts}.", ""]
    else:
        lines += [
            "No idle baseline (no window with nothing running): active energy is "
            "not shown; use `--idle-seconds N`.",
            "",
        ]
    lines += [
        "| backend | rails (total) | mean power (W) | mJ/inference | active mJ/inference "
        "| coverage | windows | thermal |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for b in snapshot.measured():
        e = b.energy
        if e is None:
            lines.append(f"| {b.id} | – | – | – | – | 0 | 0 | no window wholly inside its runs |")
            continue
        total_w = sum(e.mean_power_w[r] for r in e.total_rails)
        active = e.total_active_mj_per_inference
        lines.append(
            f"| {b.id} | {rails_label(e.total_rails)} | {total_w:.3f} | "
            f"{e.total_mj_per_inference:.3f} | {f'{active:.3f}' if active is not None else '–'} "
            f"| {e.coverage:.0%} | {e.windows} | {', '.join(e.thermal_pressure) or '–'} |"
        )
    lines.append("")
    for ratio in snapshot.ratios:
        sentence = energy_sentence(ratio)
        if sentence:
            lines.append(
                f"- **{sentence}** (ratio of gross energy per inference, 95% bootstrap "
                "interval over windows)"
            )
    lines += ["", *_ENERGY_METHOD, ""]
    return lines


_ENERGY_METHOD = [
    "Energy per inference = energy of the power windows lying wholly inside a backend's "
    "timed runs ÷ inferences completed in them; windows that straddle a switch, warmup or "
    "preparation are left out (coverage = share of run time in attributed windows). "
    "Active energy subtracts idle power × time.",
]


def _results_table(measured: list[BackendResult]) -> list[str]:
    lines = [
        "## Latency",
        "",
        "| backend | dtype | device | inferences | total time (s) | average (ms) | p50 (ms) "
        "| p50 95% CI | p90 | p99 | p99.9 | min | max | stddev | throughput (/s) |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for b in measured:
        s = b.summary
        assert s is not None
        ms = s.to_ms()
        ci = ms["p50_ci95"]
        ci_text = f"{fmt_ms(ci[0])}–{fmt_ms(ci[1])}" if isinstance(ci, list) else "–"
        lines.append(
            f"| {b.id} | {b.dtype} | {b.device} | {s.count} | {b.active_s:.2f} "
            f"| {fmt_ms(s.mean_ns / 1e6)} | **{fmt_ms(s.p50_ns / 1e6)}** | {ci_text} "
            f"| {fmt_ms(s.quantiles_ns['p90'] / 1e6)} | {fmt_ms(s.quantiles_ns['p99'] / 1e6)} "
            f"| {fmt_ms(s.quantiles_ns['p999'] / 1e6)} | {fmt_ms(s.min_ns / 1e6)} "
            f"| {fmt_ms(s.max_ns / 1e6)} | {fmt_ms(s.stddev_ns / 1e6)} "
            f"| {b.throughput_per_s or 0:.1f} |"
        )
    return [*lines, ""]


def _prepare_table(measured: list[BackendResult]) -> list[str]:
    lines = [
        "## Preparation (apart from the steady state)",
        "",
        "| backend | runtime | load (s) | compile (s) | first inference (ms) "
        "| agreement (max rel. err) |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for b in measured:
        p = b.prepare
        agreement = f"{b.agreement_max_rel_err:.2e}" if b.agreement_max_rel_err is not None else "–"
        if p is None:
            continue
        lines.append(
            f"| {b.id} | {b.runtime} | {p.load_s:.2f} | {p.compile_s:.2f} "
            f"| {fmt_ms(p.first_inference_ms)} | {agreement} |"
        )
    notes = [f"- `{b.id}`: {n}" for b in measured for n in b.notes]
    if notes:
        lines += ["", *notes]
    return [*lines, ""]


def _factor_line(label: str, ref: BackendResult, other: BackendResult) -> str:
    assert ref.summary is not None and other.summary is not None
    a, b = ref.summary.p50_ns / 1e6, other.summary.p50_ns / 1e6
    return f"  - {label}: {fmt_ms(a)} ms / {fmt_ms(b)} ms = {a / b:.2f}x"


# -- files --------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, snapshot: Snapshot) -> None:
    # allow_nan=False: NaN is not JSON; a non-finite value here is a bug to surface.
    write_atomic(path, json.dumps(to_json(snapshot), indent=2, allow_nan=False) + "\n")


def write_markdown(path: Path, snapshot: Snapshot) -> None:
    write_atomic(path, to_markdown(snapshot))


def write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet: written aside, then hard-linked into place
    (which fails rather than replace an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_snapshot_set(out_dir: Path, snapshot: Snapshot, svg: str | None = None) -> list[Path]:
    """``anetui-YYYYmmdd-HHMMSS[-N].{json,md,svg}`` in out_dir; never overwrites."""
    stamp = snapshot.created.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    contents = {
        ".json": json.dumps(to_json(snapshot), indent=2, allow_nan=False) + "\n",
        ".md": to_markdown(snapshot),
    }
    if svg is not None:
        contents[".svg"] = svg
    for attempt in range(1000):
        base = f"anetui-{stamp}" + (f"-{attempt}" if attempt else "")
        paths = [out_dir / (base + suffix) for suffix in contents]
        if any(p.exists() for p in paths):
            continue
        try:
            for path, text in zip(paths, contents.values(), strict=True):
                write_new(path, text)
        except FileExistsError:
            continue  # another snapshot took this name between the check and the link
        return paths
    raise AnetuiError(f"no free snapshot name in {out_dir}")
