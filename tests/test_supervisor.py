"""The root supervisor of powermetrics: no child outlives anetui, whatever ends it.

Real processes throughout: a parent Python process starts the powermetrics source on
tests/fake_powermetrics.py in its *silent* mode (it never writes, so SIGPIPE would never
end it), then the test ends the parent with a real signal and checks that the stand-in
and its supervisor are gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anetui.power import supervisor
from tests.conftest import REPO

PARENT = """
import asyncio, json, os, sys
from anetui import privileges
from anetui.power.powermetrics import PowermetricsSource

async def main():
    source = PowermetricsSource(executable=sys.argv[1])
    if not os.environ.get("TEST_DROP"):
        os.geteuid = lambda: 0  # the stand-in needs no root: pass the launcher's check
    await source.start()
    if os.environ.get("TEST_DROP"):
        privileges.drop_to_sudo_user()
    print(json.dumps({"supervisor": source._proc.supervisor_pid, "uid": os.getuid()}), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def gone_within(pid: int, seconds: float) -> bool:
    """Waits for an event (bounded), asserting nothing about how long it took."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def start_parent(fake: str, tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], dict, int]:
    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, fake],
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "FAKE_PM_END": "silent",
            "FAKE_PM_PIDFILE": str(pidfile),
            **env,
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    info = json.loads(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, "the stand-in never started"
        time.sleep(0.05)
    return parent, info, int(pidfile.read_text())


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_no_child_outlives_a_parent_ended_by_a_signal(
    fake_powermetrics: str, tmp_path: Path, signum: int
) -> None:
    parent, info, child = start_parent(fake_powermetrics, tmp_path)
    try:
        assert alive(child) and alive(info["supervisor"])
        parent.send_signal(signum)
        parent.wait(10)
        assert gone_within(child, 15), "the silent powermetrics stand-in was orphaned"
        assert gone_within(info["supervisor"], 15)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_a_dropped_parent_killed_leaves_no_root_child(
    fake_powermetrics: str, tmp_path: Path
) -> None:
    """After the privilege drop the parent cannot signal its root children at all."""
    parent, info, child = start_parent(
        fake_powermetrics,
        tmp_path,
        TEST_DROP="1",
        SUDO_UID="65534",
        SUDO_GID="65534",
        FAKE_PM_IGNORE_TERM="1",  # the supervisor must escalate to SIGKILL by itself
    )
    try:
        assert info["uid"] == 65534
        with pytest.raises(PermissionError):
            _signal_as(65534, child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert gone_within(child, 15)
        assert gone_within(info["supervisor"], 15)
    finally:
        parent.kill()
        parent.wait()


def _signal_as(uid: int, pid: int) -> None:
    """What the dropped parent faces: signalling a root process as the user fails."""
    result = subprocess.run(
        [sys.executable, "-c", f"import os; os.setuid({uid}); os.kill({pid}, 0)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "PermissionError" in result.stderr:
        raise PermissionError(result.stderr.strip().splitlines()[-1])


def test_spawn_relays_output_and_reports_the_exit_code(tmp_path: Path) -> None:
    handle = supervisor.spawn(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert handle.stdout.read() == b"out\n"
    assert handle.stderr.read() == b"err\n"
    assert handle.wait(15) == 3
    handle.terminate()


def test_closing_the_life_pipe_stops_a_silent_child() -> None:
    handle = supervisor.spawn(["/bin/sleep", "60"])
    assert alive(handle.pid)
    handle.terminate()
    assert handle.wait(15) == 128 + signal.SIGTERM
    assert not alive(handle.pid)


def test_a_child_that_cannot_start_is_an_error_now(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("echo hi\n")
    with pytest.raises(supervisor.SpawnError, match="Permission denied"):
        supervisor.spawn([str(script)])
