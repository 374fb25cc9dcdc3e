"""The results document, schema ``anetui.results/1`` (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from anetui.core.energy import BackendEnergy
from anetui.core.results import BackendResult, Snapshot
from anetui.report.text import energy_sentence, ratio_sentence

SCHEMA = "anetui.results/1"


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
        "factors": result.factors.as_dict() if result.factors else None,
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
                "differs": list(r.differs) if r.differs is not None else None,
                "single_factor_pairs": [
                    {"backend": a, "reference": b, "factor": f} for a, b, f in r.single_factor_pairs
                ],
            }
            for r in snapshot.ratios
        ],
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- Markdown -----------------------------------------------------------------------
