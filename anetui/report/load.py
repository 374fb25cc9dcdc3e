"""Reading a saved results document (``anetui.results/2``, or ``/1`` written by older
versions: the same fields less the named inputs and outputs) as untrusted input: size,
encoding, JSON, schema and the shape of every field a reader uses are checked, and any
problem is one AnetuiError line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.report.results_json import SCHEMA

#: Every schema this version reads: its own and the ones before it.
READABLE_SCHEMAS = ("anetui.results/1", SCHEMA)

#: A results file larger than this is not one anetui wrote (they are a few KB).
MAX_RESULTS_BYTES = 64 * 1024 * 1024


def load_results(path: Path) -> dict[str, Any]:
    """A results document, checked for the schema and for the shape of every field the
    comparison reads; any problem is one AnetuiError line naming the file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RESULTS_BYTES + 1)
    except OSError as exc:
        raise AnetuiError(f"cannot read {path}: {one_line(exc)}") from None
    if len(data) > MAX_RESULTS_BYTES:
        raise AnetuiError(f"{path} is over {MAX_RESULTS_BYTES >> 20} MB: not a results file")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise AnetuiError(f"{path} is not JSON: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise AnetuiError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise AnetuiError(f"{path} is not a results file: nested too deeply") from None
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE_SCHEMAS:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise AnetuiError(f"{path} is not an anetui results file (schema {found!r}, want {SCHEMA})")
    problem = results_problem(doc)
    if problem is not None:
        raise AnetuiError(f"{path} is a malformed results file: {problem}")
    return doc


def results_problem(doc: dict[str, Any]) -> str | None:
    """What is wrong with a results document's shape, or None. Checks the fields that
    readers use, with the types schemas anetui.results/1 and /2 give them; others are free."""
    for key in ("environment", "config", "power"):
        if key in doc and not isinstance(doc[key], dict):
            return f"'{key}' is not an object"
    shape = (doc.get("config") or {}).get("input_shape")
    if shape is not None and not (isinstance(shape, list) and all(_is_int(n) for n in shape)):
        return "'config.input_shape' is not a list of integers"
    backends = doc.get("backends", [])
    if not isinstance(backends, list):
        return "'backends' is not a list"
    for i, backend in enumerate(backends):
        problem = _backend_problem(backend)
        if problem is not None:
            return f"backends[{i}]: {problem}"
    ratios = doc.get("ratios", [])
    if not isinstance(ratios, list) or not all(isinstance(r, dict) for r in ratios):
        return "'ratios' is not a list of objects"
    for i, ratio in enumerate(ratios):
        for key in ("summary", "energy_summary"):
            if ratio.get(key) is not None and not isinstance(ratio[key], str):
                return f"ratios[{i}].{key} is not text"
    return None


def _backend_problem(backend: object) -> str | None:
    if not isinstance(backend, dict):
        return "not an object"
    if not isinstance(backend.get("id"), str):
        return "no backend id"
    for key in ("count", "throughput_per_s"):
        if backend.get(key) is not None and not _is_number(backend[key]):
            return f"'{key}' is not a number"
    latency = backend.get("latency_ms")
    if latency is not None:
        if not isinstance(latency, dict):
            return "'latency_ms' is not an object"
        for key in ("p50", "p99"):
            if not _is_number(latency.get(key)):
                return f"'latency_ms.{key}' is not a number"
        for key in ("p50_ci95", "p50_ci975"):
            if not _is_pair(latency.get(key)):
                return f"'latency_ms.{key}' is not a pair of numbers"
    for key in ("gflops_per_s", "gflops_per_s_at_p50"):
        if backend.get(key) is not None and not _is_number(backend[key]):
            return f"'{key}' is not a number"
    factors = backend.get("factors")
    if factors is not None and not (
        isinstance(factors, dict) and all(isinstance(v, str) for v in factors.values())
    ):
        return "'factors' is not an object of names"
    energy = backend.get("energy")
    if energy is not None:
        if not isinstance(energy, dict):
            return "'energy' is not an object"
        rails = energy.get("total_rails", [])
        if not isinstance(rails, list) or not all(isinstance(r, str) for r in rails):
            return "'energy.total_rails' is not a list of rail names"
        mj = energy.get("mj_per_inference")
        if mj is not None and not _is_number(mj):
            return "'energy.mj_per_inference' is not a number"
        if not _is_pair(energy.get("mj_per_inference_ci975")):
            return "'energy.mj_per_inference_ci975' is not a pair of numbers"
    return None


def _is_pair(value: object) -> bool:
    """None, or a list of two numbers."""
    return value is None or (
        isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: Environment fields that identify the machine (the rest: software, settings).
