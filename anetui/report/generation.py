"""The generative workload in reports: ``backends[].generation`` of the results document
and the token table `bench` prints (times in ms, rates in tokens/s, energy in mJ/token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from anetui.core.generation import GenerationResult
from anetui.core.results import BackendResult, Snapshot
from anetui.core.stats import LatencySummary


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _ms(summary: LatencySummary | None) -> str:
    if summary is None:
        return "–"
    p50 = summary.p50_ns / 1e6
    ci = summary.p50_ci95_ns
    interval = f" ({ci[0] / 1e6:.2f}–{ci[1] / 1e6:.2f})" if ci else ""
    return f"{p50:.2f}{interval}"


def _rate(value: float | None) -> str:
    return f"{value:.1f}" if value else "–"


def _cells(gen: GenerationResult, energy: bool, digits: int) -> tuple[list[str], list[str]]:
    """Both tables' cells after the times: (prefill and decode tokens/s), (tokens per
    run, agreement, peak RSS, and with ``energy`` prefill and decode mJ/token)."""
    per = gen.energy_mj_per_token or {}
    rest = [
        f"{gen.tokens_generated_per_run:g}" if gen.tokens_generated_per_run else "–",
        agreement_text(gen),
        f"{gen.peak_rss_mb:.0f}" if gen.peak_rss_mb else "–",
    ]
    if energy:
        rest += [f"{per[k]:.{digits}f}" if k in per else "–" for k in ("prefill", "decode")]
    return [_rate(gen.prefill_tokens_per_s), _rate(gen.decode_tokens_per_s)], rest


def agreement_text(gen: GenerationResult) -> str:
    """``1.000`` or ``0.875 (from 28)``: the share of tokens equal to the reference."""
    if gen.token_agreement is None:
        return "–"
    if gen.first_divergence is None:
        return f"{gen.token_agreement:.3f}"
    return f"{gen.token_agreement:.3f} (from {gen.first_divergence})"


def print_generation(console: Console, snapshot: Snapshot) -> None:
    """The token table: TTFT, ms per decoded token, prefill and decode tokens/s, tokens
    per run, token agreement, peak RSS and (with a power source) mJ per token."""
    rows = [b for b in snapshot.measured() if b.generation is not None]
    if not rows:
        return
    first = rows[0].generation
    assert first is not None
    table = Table(
        title=f"generation: {first.prompt_len}-token prompt, {first.gen_len} tokens per run, "
        "greedy  ·  p50 (95% CI) in ms",
        title_justify="left",
        header_style="bold",
    )
    energy = any(b.generation and b.generation.energy_mj_per_token for b in rows)
    columns = [
        "backend",
        "TTFT",
        "ms/token",
        "prefill tok/s",
        "decode tok/s",
        "tokens/run",
        "agreement",
        "peak RSS MB",
    ]
    if energy:
        columns += ["prefill mJ/tok", "decode mJ/tok"]
    for name in columns:
        table.add_column(name, justify="left" if name == "backend" else "right", no_wrap=True)
    for b in rows:
        gen = b.generation
        assert gen is not None
        rates, rest = _cells(gen, energy, 3)
        table.add_row(b.id, _ms(gen.ttft), _ms(gen.decode), *rates, *rest)
    console.print(table)
    console.print(
        "[dim](TTFT: the prefill and the first token; ms/token: each later token's own "
        "latency; agreement: share of tokens equal to eager fp32 PyTorch's greedy ones"
        + (
            "; mJ/token: the machine's total, prefill measured in prefill-only stretches"
            if energy
            else ""
        )
        + ")[/]"
    )


def prometheus_families(
    snapshot: Snapshot,
    labels_of: Callable[[BackendResult], tuple[str, ...]],
    names: tuple[str, ...],
    summary: type[Any],
) -> list[Any]:
    """The generative workload's metric families (empty for other workloads): a tokens
    counter, time-to-first-token and per-token summaries (s), decode tokens/s, and energy
    per token by phase (J). ``summary``: the exporter's quantile summary class."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from anetui.core.stats import REPORTED_QUANTILES

    rows = [b for b in snapshot.backends if b.generation is not None and b.generation.runs]
    if not rows:
        return []
    tokens = CounterMetricFamily(
        "anetui_generated_tokens", "Tokens generated in timed generations.", labels=names
    )
    ttft = summary(
        "anetui_time_to_first_token",
        "Time to first token: the prompt's prefill and the first token.",
        labels=names,
        unit="seconds",
    )
    per_token = summary(
        "anetui_decode_token_latency",
        "Each decoded token's own latency (after the first).",
        labels=names,
        unit="seconds",
    )
    rate = GaugeMetricFamily(
        "anetui_decode_tokens_per_second", "Decoded tokens per second of decoding.", labels=names
    )
    energy = GaugeMetricFamily(
        "anetui_energy_per_token",
        "Energy per token over the power source's total rails: prefill (per prompt token, "
        "measured in prefill-only stretches) and decode.",
        labels=(*names, "phase"),
        unit="joules",
    )
    for b in rows:
        gen = b.generation
        assert gen is not None
        labels = labels_of(b)
        tokens.add_metric(labels, round(gen.runs * (gen.tokens_generated_per_run or 0)))
        for family, stats in ((ttft, gen.ttft), (per_token, gen.decode)):
            if stats is not None:
                family.add_quantiles(
                    labels,
                    {q: stats.quantiles_ns[name] / 1e9 for name, q in REPORTED_QUANTILES},
                    count=stats.count,
                    total=stats.mean_ns * stats.count / 1e9,
                )
        if gen.decode_tokens_per_s:
            rate.add_metric(labels, gen.decode_tokens_per_s)
        for phase, mj in (gen.energy_mj_per_token or {}).items():
            energy.add_metric((*labels, phase), mj / 1e3)
    return [tokens, ttft, per_token, rate, energy]


def _p99(summary: LatencySummary | None) -> str:
    return f"{summary.quantiles_ns['p99'] / 1e6:.2f}" if summary else "–"


def markdown_section(snapshot: Snapshot) -> list[str]:
    """The report's "Generation" section (empty for other workloads)."""
    rows = [b for b in snapshot.measured() if b.generation is not None]
    if not rows:
        return []
    first = rows[0].generation
    assert first is not None
    energy = any(b.generation and b.generation.energy_mj_per_token for b in rows)
    lines = [
        "## Generation",
        "",
        f"One run: the prefill of a {first.prompt_len}-token prompt (token ids uniform over "
        f"the vocabulary, seed 0), then greedy decoding to exactly {first.gen_len} tokens. "
        "The latency table above is per run; here time to first token (TTFT: the prefill "
        "and the first token) and each decoded token's own latency, p50 with its 95% CI, "
        "in ms.",
        "",
        "| backend | runs | TTFT p50 | TTFT p99 | ms/token p50 | ms/token p99 | prefill tok/s "
        "| decode tok/s | tokens/run | token agreement | peak RSS (MB) |"
        + (" prefill mJ/token | decode mJ/token |" if energy else ""),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|--:|" if energy else ""),
    ]
    for b in rows:
        gen = b.generation
        assert gen is not None
        rates, rest = _cells(gen, energy, 4)
        times = [_ms(gen.ttft), _p99(gen.ttft), _ms(gen.decode), _p99(gen.decode)]
        lines.append("| " + " | ".join([b.id, str(gen.runs), *times, *rates, *rest]) + " |")
    lines += [
        "",
        "Token agreement: the share of a run's tokens equal to transformers' greedy "
        "`generate()` in eager fp32 PyTorch on the CPU (and the first position that differs). "
        "Peak RSS: the process's peak resident memory while the backend prepared and ran "
        "(every prepared backend is resident in the one process)."
        + (
            " Energy per token: the machine's total over the source's total rails; the "
            "prefill's from prefill-only stretches ÷ prompt tokens, the decoding's from whole "
            "runs less a prefill ÷ the tokens decoded after the first."
            if energy
            else ""
        ),
        "",
    ]
    return lines
