"""A measurement session: owns the backends, their records and the schedule, and hands
out immutable snapshots. The CLI commands and the dashboard are thin layers over it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from anetui.backends import registry
from anetui.backends.base import (
    Backend,
    BackendDescription,
    BackendError,
    BackendOptions,
    PrepareInfo,
    prepare_phase,
)
from anetui.core import agreement, energy, environment, ratios, runner
from anetui.core.config import INTERLEAVE_ROUNDS, INTERLEAVE_SLICE_S, RunConfig
from anetui.core.energy import EnergyReport
from anetui.core.results import BackendResult, BackendState, LiveStatus, Snapshot
from anetui.core.stats import LatencySummary
from anetui.errors import AnetuiError, Availability, one_line
from anetui.models.spec import INPUT_SEED, ModelSpec
from anetui.power.monitor import PowerMonitor

#: Called with (backend id, what is happening, timed inferences so far).
ProgressCallback = Callable[[str, str, int], None]
HISTOGRAM_BINS = 40
LATENCY_POINTS = 240


@dataclass
class _Slot:
    id: str
    description: BackendDescription
    availability: Availability
    backend: Backend | None = None
    state: BackendState = BackendState.PENDING
    error: str | None = None
    prepare: PrepareInfo | None = None
    agreement: float | None = None
    notes: list[str] = field(default_factory=list)
    record: runner.BackendRecord = field(default_factory=runner.BackendRecord)
    #: Set while the session itself works on a prepared backend (the agreement check).
    step: str | None = None
    #: Prepared with the agreement check left for later (check_agreement).
    agreement_pending: bool = False


class Session:
    """Select, prepare and run backends for one model and configuration."""

    def __init__(
        self, config: RunConfig, spec: ModelSpec, monitor: PowerMonitor | None = None
    ) -> None:
        self.config = config
        self.spec = spec
        self.monitor = monitor
        #: Monotonic stretches when something other than a timed loop ran (preparation,
        #: warmup): their windows are neither a backend's nor idle.
        self._busy: list[tuple[int, int]] = []
        self._options = BackendOptions(dtype=config.dtype, threads=config.threads)
        self._slots: dict[str, _Slot] = {}
        self._reference_output: np.ndarray | None = None
        self._threads_used: int | None = None
        self.stop_event = threading.Event()
        self.reference_override: str | None = None
        #: Measurements before this (perf_counter ns) were reset away.
        self._since_ns = 0
        self._environment: dict[str, object] | None = None
        ids = config.backends if config.backends is not None else tuple(registry.REGISTRY)
        for backend_id in ids:
            self._slots[backend_id] = self._probe(backend_id)

    def _probe(self, backend_id: str) -> _Slot:
        description = registry.describe(backend_id)
        availability = description.probe()
        if availability.ok and self.spec.kind not in description.accepts:
            availability = Availability.no(_cannot_run(description, self.spec))
        slot = _Slot(backend_id, description, availability)
        if availability.ok:
            backend = registry.create(backend_id, self._options)
            slot.availability = backend.available()
            slot.backend = backend if slot.availability.ok else None
        if not slot.availability.ok:
            slot.state = BackendState.UNAVAILABLE
        return slot

    # -- queries --------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return list(self._slots)

    def availability(self) -> dict[str, Availability]:
        return {i: s.availability for i, s in self._slots.items()}

    def runnable(self) -> list[str]:
        return [
            i
            for i, s in self._slots.items()
            if s.backend is not None and s.state != BackendState.ERROR
        ]

    def require_available(self) -> None:
        """Raise for the first explicitly requested backend that cannot run here."""
        for slot in self._slots.values():
            if not slot.availability.ok:
                raise AnetuiError(f"{slot.id} is not available: {slot.availability.reason}")

    # -- preparation ----------------------------------------------------------------
    def prepare(self, progress: ProgressCallback | None = None) -> None:
        """Prepare every available backend; one that fails is marked and skipped."""
        for backend_id in list(self._slots):
            if self.stop_event.is_set():
                return
            self.prepare_backend(backend_id, progress)

    def prepare_backend(
        self,
        backend_id: str,
        progress: ProgressCallback | None = None,
        *,
        check_agreement: bool = True,
    ) -> bool:
        """Prepare one backend (idempotent); False if it cannot run.

        ``check_agreement=False`` leaves the output check (which builds the eager fp32
        reference model: a second model load) for :meth:`check_agreement`, so that a live
        view gets its first number sooner.
        """
        slot = self._slots[backend_id]
        if slot.backend is None:
            return False
        if slot.prepare is not None:
            return True
        if progress:
            progress(slot.id, "preparing", 0)
        slot.state = BackendState.PREPARING
        started = time.perf_counter_ns()
        try:
            slot.prepare = slot.backend.prepare(self.spec)
            slot.notes.extend(slot.prepare.notes)
            slot.state = BackendState.READY
            slot.agreement_pending = True
            if check_agreement:
                self.check_agreement(backend_id)
        except BackendError as exc:
            self._fail(slot, str(exc))
        slot.step = None
        self._busy.append((started, time.perf_counter_ns()))
        if self._threads_used is None and slot.id.startswith("torch-") and slot.backend:
            import torch  # already imported by the backend; records the threads in use

            self._threads_used = torch.get_num_threads()
        return slot.backend is not None

    def check_agreement(self, backend_id: str) -> None:
        """Run a prepared backend's output check if it is still pending (idempotent).
        Call it between runs, on the thread that runs the backend."""
        slot = self._slots[backend_id]
        if slot.backend is None or not slot.agreement_pending:
            return
        slot.agreement_pending = False
        slot.step = "checking output"
        try:
            slot.agreement = self._agreement(slot)
        finally:
            slot.step = None

    def _agreement(self, slot: _Slot) -> float | None:
        """Agreement with eager fp32 PyTorch on the CPU; None with a note when there is none."""
        assert slot.backend is not None
        if self._reference_output is None:
            self._reference_output = agreement.reference_output(self.spec)
        value, note = agreement.compare(slot.backend.output, self._reference_output)
        if note:
            slot.notes.append(note)
        return value

    def _fail(self, slot: _Slot, message: str) -> None:
        slot.state = BackendState.ERROR
        slot.error = message
        if slot.backend is not None:
            try:
                slot.backend.close()
            except Exception as exc:  # closing a broken backend must not hide its error
                slot.error = f"{message}; close failed: {one_line(exc)}"
            slot.backend = None

    # -- running --------------------------------------------------------------------
    def run(self, progress: ProgressCallback | None = None) -> None:
        """Run every prepared backend, one after another or interleaved in rounds."""
        ready = [self._slots[i] for i in self.runnable() if self._slots[i].prepare is not None]
        idle_s = self.config.idle_seconds
        if idle_s > 0 and self.monitor is not None:
            if progress:
                progress("idle", f"measuring the idle baseline for {idle_s:g} s", 0)
            self.stop_event.wait(idle_s)  # nothing runs: these windows are the baseline
        for slot_round in self._schedule(len(ready)):
            for slot, (count, seconds) in zip(ready, slot_round, strict=True):
                if self.stop_event.is_set():
                    return
                if slot.backend is None:
                    continue  # failed in an earlier round
                self._run_one(slot, count, seconds, progress)

    def _schedule(self, n_backends: int) -> list[list[tuple[int | None, float | None]]]:
        """Per round, per backend: (iterations, seconds) for that slice of the run."""
        cfg = self.config
        if not cfg.interleave:
            rounds = 1
        elif cfg.duration_s is not None:
            rounds = max(1, round(cfg.duration_s / INTERLEAVE_SLICE_S))
        else:
            assert cfg.iterations is not None
            rounds = max(1, min(INTERLEAVE_ROUNDS, cfg.iterations))
        schedule = []
        for r in range(rounds):
            if cfg.duration_s is not None:
                item: tuple[int | None, float | None] = (None, cfg.duration_s / rounds)
            else:
                assert cfg.iterations is not None
                share = cfg.iterations // rounds + (1 if r < cfg.iterations % rounds else 0)
                item = (share, None)
            schedule.append([item] * n_backends)
        return schedule

    def _run_one(
        self,
        slot: _Slot,
        count: int | None,
        seconds: float | None,
        progress: ProgressCallback | None,
    ) -> None:
        assert slot.backend is not None
        slot.state = BackendState.RUNNING
        if progress:
            progress(slot.id, "running", slot.record.count)
        started = time.perf_counter_ns()
        stretches = len(slot.record.intervals)
        try:
            runner.run(
                slot.backend,
                slot.record,
                self.stop_event,
                warmup=self.config.warmup,
                iterations=count,
                duration_s=seconds,
            )
            slot.state = BackendState.DONE
        except BackendError as exc:
            self._fail(slot, str(exc))
        self._note_busy(slot, started, stretches)
        if progress:
            progress(slot.id, slot.state, slot.record.count)

    def run_backend(self, backend_id: str, stop: threading.Event) -> None:
        """Run one prepared backend until ``stop`` is set (the dashboard's worker body)."""
        slot = self._slots[backend_id]
        if slot.backend is None or slot.prepare is None:
            return
        slot.state = BackendState.RUNNING
        started = time.perf_counter_ns()
        stretches = len(slot.record.intervals)
        try:
            runner.run(slot.backend, slot.record, stop, warmup=self.config.warmup)
            slot.state = BackendState.PAUSED
        except BackendError as exc:
            self._fail(slot, str(exc))
        self._note_busy(slot, started, stretches)

    def _note_busy(self, slot: _Slot, started: int, stretches: int) -> None:
        """Busy = what ran around the timed stretch (warmup, switching)."""
        ended = time.perf_counter_ns()
        if len(slot.record.intervals) > stretches:
            timed_start, timed_end = slot.record.intervals[-1]
            self._busy += [(started, timed_start), (timed_end, ended)]
        else:
            self._busy.append((started, ended))

    def reset(self) -> None:
        """Forget every measurement so far (statistics, energy windows, idle baseline)."""
        for slot in self._slots.values():
            slot.record.reset()
        self._busy = []
        self._since_ns = time.perf_counter_ns()

    def set_reference(self, backend_id: str) -> None:
        self.reference_override = backend_id

    def close(self) -> None:
        self.stop_event.set()
        for slot in self._slots.values():
            if slot.backend is not None:
                slot.backend.close()

    def live(self) -> dict[str, LiveStatus]:
        out = {}
        for backend_id, slot in self._slots.items():
            summary = slot.record.stats.summary()
            out[backend_id] = LiveStatus(
                slot.state,
                slot.record.count,
                slot.record.active_s_now(),
                summary.p50_ns / 1e6 if summary else None,
            )
        return out

    # -- snapshot -------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        report = self._energy()
        results = tuple(self._result(s, report) for s in self._slots.values())
        measured = {r.id: r for r in results if r.summary is not None}
        reference = ratios.pick_reference(
            measured, self.reference_override or self.config.reference
        )
        return Snapshot(
            created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            model=self.spec.describe(),
            input_shape=self.spec.input_shape,
            environment=self._environment_once(),
            config=self._config_dict(),
            backends=results,
            reference=reference,
            ratios=ratios.against(reference, measured),
            power=self._power_dict(report),
        )

    def _environment_once(self) -> dict[str, object]:
        # Collected once threads are known: the dashboard snapshots several times a second.
        if self._environment is None or self._environment.get("threads") != self._threads_used:
            self._environment = environment.collect(self._threads_used)
        return self._environment

    def _energy(self) -> EnergyReport | None:
        """Attribute the monitor's samples to the backends' timed stretches."""
        if self.monitor is None:
            return None
        # Runner stretches are on perf_counter_ns, samples on monotonic_ns: one clock on
        # Linux and macOS (the measured offset is then just the gap between two calls),
        # a constant offset elsewhere. Samples are moved onto the runner's clock.
        offset = time.monotonic_ns() - time.perf_counter_ns()
        if abs(offset) < 1_000_000:
            offset = 0
        samples = [
            dataclasses.replace(s, t_start_ns=s.t_start_ns - offset, t_end_ns=s.t_end_ns - offset)
            if offset
            else s
            for s in self.monitor.samples()
        ]
        samples = [s for s in samples if s.t_start_ns >= self._since_ns]  # after a reset
        runs = {}
        for backend_id, slot in self._slots.items():
            record = slot.record
            intervals = list(record.intervals)
            since = record.running_since_ns
            if since is not None:  # the stretch in progress, for a live view
                intervals.append((since, time.perf_counter_ns()))
            runs[backend_id] = energy.RunView(
                intervals, record.timeline.buckets(), int(record.active_s_now() * 1e9)
            )
        return energy.attribute(samples, runs, self._busy, self.monitor.source.total_rails)

    def _power_dict(self, report: EnergyReport | None) -> dict[str, object]:
        if self.monitor is None:
            return {"source": "none", "state": "unavailable", "reason": "no power source chosen"}
        source = self.monitor.source
        return {
            "source": source.id,
            "label": source.label,
            "interval_ms": source.interval_ms,
            "state": self.monitor.state,
            "reason": self.monitor.reason,
            "samples": len(self.monitor.samples()),
            "idle_windows": report.idle_windows if report else 0,
            "idle_w": report.idle_w if report else None,
        }

    def _result(self, slot: _Slot, report: EnergyReport | None) -> BackendResult:
        backend = slot.backend
        summary = slot.record.stats.summary()
        return BackendResult(
            id=slot.id,
            runtime=slot.description.runtime,
            device=slot.description.device,
            dtype=backend.dtype
            if backend
            else (self.config.dtype or slot.description.default_dtype),
            available=slot.availability.ok,
            reason=slot.availability.reason,
            state=slot.state,
            error=slot.error,
            prepare=slot.prepare,
            summary=summary,
            throughput_per_s=slot.record.throughput_per_s(),
            active_s=slot.record.active_s_now(),
            agreement_max_rel_err=slot.agreement,
            notes=tuple(slot.notes),
            energy=report.backends.get(slot.id) if report else None,
            runtime_summary=slot.record.runtime_stats.summary(),
            histogram=tuple(slot.record.stats.buckets(HISTOGRAM_BINS, _p99(summary))),
            latency_series=tuple(slot.record.timeline.mean_latency_series()[-LATENCY_POINTS:]),
            phase=self._phase(slot),
        )

    def _phase(self, slot: _Slot) -> str:
        """What is happening to this backend now, in one or two words."""
        state = slot.state
        if slot.step:
            return slot.step
        if state == BackendState.PREPARING:
            return prepare_phase(slot.backend)
        if state == BackendState.RUNNING and not slot.record.warmed_up:
            return f"warming up {slot.record.warmup_done}/{self.config.warmup}"
        return {
            BackendState.PENDING: "not run",
            BackendState.UNAVAILABLE: "not available",
            BackendState.ERROR: "failed",
        }.get(state, str(state))

    def _config_dict(self) -> dict[str, object]:
        cfg = self.config
        return {
            "model": self.spec.describe(),
            "model_kind": self.spec.kind,
            "input_shape": list(self.spec.input_shape),
            "warmup": cfg.warmup,
            "iterations": cfg.iterations,
            "duration_s": cfg.duration_s,
            "interleave": cfg.interleave,
            "dtype": cfg.dtype,
            "threads": cfg.threads,
            "power": cfg.power,
            "idle_seconds": cfg.idle_seconds,
            "agreement_reference": agreement.REFERENCE_RUNTIME,
            "input": f"standard normal fp32, seed {INPUT_SEED}",
        }


def _cannot_run(description: BackendDescription, spec: ModelSpec) -> str:
    """Why a backend cannot run this kind of model, in the user's terms."""
    what = {"mlpackage": "a Core ML package", "onnx": "an ONNX file"}.get(spec.kind, spec.kind)
    if description.runtime.startswith("PyTorch"):
        return f"no PyTorch model (the model is {what})"
    return f"{description.runtime} cannot run {what}"


def _p99(summary: LatencySummary | None) -> float | None:
    return summary.quantiles_ns["p99"] if summary else None
