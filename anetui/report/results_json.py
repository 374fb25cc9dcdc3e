"""The results document, schema ``anetui.results/2`` (DESIGN.md §6).

Version 2 added the model's named inputs and outputs (``config.inputs``,
``config.outputs``) and each output's agreement (``agreement_outputs``); every field of
version 1 is still there, ``config.input_shape`` being the first input's shape.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from anetui.core import intervals
from anetui.core.energy_figures import BackendEnergy
from anetui.core.generation import GenerationResult
from anetui.core.results import BackendResult, Ratio, Snapshot
from anetui.core.stats import LatencySummary
from anetui.report import work_rate
from anetui.report.text import energy_sentence, ratio_sentence

SCHEMA = "anetui.results/2"


def energy_json(energy: BackendEnergy | None) -> dict[str, Any] | None:
    if energy is None:
        return None
    ci975 = intervals.energy_interval(energy)
    return {
        "rails": list(energy.rails),
        "total_rails": list(energy.total_rails),
        "mj_per_inference": _round(energy.total_mj_per_inference),
        "active_mj_per_inference": _round(energy.total_active_mj_per_inference),
        # Where there are enough windows: for comparing with another run (>= 95 % jointly).
        "mj_per_inference_ci975": [_round(v) for v in ci975] if ci975 else None,
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
        "method": energy.method,
        "stretches": energy.stretches,
        "measured_s": _round(energy.measured_s),
        "resolution_mj_per_inference": _round(energy.resolution_mj_per_inference),
        "windows": energy.windows,
        "window_s": _round(energy.window_s),
        "inferences_in_windows": _round(energy.inferences),
        "thermal_pressure": list(energy.thermal_pressure),
        # Our own process's CPU energy as a share of the total (CPU+GPU+ANE …), where the
        # source reports it (ioreport on macOS).
        "process_share": _round(energy.mj_per_inference["process"] / energy.total_mj_per_inference)
        if "process" in energy.mj_per_inference and energy.total_mj_per_inference > 0
        else None,
    }


# -- JSON ---------------------------------------------------------------------------
def latency_json(summary: LatencySummary) -> dict[str, Any]:
    """The latency figures in ms, with the median's 97.5 % interval beside its 95 % one:
    two runs' 97.5 % intervals bound the ratio of their medians at >= 95 % (the
    regression gate compares a run with a saved baseline that way)."""
    out: dict[str, Any] = {}
    for key, value in summary.to_ms().items():
        out[key] = value
        if key == "p50_ci95":
            ci = summary.p50_ci975_ns
            out["p50_ci975"] = [_round(ci[0] / 1e6), _round(ci[1] / 1e6)] if ci else None
    return out


def backend_json(
    result: BackendResult, batch: int = 1, flops_per_inference: float | None = None
) -> dict[str, Any]:
    """One backend's entry; an inference is one batch of ``batch`` samples.
    ``flops_per_inference`` (FLOPs of one inference) gives the achieved GFLOP/s."""
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
        "latency_ms": latency_json(result.summary) if result.summary else None,
        "runtime_latency_ms": result.runtime_summary.to_ms() if result.runtime_summary else None,
        "throughput_per_s": _round(result.throughput_per_s),
        "samples_per_s": _round(result.throughput_per_s * batch)
        if result.throughput_per_s
        else None,
        "total_time_s": _round(result.active_s),
        "agreement_max_rel_err": result.agreement_max_rel_err,
        "top1_agreement": result.top1_agreement,
        "agreement_outputs": dict(result.agreement_outputs),
        "notes": list(result.notes),
        "info": dict(prep.info) if prep else {},
        "histogram_ms": [[_round(lo / 1e6), _round(hi / 1e6), n] for lo, hi, n in result.histogram],
        "energy": energy_json(result.energy),
        "contention": result.contention.to_json() if result.contention else None,
        "factors": result.factors.as_dict() if result.factors else None,
        **work_rate.gflops_json(flops_per_inference, result),
        "runs": _runs_json(result.run_medians_ns),
        # The generative workload only: image workloads' entries keep their keys.
        **(
            {"generation": generation_json(result.generation)}
            if result.generation is not None
            else {}
        ),
    }


def generation_json(gen: GenerationResult) -> dict[str, Any]:
    """One backend's ``generation`` entry (ms, tokens/s, MB, mJ per token)."""
    return {
        "prompt_len": gen.prompt_len,
        "gen_len": gen.gen_len,
        "runs": gen.runs,
        "tokens_generated_per_run": _round(gen.tokens_generated_per_run),
        "ttft_ms": latency_json(gen.ttft) if gen.ttft else None,
        "decode_ms_per_token": latency_json(gen.decode) if gen.decode else None,
        "decode_histogram_ms": [
            [_round(lo / 1e6), _round(hi / 1e6), n] for lo, hi, n in gen.decode_histogram
        ],
        "prefill_tokens_per_s": _round(gen.prefill_tokens_per_s),
        "decode_tokens_per_s": _round(gen.decode_tokens_per_s),
        "token_agreement": _round(gen.token_agreement),
        "first_divergence": gen.first_divergence,
        "peak_rss_mb": _round(gen.peak_rss_mb),
        "device_memory_mb": _round(gen.device_memory_mb),
        "energy_mj_per_token": {k: _round(v) for k, v in gen.energy_mj_per_token.items()}
        if gen.energy_mj_per_token
        else None,
        "energy_method": gen.energy_method,
        "runs_with_other_token_count": gen.short_runs,
        "prefill_only_ms": latency_json(gen.prefill_only) if gen.prefill_only else None,
    }


def _runs_json(medians_ns: tuple[float, ...]) -> dict[str, Any] | None:
    """The per-run medians and their spread ((max - min) / median of them), or None
    for a single run."""
    if len(medians_ns) < 2:
        return None
    return {
        "count": len(medians_ns),
        "p50_ms": [_round(m / 1e6) for m in medians_ns],
        "spread": _round((max(medians_ns) - min(medians_ns)) / statistics.median(medians_ns)),
    }


def ratio_json(r: Ratio) -> dict[str, Any]:
    """One ratio as the results file holds it (``ratios[]``, ``sibling_ratios[]``)."""
    return {
        "reference": r.reference,
        "backend": r.backend,
        # A ratio without an interval is not claimed: null, and the note says why.
        "speed": _round(r.speed) if r.speed_claimed else None,
        "speed_ci95": [_round(v) for v in r.speed_ci95] if r.speed_ci95 else None,
        "speed_note": r.speed_note,
        "speed_ci95_from": r.speed_ci_from,
        "energy": _round(r.energy) if r.energy_claimed else None,
        "energy_ci95": [_round(v) for v in r.energy_ci95] if r.energy_ci95 else None,
        "energy_note": r.energy_note,
        "energy_rails": list(r.energy_rails),
        "energy_summary": energy_sentence(r),
        "summary": ratio_sentence(r),
        "differs": list(r.differs) if r.differs is not None else None,
        "single_factor_pairs": [
            {"backend": a, "reference": b, "factor": f} for a, b, f in r.single_factor_pairs
        ],
    }


def to_json(snapshot: Snapshot) -> dict[str, Any]:
    """The results document, schema anetui.results/2 (see DESIGN.md §6). Never holds
    NaN or infinity: a non-finite figure becomes null and a warning says so."""
    document = {
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
        "backends": [
            backend_json(b, snapshot.input_shape[0], work_rate.flops_of(snapshot.config))
            for b in snapshot.backends
        ],
        "reference": snapshot.reference,
        "ratios": [ratio_json(r) for r in snapshot.ratios],
        # Quantized siblings against their base (precision only), when not in "ratios".
        "sibling_ratios": [ratio_json(r) for r in snapshot.sibling_ratios],
        "warnings": list(snapshot.warnings),
        "observer": snapshot.observer,
    }
    replaced: list[str] = []
    clean = _finite(document, "", replaced)
    if replaced:
        clean["warnings"].append("non-finite figures written as null: " + ", ".join(replaced[:5]))
    return clean  # type: ignore[no-any-return]


def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _finite(value: Any, path: str, replaced: list[str]) -> Any:
    """``value`` with every NaN or infinity replaced by None (their paths noted)."""
    if isinstance(value, float) and not math.isfinite(value):
        replaced.append(path or "value")
        return None
    if isinstance(value, dict):
        return {
            k: _finite(v, f"{path}.{k}" if path else str(k), replaced) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_finite(v, f"{path}[{i}]", replaced) for i, v in enumerate(value)]
    return value


# -- Markdown -----------------------------------------------------------------------
