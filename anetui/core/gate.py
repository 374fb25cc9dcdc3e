"""The frame gate: a live view draws while no inference is being timed.

A dashboard frame is Python work on the UI thread: it holds the GIL that a runner coming
back from the runtime needs before its second clock read, and it takes a core that the
runtime's threads would use. Both used to land inside the measured figures (p99 1.6–2.5x
worse, throughput ~7 % lower under the dashboard; issue 20). So the UI asks the runner
to step aside for the frame: the runner ends its timed stretch at the next inference
boundary, waits, and when released after a real wait keeps inferring untimed for
REWARM_NS (the runtime's worker threads went to sleep and the caches cold meanwhile,
which a headless run never sees), and times again. Latencies and throughput count
timed wall time only, so the pause is in no speed figure. The energy ledger's phase
spans the pauses — a window source's windows must lie wholly inside a phase, and a frame
a second would leave none — so a frame's energy stays in the backend's energy per
inference, as it did when frames ran beside the inferences, and the untimed inferences
are counted among its completions.

A runner that does not reach a boundary within ``wait_s`` (an inference longer than
that) is not waited for: the frame is drawn anyway and counted as overlapping.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from anetui.core.results import BackendResult
from anetui.core.runner import SWITCH_INTERVAL_S

#: How long a frame waits for the runner to reach an inference boundary (s).
DEFAULT_WAIT_S = 0.02
#: A runner held at least this long (ns) re-warms, untimed, before timing again …
REWARM_AFTER_NS = 1_000_000
#: … and keeps inferring, untimed, for at least this long (ns): a frame's Python work
#: evicts the model from the caches, and a sub-millisecond model needs several
#: inferences to be back at its headless pace (without this, onnx-cpu's p99 under the
#: dashboard was 1.3x headless; benchmarks/observer.py).
REWARM_NS = int(os.environ.get("ANETUI_REWARM_MS", "5")) * 1_000_000
#: … and after that until an untimed inference is back within SETTLED of the latest
#: stretch's median, for at most REWARM_MAX_NS: the frame's bytes are still being written
#: by Textual's writer thread and drawn by the terminal (tmux's server, on the same
#: cores) after the release, and a 2-thread runtime timed meanwhile ran ~2 % slower at
#: the median (torch-cpu, mobilenet_v2; benchmarks/observer.py).
SETTLED = 1.03
#: … for this long in a row (ns; one inference at least): one quick inference while the
#: terminal still draws is no sign that it has finished (onnx-cpu's 1 ms inferences).
SETTLED_FOR_NS = 3_000_000
REWARM_MAX_NS = int(os.environ.get("ANETUI_REWARM_MAX_MS", "60")) * 1_000_000
#: How long a runner stays held without a release before it times again on its own (s):
#: a UI that died mid-frame must not stop the measurement.
MAX_HOLD_S = 2.0


@dataclass(frozen=True, slots=True)
class GateFigures:
    """What the frames cost and how they were kept out of the timed stretches."""

    frames: int
    #: Frames drawn while a runner was still timing (it did not pause within the wait).
    overlapping: int
    #: Wall time runners spent paused for frames (s): outside every figure.
    held_s: float
    #: The UI thread's CPU time while a runner was active (s) and its share of that time.
    ui_cpu_s: float
    ui_cpu_share: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "frames_overlapping_timed": self.overlapping,
            "held_s": round(self.held_s, 3),
            "ui_cpu_s": round(self.ui_cpu_s, 3),
            "ui_cpu_share": None if self.ui_cpu_share is None else round(self.ui_cpu_share, 4),
        }


class FrameGate:
    """Between one UI thread (``hold``/``release``) and one runner thread at a time
    (``runner_active``, ``requested``, ``park``)."""

    def __init__(self, wait_s: float = DEFAULT_WAIT_S, enabled: bool | None = None) -> None:
        self.wait_s = wait_s
        #: ``ANETUI_FRAME_GATE=0`` draws every frame beside the runner (as before the
        #: gate): benchmarks/observer.py measures what the gate buys.
        self.enabled = (
            os.environ.get("ANETUI_FRAME_GATE", "1") != "0" if enabled is None else enabled
        )
        #: Set by the UI: the runner ends its stretch at the next inference boundary.
        self.requested = threading.Event()
        self._parked = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self._frames = self._overlapping = 0
        self._held_ns = 0
        self._ui_cpu_ns = 0
        self._active_wall_ns = 0
        self._active_since: int | None = None

    # -- the runner's side ------------------------------------------------------------
    def runner_active(self, active: bool) -> None:
        """A runner starts (True) or stops (False) timing under this gate."""
        with self._lock:
            now = time.perf_counter_ns()
            if active:
                self._active += 1
                if self._active == 1:
                    self._active_since = now
            else:
                self._active = max(0, self._active - 1)
                if self._active == 0 and self._active_since is not None:
                    self._active_wall_ns += now - self._active_since
                    self._active_since = None

    def park(self, stop: threading.Event) -> int:
        """Called by the runner once its stretch has ended for a frame: wait for the
        release (or ``stop``, or MAX_HOLD_S). Returns how long it waited (ns)."""
        started = time.perf_counter_ns()
        self._parked.set()
        deadline = time.monotonic() + MAX_HOLD_S
        while not self._released.wait(0.01):
            if stop.is_set() or time.monotonic() >= deadline:
                break
        self._released.clear()
        self._parked.clear()
        self.requested.clear()
        waited = time.perf_counter_ns() - started
        with self._lock:
            self._held_ns += waited
        return waited

    # -- the UI's side ----------------------------------------------------------------
    def hold(self) -> bool:
        """Ask the active runner to step aside and wait up to ``wait_s`` for it; True when
        no inference is being timed now (no runner, or it parked). The caller draws,
        then calls :meth:`release` whatever this returned."""
        with self._lock:
            active = self._active > 0
            self._frames += active
        if not active:
            return True
        if not self.enabled:
            with self._lock:
                self._overlapping += 1
            return False
        self._released.clear()
        self.requested.set()
        if self._parked.wait(self.wait_s):
            return True
        with self._lock:
            self._overlapping += 1
        return False

    def release(self) -> None:
        """The frame is drawn: the runner may time again."""
        if self.requested.is_set() or self._parked.is_set():
            self._released.set()

    def add_ui_cpu(self, cpu_ns: int) -> None:
        """UI-thread CPU time spent while a runner was active (the UI measures its own
        thread with ``time.thread_time_ns``)."""
        with self._lock:
            self._ui_cpu_ns += cpu_ns

    def is_active(self) -> bool:
        with self._lock:
            return self._active > 0

    def figures(self) -> GateFigures:
        with self._lock:
            wall = self._active_wall_ns
            if self._active_since is not None:
                wall += time.perf_counter_ns() - self._active_since
            return GateFigures(
                frames=self._frames,
                overlapping=self._overlapping,
                held_s=self._held_ns / 1e9,
                ui_cpu_s=self._ui_cpu_ns / 1e9,
                ui_cpu_share=self._ui_cpu_ns / wall if wall > 0 else None,
            )


def observer_warnings(figures: GateFigures, p99_ms: dict[str, float]) -> list[str]:
    """A sentence when the frames could have moved a backend's p99 by more than 10 %:
    frames drawn beside timed inferences (the runner did not pause in time) covering
    at least 1 % of the time (enough to reach the p99), each costing up to its own CPU
    time to the inference beside it. ``p99_ms``: the measured backends' p99 (ms)."""
    if not figures.overlapping or not figures.frames or not figures.ui_cpu_share:
        return []
    frame_ms = figures.ui_cpu_s / figures.frames * 1e3
    covered = figures.ui_cpu_share * figures.overlapping / figures.frames
    if covered < 0.01:
        return []
    return [
        f"the dashboard drew {figures.overlapping} of {figures.frames} frames while "
        f"{backend_id} was being timed (its inferences outlast the gate's wait), about "
        f"{frame_ms:.0f} ms of CPU each: that could have moved its p99 ({p99:.2f} ms) by "
        "more than 10 %; `anetui bench` measures without a view"
        for backend_id, p99 in p99_ms.items()
        if frame_ms / p99 > 0.10
    ]


def gate_entry(
    gate: FrameGate, measured: Mapping[str, BackendResult]
) -> tuple[dict[str, object], list[str]]:
    """The results' ``observer`` entry for a live view, and its warnings."""
    figures = gate.figures()
    p99 = {i: r.summary.quantiles_ns["p99"] / 1e6 for i, r in measured.items() if r.summary}
    observer: dict[str, object] = {
        "view": "dashboard",
        **figures.to_json(),
        "switch_interval_us": round(SWITCH_INTERVAL_S * 1e6, 1),
        "method": "frames drawn while the runner is paused at an inference boundary "
        f"(untimed inferences after each real pause: {REWARM_NS / 1e6:g} ms, then until "
        f"those of {SETTLED_FOR_NS / 1e6:g} ms in a row are within {SETTLED - 1:.0%} of the "
        f"latest stretch's median, at most {REWARM_MAX_NS / 1e6:g} ms); UI-thread CPU time "
        "from thread_time",
    }
    return observer, observer_warnings(figures, p99)
