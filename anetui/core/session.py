"""A measurement session: owns the backends, their records and the schedule, and hands
out immutable snapshots. The CLI commands and the dashboard are thin layers over it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable

import numpy as np

from anetui.backends import registry
from anetui.backends.base import (
    BackendOptions,
    NotAvailableHere,
)
from anetui.core import (
    agreement,
    caveats,
    environment,
    failures,
    generation,
    power_view,
    ratios,
    runner,
    top1,
)
from anetui.core.config import RunConfig, config_dict, schedule
from anetui.core.contention import ContentionSampler
from anetui.core.energy import EnergyLedger
from anetui.core.energy_figures import EnergyReport
from anetui.core.gate import REWARM_AFTER_NS, REWARM_NS, FrameGate, gate_entry
from anetui.core.results import BackendState, LiveStatus, Snapshot
from anetui.core.slot import Slot
from anetui.errors import AnetuiError, Availability, one_line
from anetui.models.spec import ModelSpec
from anetui.power import health
from anetui.power.monitor import PowerMonitor

#: Called with (backend id, what is happening, timed inferences so far).
ProgressCallback = Callable[[str, str, int], None]


class Session:
    """Select, prepare and run backends for one model and configuration."""

    def __init__(
        self, config: RunConfig, spec: ModelSpec, monitor: PowerMonitor | None = None
    ) -> None:
        self.config = config
        self.spec = spec
        self.monitor = monitor
        #: Energy attribution: timed stretches and explicit idle phases only; startup,
        #: preparation, warmup and gaps are nobody's (never idle).
        self.ledger: EnergyLedger | None = None
        if monitor is not None:
            self.ledger = power_view.ledger_for(monitor)
            monitor.subscribe(self.ledger.add)
        self.contention = ContentionSampler()
        self._options = BackendOptions(
            dtype=config.dtype, threads=config.threads, calibration=config.calibration
        )
        self._slots: dict[str, Slot] = {}
        self._reference: agreement.Reference | None = None
        self._reference_made = False
        self._reference_note: str | None = None
        self._reference_tokens: list[int] | None = None
        self._threads_used: int | None = None
        self.stop_event = threading.Event()
        self.reference_override: str | None = None
        #: A live view draws its frames through this gate, never while a runner times.
        self.gate = FrameGate()
        #: Set by a live view: what it cost (the gate's figures) goes into snapshots.
        self.observed = False
        self._environment: dict[str, object] | None = None
        ids = config.backends if config.backends is not None else self._default_ids()
        for backend_id in ids:
            self._slots[backend_id] = self._probe(backend_id)

    def _default_ids(self) -> tuple[str, ...]:
        """The default set, less the backends that cannot take this kind of model (the
        generative runtimes run decoders only: never listed for an image model)."""
        kind = self.spec.kind
        return tuple(i for i in registry.default_ids() if kind in registry.describe(i).accepts)

    def _probe(self, backend_id: str) -> Slot:
        """Whether the backend can run here with these options: an answer, never an
        exception (a probe that fails, or options it cannot take, make it unavailable)."""
        description = registry.describe(backend_id)
        availability = failures.ask(description.probe, "its availability check failed")
        if availability.ok and self.spec.kind not in description.accepts:
            availability = Availability.no(failures.cannot_run(description, self.spec))
        slot = Slot(backend_id, description, availability)
        if availability.ok:
            try:
                backend = registry.create(backend_id, self._options)
            except Exception as exc:  # e.g. --dtype bf16 for a backend computing in fp32
                slot.availability = Availability.no(failures.reason(backend_id, exc))
            else:
                slot.availability = failures.ask(backend.available, "its availability check failed")
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
                raise AnetuiError(f"{slot.id}: not run — {slot.availability.reason}")

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
        if self.stop_event.is_set():
            return False
        slot.state = BackendState.PREPARING
        lengths = self.spec.generation
        if lengths is not None:
            generation.reset_peak_rss()  # the peak while this backend prepares and runs
        try:
            # Any exception, the runtime's own included, is this backend's failure alone.
            slot.prepare = slot.backend.prepare(self.spec)
            slot.notes.extend(slot.prepare.notes)
            if lengths is not None:
                generation.attach(slot.record, slot.backend, lengths.prompt_len, lengths.gen_len)
                if slot.record.generation is not None:
                    generation.note_memory(slot.record.generation, slot.backend)
                slot.prefill_record = runner.BackendRecord(warmed_up=True)
            slot.state = BackendState.READY
            slot.agreement_pending = True
            if check_agreement:
                self.check_agreement(backend_id)
        except NotAvailableHere as exc:  # found while preparing: unavailable, not failed
            self._unavailable(slot, one_line(exc, 300))
        except Exception as exc:
            self._fail(slot, failures.failure(slot.id, "failed to prepare", exc))
        slot.step = None
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

    def _agreement(self, slot: Slot) -> float | None:
        """Agreement with eager fp32 PyTorch on the CPU over every output (the worst is
        returned, each kept on the slot); None with a note when there is none."""
        assert slot.backend is not None
        if self.spec.generation is not None:
            self._token_agreement(slot)
            return None
        if not self._reference_made:
            self._reference_made = True
            self._reference, self._reference_note = agreement.reference_or_note(self.spec)
        if self._reference_note:
            slot.notes.append(self._reference_note)
            return None
        outputs: list[list[np.ndarray]] = []  # the outputs compared, kept for top-1
        run_outputs = agreement.backend_outputs(slot.backend)

        def output() -> list[np.ndarray]:
            outputs.append(run_outputs())
            return outputs[-1]

        found = agreement.compare(output, self._reference)
        if found.note:
            slot.notes.append(found.note)
        slot.agreement_outputs = found.per_output
        ref = self._reference
        if found.worst is not None and outputs and ref is not None and len(ref.arrays) == 1:
            slot.top1 = top1.top1_agreement(np.asarray(outputs[-1][0]), ref.arrays[0])
        return found.worst

    def _token_agreement(self, slot: Slot) -> None:
        """The generative workload: the share of a full generation's tokens equal to
        transformers' greedy tokens in eager fp32 on the CPU (made once)."""
        assert slot.backend is not None
        if not self._reference_made:
            self._reference_made = True
            self._reference_tokens, self._reference_note = agreement.reference_tokens_or_note(
                self.spec
            )
        if self._reference_note or self._reference_tokens is None:
            if self._reference_note:
                slot.notes.append(self._reference_note)
            return None
        try:
            tokens = [int(t) for t in slot.backend.outputs()[0].reshape(-1)]
        except Exception as exc:  # the check failed, the measurement still stands
            slot.notes.append(f"token agreement not checked: {one_line(exc)}")
            return None
        slot.token_agreement = generation.token_agreement(tokens, self._reference_tokens)
        return None

    def _unavailable(self, slot: Slot, reason: str) -> None:
        slot.availability = Availability.no(reason)
        slot.state = BackendState.UNAVAILABLE
        slot.prepare = None
        if slot.backend is not None:
            with contextlib.suppress(Exception):  # the reason is what the user needs
                slot.backend.close()
            slot.backend = None

    def _fail(self, slot: Slot, message: str) -> None:
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
            self.begin_idle()
            try:
                self.stop_event.wait(idle_s)  # nothing runs: this is the baseline
            finally:
                self.end_idle()
        for slot_round in schedule(self.config, len(ready)):
            for slot, (count, seconds) in zip(ready, slot_round, strict=True):
                if self.stop_event.is_set():
                    return
                if slot.backend is None:
                    continue  # failed in an earlier round
                self._run_one(slot, count, seconds, progress)

    def _run_one(
        self,
        slot: Slot,
        count: int | None,
        seconds: float | None,
        progress: ProgressCallback | None,
    ) -> None:
        assert slot.backend is not None
        slot.state = BackendState.RUNNING
        if progress:
            progress(slot.id, "running", slot.record.count)
        try:
            self._timed_stretch(slot, self.stop_event, count, seconds)
            slot.state = BackendState.DONE
        except Exception as exc:
            self._fail(slot, failures.failure(slot.id, "failed while running", exc))
        if progress:
            progress(slot.id, slot.state, slot.record.count)

    def run_backend(self, backend_id: str, stop: threading.Event) -> None:
        """Run one prepared backend until ``stop`` is set (the dashboard's worker body),
        stepping aside for every frame the view draws (:mod:`anetui.core.gate`): one
        energy phase, timed stretches between the frames."""
        slot = self._slots[backend_id]
        backend = slot.backend
        if backend is None or slot.prepare is None:
            return
        slot.state = BackendState.RUNNING
        gate, record = self.gate, slot.record
        try:
            runner.warm_up_once(backend, record, self.config.warmup, stop)
            if stop.is_set():
                slot.state = BackendState.PAUSED
                return
            # The generative workload with a power source alternates the generations'
            # phase with a prefill-only one (:mod:`anetui.core.generation`).
            phases = generation.Alternation(slot.id, record, slot.prefill_record, self.ledger)
            phases.begin()
            try:
                while not stop.is_set():
                    current, prefill = phases.current()
                    gate.runner_active(True)
                    try:
                        if prefill:
                            with generation.prefill_only(backend):
                                self._timed_stretch(
                                    slot,
                                    stop,
                                    None,
                                    None,
                                    gate.requested,
                                    edges=False,
                                    record=current,
                                )
                        else:
                            self._timed_stretch(slot, stop, None, None, gate.requested, edges=False)
                    finally:
                        gate.runner_active(False)
                    if stop.is_set():
                        break
                    waited = gate.park(stop)  # the frame is drawn now, nothing timed
                    if waited >= REWARM_AFTER_NS and not stop.is_set():
                        runner.untimed_inference(backend, record, REWARM_NS)
                    phases.maybe_switch()
            finally:
                phases.end()
            slot.state = BackendState.PAUSED
        except Exception as exc:
            self._fail(slot, failures.failure(slot.id, "failed while running", exc))

    def _timed_stretch(
        self,
        slot: Slot,
        stop: threading.Event,
        count: int | None,
        seconds: float | None,
        pause: threading.Event | None = None,
        *,
        edges: bool = True,
        record: runner.BackendRecord | None = None,
    ) -> None:
        """Warm up (once), then one timed stretch, its edges marked for the contention
        sampler and (unless ``edges`` is False: the caller holds the phase) for the
        energy ledger, which reads counters there. ``record``: where the stretch is
        recorded (the slot's own unless told: a generative backend's prefill stretches)."""
        backend = slot.backend
        assert backend is not None
        runner.warm_up_once(backend, slot.record, self.config.warmup, stop)
        record = record or slot.record
        if self.ledger is not None and edges:
            self.ledger.begin_run(slot.id, record.timeline, record.completions)
        self.contention.set_owner(slot.id, self.config.threads or self._threads_used)
        prefill = slot.prefill_record if self.ledger is not None and edges else None
        if prefill is not None and seconds is not None:  # the prefill stretch's share
            seconds *= 1 - generation.PREFILL_SHARE
        try:
            runner.run(
                backend,
                record,
                stop,
                warmup=self.config.warmup,
                iterations=count,
                duration_s=seconds,
                pause=pause,
            )
        finally:
            self.contention.set_owner(None)
            if self.ledger is not None and edges:
                self.ledger.end()
        if record.generation is not None:
            generation.note_memory(record.generation, backend)
        if prefill is not None and not stop.is_set():
            self._prefill_stretch(slot, prefill, stop, count, seconds)

    def _prefill_stretch(
        self,
        slot: Slot,
        prefill: runner.BackendRecord,
        stop: threading.Event,
        count: int | None,
        seconds: float | None,
    ) -> None:
        """Prefill-only runs (the prompt and its first token) as their own energy phase:
        the prefill's energy is measured, and the decoding's is a whole generation's less
        it (:func:`anetui.core.generation.energy_per_token`)."""
        assert slot.backend is not None and self.ledger is not None
        share = generation.PREFILL_SHARE
        if seconds is not None:
            seconds = seconds * share / (1 - share)
        self.ledger.begin_run(generation.prefill_id(slot.id), prefill.timeline, prefill.completions)
        self.contention.set_owner(slot.id, self.config.threads or self._threads_used)
        try:
            with generation.prefill_only(slot.backend):
                runner.run(slot.backend, prefill, stop, iterations=count, duration_s=seconds)
        finally:
            self.contention.set_owner(None)
            self.ledger.end()

    def begin_idle(self) -> None:
        """An explicit idle phase starts (nothing may run until ``end_idle``): its power
        is the idle baseline. The dashboard's ``i`` and ``--idle-seconds`` use it."""
        if self.ledger is not None:
            self.ledger.begin_idle()

    def end_idle(self) -> None:
        if self.ledger is not None:
            self.ledger.end()

    def reset(self) -> None:
        """Forget every measurement so far (statistics, energy windows, idle baseline)."""
        for slot in self._slots.values():
            slot.record.reset()
        if self.ledger is not None:
            self.ledger.reset()
        self.contention.reset()

    def set_reference(self, backend_id: str) -> None:
        self.reference_override = backend_id

    def close(self) -> None:
        self.stop_event.set()
        self.contention.close()
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
        """An immutable view of everything so far; its cost does not grow with the
        length of the run (attribution is incremental, intervals are O(windows kept))."""
        report, checked = self._energy()
        figures = self.contention.figures()
        results = tuple(s.result(self.config, report, figures) for s in self._slots.values())
        measured = {r.id: r for r in results if r.summary is not None}
        reference = ratios.pick_reference(
            measured, self.reference_override or self.config.reference
        )
        against = ratios.against(reference, measured)
        siblings = ratios.siblings(against, measured)
        power = {**power_view.power_dict(self.monitor, report), **checked.power_fields()}
        observer, observer_warnings = (
            gate_entry(self.gate, measured) if self.observed else (None, [])
        )
        return Snapshot(
            created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            model=self.spec.describe(),
            input_shape=self.spec.input_shape,
            environment=self._environment_once(),
            config=config_dict(
                self.config, self.spec, agreement.output_rows(self.spec, self._reference)
            ),
            backends=results,
            reference=reference,
            ratios=against,
            sibling_ratios=siblings,
            power=power,
            warnings=(
                *checked.warnings,
                *caveats.collect(results, (*against, *siblings), report, power),
                *observer_warnings,
            ),
            observer=observer,
        )

    def _environment_once(self) -> dict[str, object]:
        # Collected once threads are known: the dashboard snapshots several times a second.
        if self._environment is None or self._environment.get("threads") != self._threads_used:
            self._environment = environment.collect(self._threads_used)
        return self._environment

    def _energy(self) -> tuple[EnergyReport | None, health.Checked]:
        """The ledger's figures so far (it attributed each window as it arrived), with the
        rails the health checks find suspect left out of the totals (unless kept)."""
        if self.ledger is None or self.monitor is None:
            return None, health.Checked()
        checked = power_view.check_rails(
            self.monitor,
            self.ledger.offset_ns,
            {i: (slot.description.device, slot.record) for i, slot in self._slots.items()},
            self.config.keep_rails,
        )
        self.ledger.set_total_rails(
            health.excluding(self.monitor.source.total_rails, checked.left_out)
        )
        active = {i: int(s.record.active_s_now() * 1e9) for i, s in self._slots.items()}
        return self.ledger.report(active), checked
