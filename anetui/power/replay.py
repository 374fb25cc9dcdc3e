"""Replays a recorded powermetrics stream (plist or text) at its own pace, so the macOS
path can be seen and tested anywhere. Never presented as this machine's: its label
names the recording.

With ``speed`` > 1 the windows pass faster; each keeps the recording's *power*, so its
energy is scaled by 1/speed to match the shorter window on this clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from anetui.errors import Availability, one_line
from anetui.power.base import PowerSample, SourceState, Unavailable
from anetui.power.powermetrics import total_rails as powermetrics_total_rails
from anetui.power.powermetrics_parse import parse_bytes
from anetui.power.powermetrics_window import Window


class ReplaySource:
    id = "replay"

    def __init__(
        self,
        path: Path,
        interval_ms: int | None = None,
        speed: float = 1.0,
        loop: bool = False,
    ) -> None:
        if speed <= 0:
            raise ValueError("replay speed must be positive")
        self.path = Path(path)
        self.speed = speed
        self.loop = loop
        self.label = f"replay of {self.path.name}" + (f" at {speed:g}x" if speed != 1 else "")
        self.label += " (looped)" if loop else ""
        self.state = SourceState.IDLE
        self.reason: str | None = None
        self.errors: list[str] = []
        self._windows: list[Window] = []
        self._closed = False
        self.interval_ms = interval_ms or 0

    def total_rails(self, rails: Iterable[str]) -> tuple[str, ...]:
        return powermetrics_total_rails(rails)

    def available(self) -> Availability:
        if not self.path.is_file():
            return Availability.no(f"recording not found: {self.path}")
        return Availability.yes()

    async def start(self) -> None:
        if not self.path.is_file():
            self.state, self.reason = SourceState.UNAVAILABLE, f"recording not found: {self.path}"
            raise Unavailable(self.reason)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.state, self.reason = (
                SourceState.UNAVAILABLE,
                f"cannot read {self.path}: {one_line(exc)}",
            )
            raise Unavailable(self.reason) from None
        self._windows, self.errors = parse_bytes(data)
        if not self._windows:
            why = f": {self.errors[0]}" if self.errors else ""
            self.state, self.reason = (
                SourceState.UNAVAILABLE,
                f"{self.path.name} holds no powermetrics sample{why}",
            )
            raise Unavailable(self.reason)
        if not self.interval_ms:
            mean_ns = sum(w.elapsed_ns for w in self._windows) / len(self._windows)
            self.interval_ms = round(mean_ns / 1e6 / self.speed)
        self.state, self.reason = SourceState.RUNNING, None

    def __aiter__(self) -> AsyncIterator[PowerSample]:
        return self.samples()

    async def samples(self) -> AsyncIterator[PowerSample]:
        if not self._windows:
            await self.start()
        t_start = time.monotonic_ns()
        while not self._closed:
            for window in self._windows:
                length_ns = round(window.elapsed_ns / self.speed)
                t_end = t_start + length_ns
                await asyncio.sleep(max(0.0, (t_end - time.monotonic_ns()) / 1e9))
                if self._closed:
                    return
                rails = {rail: mj / self.speed for rail, mj in window.rails_mj.items()}
                yield PowerSample(
                    t_start, t_end, rails, window.thermal_pressure, dict(window.clusters)
                )
                t_start = t_end
            if not self.loop:
                self.state = SourceState.ENDED
                return

    async def aclose(self) -> None:
        self._closed = True
        if self.state in (SourceState.RUNNING, SourceState.IDLE):
            self.state = SourceState.STOPPED
