"""The regression gate: this run's results against a saved baseline (two results
documents), like for like, with a verdict per backend that a CI job can act on.

A backend *regressed* when its median latency (or energy per inference) is above the
baseline's by more than the allowed share **and the whole interval of the ratio is above
that threshold**; anything short of that is "no clear difference". The ratio's interval
combines both runs' 97.5 % intervals of the median (``latency_ms.p50_ci975``): the two hold
at once with probability >= 0.975² > 0.95, so the ratio's interval holds at >= 95 %
(as ``core.stats.ratio_with_interval`` does within one run). An older file without them
falls back to the 95 % intervals, and the text says the pair then holds at >= 90 %.

Like for like: the same work (model, input, dtype), the same backend factors (runtime,
device, precision, graph capture) and the same machine (CPU, OS, runtime versions) —
otherwise the comparison is refused with what differs. Run settings (threads, warmup,
iterations, the power source when energy is not gated, the anetui version) are reported
when they differ, never refused: the gate exists to catch the effect of a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

from anetui.core.contention import MEANINGFUL_CORES, MEANINGFUL_SHARE
from anetui.core.stats import MIN_COUNT_FOR_RATIO
from anetui.report.compare import Run, energy_caveat, speed_ratio
from anetui.report.text import fmt_ms, fmt_ratio

#: Exit codes: a clear regression; a baseline that is not like for like.
EXIT_REGRESSION, EXIT_REFUSED = 3, 4

#: ``config`` fields that define the work of one inference (compared when both have them:
#: ``inputs`` arrives with named inputs, schema anetui.results/2).
WORK_FIELDS = ("model", "model_kind", "input_shape", "dtype", "inputs")
#: ``environment`` fields that are run settings, not the machine: reported, not refused.
SETTING_ENV_FIELDS = ("threads", "privileges", "anetui")
#: ``config`` fields that are run settings: reported when they differ.
SETTING_CONFIG_FIELDS = (
    "threads", "warmup", "iterations", "duration_s", "interleave", "power", "idle_seconds",
)  # fmt: skip
#: Backend factors that may differ (a setting); the others must match.
SETTING_FACTORS = ("threads",)


@dataclass(frozen=True)
class Finding:
    """One backend's verdict on one metric. ``ratio`` is current ÷ baseline (> 1:
    slower, or more energy); ``interval`` its interval at ``confidence``."""

    backend: str
    metric: str  # "p50 latency" or "energy per inference"
    ratio: float
    interval: tuple[float, float] | None
    confidence: str
    limit: float  # the largest ratio allowed, e.g. 1.05
    note: str | None = None
    #: What else may explain a difference (a busier machine in one of the runs).
    caveat: str | None = None
    #: The two figures, baseline first: "1.40 → 1.52 ms".
    figures: str | None = None

    @property
    def regressed(self) -> bool:
        return self.interval is not None and self.interval[0] > self.limit

    @property
    def verdict(self) -> str:
        if self.interval is None:
            return f"no verdict: {self.note or 'no interval'}"
        if self.regressed:
            return "clear regression"
        if self.interval[1] < 1.0:
            return "clearly better"
        return "no clear difference"

    def sentence(self) -> str:
        """'torch-cpu: p50 latency 1.40 → 2.13 ms, 1.52x the baseline (1.45–1.60, 95 %
        interval), allowed 1.1x: clear regression'."""
        ci = (
            f" ({fmt_ratio(self.interval[0])}–{fmt_ratio(self.interval[1])}, "
            f"{self.confidence} interval)"
            if self.interval
            else ""
        )
        caveat = f" ({self.caveat})" if self.caveat else ""
        figures = f" {self.figures}," if self.figures else ""
        return (
            f"{self.backend}: {self.metric}{figures} {fmt_ratio(self.ratio)}x the baseline{ci}, "
            f"allowed {fmt_ratio(self.limit)}x: {self.verdict}{caveat}"
        )


@dataclass(frozen=True)
class GateReport:
    """What the gate found: refusals (not like for like), differences allowed or only
    reported, and the findings."""

    refused: tuple[str, ...]
    machine_differs: tuple[str, ...]
    allowed_machine: bool
    settings_differ: tuple[str, ...]
    notes: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default=())

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.regressed]

    @property
    def exit_code(self) -> int:
        if self.refused:
            return EXIT_REFUSED
        return EXIT_REGRESSION if self.regressions else 0

    def headline(self) -> str:
        if self.refused:
            return "baseline refused, not like for like: " + "; ".join(self.refused)
        if self.regressions:
            names = ", ".join(f.sentence() for f in self.regressions)
            return f"regression: {names}"
        return "no clear regression against the baseline"


def _config(run: Run) -> dict[str, Any]:
    config = run.doc.get("config")
    return config if isinstance(config, dict) else {}


def _show(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "×".join(str(v) for v in value)
    return str(value)


def _differences(
    fields: tuple[str, ...] | list[str], base: dict[str, Any], cur: dict[str, Any], both: bool
) -> list[str]:
    """'name: baseline value vs this run's value' for each field that differs (``both``:
    only fields both documents hold)."""
    out = []
    for key in fields:
        if both and (key not in base or key not in cur):
            continue
        if base.get(key) != cur.get(key):
            out.append(f"{key} {_show(base.get(key))} vs {_show(cur.get(key))}")
    return out


def evaluate(
    baseline: Run,
    current: Run,
    max_latency: float,
    max_energy: float | None = None,
    allow_different_machine: bool = False,
) -> GateReport:
    """The gate's report for ``current`` against ``baseline``. ``max_latency`` and
    ``max_energy`` are allowed increases as fractions (0.05 for 5 %)."""
    refused = _differences(WORK_FIELDS, _config(baseline), _config(current), both=True)
    machine_keys = [
        k for k in baseline.environment if k in current.environment and k not in SETTING_ENV_FIELDS
    ]
    machine = _differences(machine_keys, baseline.environment, current.environment, both=True)
    settings = _differences(SETTING_ENV_FIELDS, baseline.environment, current.environment, True)
    settings += [
        f"config.{d}"
        for d in _differences(SETTING_CONFIG_FIELDS, _config(baseline), _config(current), True)
    ]
    notes: list[str] = []
    only = sorted(set(baseline.environment) ^ set(current.environment))
    if only:
        notes.append("environment fields in one file only: " + ", ".join(only))
    base_measured, cur_measured = baseline.measured(), current.measured()
    findings: list[Finding] = []
    for backend_id, base_entry in base_measured.items():
        cur_entry = cur_measured.get(backend_id)
        if cur_entry is None:
            notes.append(f"{backend_id}: in the baseline, not measured in this run")
            continue
        factor_diffs, factor_settings = _factor_differences(base_entry, cur_entry)
        refused += [f"{backend_id} {d}" for d in factor_diffs]
        settings += [f"{backend_id} {d}" for d in factor_settings]
        latency = _latency_finding(backend_id, base_entry, cur_entry, 1.0 + max_latency)
        findings.append(replace(latency, caveat=_contention_caveat(base_entry, cur_entry)))
        if max_energy is not None:
            finding, problem = _energy_finding(baseline, current, backend_id, 1.0 + max_energy)
            if problem is not None:
                refused.append(problem)
            elif finding is not None:
                findings.append(finding)
    notes += [
        f"{i}: new in this run, not in the baseline" for i in cur_measured if i not in base_measured
    ]
    if not findings and not refused:  # a gate that compared nothing must not pass
        refused.append("no backend was measured in both files: nothing to compare")
    if machine and not allow_different_machine:
        refused += [f"machine {d}" for d in machine]
    return GateReport(
        refused=tuple(refused),
        machine_differs=tuple(machine),
        allowed_machine=allow_different_machine and bool(machine),
        settings_differ=tuple(settings),
        notes=tuple(notes),
        findings=tuple(findings) if not refused else (),
    )


def _factor_differences(base: dict[str, Any], cur: dict[str, Any]) -> tuple[list[str], list[str]]:
    base_f, cur_f = base.get("factors"), cur.get("factors")
    if not isinstance(base_f, dict) or not isinstance(cur_f, dict):
        return [], []
    keys = [k for k in base_f if k in cur_f]
    diffs = _differences(keys, base_f, cur_f, both=True)
    settings = [d for d in diffs if d.split(" ", 1)[0] in SETTING_FACTORS]
    return [d for d in diffs if d not in settings], settings


def _latency_finding(
    backend_id: str, base: dict[str, Any], cur: dict[str, Any], limit: float
) -> Finding:
    fewest = min(_count(base), _count(cur))
    exact = all(e["latency_ms"].get("p50_ci975") for e in (base, cur))
    key, confidence = ("p50_ci975", "95 %") if exact else ("p50_ci95", "90 %")
    speed = speed_ratio(base, cur, key)
    if speed is None:
        return Finding(backend_id, "p50 latency", 1.0, None, confidence, limit, "no median")
    ratio, interval = speed  # baseline ÷ current: turned into current ÷ baseline below
    slowdown = 1.0 / ratio
    note = None
    if fewest < MIN_COUNT_FOR_RATIO:
        interval, note = None, f"too few inferences (needs {MIN_COUNT_FOR_RATIO} in each run)"
    elif interval is None:
        note = "no interval of the median in one of the files"
    turned = (1.0 / interval[1], 1.0 / interval[0]) if interval else None
    figures = f"{fmt_ms(base['latency_ms']['p50'])} → {fmt_ms(cur['latency_ms']['p50'])} ms"
    return Finding(
        backend_id, "p50 latency", slowdown, turned, confidence, limit, note, figures=figures
    )


def _contention_caveat(base: dict[str, Any], cur: dict[str, Any]) -> str | None:
    """Which run other processes slowed, when one was busy and the other less so: the
    machine, not the change, may then explain a difference (core.contention's rule of
    what is meaningful)."""
    used = []
    cores = 0.0
    for entry in (base, cur):
        contention = entry.get("contention")
        others = contention.get("others_cores") if isinstance(contention, dict) else None
        count = contention.get("cores") if isinstance(contention, dict) else None
        used.append(float(others) if isinstance(others, (int, float)) and others > 0 else 0.0)
        if isinstance(count, (int, float)) and count > 0:
            cores = max(cores, float(count))
    meaningful = max(MEANINGFUL_CORES, MEANINGFUL_SHARE * cores)
    if abs(used[1] - used[0]) < meaningful:
        return None
    busier = "this run" if used[1] > used[0] else "the baseline"
    return (
        f"other processes used {used[1]:.1f} cores during this run, {used[0]:.1f} during "
        f"the baseline: a busier machine in {busier} may explain part of it"
    )


def _count(entry: dict[str, Any]) -> int:
    count = entry.get("count")
    return int(count) if isinstance(count, (int, float)) else 0


def _energy_finding(
    baseline: Run, current: Run, backend_id: str, limit: float
) -> tuple[Finding | None, str | None]:
    """(the finding or None, why energy cannot be compared like for like or None)."""
    base_e = baseline.measured()[backend_id].get("energy")
    cur_e = current.measured()[backend_id].get("energy")
    if not isinstance(base_e, dict) or not isinstance(cur_e, dict):
        missing = "the baseline" if not isinstance(base_e, dict) else "this run"
        return Finding(
            backend_id, "energy per inference", 1.0, None, "95 %", limit,
            f"no energy measured in {missing}",
        ), None  # fmt: skip
    caveat = energy_caveat(baseline, current, base_e, cur_e)
    if caveat is not None:
        return None, f"{backend_id} energy {caveat}"
    base_mj, cur_mj = base_e.get("mj_per_inference"), cur_e.get("mj_per_inference")
    if not _positive(base_mj) or not _positive(cur_mj):
        return Finding(
            backend_id, "energy per inference", 1.0, None, "95 %", limit, "no energy figure"
        ), None
    base_ci, cur_ci = base_e.get("mj_per_inference_ci975"), cur_e.get("mj_per_inference_ci975")
    interval: tuple[float, float] | None = None
    note: str | None = "too few power windows for an interval (needs 30 in each run)"
    if _pair(base_ci) and _pair(cur_ci):
        assert isinstance(base_ci, list) and isinstance(cur_ci, list)
        interval, note = (cur_ci[0] / base_ci[1], cur_ci[1] / base_ci[0]), None
    ratio = float(cast(float, cur_mj)) / float(cast(float, base_mj))
    figures = f"{base_mj:.3f} → {cur_mj:.3f} mJ"
    finding = Finding(
        backend_id, "energy per inference", ratio, interval, "95 %", limit, note, figures=figures
    )
    return finding, None


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_positive(v) for v in value)


# -- rendering ----------------------------------------------------------------------
def text_lines(report: GateReport, baseline: Run) -> list[str]:
    """The gate's verdict for the terminal, one line each."""
    lines = [f"gate against {baseline.path}: {report.headline()}"]
    if report.allowed_machine:
        lines.append(
            "compared across machines (--allow-different-machine): "
            + "; ".join(report.machine_differs)
        )
    if report.settings_differ:
        lines.append(
            "settings that differ (reported, not refused): " + "; ".join(report.settings_differ)
        )
    lines += [f"  {f.sentence()}" for f in report.findings]
    lines += [f"  note: {n}" for n in report.notes]
    return lines


def markdown(report: GateReport, baseline: Run, current: Run) -> str:
    """A Markdown summary for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""
    icon = "❌" if report.exit_code else "✅"
    lines = [
        f"## {icon} anetui regression gate",
        "",
        f"{report.headline()}",
        "",
        f"Baseline `{baseline.path.name}` ({baseline.doc.get('created')}) against this run "
        f"({current.doc.get('created')}), model `{_config(current).get('model')}`.",
        "",
    ]
    if report.findings:
        lines += [
            "| backend | metric | baseline → this run | this run ÷ baseline | interval | allowed "
            "| verdict |",
            "|---|---|--:|--:|---|--:|---|",
        ]
        for f in report.findings:
            ci = (
                f"{fmt_ratio(f.interval[0])}–{fmt_ratio(f.interval[1])} ({f.confidence})"
                if f.interval
                else "–"
            )
            verdict = f"**{f.verdict}**" if f.regressed else f.verdict
            if f.caveat:
                verdict += f" ({f.caveat})"
            lines.append(
                f"| {f.backend} | {f.metric} | {f.figures or '–'} | {fmt_ratio(f.ratio)}x | {ci} | "
                f"{fmt_ratio(f.limit)}x | {verdict} |"
            )
        lines.append("")
    if report.allowed_machine:
        lines += [
            "**Different machines** (compared anyway): " + "; ".join(report.machine_differs),
            "",
        ]
    if report.settings_differ:
        lines += ["Settings that differ: " + "; ".join(report.settings_differ), ""]
    if report.notes:
        lines += [*(f"- {n}" for n in report.notes), ""]
    lines += [
        "A regression is claimed only when the whole interval of the ratio is above the "
        "allowed ratio; the interval combines both runs' 97.5 % intervals of the median "
        "(>= 95 % jointly).",
        "",
    ]
    return "\n".join(lines)
