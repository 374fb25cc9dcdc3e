"""One backend's place in a session: its state, record and what was learnt preparing it,
and the immutable :class:`~anetui.core.results.BackendResult` built from it for a
snapshot (latencies in ns, energy in mJ per inference)."""

from __future__ import annotations

from dataclasses import dataclass, field

from anetui.backends.base import Backend, BackendDescription, PrepareInfo, prepare_phase
from anetui.core import generation, runner
from anetui.core.config import RunConfig
from anetui.core.contention import Contention
from anetui.core.energy_figures import EnergyReport
from anetui.core.results import BackendResult, BackendState
from anetui.core.stats import MIN_COUNT_FOR_CI, LatencySummary
from anetui.errors import Availability

#: Bars of a snapshot's latency histogram, up to the p99 (the tail beyond is one bar).
HISTOGRAM_BINS = 40
#: Points of a snapshot's latency-over-time series.
LATENCY_POINTS = 240


@dataclass
class Slot:
    id: str
    description: BackendDescription
    availability: Availability
    backend: Backend | None = None
    state: BackendState = BackendState.PENDING
    error: str | None = None
    prepare: PrepareInfo | None = None
    agreement: float | None = None
    #: Share of the batch whose top-1 class is the reference's (classifiers only).
    top1: float | None = None
    agreement_outputs: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    record: runner.BackendRecord = field(default_factory=runner.BackendRecord)
    #: Set while the session itself works on a prepared backend (the agreement check).
    step: str | None = None
    #: Prepared with the agreement check left for later (check_agreement).
    agreement_pending: bool = False
    #: The generative workload: prefill-only stretches (their energy, apart from the
    #: generations'), and (share of tokens equal to the reference, first divergence).
    prefill_record: runner.BackendRecord | None = None
    token_agreement: tuple[float, int | None] | None = None

    def result(
        self, config: RunConfig, report: EnergyReport | None, contention: dict[str, Contention]
    ) -> BackendResult:
        """This backend's figures so far, with its share of ``report`` and its contention."""
        backend = self.backend
        summary = self.record.stats.summary()
        return BackendResult(
            id=self.id,
            runtime=self.description.runtime,
            device=self.description.device,
            dtype=backend.dtype if backend else (config.dtype or self.description.default_dtype),
            available=self.availability.ok,
            reason=self.availability.reason,
            state=self.state,
            error=self.error,
            prepare=self.prepare,
            summary=summary,
            throughput_per_s=self.record.throughput_per_s(),
            active_s=self.record.active_s_now(),
            agreement_max_rel_err=self.agreement,
            top1_agreement=self.top1,
            agreement_outputs=dict(self.agreement_outputs),
            notes=tuple(self.notes),
            energy=report.backends.get(self.id) if report else None,
            runtime_summary=self.record.runtime_stats.summary(),
            histogram=tuple(self.record.stats.buckets(HISTOGRAM_BINS, _p99(summary))),
            latency_series=tuple(self.record.timeline.mean_latency_series(LATENCY_POINTS)),
            contention=contention.get(self.id),
            factors=self.description.factors(
                backend.dtype if backend else config.dtype, config.threads
            ),
            phase=self.phase(config.warmup),
            run_medians_ns=tuple(
                median
                for median, count in self.record.stretch_medians_ns
                if count >= MIN_COUNT_FOR_CI
            ),
            generation=self._generation(report),
        )

    def _generation(self, report: EnergyReport | None) -> generation.GenerationResult | None:
        record = self.record.generation
        if record is None:
            return None
        energy = report.backends if report else {}
        return generation.result(
            record,
            record.prompt_len,
            record.expected_tokens,
            agreement=self.token_agreement,
            run_energy=energy.get(self.id),
            prefill_energy=energy.get(generation.prefill_id(self.id)),
            histogram_bins=HISTOGRAM_BINS,
            prefill_only=self.prefill_record.stats.summary() if self.prefill_record else None,
        )

    def phase(self, warmup: int) -> str:
        """What is happening to this backend now, in one or two words."""
        state = self.state
        if self.step:
            return self.step
        if state == BackendState.PREPARING:
            return prepare_phase(self.backend)
        if state == BackendState.RUNNING and not self.record.warmed_up:
            return f"warming up {self.record.warmup_done}/{warmup}"
        return {
            BackendState.PENDING: "not run",
            BackendState.UNAVAILABLE: "not available",
            BackendState.ERROR: "failed",
        }.get(state, str(state))


def _p99(summary: LatencySummary | None) -> float | None:
    return summary.quantiles_ns["p99"] if summary else None
