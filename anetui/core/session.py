"""A measurement session: owns the backends, their records and the schedule, and hands
out immutable snapshots. The CLI commands and the dashboard are thin layers over it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from contextlib import nullcontext

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
)
from anetui.core.config import RunConfig, config_dict, schedule
from anetui.core.contention import ContentionSampler
from anetui.core.energy import EnergyLedger
from anetui.core.energy_figures import EnergyReport
from anetui.core.gate import (
    REWARM_AFTER_NS,
    REWARM_MAX_NS,
    REWARM_NS,
    SETTLED,
    SETTLED_FOR_NS,
    FrameGate,
    gate_entry,
)
from anetui.core.output_check import OutputCheck
from anetui.core.results import BackendState, LiveStatus, Snapshot
from anetui.core.slot import Slot
from anetui.core.stretches import Stretches
from anetui.errors import AnetuiError, Availability, one_line
from anetui.models.spec import DECODER_KIND, ModelSpec
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
        self.stretches = Stretches(self)
        self._options = BackendOptions(
            dtype=config.dtype, threads=config.threads, calibration=config.calibration
        )
        self._slots: dict[str, Slot] = {}
        #: Each backend's outputs (or tokens) against one reference, made once.
        self.outputs_check = OutputCheck(spec)
        #: torch's intra-op threads once a torch backend was prepared (contention, env).
        self.threads_used: int | None = None
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
        """The default set: for a decoder, the backends that generate; for any other
        model, every default backend but the decoder-only runtimes (which could only be
        listed as unable to run it; the others still say why not, as before)."""
        if self.spec.kind == DECODER_KIND:
            return tuple(
                i for i in registry.default_ids() if DECODER_KIND in registry.describe(i).accepts
            )
        return tuple(
            i for i in registry.default_ids() if registry.describe(i).accepts != (DECODER_KIND,)
        )

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
        if self.threads_used is None and slot.id.startswith("torch-") and slot.backend:
            import torch  # already imported by the backend; records the threads in use

            self.threads_used = torch.get_num_threads()
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
            self.outputs_check.check(slot)
        finally:
            slot.step = None

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
            self.stretches.timed(slot, self.stop_event, count, seconds)
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
                    # A prefill phase's stretches and re-warms are prefill-only runs.
                    with generation.prefill_only(backend) if prefill else nullcontext():
                        gate.runner_active(True)
                        try:
                            self.stretches.timed(
                                slot, stop, None, None, gate.requested, edges=False, record=current
                            )
                        finally:
                            gate.runner_active(False)
                        if stop.is_set():
                            break
                        waited = gate.park(stop)  # the frame is drawn now, nothing timed
                        if waited >= REWARM_AFTER_NS and not stop.is_set():
                            runner.untimed_inference(
                                backend,
                                current,
                                REWARM_NS,
                                settled=SETTLED,
                                at_most_ns=REWARM_MAX_NS,
                                settled_for_ns=SETTLED_FOR_NS,
                            )
                    phases.maybe_switch()
            finally:
                phases.end()
            slot.state = BackendState.PAUSED
        except Exception as exc:
            self._fail(slot, failures.failure(slot.id, "failed while running", exc))

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
            if slot.prefill_record is not None:
                slot.prefill_record.reset()
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
                self.config,
                self.spec,
                agreement.output_rows(self.spec, self.outputs_check.reference),
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
        if self._environment is None or self._environment.get("threads") != self.threads_used:
            self._environment = environment.collect(self.threads_used)
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
