"""`anetui doctor --deep`: run every available backend for a few inferences and every
available power source for two windows, check what comes back, and say pass or fail with
the exact error — enough to fix a failure on a machine one cannot sit at (a first Mac).

Checks, per backend: it prepares, runs ``iterations`` timed inferences, and its output
agrees with eager fp32 PyTorch on the CPU within a tolerance for its dtype. Per power
source: it starts, delivers two complete windows whose times advance, whose energies
are non-negative and whose mean power per rail is plausible, and — where the source
reports a combined figure beside its parts (powermetrics' ``combined``) — the parts add
up to it. Counter sources are also read directly and must not run backwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from anetui.backends.registry import REGISTRY
from anetui.core.config import RunConfig
from anetui.core.session import Session
from anetui.errors import one_line
from anetui.models.resolve import resolve_model
from anetui.power import registry as power_registry
from anetui.power.base import CounterSource, PowerSample, PowerSource
from anetui.power.monitor import PowerMonitor

SCHEMA = "anetui.doctor/1"
#: Largest agreement_max_rel_err that passes, by dtype: fp32 allows TF32 convolutions
#: (~1e-2 on CUDA); reduced precisions compound their rounding over a whole network.
AGREEMENT_LIMIT = {"fp32": 2e-2, "fp16": 1e-1, "bf16": 2.5e-1}
#: Mean power above this on one rail (W) is a unit or parsing error, not a machine.
PLAUSIBLE_MAX_W = 2000.0
#: A window may be this much shorter or longer than asked before it is suspect.
WINDOW_SLACK = (0.5, 4.0)
#: |combined - (sum of its parts)| allowed, relative (powermetrics rounds each to mJ).
COMBINED_TOLERANCE = 0.1

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Check:
    """One row of the report: ``verdict`` is pass, fail or skip (not available here)."""

    kind: str  # "backend" | "power"
    id: str
    verdict: str
    detail: str
    facts: dict[str, object] = field(default_factory=dict)


def check_backends(
    *,
    model: str,
    input_shape: tuple[int, ...] | None,
    backend_ids: tuple[str, ...] | None,
    iterations: int,
    progress: Progress,
) -> list[Check]:
    """Every backend (or ``backend_ids``): prepared, run, its output compared."""
    spec = resolve_model(model, input_shape=input_shape)
    config = RunConfig(
        model=model,
        input_shape=input_shape,
        backends=backend_ids,
        warmup=2,
        iterations=iterations,
        duration_s=None,
    )
    session = Session(config, spec)

    def report(backend_id: str, what: str, count: int) -> None:
        progress(f"{backend_id}: {what}")

    try:
        session.prepare(progress=report)
        session.run(progress=report)
        snapshot = session.snapshot()
    finally:
        session.close()
    checks = []
    for result in snapshot.backends:
        facts: dict[str, object] = {"dtype": result.dtype, "device": result.device}
        if not result.available:
            checks.append(Check("backend", result.id, "skip", result.reason or "", facts))
            continue
        if result.error is not None:
            checks.append(Check("backend", result.id, "fail", result.error, facts))
            continue
        summary = result.summary
        count = summary.count if summary else 0
        facts["count"] = count
        if result.prepare is not None:
            facts["load_s"] = round(result.prepare.load_s + result.prepare.compile_s, 3)
            facts["first_inference_ms"] = round(result.prepare.first_inference_ms, 3)
        if summary is not None:
            facts["p50_ms"] = round(summary.p50_ns / 1e6, 4)
        if result.runtime_summary is not None:
            facts["runtime_p50_ms"] = round(result.runtime_summary.p50_ns / 1e6, 4)
        facts["agreement_max_rel_err"] = result.agreement_max_rel_err
        facts["notes"] = list(result.notes)
        checks.append(_judge_backend(result.id, result.dtype, count, iterations, facts))
    if backend_ids is None:  # every backend of the registry gets a row
        checked = {c.id for c in checks}
        for description in REGISTRY.values():
            if description.id in checked:
                continue
            if spec.kind not in description.accepts:  # e.g. the decoder-only runtimes
                why = (
                    f"does not run this model ({', '.join(description.accepts)} only): "
                    f"checked with one it runs (--model llama-tiny --backends {description.id})"
                )
            elif description.sibling_of is not None:  # each calibrates: named ones only
                why = (
                    f"quantized sibling of {description.sibling_of}: checked when named "
                    f"(--backends {description.id})"
                )
            else:
                why = f"not in the default set: checked when named (--backends {description.id})"
            checks.append(Check("backend", description.id, "skip", why, {}))
    return checks


def _judge_backend(
    backend_id: str, dtype: str, count: int, iterations: int, facts: dict[str, object]
) -> Check:
    if count != iterations:
        detail = f"ran {count} of {iterations} inferences"
        return Check("backend", backend_id, "fail", detail, facts)
    agreement = facts.get("agreement_max_rel_err")
    limit = AGREEMENT_LIMIT.get(dtype, 2.5e-1)
    p50 = f"p50 {facts.get('p50_ms')} ms"
    if isinstance(agreement, float):
        if agreement > limit:
            detail = f"{p50}, but the output differs from eager fp32 PyTorch by "
            detail += f"{agreement:.1e} (limit {limit:.0e} for {dtype})"
            return Check("backend", backend_id, "fail", detail, facts)
        return Check("backend", backend_id, "pass", f"{p50}, agreement {agreement:.1e}", facts)
    notes = facts.get("notes")
    bad = [n for n in notes if "NaN" in n or "not computed" in n] if isinstance(notes, list) else []
    if bad:
        return Check("backend", backend_id, "fail", f"{p50}, {bad[0]}", facts)
    detail = f"{p50} (no agreement figure: the reference itself, or no PyTorch form)"
    return Check("backend", backend_id, "pass", detail, facts)


def check_power_sources(
    *, specs: Sequence[str] | None, interval_ms: int, progress: Progress
) -> list[Check]:
    """Every power source id (or ``specs``): two windows, checked."""
    checks = []
    for spec in specs or power_registry.SOURCE_IDS:
        try:
            source = power_registry.create(spec, interval_ms, loop_replay=False)
            availability = source.available()
        except Exception as exc:  # a source that cannot even be made is a finding
            checks.append(Check("power", spec, "fail", f"{type(exc).__name__}: {one_line(exc)}"))
            continue
        if not availability.ok:
            checks.append(Check("power", spec, "skip", availability.reason or ""))
            continue
        progress(f"{spec}: sampling two windows")
        checks.append(check_source(spec, source))
    if specs is None:
        checks.append(
            Check("power", "replay:FILE", "skip", "plays a recording: give one with --power")
        )
    return checks


def check_source(spec: str, source: PowerSource, windows: int = 2) -> Check:
    """Start ``source``, take ``windows`` complete windows, stop it, judge them."""
    monitor = PowerMonitor(source)
    facts: dict[str, object] = {"label": source.label}
    if not monitor.start():
        return Check("power", spec, "fail", f"could not start: {monitor.reason}", facts)
    facts["interval_ms"] = source.interval_ms
    first: object = None
    try:
        if isinstance(source, CounterSource):
            first = source.read_counters()
        # Known once started (a replay takes it from its recording).
        interval_s = (source.interval_ms or 1000) / 1000
        # The first window may have started before the source was ready: one extra.
        deadline = time.monotonic() + max(5.0, (windows + 3) * interval_s)
        while len(monitor.samples()) < windows + 1 and time.monotonic() < deadline:
            if monitor.state not in ("running", "idle"):
                break
            time.sleep(interval_s / 4)
        later = source.read_counters() if isinstance(source, CounterSource) else None
    finally:
        monitor.stop()
    samples = monitor.samples()[-windows:]
    facts["windows"] = len(samples)
    if len(samples) < windows:
        why = monitor.reason or f"state {monitor.state}"
        detail = f"{len(samples)} of {windows} windows arrived ({why})"
        return Check("power", spec, "fail", detail, facts)
    problems = window_problems(samples, source.interval_ms)
    if first is not None and later is not None:
        problems += counter_problems(first.energy_mj, later.energy_mj)  # type: ignore[attr-defined]
    facts["mean_power_w"] = {
        rail: round(sum(s.rails_w.get(rail, 0.0) for s in samples) / len(samples), 3)
        for rail in sorted({r for s in samples for r in s.rails_mj})
    }
    facts["total_rails"] = list(source.total_rails(samples[-1].rails_mj))
    if problems:
        return Check("power", spec, "fail", "; ".join(problems), facts)
    watts = ", ".join(f"{r} {w} W" for r, w in facts["mean_power_w"].items())  # type: ignore[attr-defined]
    return Check("power", spec, "pass", watts or "no rails", facts)


def window_problems(samples: Sequence[PowerSample], interval_ms: int) -> list[str]:
    """What is wrong with consecutive windows: times, energies, watts, sums."""
    problems = []
    low, high = (interval_ms * 1e6 * f for f in WINDOW_SLACK)
    for i, sample in enumerate(samples):
        if sample.t_end_ns <= sample.t_start_ns:
            problems.append(f"window {i} ends before it starts")
        elif interval_ms > 0 and not low <= sample.elapsed_ns <= high:
            problems.append(
                f"window {i} lasts {sample.elapsed_ns / 1e6:.0f} ms (asked {interval_ms} ms)"
            )
        # Windows are stamped when they arrive: allow that much jitter before "overlap".
        slack_ns = max(20_000_000, sample.elapsed_ns // 5)
        if i and sample.t_start_ns < samples[i - 1].t_end_ns - slack_ns:
            problems.append(f"window {i} overlaps the one before")
        if not sample.rails_mj:
            problems.append(f"window {i} has no rails")
        for rail, energy in sample.rails_mj.items():
            if energy < 0:
                problems.append(f"window {i}: {rail} energy is negative ({energy} mJ)")
        for rail, watts in sample.rails_w.items():
            if watts > PLAUSIBLE_MAX_W:
                problems.append(f"window {i}: {rail} at {watts:.0f} W is not plausible")
        problems += _combined_problems(i, sample.rails_mj)
    return problems


def _combined_problems(i: int, rails: dict[str, float]) -> list[str]:
    parts = [r for r in ("cpu", "gpu", "ane") if r in rails]
    if "combined" not in rails or len(parts) < 2:
        return []
    total = sum(rails[r] for r in parts)
    combined = rails["combined"]
    if abs(combined - total) > COMBINED_TOLERANCE * max(combined, total) + 5.0:
        return [f"window {i}: combined {combined:.0f} mJ but {'+'.join(parts)} = {total:.0f} mJ"]
    return []


def counter_problems(first: dict[str, float], later: dict[str, float]) -> list[str]:
    """Counters read twice: none may go backwards, at least one must move."""
    problems = [
        f"counter {rail} went backwards ({first[rail]} -> {later[rail]} mJ)"
        for rail in first
        if rail in later and later[rail] < first[rail]
    ]
    if not problems and first and all(later.get(r) == v for r, v in first.items()):
        problems.append("no counter advanced between two reads")
    return problems


def report_json(
    environment: dict[str, object], packages: dict[str, str | None], checks: list[Check]
) -> dict[str, object]:
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment,
        "packages": packages,
        "passed": all(c.verdict != "fail" for c in checks),
        "checks": [asdict(c) for c in checks],
    }
