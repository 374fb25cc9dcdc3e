"""Privilege drop in a real child process (the tests run as root here), on Linux and with
the os functions macOS lacks removed (tests/macos.py). A child that dropped root cannot
import from root's home (where this machine's Python lives), so each child imports what it
needs before the drop."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tests.macos import CHILD_PRELUDE

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
NOBODY = {"SUDO_UID": "65534", "SUDO_GID": "65534"}

CHILD = """
import json, os, sys
from anetui import privileges
before = privileges.current().state
{tamper}
after = privileges.drop_to_sudo_user()
print(json.dumps({{"before": before, "after": after.state, "uid": os.getuid(),
                  "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
                  "groups": os.getgroups(), "home": os.environ.get("HOME"),
                  "has_setresuid": hasattr(os, "setresuid")}}))
for regain in (os.setuid, os.seteuid, os.setgid):
    try:
        regain(0)
        print("REGAINED ROOT")
    except PermissionError:
        pass
"""


def run_child(
    env: dict[str, str], *, macos: bool, tamper: str = ""
) -> subprocess.CompletedProcess[str]:
    code = (CHILD_PRELUDE if macos else "") + CHILD.format(tamper=tamper)
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def dropped(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    assert "REGAINED ROOT" not in proc.stdout
    return json.loads(proc.stdout.splitlines()[0])


@needs_root
@pytest.mark.parametrize("macos", [False, True], ids=["linux", "macos"])
def test_drop_to_the_sudo_user_is_permanent(macos: bool) -> None:
    result = dropped(run_child(NOBODY, macos=macos))
    assert result["has_setresuid"] is not macos  # the personality really removed it
    assert result["before"] == "root" and result["after"] == "dropped"
    assert result["uid"] == result["euid"] == 65534
    assert result["gid"] == result["egid"] == 65534
    assert 0 not in result["groups"]
    assert result["home"] == pwd.getpwuid(65534).pw_dir  # from the passwd entry
    assert result["home"] != os.environ.get("HOME")  # (Debian's: /nonexistent)


@needs_root
def test_groups_cut_to_the_limit_when_initgroups_refuses() -> None:
    tamper = "def refuse(*a):\n    raise OSError(22, 'Invalid argument')\nos.initgroups = refuse\n"
    result = dropped(run_child(NOBODY, macos=True, tamper=tamper))
    assert result["after"] == "dropped" and result["groups"] == [65534]


@needs_root
def test_groups_that_cannot_be_set_stop_before_anything_changes() -> None:
    tamper = (
        "def refuse(*a):\n"
        "    raise PermissionError(1, 'Operation not permitted')\n"
        "os.initgroups = os.setgroups = refuse\n"
        "try:\n"
        "    privileges.drop_to_sudo_user()\n"
        "except privileges.PrivilegeDropError as exc:\n"
        "    print('REFUSED', exc, os.getuid(), os.getgid())\n"
        "    sys.exit(3)\n"
    )
    proc = run_child(NOBODY, macos=True, tamper=tamper)
    assert proc.returncode == 3
    assert proc.stdout.strip() == (
        "REFUSED cannot drop root to uid 65534: setting its groups failed: "
        "[Errno 1] Operation not permitted 0 0"
    )


@needs_root
@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (
            "def refuse(uid):\n    raise PermissionError(1, 'Operation not permitted')\n"
            "os.setuid = refuse\n",
            "dropping root to uid 65534/gid 65534 failed: [Errno 1] Operation not permitted",
        ),
        (
            "os.setuid = lambda uid: None\n",  # a setuid that silently does nothing
            "dropping root to uid 65534/gid 65534 is incomplete: uid/euid are 0/0",
        ),
    ],
    ids=["setuid-fails", "setuid-ignored"],
)
def test_a_half_drop_ends_the_process(tamper: str, why: str) -> None:
    proc = run_child(NOBODY, macos=True, tamper=tamper)
    assert proc.returncode == 1
    assert proc.stdout == ""  # nothing after the drop ran
    assert proc.stderr == f"anetui: error: {why}; exiting rather than running half-dropped\n"


@needs_root
def test_without_sudo_nothing_changes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(tamper="")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.splitlines()[0])
    assert result["after"] == "root" and result["uid"] == 0


POWER_CHILD = """
import asyncio, contextlib, io, json, os
import rich.console
from anetui.cli import power
from anetui.power.powermetrics import PowermetricsSource
rich.console.Console(stderr=True).print("[dim]warm-up: rich imports what it prints with[/]")
source = PowermetricsSource(interval_ms=250, executable={fake!r})
code = asyncio.run(power._live(source, True, 3, None, False))
print(json.dumps({{"code": code, "uid": os.getuid(), "samplers": source.samplers,
                  "pid": source.pid}}))
"""


@needs_root
def test_powermetrics_launcher_then_drop_on_macos(fake_powermetrics: str, tmp_path: Path) -> None:
    """`anetui power` as under sudo on a Mac: powermetrics spawned as root, then the drop,
    then the samples read through the pipe by the unprivileged process."""
    code = CHILD_PRELUDE + POWER_CHILD.format(fake=fake_powermetrics)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **NOBODY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    samples = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(lines[-1])
    assert len(samples) == 3 and all(s["rails_mj"] for s in samples)
    assert summary["code"] == 0 and summary["uid"] == 65534
    assert summary["samplers"] == ["cpu_power", "gpu_power", "thermal"]  # macOS 11 help
    runs = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    assert runs == [
        ["--help"],
        ["--samplers", "cpu_power,gpu_power,thermal", "-i", "250", "-f", "plist"],
    ]


def test_a_standard_library_only_root_can_reach_is_detected() -> None:
    """Behind a mode-700 folder (root's home on this machine) the invoking user could not
    import after the drop: the drop then preloads the model runtimes first."""
    import tempfile

    from anetui.privileges import _readable_by_others

    # Not under pytest's tmp_path: pytest makes its own base folder mode 700.
    with tempfile.TemporaryDirectory() as name:
        base = Path(name)
        base.chmod(0o755)
        open_lib = base / "open" / "lib"
        open_lib.mkdir(parents=True)
        closed_lib = base / "closed" / "lib"
        closed_lib.mkdir(parents=True)
        (base / "closed").chmod(0o700)
        assert _readable_by_others(open_lib)
        assert not _readable_by_others(closed_lib)
        assert not _readable_by_others(base / "missing")
