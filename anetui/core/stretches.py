"""A session's timed stretches: the runner's loop between the energy ledger's phase
edges and the contention sampler's owner marks, and for the generative workload the
prefill-only stretch that follows each stretch of generations when a power source is on
(:mod:`anetui.core.generation`)."""

from __future__ import annotations

import threading
from typing import Protocol

from anetui.core import generation, runner
from anetui.core.config import RunConfig
from anetui.core.contention import ContentionSampler
from anetui.core.energy import EnergyLedger
from anetui.core.slot import Slot


class Owner(Protocol):
    """What the stretches use of the session that owns them."""

    config: RunConfig
    ledger: EnergyLedger | None
    contention: ContentionSampler
    threads_used: int | None


class Stretches:
    """Runs a session's timed stretches (its ledger, contention sampler and config)."""

    def __init__(self, session: Owner) -> None:
        self._session = session

    def timed(
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
        runner.warm_up_once(backend, slot.record, self._session.config.warmup, stop)
        record = record or slot.record
        if self._session.ledger is not None and edges:
            self._session.ledger.begin_run(slot.id, record.timeline, record.completions)
        self._session.contention.set_owner(
            slot.id, self._session.config.threads or self._session.threads_used
        )
        prefill = slot.prefill_record if self._session.ledger is not None and edges else None
        if prefill is not None and seconds is not None:  # the prefill stretch's share
            seconds *= 1 - generation.PREFILL_SHARE
        if record.generation is not None:
            generation.reset_peak_rss()  # the peak while this backend's stretch runs
        try:
            runner.run(
                backend,
                record,
                stop,
                warmup=self._session.config.warmup,
                iterations=count,
                duration_s=seconds,
                pause=pause,
            )
        finally:
            self._session.contention.set_owner(None)
            if self._session.ledger is not None and edges:
                self._session.ledger.end()
        if record.generation is not None:
            generation.note_memory(record.generation, backend)
        if prefill is not None and not stop.is_set():
            self._prefill(slot, prefill, stop, count, seconds)

    def _prefill(
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
        assert slot.backend is not None and self._session.ledger is not None
        share = generation.PREFILL_SHARE
        if seconds is not None:
            seconds = seconds * share / (1 - share)
        self._session.ledger.begin_run(
            generation.prefill_id(slot.id), prefill.timeline, prefill.completions
        )
        self._session.contention.set_owner(
            slot.id, self._session.config.threads or self._session.threads_used
        )
        try:
            with generation.prefill_only(slot.backend):
                runner.run(slot.backend, prefill, stop, iterations=count, duration_s=seconds)
        finally:
            self._session.contention.set_owner(None)
            self._session.ledger.end()
