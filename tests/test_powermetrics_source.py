"""The powermetrics launcher driving a real subprocess: tests/fake_powermetrics.py."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

import pytest

from anetui.power.base import NeedsRoot, SourceState, Unavailable
from anetui.power.powermetrics import (
    POWERMETRICS,
    PowermetricsSource,
    WindowChain,
    choose_samplers,
    supported_samplers,
)
from anetui.power.powermetrics_parse import parse_bytes

HERE = Path(__file__).parent
GPU_RECORDING = (
    HERE / "data/powermetrics/m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist"
)


@pytest.fixture
def fake(fake_powermetrics: str) -> str:
    return fake_powermetrics


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): check its state.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


async def collect(source: PowermetricsSource, limit: int | None = None) -> list:
    out = []
    async for sample in source:
        out.append(sample)
        if limit is not None and len(out) >= limit:
            break
    return out


def test_samplers_come_from_the_help_text() -> None:
    help_text = (
        HERE / "data/powermetrics/m1_macmini9-1_macos11-2_powermetrics_help.txt"
    ).read_text()
    known = supported_samplers(help_text)
    assert {"cpu_power", "gpu_power", "thermal", "bandwidth"} <= known and "ane_power" not in known
    assert choose_samplers(help_text) == ["cpu_power", "gpu_power", "thermal"]
    newer = help_text.replace("    gpu_power ", "    ane_power         ane power\n    gpu_power ")
    assert choose_samplers(newer) == ["cpu_power", "gpu_power", "ane_power", "thermal"]
    assert choose_samplers(None) == ["cpu_power", "gpu_power", "thermal"]


def test_availability_reasons(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform != "darwin":
        assert PowermetricsSource().available().reason == "powermetrics is macOS only"
    assert PowermetricsSource(executable="/nonexistent/pm").available().reason == (
        "/nonexistent/pm not found"
    )
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    source = PowermetricsSource(executable=fake)
    assert source.available().reason == "needs root: run `sudo anetui`"
    with pytest.raises(NeedsRoot):
        asyncio.run(source.start())
    assert source.state == SourceState.NEEDS_ROOT


def test_windows_arrive_as_recorded_then_the_exit_is_lost(fake: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[list, PowermetricsSource]:
        source = PowermetricsSource(interval_ms=250, executable=fake)
        await source.start()
        assert source.state == SourceState.RUNNING
        samples = await collect(source)
        await source.aclose()
        return samples, source

    samples, source = asyncio.run(scenario())
    expected, _ = parse_bytes(GPU_RECORDING.read_bytes())
    assert [s.rails_mj for s in samples] == [w.rails_mj for w in expected]
    assert [s.elapsed_ns for s in samples] == [w.elapsed_ns for w in expected]
    assert all(a.t_end_ns <= b.t_end_ns for a, b in itertools.pairwise(samples))
    assert (
        source.state == SourceState.LOST
        and source.reason == "powermetrics exited with code 0: no message"
    )
    runs = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    assert runs[0] == ["--help"]
    assert runs[1] == ["--samplers", "cpu_power,gpu_power,thermal", "-i", "250", "-f", "plist"]


def test_a_crash_mid_run_becomes_lost_with_the_last_error(
    fake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PM_END", "crash")

    async def scenario() -> tuple[list, PowermetricsSource]:
        source = PowermetricsSource(executable=fake)
        samples = await collect(source)  # starts it on first iteration
        await source.aclose()
        return samples, source

    samples, source = asyncio.run(scenario())
    assert len(samples) >= 1 and len(samples) < 5  # the windows that were complete
    assert source.state == SourceState.LOST
    assert source.reason == (
        "powermetrics exited with code 3: powermetrics: unable to read the SMC (fake crash)"
    )


def test_closing_a_running_source_reaps_the_child(
    fake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PM_END", "loop")

    async def scenario() -> tuple[int, PowermetricsSource, int]:
        source = PowermetricsSource(executable=fake)
        await source.start()
        assert source.pid is not None
        samples = await collect(source, limit=7)  # more than one pass of the recording
        await source.aclose()
        await source.aclose()  # idempotent
        return source.pid, source, len(samples)

    pid, source, n = asyncio.run(scenario())
    assert n == 7
    assert not alive(pid)
    assert source.state == SourceState.STOPPED


def test_a_child_that_ignores_sigterm_is_killed(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PM_END", "hang")
    monkeypatch.setenv("FAKE_PM_IGNORE_TERM", "1")

    async def scenario() -> int:
        source = PowermetricsSource(executable=fake)
        await source.start()
        await collect(source, limit=5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await source.aclose()
        waited = loop.time() - started
        # It waited for SIGTERM to work (never less than the grace period: the child
        # ignores it), then SIGKILL ended it (checked below: the child is gone). How
        # much longer than the grace period that took depends on the machine's load.
        assert waited > 1.9
        assert source.pid is not None
        return source.pid

    assert not alive(asyncio.run(scenario()))


def test_start_failure_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # past the root check, as under sudo
    not_executable = tmp_path / "powermetrics"
    not_executable.write_text("not a program")
    source = PowermetricsSource(executable=str(not_executable))
    with pytest.raises(Unavailable, match="cannot start powermetrics"):
        asyncio.run(source.start())
    assert POWERMETRICS == "/usr/bin/powermetrics"


#: Every recorded `powermetrics --help` (tests/data/powermetrics/*_help.txt) and the
#: samplers anetui must ask of it. A new recording needs a row here.
HELP_EXPECTED = {
    # macOS 11.2, M1 Mac mini: no ane_power sampler yet (cpu_power prints the ANE line).
    "m1_macmini9-1_macos11-2_powermetrics_help.txt": ["cpu_power", "gpu_power", "thermal"],
}


def recorded_help_texts() -> list[Path]:
    return sorted((HERE / "data/powermetrics").glob("*_help.txt"))


def test_every_recorded_help_text_has_an_expectation() -> None:
    assert recorded_help_texts(), "no recorded powermetrics --help"
    assert sorted(p.name for p in recorded_help_texts()) == sorted(HELP_EXPECTED)


@pytest.mark.parametrize("help_file", recorded_help_texts(), ids=lambda p: p.name)
def test_the_launcher_asks_only_for_the_samplers_a_recorded_help_lists(
    help_file: Path, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started twice, the source asks --help once and requests exactly what it lists."""
    monkeypatch.setenv("FAKE_PM_HELP", str(help_file))
    expected = HELP_EXPECTED[help_file.name]
    assert set(expected) <= supported_samplers(help_file.read_text())

    async def start_and_close() -> list[str]:
        source = PowermetricsSource(interval_ms=100, executable=fake)
        await source.start()
        await collect(source, limit=1)
        await source.aclose()
        return source.samplers

    assert asyncio.run(start_and_close()) == expected
    assert asyncio.run(start_and_close()) == expected
    runs = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    assert runs == [
        ["--help"],
        ["--samplers", ",".join(expected), "-i", "100", "-f", "plist"],
        ["--samplers", ",".join(expected), "-i", "100", "-f", "plist"],
    ]


def test_windows_chain_on_the_streams_own_clock() -> None:
    """Several documents in one read, then a read two seconds late: the windows lie end
    to end from their own elapsed_ns, anchored once by the first read."""
    windows, _ = parse_bytes(GPU_RECORDING.read_bytes())
    chain = WindowChain()
    first = chain.place(windows[:3], arrived_ns=10_000_000_000)
    late = chain.place(windows[3:4], arrived_ns=20_000_000_000)
    placed = first + late
    assert first[-1].t_end_ns == 10_000_000_000  # the first read anchors its last window
    assert all(a.t_end_ns == b.t_start_ns for a, b in itertools.pairwise(placed))
    assert [s.elapsed_ns for s in placed] == [w.elapsed_ns for w in windows[:4]]
    assert late[0].t_end_ns == 10_000_000_000 + windows[3].elapsed_ns  # not 20 s: no drift


def test_a_busy_event_loop_does_not_move_windows(
    fake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two documents per write; the consumer blocks its loop after the first window, so
    # the next read finds several documents waiting.
    monkeypatch.setenv("FAKE_PM_CHUNK", str(len(GPU_RECORDING.read_bytes()) // 2 + 1))
    monkeypatch.setenv("FAKE_PM_DELAY", "0.1")

    async def scenario() -> list:
        source = PowermetricsSource(interval_ms=250, executable=fake)
        await source.start()
        samples = []
        async for sample in source:
            samples.append(sample)
            if len(samples) == 1:
                time.sleep(0.5)  # a redraw holding the loop: the reads come late
        await source.aclose()
        return samples

    samples = asyncio.run(scenario())
    expected, _ = parse_bytes(GPU_RECORDING.read_bytes())
    assert len(samples) == len(expected)
    assert [s.elapsed_ns for s in samples] == [w.elapsed_ns for w in expected]
    assert all(a.t_end_ns == b.t_start_ns for a, b in itertools.pairwise(samples))
