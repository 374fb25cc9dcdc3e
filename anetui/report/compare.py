"""`anetui report A.json B.json …`: saved results (bench --json or dashboard snapshots)
from one or several machines turned into one Markdown comparison.

Each file is a column (a run: before/after on one machine, or one machine of a fleet). The
same backend is put side by side across the columns, each later file against the first:
the ratio of medians with its interval ("onnx-cpu: after ran 1.12x (1.08–1.15) faster
than before"), and energy per inference when both files measured it. Environment fields
that differ are marked. Across machines, the fastest and the most frugal backend of each
machine are compared, with the caveat that different machines (and often different power
sources and rails) are not like for like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.report.load import load_results
from anetui.report.text import factor_text, fmt_ms, rails_label

MACHINE_FIELDS = ("os", "machine", "cpu", "cpu_count")


@dataclass(frozen=True)
class Run:
    """One results file: its column label and document."""

    label: str
    path: Path
    doc: dict[str, Any]

    @property
    def environment(self) -> dict[str, Any]:
        env = self.doc.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def power(self) -> dict[str, Any]:
        power = self.doc.get("power")
        return power if isinstance(power, dict) else {}

    def measured(self) -> dict[str, dict[str, Any]]:
        """Backend id -> entry, for the backends with latencies."""
        return {
            b["id"]: b
            for b in self.doc.get("backends", [])
            if isinstance(b, dict) and isinstance(b.get("latency_ms"), dict) and "id" in b
        }

    def machine(self) -> tuple[object, ...]:
        return tuple(self.environment.get(k) for k in MACHINE_FIELDS)

    def work(self) -> tuple[str, ...]:
        """What one inference computes: the model, the input shape, the dtype asked for."""
        config = self.doc.get("config")
        config = config if isinstance(config, dict) else {}
        return tuple(_cell(config.get(k)) for k in ("model", "input_shape", "dtype"))


def labels_for(paths: Sequence[Path]) -> list[str]:
    """Column labels: the file names without .json, numbered where two are the same."""
    stems = [p.name.removesuffix(".json") for p in paths]
    return [stem if stems.count(stem) == 1 else f"{i}:{stem}" for i, stem in enumerate(stems, 1)]


def load_runs(paths: list[Path]) -> list[Run]:
    """Each file read as untrusted input, labelled."""
    return [
        Run(label, path, load_results(path))
        for label, path in zip(labels_for(paths), paths, strict=True)
    ]


def comparison_markdown(paths: list[Path]) -> str:
    runs = load_runs(paths)
    lines = ["# anetui comparison", ""]
    lines += _environment_table(runs)
    lines += _latency_table(runs)
    lines += _energy_table(runs)
    lines += _across_files(runs)
    if len({run.machine() for run in runs}) > 1:
        lines += _across_machines(runs)
    lines += _warnings(runs)
    lines += [
        "Files are compared as saved: different times, maybe different machines. Speed "
        "intervals combine each file's 95% interval of the median (conservative); energy "
        "ratios across files have no interval, since a results file keeps no per-window "
        "energy.",
        "",
    ]
    return "\n".join(lines)


# -- environment --------------------------------------------------------------------
def _environment_rows(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = [
        ("created", [str(r.doc.get("created")) for r in runs]),
    ]
    # Asked-for settings; the environment has what was used (threads in use, …).
    config_rows = {"model": "model", "input_shape": "input_shape", "dtype": "dtype asked",
                   "threads": "threads asked", "warmup": "warmup", "duration_s": "duration_s",
                   "iterations": "iterations", "interleave": "interleave"}  # fmt: skip
    for key, name in config_rows.items():
        rows.append((name, [_cell((r.doc.get("config") or {}).get(key)) for r in runs]))
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.environment if k not in keys]
    rows += [(key, [_cell(r.environment.get(key)) for r in runs]) for key in keys]
    rows.append(("power source", [_source_text(r) for r in runs]))
    rows.append(("power interval ms", [_cell(r.power.get("interval_ms")) for r in runs]))
    return [(name, values) for name, values in rows if any(v != "–" for v in values)]


def differing_fields(runs: Sequence[Run]) -> list[str]:
    """Environment, configuration and power fields whose values differ between files
    (the creation time aside)."""
    return [
        name
        for name, values in _environment_rows(runs)
        if name != "created" and len(set(values)) > 1
    ]


def _environment_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| | " + " | ".join(f"`{r.label}`" for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    differ = set(differing_fields(runs))
    for name, values in _environment_rows(runs):
        if name in differ:
            lines.append(f"| **≠ {name}** | " + " | ".join(f"**{v}**" for v in values) + " |")
        else:
            lines.append(f"| {name} | " + " | ".join(values) + " |")
    lines.append("")
    if len(runs) > 1:
        lines.append(
            "Fields that differ: " + ", ".join(sorted(differ)) + "."
            if differ
            else "No environment, configuration or power field differs."
        )
        lines.append("")
    return lines


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "×".join(str(v) for v in value)
    return str(value).replace("|", "/")


def _source_text(run: Run) -> str:
    source = run.power.get("source") or "none"
    label = run.power.get("label")
    return str(label if label and source != "none" else source)


# -- per backend, files as columns --------------------------------------------------
def _backend_ids(runs: Sequence[Run]) -> list[str]:
    ids: list[str] = []
    for run in runs:
        ids += [i for i in run.measured() if i not in ids]
    return ids


def _latency_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "## p50 latency, ms (95% CI)",
        "",
        "| backend | " + " | ".join(f"`{r.label}`" for r in runs) + " |",
        "|---|" + "--:|" * len(runs),
    ]
    for backend_id in _backend_ids(runs):
        cells = []
        for run in runs:
            entry = run.measured().get(backend_id)
            if entry is None:
                cells.append("–")
                continue
            lat = entry["latency_ms"]
            ci = lat.get("p50_ci95")
            ci_text = f" ({fmt_ms(ci[0])}–{fmt_ms(ci[1])})" if ci else ""
            cells.append(f"{fmt_ms(lat.get('p50'))}{ci_text}, n={entry.get('count')}")
        lines.append(f"| {backend_id} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _energy_table(runs: Sequence[Run]) -> list[str]:
    if not any(b.get("energy") for r in runs for b in r.measured().values()):
        return []
    lines = [
        "## Energy per inference, mJ (gross / active; rails)",
        "",
        "| backend | " + " | ".join(f"`{r.label}`" for r in runs) + " |",
        "|---|" + "--:|" * len(runs),
    ]
    for backend_id in _backend_ids(runs):
        cells = []
        for run in runs:
            energy = (run.measured().get(backend_id) or {}).get("energy")
            if not energy:
                cells.append("–")
                continue
            cells.append(
                f"{_num(energy.get('mj_per_inference'))} / "
                f"{_num(energy.get('active_mj_per_inference'))}; "
                f"{rails_label(energy.get('total_rails') or [])}"
            )
        lines.append(f"| {backend_id} | " + " | ".join(cells) + " |")
    return [*lines, ""]


# -- ratios across files ------------------------------------------------------------
def speed_ratio(
    reference: dict[str, Any], other: dict[str, Any], interval_key: str = "p50_ci95"
) -> tuple[float, tuple[float, float] | None] | None:
    """reference p50 ÷ other p50 (> 1: other is faster) with the conservative interval
    from both medians' intervals under ``interval_key`` (95 % each: the pair holds at
    >= 90 %; ``p50_ci975``: at >= 95 %); None without both medians."""
    ref, oth = reference["latency_ms"], other["latency_ms"]
    if not ref.get("p50") or not oth.get("p50"):
        return None
    ratio = ref["p50"] / oth["p50"]
    ref_ci, oth_ci = ref.get(interval_key), oth.get(interval_key)
    if not ref_ci or not oth_ci or min(*ref_ci, *oth_ci) <= 0:
        return ratio, None
    return ratio, (ref_ci[0] / oth_ci[1], ref_ci[1] / oth_ci[0])


def speed_sentence(
    backend: str, ratio: float, interval: tuple[float, float] | None, ref: str, other: str
) -> str:
    """'onnx-cpu: after ran 1.12x (1.08–1.15) faster than before'."""
    faster, text = factor_text(ratio, interval)
    sentence = f"{backend}: {other} ran {text} {'faster' if faster else 'slower'} than {ref}"
    if interval is not None and interval[0] <= 1 <= interval[1]:
        sentence += " — the interval includes 1: no clear difference"
    return sentence


def energy_caveat(reference: Run, other: Run, ref_energy: dict[str, Any],
                  oth_energy: dict[str, Any]) -> str | None:  # fmt: skip
    """Why two energy figures are not like for like, or None when they are measured
    the same way (same source, same rails)."""
    ref_source = str(reference.power.get("source") or "none")
    oth_source = str(other.power.get("source") or "none")
    ref_rails = rails_label(ref_energy.get("total_rails") or [])
    oth_rails = rails_label(oth_energy.get("total_rails") or [])
    if ref_source != oth_source:
        return (
            f"measured with different power sources: {ref_source} ({ref_rails}) vs "
            f"{oth_source} ({oth_rails}) — not like for like"
        )
    if ref_rails != oth_rails:
        return f"over different rails: {ref_rails} vs {oth_rails} — not like for like"
    return None


def energy_sentence(
    subject: str, reference_subject: str, reference: Run, other: Run,
    ref_energy: dict[str, Any], oth_energy: dict[str, Any],
) -> str | None:  # fmt: skip
    """'X used 1.3x less energy per inference than Y, CPU+GPU+ANE' (+ the caveat)."""
    ref_mj, oth_mj = ref_energy.get("mj_per_inference"), oth_energy.get("mj_per_inference")
    if not isinstance(ref_mj, (int, float)) or not isinstance(oth_mj, (int, float)):
        return None
    if ref_mj <= 0 or oth_mj <= 0:
        return None
    less, text = factor_text(ref_mj / oth_mj)
    sentence = (
        f"{subject} used {text} {'less' if less else 'more'} energy per inference than "
        f"{reference_subject}"
    )
    caveat = energy_caveat(reference, other, ref_energy, oth_energy)
    if caveat:
        return f"{sentence}, {caveat}"
    return f"{sentence}, {rails_label(ref_energy.get('total_rails') or [])}"


def _across_files(runs: Sequence[Run]) -> list[str]:
    if len(runs) < 2:
        return []
    base = runs[0]
    lines = [f"## Across files (each against `{base.label}`)", ""]
    found = False
    for other in runs[1:]:
        caveats = []
        if other.machine() != base.machine():
            caveats.append("different machines")
        if other.work() != base.work():
            caveats.append("a different model or input: not the same work")
        suffix = f" ({'; '.join(caveats)})" if caveats else ""
        for backend_id, ref in base.measured().items():
            oth = other.measured().get(backend_id)
            if oth is None:
                continue
            found = True
            speed = speed_ratio(ref, oth)
            if speed is not None:
                sentence = speed_sentence(backend_id, *speed, base.label, other.label)
                lines.append(f"- {sentence}{suffix}")
            if ref.get("energy") and oth.get("energy"):
                text = energy_sentence(
                    f"{backend_id}: {other.label}", base.label, base, other,
                    ref["energy"], oth["energy"],
                )  # fmt: skip
                if text:
                    lines.append(f"- {text}")
    if not found:
        lines.append("No backend was measured in more than one file.")
    return [*lines, ""]


def _across_machines(runs: Sequence[Run]) -> list[str]:
    """The question a fleet asks: each machine's best against the first machine's."""
    lines = ["## Across machines", ""]
    base = runs[0]
    for other in runs[1:]:
        if other.machine() == base.machine():
            continue
        if other.work() != base.work():
            lines.append(f"- `{other.label}` ran a different model or input: not the same work")
        fast_ref, fast_oth = _fastest(base), _fastest(other)
        if fast_ref and fast_oth:
            ratio, interval = speed_ratio(fast_ref, fast_oth) or (1.0, None)
            faster, text = factor_text(ratio, interval)
            lines.append(
                f"- Fastest: {fast_oth['id']} on {_machine(other)} ran {text} "
                f"{'faster' if faster else 'slower'} than {fast_ref['id']} on "
                f"{_machine(base)} (p50 {fmt_ms(fast_oth['latency_ms']['p50'])} vs "
                f"{fmt_ms(fast_ref['latency_ms']['p50'])} ms)"
            )
        lean_ref, lean_oth = _leanest(base), _leanest(other)
        if lean_ref and lean_oth:
            energy = energy_sentence(
                f"Least energy: {lean_oth['id']} on {_machine(other)}",
                f"{lean_ref['id']} on {_machine(base)}", base, other,
                lean_ref["energy"], lean_oth["energy"],
            )  # fmt: skip
            if energy:
                lines.append(f"- {energy}")
        elif fast_ref and fast_oth:
            missing = [r.label for r in (base, other) if _leanest(r) is None]
            lines.append(f"- No energy comparison: no energy measured in {', '.join(missing)}")
    lines += [
        "",
        "Different machines differ in more than the backend: the chip, memory, OS, "
        "runtime versions and how power is measured (each source counts its own rails). "
        "Read these as what each machine does at best, not as a controlled experiment.",
        "",
    ]
    return lines


def _fastest(run: Run) -> dict[str, Any] | None:
    measured = [b for b in run.measured().values() if b["latency_ms"].get("p50")]
    return min(measured, key=lambda b: b["latency_ms"]["p50"], default=None)


def _leanest(run: Run) -> dict[str, Any] | None:
    with_energy = [
        b
        for b in run.measured().values()
        if isinstance((b.get("energy") or {}).get("mj_per_inference"), (int, float))
        and b["energy"]["mj_per_inference"] > 0
    ]
    return min(with_energy, key=lambda b: b["energy"]["mj_per_inference"], default=None)


def _machine(run: Run) -> str:
    cpu = run.environment.get("cpu")
    return f"{run.label} ({cpu})" if cpu else run.label


def _warnings(runs: Sequence[Run]) -> list[str]:
    lines = [
        f"- `{run.label}`: {warning}"
        for run in runs
        for warning in run.doc.get("warnings") or []
        if isinstance(warning, str)
    ]
    return ["## Warnings saved in the files", "", *lines, ""] if lines else []


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"
