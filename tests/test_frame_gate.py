"""The frame gate (issue 20): a live view's frames are drawn while no inference is being
timed, the pause is in no figure, and the results say what the view cost."""

from __future__ import annotations

import threading

import pytest

from anetui.core.gate import FrameGate, GateFigures, observer_warnings
from anetui.core.session import Session
from anetui.models.spec import ModelSpec
from tests.doubles import CountingBackend
from tests.test_session import doubles_registry, small_config  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("doubles_registry")


class Watched(CountingBackend):
    """Counts its inferences; ``inside`` is True while one is in progress."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.inside = False

    def infer(self) -> None:
        self.inside = True
        super().infer()
        self.inside = False


def test_no_inference_runs_while_a_granted_frame_is_drawn() -> None:
    """A "UI" thread holds the gate 30 times while a session runs a backend: whenever
    the hold is granted, no inference is in progress or starts until the release, and
    the runner times again afterwards."""
    spec = ModelSpec(name="none", kind="none", input_shape=(1,))
    session = Session(small_config(backends=("double-ok",), iterations=None), spec)
    session.prepare()
    slot = session._slots["double-ok"]
    backend = Watched(work_ns=200_000)
    slot.backend = backend
    session.gate = gate = FrameGate(wait_s=30.0)  # no timing margin: wait as long as needed
    stop = threading.Event()
    runner = threading.Thread(target=session.run_backend, args=("double-ok", stop))
    runner.start()
    violations = 0
    granted = 0
    try:
        for _ in range(30):
            while not gate.is_active():  # the runner is (back) in a timed stretch
                threading.Event().wait(0.001)
            timing_from = backend.calls
            while backend.calls <= timing_from:  # … and has timed an inference in it
                threading.Event().wait(0.0005)
            if gate.hold():
                granted += 1
                before = backend.calls
                for _ in range(20):  # "drawing": nothing may be timed or even run
                    violations += backend.inside or backend.calls != before
                    threading.Event().wait(0.0005)
                assert slot.record.running_since_ns is None
            gate.release()
        while not gate.is_active():  # timing again after the last frame
            threading.Event().wait(0.001)
    finally:
        stop.set()
        runner.join(30)
    assert granted == 30 and violations == 0
    figures = gate.figures()
    assert figures.frames == 30 and figures.overlapping == 0 and figures.held_s > 0
    # Every hold ended a stretch: 31 stretches, none empty of medians, counts add up.
    assert len(slot.record.intervals) == 31
    summary = slot.record.stats.summary()
    assert summary is not None and summary.count == sum(
        c for _m, c in slot.record.stretch_medians_ns
    )
    # The untimed inferences after each frame (one at least, then until REWARM_NS has
    # passed) are counted for energy, not in the latency figures.
    untimed = slot.record.untimed_completions
    assert untimed >= 30
    assert backend.calls == summary.count + untimed + session.config.warmup
    assert (
        sum(count for _bucket, count in slot.record.timeline.buckets()) == summary.count + untimed
    )


def test_a_runner_not_at_a_boundary_in_time_is_not_waited_for() -> None:
    gate = FrameGate(wait_s=0.01)
    gate.runner_active(True)  # a runner that never reaches a boundary
    assert gate.hold() is False
    gate.release()
    gate.runner_active(False)
    assert gate.hold() is True  # nobody timing: granted at once, not counted
    figures = gate.figures()
    assert (figures.frames, figures.overlapping) == (1, 1)


def test_the_warning_names_backends_whose_p99_frames_could_move() -> None:
    figures = GateFigures(frames=10, overlapping=10, held_s=0, ui_cpu_s=0.3, ui_cpu_share=0.05)
    # 30 ms of CPU per frame beside a 100 ms p99 (30 %) matters; beside a 2 s one it does not.
    sentences = observer_warnings(figures, {"slow": 100.0, "slower": 2000.0})
    assert len(sentences) == 1 and "slow was being timed" in sentences[0]
    quiet = GateFigures(frames=10, overlapping=0, held_s=1, ui_cpu_s=0.3, ui_cpu_share=0.05)
    assert observer_warnings(quiet, {"slow": 100.0}) == []


async def test_dashboard_snapshots_say_what_the_view_cost(tmp_path: object) -> None:
    """The dashboard's frames go through the gate and its snapshots carry the observer
    figures; a headless session's carry none."""
    from pathlib import Path

    from anetui.report.results_json import to_json
    from anetui.ui.app import make_app
    from tests.test_ui import config, until

    app = make_app(config(Path(str(tmp_path)), "double-ok"))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(
            pilot, lambda: app.session is not None and app.session.gate.figures().frames >= 2
        )
        assert app.session is not None
        document = to_json(app.session.snapshot())
        await pilot.press("q")
    observer = document["observer"]
    assert observer["view"] == "dashboard" and observer["frames"] >= 2
    assert observer["frames_overlapping_timed"] <= observer["frames"]
    assert observer["ui_cpu_s"] >= 0 and observer["switch_interval_us"] == 50.0
    spec = ModelSpec(name="none", kind="none", input_shape=(1,))
    headless = Session(small_config(backends=("double-ok",)), spec)
    headless.prepare()
    headless.run()
    assert to_json(headless.snapshot())["observer"] is None
