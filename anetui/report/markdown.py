"""The Markdown report of one snapshot: method, environment, results, energy."""

from __future__ import annotations

from anetui.core.results import BackendResult, Ratio, Snapshot
from anetui.report import generation, work_rate
from anetui.report.text import (
    agreement_text,
    energy_sentence,
    fmt_ms,
    idle_basis,
    inputs_text,
    is_clear,
    latency_cells,
    rails_label,
    ratio_sentence,
)


def _outputs_line(cfg: dict[str, object]) -> list[str]:
    """``- **Outputs**: last_hidden_state [1,64,768], …`` where the model has several."""
    rows = cfg.get("outputs")
    if not isinstance(rows, list) or len(rows) < 2:
        return []
    named = [
        f"{r.get('name')} [{','.join(str(d) for d in r.get('shape') or [])}]"
        for r in rows
        if isinstance(r, dict)
    ]
    return [f"- **Outputs**: {', '.join(named)} (agreement is checked on each)"]


def to_markdown(snapshot: Snapshot) -> str:
    """The report: what the reference report covered, measured, with method and env."""
    cfg = snapshot.config
    env = snapshot.environment
    shape = inputs_text(snapshot)
    lines = [
        f"# anetui benchmark: {snapshot.model} {shape}",
        "",
        f"Created {snapshot.created} by anetui {env['anetui']}.",
        "",
        "## Test configuration",
        "",
        f"- **Model**: {cfg['model']} ({cfg['model_kind']}"
        + (", random weights)" if cfg["model_kind"] in ("torchvision", "transformers") else ")")
        + f", input {shape} {cfg['input']}",
        *_outputs_line(cfg),
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
    if snapshot.warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in snapshot.warnings), ""]
    measured = snapshot.measured()
    if measured:
        lines += _results_table(measured)
        lines += generation.markdown_section(snapshot)
        lines += _prepare_table(measured)
        lines += _factors_table(measured)
    if snapshot.ratios:
        lines += ["## Speedup", ""]
        ref = next(b for b in measured if b.id == snapshot.reference)
        for ratio in snapshot.ratios:
            other = next(b for b in measured if b.id == ratio.backend)
            sentence = ratio_sentence(ratio)
            if is_clear(ratio.speed_ci95):  # bold only for a difference the interval shows
                sentence = f"**{sentence}**"
            lines.append(f"- {sentence} (ratio of medians, 95% interval {_ci_from(ratio)})")
            lines.append(_factor_line("Median latency", ref, other))
            if ref.throughput_per_s and other.throughput_per_s:
                lines.append(
                    f"  - Throughput: {other.throughput_per_s:.1f} / {ref.throughput_per_s:.1f}"
                    f" inferences/s = {other.throughput_per_s / ref.throughput_per_s:.2f}x"
                )
        if snapshot.sibling_ratios:
            lines += ["", "Quantized siblings against their base (precision only):", ""]
        for ratio in snapshot.sibling_ratios:
            sentence = ratio_sentence(ratio)
            if is_clear(ratio.speed_ci95):
                sentence = f"**{sentence}**"
            lines.append(f"- {sentence} (ratio of medians, 95% interval)")
        lines.append("")
        lines.append(
            "Compared like for like only where one factor differs: each ratio names the "
            "factors (runtime, device, precision, graph capture, threads) its two backends "
            "differ in."
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
    lines += work_rate.markdown_section(snapshot)
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
        "openvino",
        "executorch",
        "anetui",
        "threads",
        "privileges",
    ):
        lines.append(f"- **{key}**: {env.get(key) if env.get(key) is not None else '–'}")
    lines += ["", "## Method", "", *_METHOD, ""]
    return "\n".join(lines)


def _ci_from(ratio: Ratio) -> str:
    if ratio.speed_ci_from == "within-run":
        return "within the run"
    runs = ratio.speed_ci_from.removeprefix("run-to-run (").removesuffix(")")
    return f"from the run-to-run spread, {runs}"


_METHOD = [
    "- Each latency is wall-clock time around one inference call "
    "(`time.perf_counter_ns`), device synchronisation included.",
    "- Percentiles come from an HDR histogram (3 significant digits, so within 0.05%); "
    "mean, stddev, min and max are exact.",
    "- The 95% interval of the median is distribution-free, from order statistics.",
    "- A ratio is a ratio of medians; its interval is spanned by both medians' 97.5% "
    "intervals, so it holds at 95% or more. A ratio whose interval contains 1 is "
    "reported as no clear difference; below 30 inferences a backend gets no ratio.",
    "- Order statistics assume independent latencies: drift over time (heat, other "
    "processes) is not in that interval. With several runs (`--repeat N`, the rounds of "
    "`--interleave`, the dashboard's stretches) the spread of the per-run medians gives a "
    "second interval (Student's t on the log ratios, paired by round), and a ratio uses "
    "it when it is wider; each ratio says which.",
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
    suspect = power.get("suspect_rails")
    if isinstance(suspect, list) and suspect:
        lines += [f"- **Suspect rail `{s['rail']}`**: {s['reason']}" for s in suspect] + [""]
    idle = power.get("idle_w")
    if isinstance(idle, dict) and idle:
        watts = ", ".join(f"{rail} {w:.3f} W" for rail, w in idle.items())
        lines += [f"Idle baseline ({idle_basis(power)}): {watts}.", ""]
    else:
        lines += [
            "No idle baseline (no explicit idle phase measured one): active energy is "
            "not shown; use `--idle-seconds N` (or `i` in the dashboard).",
            "",
        ]
    resolution = power.get("resolution_mj")
    if isinstance(resolution, dict) and resolution:
        steps = ", ".join(f"{rail} {mj:g} mJ" for rail, mj in resolution.items())
        lines += [
            f"Energy counters read at the start and end of every timed stretch and idle "
            f"phase; counter resolution: {steps} (no figure is finer than that).",
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
            f"| {b.id} | {rails_label(e.total_rails)} ({e.method}) | {total_w:.3f} | "
            f"{e.total_mj_per_inference:.3f} | {f'{active:.3f}' if active is not None else '–'} "
            f"| {e.coverage:.0%} | {e.windows} | {', '.join(e.thermal_pressure) or '–'} |"
        )
    lines.append("")
    for ratio in (*snapshot.ratios, *snapshot.sibling_ratios):
        sentence = energy_sentence(ratio)
        if sentence:
            if ratio.energy_claimed and is_clear(ratio.energy_ci95):
                sentence = f"**{sentence}**"
            lines.append(
                f"- {sentence} (ratio of gross energy per inference, 95% interval from a "
                "jackknife over stretches of windows)"
            )
    lines += ["", *_ENERGY_METHOD, ""]
    return lines


_ENERGY_METHOD = [
    "Energy per inference: for counter sources (RAPL, NVML, IOReport) the counters' "
    "difference over each timed stretch ÷ inferences in it; for other sources the energy "
    "of the power windows lying wholly inside a backend's timed runs ÷ inferences "
    "completed in them (windows that straddle a switch, warmup or preparation are left "
    "out). Coverage = share of run time measured. The idle baseline comes only from "
    "explicit idle phases, never from startup or preparation; active energy subtracts "
    "idle power × time.",
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
        cell = latency_cells(s)
        lines.append(
            f"| {b.id} | {b.dtype} | {b.device} | {s.count} | {b.active_s:.2f} "
            f"| {cell['mean']} | **{cell['p50']}** | {cell['p50_ci']} "
            f"| {cell['p90']} | {cell['p99']} | {cell['p999']} | {cell['min']} "
            f"| {cell['max']} | {cell['sd']} | {b.throughput_per_s or 0:.1f} |"
        )
    return [*lines, ""]


def _factors_table(measured: list[BackendResult]) -> list[str]:
    """What each backend's figures depend on: the factors a ratio may mix."""
    rows = [b for b in measured if b.factors is not None]
    if not rows:
        return []
    lines = [
        "## Factors",
        "",
        "| backend | runtime | device | precision | graph capture | threads |",
        "|---|---|---|---|---|---|",
    ]
    for b in rows:
        assert b.factors is not None
        f = b.factors
        lines.append(
            f"| {b.id} | {f.runtime} | {f.device} | {f.precision} | {f.graph} | {f.threads} |"
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
        agreement = agreement_text(b.agreement_max_rel_err, b.top1_agreement, digits=2)
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
