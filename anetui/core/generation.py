"""The generative workload's figures: what the runner folds from each generation's token
stamps, and the immutable :class:`GenerationResult` a snapshot carries (issue 22).

A generative backend's ``infer()`` is one whole generation, timed by the runner like any
inference (:mod:`anetui.core.runner`); the backend stamps its start and every token
(:class:`anetui.backends.generation.TokenClock`), and :meth:`GenerationRecord.fold`
reads the stamps after the call, outside the timed region: time to first token (the
prefill plus the first token), and every later token's own latency. Energy per token
comes from two kinds of stretch the session runs (:mod:`anetui.core.session`): whole
generations, and prefill-only runs (``tokens_per_run = 1``) recorded apart as the
phase :func:`prefill_id`, so that the prefill's energy is measured, not apportioned.
Times in ns inside, ms and tokens/s in the figures; energy in mJ.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anetui.core.energy_figures import BackendEnergy
from anetui.core.runner import BackendRecord
from anetui.core.stats import LatencySummary
from anetui.core.tokens import GenerationRecord

if TYPE_CHECKING:
    from anetui.core.energy import EnergyLedger

#: The energy ledger's phase of a backend's prefill-only stretches.
PREFILL_SUFFIX = "#prefill"


def prefill_id(backend_id: str) -> str:
    """The ledger's owner id of ``backend_id``'s prefill-only stretches."""
    return backend_id + PREFILL_SUFFIX


@dataclass(frozen=True)
class GenerationResult:
    """One backend's generative figures so far (immutable, for snapshots).

    ttft: time to first token (ns summary); decode: each decoded token's own latency (ns).
    prefill_tokens_per_s: prompt tokens ÷ mean time to first token.
    decode_tokens_per_s: decoded tokens ÷ the time spent decoding them.
    token_agreement: share of the tokens equal to eager fp32 PyTorch's greedy tokens on
    the CPU; first_divergence: the first position that differs (None: none differs).
    energy_mj_per_token: {"prefill": mJ per prompt token, "decode": mJ per decoded token}.
    """

    prompt_len: int
    gen_len: int
    runs: int
    tokens_generated_per_run: float | None
    ttft: LatencySummary | None
    decode: LatencySummary | None
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    decode_histogram: tuple[tuple[float, float, int], ...] = ()
    token_agreement: float | None = None
    first_divergence: int | None = None
    peak_rss_mb: float | None = None
    device_memory_mb: float | None = None
    energy_mj_per_token: dict[str, float] | None = None
    energy_method: str | None = None
    short_runs: int = 0
    #: The prefill-only stretches' runs (ns; with a power source): what their energy
    #: per run was spent on.
    prefill_only: LatencySummary | None = None


def result(
    record: GenerationRecord,
    prompt_len: int,
    gen_len: int,
    *,
    agreement: tuple[float, int | None] | None,
    run_energy: BackendEnergy | None,
    prefill_energy: BackendEnergy | None,
    histogram_bins: int = 40,
    prefill_only: LatencySummary | None = None,
) -> GenerationResult:
    """The immutable figures of ``record`` (and the energy of the two kinds of stretch)."""
    ttft = record.ttft.summary()
    decode = record.decode.summary()
    high = decode.quantiles_ns["p99"] if decode else None
    return GenerationResult(
        prompt_len=prompt_len,
        gen_len=gen_len,
        runs=record.runs,
        tokens_generated_per_run=(
            (record.decode_tokens + record.runs) / record.runs if record.runs else None
        ),
        ttft=ttft,
        decode=decode,
        prefill_tokens_per_s=(
            prompt_len * record.runs / (record.ttft_sum_ns / 1e9) if record.ttft_sum_ns else None
        ),
        decode_tokens_per_s=(
            record.decode_tokens / (record.decode_sum_ns / 1e9) if record.decode_sum_ns else None
        ),
        decode_histogram=tuple(record.decode.buckets(histogram_bins, high)),
        token_agreement=agreement[0] if agreement else None,
        first_divergence=agreement[1] if agreement else None,
        peak_rss_mb=record.peak_rss_mb,
        device_memory_mb=record.device_memory_mb,
        energy_mj_per_token=energy_per_token(run_energy, prefill_energy, prompt_len, gen_len),
        energy_method=run_energy.method if run_energy is not None else None,
        short_runs=record.short_runs,
        prefill_only=prefill_only,
    )


def energy_per_token(
    run: BackendEnergy | None, prefill: BackendEnergy | None, prompt_len: int, gen_len: int
) -> dict[str, float] | None:
    """mJ per token of the prefill (a prefill-only run's energy ÷ prompt tokens) and of
    the decoding (a whole generation's energy less a prefill-only run's, ÷ the tokens
    decoded after the first). Totals of the source's total rails, idle included (what
    the machine drew); None until both kinds of stretch have energy."""
    if run is None or prefill is None or run.inferences <= 0 or prefill.inferences <= 0:
        return None
    per_run = run.total_mj_per_inference
    per_prefill = prefill.total_mj_per_inference
    out = {"prefill": per_prefill / prompt_len}
    if gen_len > 1:
        out["decode"] = max(0.0, per_run - per_prefill) / (gen_len - 1)
    return out


def token_agreement(tokens: Sequence[int], reference: Sequence[int]) -> tuple[float, int | None]:
    """(share of positions equal to ``reference``, first position that differs or None).
    A position missing on either side counts as differing."""
    length = max(len(tokens), len(reference))
    if length == 0:
        return 1.0, None
    same = sum(1 for a, b in zip(tokens, reference, strict=False) if a == b)
    first = next(
        (
            i
            for i in range(length)
            if i >= len(tokens) or i >= len(reference) or tokens[i] != reference[i]
        ),
        None,
    )
    return same / length, first


# -- memory --------------------------------------------------------------------------
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_rss() -> bool:
    """Start a new peak-RSS measurement (Linux: ``5`` into /proc/self/clear_refs resets
    the high-water mark); False where the peak cannot be reset (macOS: the process's
    peak since it started)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (MB) since the last reset (Linux VmHWM) or
    since it started (getrusage elsewhere)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, kilobytes on Linux and the BSDs.
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


# -- what the session does for a generative backend -----------------------------------
#: Share of a backend's scheduled time given to its prefill-only stretch (only with a
#: power source: the stretch exists to measure the prefill's energy).
PREFILL_SHARE = 0.25


def attach(record: BackendRecord, backend: object, prompt_len: int, gen_len: int) -> None:
    """Give ``record`` the token figures of ``backend``'s generations (after prepare)."""
    stamps = getattr(backend, "token_times_ns", None)
    if not callable(stamps):
        return
    record.generation = GenerationRecord(stamps, expected_tokens=gen_len, prompt_len=prompt_len)


def note_memory(record: GenerationRecord, backend: object) -> None:
    """The peak RSS since the last :func:`reset_peak_rss` and the runtime's device memory
    into ``record`` (their maxima so far)."""
    rss = peak_rss_mb()
    if rss is not None:
        record.peak_rss_mb = max(rss, record.peak_rss_mb or 0.0)
    device = getattr(backend, "device_memory_mb", None)
    if callable(device):
        try:
            value = device()
        except Exception:  # a runtime that cannot say: no device figure
            value = None
        if isinstance(value, (int, float)):
            record.device_memory_mb = max(float(value), record.device_memory_mb or 0.0)


@contextlib.contextmanager
def prefill_only(backend: object) -> Iterator[None]:
    """Within it, ``backend.infer()`` is a prefill and its first token (tokens_per_run 1)."""
    saved = getattr(backend, "tokens_per_run", 0)
    backend.tokens_per_run = 1  # type: ignore[attr-defined]
    try:
        yield
    finally:
        backend.tokens_per_run = saved  # type: ignore[attr-defined]


#: The dashboard's alternation (s of the monotonic clock): generations, then prefills.
GENERATE_PHASE_S = 3.0
PREFILL_PHASE_S = 1.0


class Alternation:
    """The dashboard's energy phases of one backend: a single phase for one forward pass
    per inference; for a generative backend with a power source, generations for
    ``GENERATE_PHASE_S`` then prefill-only runs for ``PREFILL_PHASE_S``, in turn, each its
    own ledger phase (switched between frames, never inside a timed stretch)."""

    def __init__(
        self,
        backend_id: str,
        record: BackendRecord,
        prefill: BackendRecord | None,
        ledger: EnergyLedger | None,
    ) -> None:
        self._id = backend_id
        self._record = record
        self._prefill = prefill if ledger is not None and record.generation is not None else None
        self._ledger = ledger
        self._in_prefill = False
        self._since = time.monotonic()

    def begin(self) -> None:
        """The current phase starts now (its ledger phase opened)."""
        self._since = time.monotonic()
        if self._ledger is None:
            return
        record = self._prefill if self._in_prefill and self._prefill else self._record
        owner = prefill_id(self._id) if self._in_prefill else self._id
        self._ledger.begin_run(owner, record.timeline, record.completions)

    def current(self) -> tuple[BackendRecord, bool]:
        """The record the next stretch goes to, and whether it is a prefill stretch."""
        if self._in_prefill and self._prefill is not None:
            return self._prefill, True
        return self._record, False

    def maybe_switch(self) -> None:
        """Between frames: the other phase once this one has lasted long enough."""
        if self._prefill is None or self._ledger is None:
            return
        limit = PREFILL_PHASE_S if self._in_prefill else GENERATE_PHASE_S
        if time.monotonic() - self._since < limit:
            return
        self._ledger.end()
        self._in_prefill = not self._in_prefill
        self.begin()

    def end(self) -> None:
        if self._ledger is not None:
            self._ledger.end()
