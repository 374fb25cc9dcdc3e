"""The wording every output shares: millisecond figures, ratio and energy sentences,
rail labels. The terminal, the Markdown report and the dashboard all use these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anetui.backends.base import FACTOR_NAMES
from anetui.core.results import Ratio, Snapshot
from anetui.core.stats import LatencySummary


# -- formatting ---------------------------------------------------------------------
def inputs_text(snapshot: Snapshot) -> str:
    """The model's inputs for headers: the shape alone for one float input (an image, as
    always), else every input with its dtype (``input_ids int64 [1,64], …``)."""
    rows = snapshot.config.get("inputs")
    if not isinstance(rows, list) or not rows:
        return str(snapshot.input_shape)
    if len(rows) == 1 and rows[0].get("dtype") == "float32":
        return str(snapshot.input_shape)
    return ", ".join(
        f"{r.get('name')} {r.get('dtype')} [{','.join(str(d) for d in r.get('shape', []))}]"
        for r in rows
    )


def fmt_ms(value_ms: float | None) -> str:
    """A latency in ms with about three significant digits."""
    if value_ms is None:
        return "–"
    if value_ms >= 100:
        return f"{value_ms:.1f}"
    if value_ms >= 1:
        return f"{value_ms:.2f}"
    return f"{value_ms:.3f}"


def latency_cells(summary: LatencySummary) -> dict[str, str]:
    """A latency summary's figures as ms text, the one rendering every output uses:
    p50, p50_ci ("8.32–8.34" or "–"), p90, p99, p999, mean, sd, min, max."""
    ms = {
        "p50": summary.p50_ns,
        "p90": summary.quantiles_ns["p90"],
        "p99": summary.quantiles_ns["p99"],
        "p999": summary.quantiles_ns["p999"],
        "mean": summary.mean_ns,
        "sd": summary.stddev_ns,
        "min": summary.min_ns,
        "max": summary.max_ns,
    }
    cells = {name: fmt_ms(value_ns / 1e6) for name, value_ns in ms.items()}
    ci = summary.p50_ci95_ns
    cells["p50_ci"] = f"{fmt_ms(ci[0] / 1e6)}–{fmt_ms(ci[1] / 1e6)}" if ci else "–"
    return cells


def agreement_text(error: float | None, top1: float | None, digits: int = 1) -> str:
    """The agreement cell: '3.9e-02', with ' · top-1 100%' for a classifier; '–' if none."""
    if error is None:
        return "–"
    text = f"{error:.{digits}e}"
    return text if top1 is None else f"{text} · top-1 {top1:.0%}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def ratio_sentence(ratio: Ratio) -> str:
    """'torch-cpu-opt ran 2.1x (1.9–2.3) faster than torch-cpu' (ratio of medians);
    'no clear difference (0.98–2.01)' when the interval contains 1; no ratio at all
    without an interval."""
    if ratio.speed_ci95 is None:
        why = f": {ratio.speed_note}" if ratio.speed_note else ""
        return f"{ratio.backend} against {ratio.reference}: no speed ratio claimed{why}"
    if not is_clear(ratio.speed_ci95):
        return (
            f"{ratio.backend} against {ratio.reference}: no clear difference in speed "
            f"({interval_text(ratio.speed_ci95)})" + factor_clause(ratio)
        )
    faster, text = factor_text(ratio.speed, ratio.speed_ci95)
    word = "faster" if faster else "slower"
    return f"{ratio.backend} ran {text} {word} than {ratio.reference}" + factor_clause(ratio)


def factor_clause(ratio: Ratio) -> str:
    """What the ratio compares, appended to its sentence: ", like for like: differs in
    precision only", or " — differs in precision and graph capture; one factor at a
    time: torch-cuda-fp16 vs torch-cuda (precision only)"; "" when factors are unknown."""
    if ratio.differs is None:
        return ""
    if not ratio.differs:
        return ", like for like: same runtime, device, precision, graph capture and threads"
    if len(ratio.differs) == 1:
        return f", like for like: differs in {FACTOR_NAMES[ratio.differs[0]]} only"
    clause = f" — differs in {_and([FACTOR_NAMES[f] for f in ratio.differs])}"
    if not ratio.single_factor_pairs:
        return clause + "; no measured pair differs in one of these alone"
    pointers = ", ".join(
        f"{a} vs {b} ({FACTOR_NAMES[factor]} only)" for a, b, factor in ratio.single_factor_pairs
    )
    return f"{clause}; one factor at a time: {pointers}"


def factor_tag(ratio: Ratio) -> str:
    """The short form for table cells: " (precision only)", " (mixes runtime+graph)", or
    "" when factors are unknown or none differs."""
    if not ratio.differs:
        return ""
    if len(ratio.differs) == 1:
        return f" ({ratio.differs[0]} only)"
    return f" (mixes {'+'.join(ratio.differs)})"


def _and(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def is_clear(interval: tuple[float, float] | None) -> bool:
    """Whether an interval of a ratio excludes 1 (only then is a difference claimed)."""
    return interval is not None and (interval[0] > 1.0 or interval[1] < 1.0)


def interval_text(interval: tuple[float, float]) -> str:
    return f"{fmt_ratio(interval[0])}–{fmt_ratio(interval[1])}"


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
    """'coreml-ane used 40x (35–46) less energy per inference than torch-cpu, CPU+GPU+ANE';
    'no clear difference' when the interval contains 1; no ratio without an interval."""
    if ratio.energy is None:
        if ratio.energy_note is None:
            return None
        return f"{ratio.backend} against {ratio.reference}: no energy ratio: {ratio.energy_note}"
    rails = rails_label(ratio.energy_rails)
    if ratio.energy_ci95 is None:
        why = f": {ratio.energy_note}" if ratio.energy_note else ""
        return f"{ratio.backend} against {ratio.reference}, {rails}: no energy ratio claimed{why}"
    if not is_clear(ratio.energy_ci95):
        return (
            f"{ratio.backend} against {ratio.reference}: no clear difference in energy per "
            f"inference ({interval_text(ratio.energy_ci95)}), {rails}"
        )
    less, text = factor_text(ratio.energy, ratio.energy_ci95)
    word = "less" if less else "more"
    return (
        f"{ratio.backend} used {text} {word} energy per inference than {ratio.reference}, {rails}"
    )


def rails_label(rails: Sequence[str]) -> str:
    """'CPU+GPU+ANE', 'package-0+DRAM', 'GPU0': short rail names upper-cased, numbered
    domains (``package-0``) as the source names them."""
    return "+".join(r if "-" in r else r.upper() for r in rails)


def idle_basis(power: Mapping[str, object]) -> str:
    """'3.0 s idle, counters' or '3.0 s idle, 11 windows': what the baseline rests on."""
    idle_s = power.get("idle_s")
    seconds = f"{idle_s:.1f} s idle" if isinstance(idle_s, int | float) else "idle"
    if power.get("idle_method") == "counters":
        return f"{seconds}, counters"
    return f"{seconds}, {power.get('idle_windows')} windows"
