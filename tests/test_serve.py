"""`anetui --serve` without a browser: the served command, the usage rules, and a page
on loopback (test_serve_browser.py loads it in Chromium)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from anetui.ui.serve import public_url, served_arguments, served_command
from tests.conftest import anetui_cmd
from tests.test_prometheus import free_port


@pytest.mark.parametrize(
    ("argv", "served"),
    [
        (["--serve"], []),
        (["--serve", "--port", "8001", "--backends", "torch-cpu"], ["--backends", "torch-cpu"]),
        (["--backends=onnx-cpu", "--host=0.0.0.0", "--serve", "--port=9"], ["--backends=onnx-cpu"]),
        (
            ["--power", "replay:a b.plist", "--serve", "--host", "::1"],
            ["--power", "replay:a b.plist"],
        ),
    ],
)
def test_the_served_command_is_anetui_minus_serve(argv: list[str], served: list[str]) -> None:
    assert served_arguments(argv) == served
    command = served_command(argv)
    assert command.startswith(f"{sys.executable} -m anetui")
    assert "--serve" not in command and "--port" not in command


def test_public_url() -> None:
    assert public_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert public_url("::1", 8000) == "http://[::1]:8000"
    assert public_url("0.0.0.0", 8000) == f"http://{socket.getfqdn()}:8000"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--serve", "--metrics", "127.0.0.1:9464"], "--metrics with --serve"),
        (["--serve", "doctor"], "--serve serves the dashboard: give no command"),
        (["--serve", "--port", "0"], "0 is not in the range"),
        (["--port", "8001"], "--port goes with --serve"),
    ],
)
def test_serve_usage_errors(args: list[str], says: str) -> None:
    done = subprocess.run(anetui_cmd(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_a_bad_option_fails_before_serving() -> None:
    done = subprocess.run(
        anetui_cmd("--serve", "--input-shape", "1,x"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1  # an input error, the project's code for it
    assert "bad input shape" in done.stderr and "Serving" not in done.stdout


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            anetui_cmd("--serve", "--port", str(port)), capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert f"anetui: error: cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_answers_http_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        anetui_cmd("--serve", "--port", str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    listening: list[str] = []
    try:
        page = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    page = response.read().decode()
                    listening = [
                        c.laddr.ip
                        for c in psutil.Process(server.pid).net_connections("inet")
                        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
                    ]
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
    assert "<div>anetui</div>" in page  # the page's title
    assert f"ws://127.0.0.1:{port}/ws" in page and "textual-terminal" in page
    assert listening == ["127.0.0.1"]  # loopback only, by default
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()
