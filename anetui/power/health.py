"""Counter health, for every source: pure checks over the windows a source produced and
what ran when, naming the rails that cannot be trusted and why, in plain sentences.

A rail is suspect when, in the windows read so far,
- it went backwards (negative energy in a window: a counter reset or a bad wrap);
- it reads more power than any such rail plausibly draws (a garbage reading);
- it reads exactly 0 mJ in every window of a backend's run although that backend loads
  the rail's unit (ANE during ``coreml-ane``, GPU during ``torch-mps``, CPU and DRAM
  during anything): a dead or frozen counter — or, for the ANE, Core ML running the
  model elsewhere, which the GPU's reading can hint at.
Windows whose timestamps stall (no time passes, or time runs backwards) are reported
apart: they say nothing about one rail, and energy attribution already skips them.

Suspect rails are left out of totals and ratios (``excluding``) unless the user keeps
them; nothing here changes a reading.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from anetui.power.base import PowerSample, TotalRails

Interval = tuple[int, int]

#: A rail at exactly zero over fewer windows than this is not yet evidence.
MIN_ZERO_WINDOWS = 5
#: A GPU drawing this much more (W) during a "Neural Engine" run than while idle (or at
#: all, without an idle baseline) suggests Core ML placed the work on the GPU.
GPU_HINT_W = 0.5

#: Plausible ceilings (W) by rail: above them a window is a garbage reading. Generous on
#: purpose — the largest Apple SoC or server socket, the largest data-centre GPU.
_CEILINGS_W: tuple[tuple[str, float], ...] = (
    (r"ane", 60.0),
    (r"gpu_sram|dram(-\d+)?", 200.0),
    (r"cpu(_.*)?|gpu|process", 600.0),
    (r"gpu\d+", 1500.0),
    (r"package(-\d+)?|core(-\d+)?|uncore(-\d+)?|psys|combined", 1500.0),
)
DEFAULT_CEILING_W = 3000.0


@dataclass(frozen=True, slots=True)
class RunSpan:
    """A backend's timed stretches (ns, the samples' clock) and the device it loads, as
    backends describe it: ``cpu``, ``mps``, ``cuda``, ``cpu+gpu``, ``cpu+ane`` …"""

    device: str
    intervals: Sequence[Interval]


@dataclass(frozen=True, slots=True)
class SuspectRail:
    rail: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"rail": self.rail, "reason": self.reason}


def ceiling_w(rail: str) -> float:
    for pattern, watts in _CEILINGS_W:
        if re.fullmatch(pattern, rail):
            return watts
    return DEFAULT_CEILING_W


def loads(device: str, rail: str) -> bool:
    """Does a backend on ``device`` necessarily spend energy on ``rail``? Only whole-unit
    rails are judged (a single cluster or core may rightly sit idle)."""
    device = device.lower()
    if rail in ("cpu", "dram", "package", "combined") or re.fullmatch(r"(package|dram)-\d+", rail):
        return True  # every backend's host code runs on the CPU and touches memory
    if rail == "gpu":
        return "gpu" in device or "mps" in device
    if rail == "ane":
        return "ane" in device
    if re.fullmatch(r"gpu\d+", rail):
        return "cuda" in device
    return False


def suspect_rails(
    samples: Sequence[PowerSample],
    runs: Mapping[str, RunSpan],
    idle_w: Mapping[str, float] | None = None,
) -> list[SuspectRail]:
    """The rails of ``samples`` that cannot be trusted, one reason each, in rail order."""
    found: dict[str, str] = {}
    for sample in samples:
        elapsed_ms = sample.elapsed_ns / 1e6
        for rail, mj in sample.rails_mj.items():
            if rail in found:
                continue
            if mj < 0:
                found[rail] = (
                    f"{rail} went backwards ({mj:.0f} mJ in one window): the counter was "
                    "reset or wrapped; left out of the totals"
                )
            elif elapsed_ms > 0 and mj / elapsed_ms > ceiling_w(rail):
                found[rail] = (
                    f"{rail} read {mj / elapsed_ms:.0f} W in one window, beyond the "
                    f"{ceiling_w(rail):.0f} W such a rail can draw: a bad reading; "
                    "left out of the totals"
                )
    for backend, run in runs.items():
        inside = [s for s in samples if s.elapsed_ns > 0 and _inside(s, run.intervals)]
        rails = sorted({r for s in inside for r in s.rails_mj})
        for rail in rails:
            if rail in found or not loads(run.device, rail):
                continue
            readings = [s.rails_mj[rail] for s in inside if rail in s.rails_mj]
            if len(readings) >= MIN_ZERO_WINDOWS and all(mj == 0 for mj in readings):
                found[rail] = _zero_reason(rail, backend, len(readings), inside, idle_w)
    return [SuspectRail(rail, found[rail]) for rail in sorted(found)]


def _zero_reason(
    rail: str,
    backend: str,
    windows: int,
    inside: Sequence[PowerSample],
    idle_w: Mapping[str, float] | None,
) -> str:
    head = f"{rail} reads 0 mJ over {windows} windows while {backend} ran"
    if rail != "ane":
        return f"{head}: the counter is dead or frozen on this system; left out of the totals"
    gpu_w = _mean_w(inside, "gpu")
    baseline = (idle_w or {}).get("gpu", 0.0)
    if gpu_w is not None and gpu_w - baseline > GPU_HINT_W:
        return (
            f"{head} and the GPU drew {gpu_w:.1f} W: Core ML most likely ran the model on "
            "the GPU, not the Neural Engine — see `anetui plan`"
        )
    return (
        f"{head}: the counter may be broken on this macOS, or Core ML ran the model "
        "elsewhere — see `anetui plan`"
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """What the session needs from the checks: the suspect rails, which of them are left
    out of totals (all but those the user keeps), and the sentences for the results."""

    suspect: tuple[SuspectRail, ...] = ()
    kept: tuple[str, ...] = ()
    timing: tuple[str, ...] = ()

    @property
    def left_out(self) -> tuple[str, ...]:
        return tuple(s.rail for s in self.suspect if s.rail not in self.kept)

    @property
    def warnings(self) -> tuple[str, ...]:
        sentences = []
        for s in self.suspect:
            if s.rail in self.kept:
                reason = s.reason.removesuffix("; left out of the totals")
                sentences.append(f"{reason}; kept in the totals as asked (--keep-rail)")
            else:
                sentences.append(s.reason)
        return (*sentences, *self.timing)

    def power_fields(self) -> dict[str, object]:
        """The results' ``power`` entries: each suspect rail, its reason, and whether it
        was kept in the totals."""
        return {
            "suspect_rails": [{**s.to_json(), "kept": s.rail in self.kept} for s in self.suspect]
        }


def check(
    samples: Sequence[PowerSample],
    runs: Mapping[str, RunSpan],
    keep: Iterable[str] = (),
    idle_w: Mapping[str, float] | None = None,
) -> Checked:
    """Every check over the windows so far (cheap enough for each snapshot)."""
    suspect = tuple(suspect_rails(samples, runs, idle_w))
    present = {s.rail for s in suspect}
    return Checked(
        suspect,
        tuple(r for r in keep if r in present),
        tuple(timing_problems(samples)),
    )


def timing_problems(samples: Sequence[PowerSample]) -> list[str]:
    """Sentences about windows whose timestamps stalled (no time passed in the window) or
    did not move on from the window before. Small overlaps are normal for a source that
    stamps a window when it arrives (powermetrics) and are not reported."""
    stalled = sum(1 for s in samples if s.elapsed_ns <= 0)
    stuck = sum(1 for a, b in itertools.pairwise(samples) if b.t_end_ns <= a.t_end_ns)
    out = []
    if stalled:
        out.append(
            f"the power source's clock stalled in {stalled} window(s) (no time passed): "
            "they were not used"
        )
    if stuck:
        out.append(
            f"the power source's timestamps stopped or went back {stuck} time(s): the "
            "energy figures around them are less certain"
        )
    return out


def excluding(rule: TotalRails, suspect: Iterable[str]) -> TotalRails:
    """The source's total-rail rule applied to the rails that are not suspect."""
    left_out = frozenset(suspect)

    def total(rails: Iterable[str]) -> tuple[str, ...]:
        return rule([r for r in rails if r not in left_out])

    return total


def _inside(sample: PowerSample, intervals: Sequence[Interval]) -> bool:
    return any(a <= sample.t_start_ns and sample.t_end_ns <= b for a, b in intervals)


def _mean_w(samples: Sequence[PowerSample], rail: str) -> float | None:
    with_rail = [s for s in samples if rail in s.rails_mj]
    elapsed_ms = sum(s.elapsed_ns for s in with_rail) / 1e6
    if elapsed_ms <= 0:
        return None
    return sum(s.rails_mj[rail] for s in with_rail) / elapsed_ms
