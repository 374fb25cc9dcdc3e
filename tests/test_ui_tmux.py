"""The dashboard as a person sees it: the real `anetui` in a real terminal (tmux), started
as a subprocess. Quit and help in the 80x24 key row, a first p50 on screen, a number key
that starts onnx-cpu, and the terminal given back after q, SIGTERM, a crash, and a quit
while a backend is still preparing.

Nothing here asserts on wall-clock time: the bounds below are generous timeouts for a
slow shared machine (a smoke check); the first-number time itself is measured by
``benchmarks/first_number.py``. Needs tmux (`apt-get install tmux`; `make test` installs
it), else the tests skip saying so.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, SMALL_MODEL

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux: apt-get install tmux"),
    pytest.mark.skipif(sys.platform == "darwin", reason="Linux terminal checks"),
]


@dataclass
class Pane:
    """One tmux server (its own socket) with one window running a command."""

    socket: str

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J")

    def flags(self) -> dict[str, str]:
        names = ("alternate_on", "mouse_any_flag", "mouse_button_flag", "cursor_flag")
        values = self.tmux("display-message", "-p", " ".join(f"#{{{n}}}" for n in names))
        return dict(zip(names, values.split(), strict=True))

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = re.search(pattern, self.screen())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never showed; the screen:\n{self.screen()}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def app_pid(self) -> int:
        shell = psutil.Process(int(self.tmux("display-message", "-p", "#{pane_pid}")))
        children = [p for p in shell.children(recursive=True) if "python" in p.name()]
        assert children, "the dashboard process is not running"
        return children[0].pid


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Pane]]:
    panes: list[Pane] = []

    def start(argv: list[str], size: tuple[int, int], env: dict[str, str] | None = None) -> Pane:
        pane = Pane(f"anetui-test-{uuid.uuid4().hex[:8]}")
        settings = {
            "PYTHONPATH": str(REPO),
            "ANETUI_CACHE_DIR": os.environ.get("ANETUI_CACHE_DIR", ""),
            **(env or {}),
        }
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items() if v)
        command = (
            f"cd {shlex.quote(str(REPO))} && env -u COLUMNS -u LINES {exports} {shlex.join(argv)}; "
            "echo EXIT=$?; echo MODES: $(stty -a | grep -oE -- '-?(icanon|echo) '); sleep 600"
        )
        width, height = str(size[0]), str(size[1])
        pane.tmux("new-session", "-d", "-x", width, "-y", height, "sh", "-c", command)
        pane.tmux("resize-window", "-x", width, "-y", height)  # no client: say it again
        panes.append(pane)
        return pane

    yield start
    for pane in panes:
        subprocess.run(["tmux", "-L", pane.socket, "kill-server"], capture_output=True, timeout=30)


def dashboard(*args: str) -> list[str]:
    return [sys.executable, "-m", "anetui", *args]


def with_doubles(*args: str, crash_after: int | None = None) -> list[str]:
    crash = ["--crash-after", str(crash_after)] if crash_after else []
    return [sys.executable, "-m", "tests.dashboard_launcher", *crash, "--", *args]


def assert_terminal_given_back(pane: Pane, screen: str) -> None:
    flags = pane.flags()
    assert flags["alternate_on"] == "0", flags  # back on the shell's screen
    assert flags["mouse_any_flag"] == "0" and flags["mouse_button_flag"] == "0", flags
    assert flags["cursor_flag"] == "1", flags  # the cursor is shown
    modes = screen.split("MODES:", 1)[1].split()
    assert "icanon" in modes and "echo" in modes, modes  # cooked mode, not raw


def test_at_80x24_quit_and_help_show_a_first_p50_comes_and_onnx_cpu_has_a_key(
    terminal: Callable[..., Pane],
) -> None:
    pane = terminal(
        dashboard(
            "--backends",
            "torch-cpu,onnx-cpu,torch-mps",
            "--model",
            SMALL_MODEL,
            "--input-shape",
            "1,3,64,64",
            "--power",
            "none",
        ),
        (80, 24),
    )
    started = time.monotonic()
    pane.wait_for(r"torch-cpu", 120)
    last_line = pane.screen().rstrip("\n").splitlines()[-1]
    assert last_line.startswith("q quit  ? help"), last_line
    # Smoke check with a generous bound: the number itself is benchmarks/first_number.py's.
    pane.wait_for(r"p50 \d", 180)
    print(f"first p50 on screen after {time.monotonic() - started:.1f} s (80x24, smoke check)")
    assert re.search(r"^│ 2 +onnx-cpu", pane.screen(), re.M), pane.screen()  # a number key
    pane.keys("2")
    pane.wait_for(r"onnx-cpu: (loading|exporting|warming up)|onnx-cpu · p50", 60)
    pane.keys("q")
    screen = pane.wait_for(r"EXIT=0\s+MODES:.*icanon", 60).string
    assert_terminal_given_back(pane, screen)


def test_sigterm_gives_the_terminal_back(terminal: Callable[..., Pane]) -> None:
    pane = terminal(with_doubles("--backends", "double-ok", "--power", "none"), (100, 30))
    pane.wait_for(r"double-ok( ref)? +running", 120)
    assert pane.flags()["alternate_on"] == "1"  # the dashboard is on the alternate screen
    os.kill(pane.app_pid(), 15)
    screen = pane.wait_for(r"EXIT=143\s+MODES:.*icanon", 30).string
    assert_terminal_given_back(pane, screen)


def test_a_crash_is_one_line_with_a_log_file_and_exit_1(
    terminal: Callable[..., Pane], tmp_path: Path
) -> None:
    pane = terminal(
        with_doubles("--backends", "double-ok", "--power", "none", crash_after=4),
        (100, 30),
        env={"ANETUI_CACHE_DIR": str(tmp_path)},
    )
    screen = pane.wait_for(r"EXIT=1\s+MODES:.*icanon", 120).string
    said = re.search(
        r"anetui: error: the dashboard crashed: ValueError: a bug in the dashboard "
        r"\(tests\.dashboard_launcher\) \(traceback in (\S+)\)",
        screen.replace("\n", ""),
    )
    assert said, screen
    assert "Traceback (most recent call last)" not in screen  # one line, not a traceback
    log = Path(said.group(1))
    assert log.parent == tmp_path / "logs"
    assert "Traceback (most recent call last)" in log.read_text()
    assert_terminal_given_back(pane, screen)


def test_quit_while_a_backend_prepares_returns_at_once(terminal: Callable[..., Pane]) -> None:
    # double-slow "exports" for 120 s; the shell must be back long before that.
    pane = terminal(with_doubles("--backends", "double-slow", "--power", "none"), (100, 30))
    pane.wait_for(r"double-slow +exporting", 120)
    asked = time.monotonic()
    pane.keys("q")
    screen = pane.wait_for(r"EXIT=0\s+MODES:.*icanon", 60).string
    print(f"back at the shell {time.monotonic() - asked:.2f} s after q (smoke check)")
    assert_terminal_given_back(pane, screen)


def test_a_decoder_shows_time_to_first_token_and_tokens_per_second(
    terminal: Callable[..., Pane],
) -> None:
    pane = terminal(
        dashboard(
            "--backends",
            "torch-cpu",
            "--model",
            "llama-tiny",
            "--prompt-len",
            "16",
            "--gen-len",
            "8",
            "--power",
            "none",
        ),
        (160, 48),
    )
    # The list's columns, a row with figures in them, and the per-token histogram's title.
    pane.wait_for(r"key +backend +state +TTFT ms +tok/s", 120)
    screen = pane.wait_for(r"torch-cpu ref +running +\d+\.\d+ +\d+\.\d", 180).string
    assert re.search(r"torch-cpu · TTFT \d+\.\d+ ms · \d+\.\d tok/s · per token", screen), screen
    assert "energy per token" in screen
    pane.keys("q")
    assert_terminal_given_back(pane, pane.wait_for(r"EXIT=0\s+MODES:.*icanon", 60).string)
