"""Power source ids (as the CLI takes them) to sources, and cheap probes for `doctor`.

``auto`` picks the first source that can run here, in the order IOReport (macOS, no
root, and its CPU counter advances), powermetrics (macOS, root), RAPL, NVML: on a Mac,
powermetrics is taken when asked for by name, or when IOReport is missing or broken.
``replay:FILE`` plays a recording.
"""

from __future__ import annotations

from pathlib import Path

from anetui.errors import AnetuiError, Availability
from anetui.power.base import PowerSource
from anetui.power.monitor import PowerMonitor

SOURCE_IDS = ("ioreport", "powermetrics", "rapl", "nvml")
DEFAULT_INTERVAL_MS = 250


def create(
    spec: str, interval_ms: int = DEFAULT_INTERVAL_MS, speed: float = 1.0, loop_replay: bool = True
) -> PowerSource:
    """A source for ``spec``: ioreport, powermetrics, rapl, rapl:DIR, nvml, replay:FILE or
    auto."""
    if spec == "auto":
        return choose_auto(interval_ms)[0]
    if spec == "ioreport":
        from anetui.power.ioreport import IOReportSource

        return IOReportSource(interval_ms)
    if spec == "powermetrics":
        from anetui.power.powermetrics import PowermetricsSource

        return PowermetricsSource(interval_ms)
    if spec == "rapl":
        from anetui.power.rapl import RaplSource

        return RaplSource(interval_ms)
    if spec.startswith("rapl:"):  # a powercap tree mounted elsewhere (containers, tests)
        from anetui.power.rapl import RaplSource

        root = spec.removeprefix("rapl:")
        if not root:
            raise AnetuiError("rapl: needs a directory: --power rapl:DIR")
        return RaplSource(interval_ms, root=Path(root))
    if spec == "nvml":
        from anetui.power.nvml import NvmlSource

        return NvmlSource(interval_ms)
    if spec.startswith("replay:"):
        from anetui.power.replay import ReplaySource

        path = spec.removeprefix("replay:")
        if not path:
            raise AnetuiError("replay needs a file: --power replay:FILE")
        return ReplaySource(Path(path), speed=speed, loop=loop_replay)
    raise AnetuiError(
        f"unknown power source '{spec}' (auto, ioreport, powermetrics, rapl, rapl:DIR, nvml, "
        "replay:FILE)"
    )


def choose_auto(interval_ms: int = DEFAULT_INTERVAL_MS) -> tuple[PowerSource, list[str]]:
    """The first source that can run here, and why each one before it was skipped."""
    skipped: list[str] = []
    for source_id in SOURCE_IDS:
        source = create(source_id, interval_ms)
        availability = source.available()
        if availability.ok:
            return source, skipped
        skipped.append(f"{source_id}: {availability.reason}")
    raise AnetuiError("no power source can run here (" + "; ".join(skipped) + ")")


def auto_choice(probes: list[tuple[str, Availability]]) -> str:
    """What ``--power auto`` takes given ``probe_all()``'s answers, in one sentence."""
    for source_id, availability in probes:
        if source_id in SOURCE_IDS and availability.ok:
            order = ", ".join(SOURCE_IDS)
            return f"--power auto takes {source_id}: the first of {order} that runs here"
    return f"--power auto finds no source here (tried {', '.join(SOURCE_IDS)})"


def probe_all() -> list[tuple[str, Availability]]:
    """Every source id with whether it can run here and why not (no heavy imports)."""
    out = [(source_id, create(source_id).available()) for source_id in SOURCE_IDS]
    out.append(("replay:FILE", Availability.yes()))
    return out


def monitor_for(
    spec: str, interval_ms: int = DEFAULT_INTERVAL_MS, speed: float = 1.0
) -> tuple[PowerMonitor | None, list[str]]:
    """The monitor for ``--power SPEC`` (not started) and notes on what was skipped.

    ``none`` gives no monitor. ``auto`` that finds no source gives no monitor and a note
    saying why; a source asked for by name that cannot be made raises AnetuiError.
    """
    if spec == "none":
        return None, []
    if spec != "auto":
        return PowerMonitor(create(spec, interval_ms, speed=speed)), []
    try:
        source, skipped = choose_auto(interval_ms)
    except AnetuiError as exc:
        return None, [f"no energy measurement: {exc}"]
    return PowerMonitor(source), [f"skipped {reason}" for reason in skipped]
