"""The running energy panel: per backend measured so far, p50, inf/s, mean power,
mJ/inference gross and active, and speed and energy ratios against the reference.

Columns that do not fit are dropped whole (mean W first, then inf/s, active, p50), never
cut; an absent figure says why in the panel's subtitle."""

from __future__ import annotations

from textual.widgets import DataTable

from anetui.core.results import Snapshot
from anetui.report.text import factor_tag, factor_text, fmt_ms, is_clear, rails_label
from anetui.ui.widgets.tables import show_table

HEADERS = ("backend", "p50 ms", "inf/s", "mean W", "mJ/inf", "active mJ/inf", "speed", "energy")
#: The generative workload: TTFT, decode tokens/s and energy per token by phase (the
#: speed and energy ratios are of whole generations).
GENERATION_HEADERS = (
    "backend",
    "TTFT ms",
    "tok/s",
    "mean W",
    "decode mJ/tok",
    "prefill mJ/tok",
    "speed",
    "energy",
)
DROP_ORDER = (3, 2, 5, 1, 4)


class EnergyTable(DataTable[str]):
    def on_mount(self) -> None:
        self.cursor_type = "none"

    def show(self, snapshot: Snapshot, has_power: bool) -> None:
        ratios = {r.backend: r for r in snapshot.ratios}
        rows: list[tuple[str, ...]] = []
        for b in snapshot.measured():
            assert b.summary is not None
            e = b.energy
            watts = f"{sum(e.mean_power_w[r] for r in e.total_rails):.2f}" if e else "–"
            gross = f"{e.total_mj_per_inference:.2f}" if e else "–"
            active = e.total_active_mj_per_inference if e else None
            if b.id == snapshot.reference:
                speed = energy = "reference"
            else:
                r = ratios.get(b.id)
                speed = energy = "–"
                if r is not None:
                    speed = _claim(r.speed, r.speed_ci95, "faster", "slower", "few inferences")
                    speed += factor_tag(r) if is_clear(r.speed_ci95) else ""
                if r is not None and r.energy:
                    energy = _claim(r.energy, r.energy_ci95, "less", "more", "few windows")
            gen = b.generation
            if gen is not None:
                per = gen.energy_mj_per_token or {}
                rows.append(
                    (
                        b.id,
                        fmt_ms(gen.ttft.p50_ns / 1e6) if gen.ttft else "–",
                        f"{gen.decode_tokens_per_s:.1f}" if gen.decode_tokens_per_s else "–",
                        watts,
                        f"{per['decode']:.3f}" if "decode" in per else "–",
                        f"{per['prefill']:.3f}" if "prefill" in per else "–",
                        speed,
                        energy,
                    )
                )
                continue
            rows.append(
                (
                    b.id,
                    fmt_ms(b.summary.p50_ns / 1e6),
                    f"{b.throughput_per_s:.1f}" if b.throughput_per_s else "–",
                    watts,
                    gross,
                    f"{round(active, 2) + 0.0:.2f}" if active is not None else "–",
                    speed,
                    energy,
                )
            )
        generative = any(b.generation is not None for b in snapshot.measured())
        show_table(self, GENERATION_HEADERS if generative else HEADERS, rows, DROP_ORDER)
        measured = [b for b in snapshot.measured() if b.energy]
        rails = (
            rails_label(measured[0].energy.total_rails) if measured and measured[0].energy else ""
        )
        what = "energy per token" if generative else "energy per inference"
        self.border_title = what + (f" · {rails}" if rails else "")
        self.border_subtitle = _why_absent(snapshot, has_power, bool(measured))
        if generative:
            self.border_subtitle = self.border_subtitle.replace("mJ/inf", "mJ/tok")


def _claim(
    value: float, interval: tuple[float, float] | None, up: str, down: str, too_few: str
) -> str:
    """A ratio cell that claims only what its interval supports (as the reports do): the
    factor when the interval excludes 1, "no clear diff" when it holds 1, and no figure
    at all without an interval."""
    if interval is None:
        return f"– ({too_few})"
    if not is_clear(interval):
        return "no clear diff"
    bigger, text = factor_text(value)
    return f"{text} {up if bigger else down}"


def _why_absent(snapshot: Snapshot, has_power: bool, any_energy: bool) -> str:
    """Why mJ/inf or active mJ/inf reads "–", in a few words (empty when nothing is)."""
    if not snapshot.measured():
        return "no backend measured yet"
    if not has_power:
        return "mJ/inf needs a power source (--power)"
    if not any_energy:
        return "mJ/inf: waiting for power windows inside a run"
    if not snapshot.power.get("idle_w"):
        return "active mJ/inf: press i for an idle baseline"
    return ""
