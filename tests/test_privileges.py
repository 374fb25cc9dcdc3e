"""Privilege drop in a real child process (the tests run as root here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json, os
from anetui import privileges
before = privileges.current().state
after = privileges.drop_to_sudo_user()
print(json.dumps({"before": before, "after": after.state, "uid": os.getuid(), "euid": os.geteuid(),
                  "gid": os.getgid(), "groups": os.getgroups(), "home": os.environ.get("HOME")}))
try:
    os.setuid(0)
    print("REGAINED ROOT")
except PermissionError:
    pass
"""


def run_child(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "REGAINED ROOT" not in out.stdout
    return json.loads(out.stdout.splitlines()[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drop_to_the_sudo_user_is_permanent() -> None:
    result = run_child({"SUDO_UID": "65534", "SUDO_GID": "65534"})
    assert result["before"] == "root" and result["after"] == "dropped"
    assert result["uid"] == result["euid"] == 65534 and result["gid"] == 65534
    assert 0 not in result["groups"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be meaningful")
def test_without_sudo_nothing_changes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.splitlines()[0])
    assert result["after"] == "root" and result["uid"] == 0
