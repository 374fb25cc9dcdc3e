"""`anetui --serve` in a real browser: headless Chromium (Debian's `chromium`) loads the
served page; the dashboard appears there with its backend list.

textual-serve's page draws the terminal with xterm.js onto a canvas, so the text is not
in the DOM by default. The test drives Chromium over the DevTools protocol (aiohttp,
which textual-serve brings), keeps a handle on the page's xterm.js ``Terminal`` (a
conditional breakpoint whose condition stores ``this.terminal`` and never pauses), reads
its screen buffer, saves a screenshot into the test's tmp dir, then turns on xterm.js's
own screen-reader mode and reads the rows it writes into the DOM.

Loopback only, bounded in time; the server's process group and Chromium are stopped on
every exit path. `make test` installs chromium when run as root with apt-get.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SMALL_MODEL, SMALL_SHAPE, anetui_cmd
from tests.test_prometheus import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
aiohttp = pytest.importorskip("aiohttp", reason="pip install 'anetui[serve]' (make test does)")
textual_serve = pytest.importorskip(
    "textual_serve", reason="pip install 'anetui[serve]' (make test does)"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs Debian's chromium: apt-get update && apt-get install -y chromium "
        "(`make test` installs it when run as root)",
    ),
]

#: Where textual-serve's page builds its terminal; the breakpoint sits on this call.
TERMINAL_OPEN = "this.terminal.open(e)"
READ_SCREEN = """(() => {
  const t = window.__anetuiTerminal;
  if (!t) return null;
  const b = t.buffer.active, rows = [];
  for (let i = 0; i < b.length; i++) {
    const l = b.getLine(i);
    if (l) rows.push(l.translateToString(true));
  }
  return rows.join("\\n");
})()"""
READ_DOM = """(() => {
  const tree = document.querySelector(".xterm-accessibility-tree");
  return tree ? tree.innerText : null;
})()"""


def terminal_open_location() -> tuple[int, int]:
    """(line, column), 0-based, of TERMINAL_OPEN in the installed textual-serve bundle."""
    bundle = Path(textual_serve.__file__).parent / "static" / "js" / "textual.js"
    text = bundle.read_text(encoding="utf-8")
    index = text.find(TERMINAL_OPEN)
    assert index >= 0, f"{bundle} no longer has {TERMINAL_OPEN!r}: update this test"
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)


class DevTools:
    """A minimal Chrome DevTools Protocol client over one flattened page session."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.session: str | None = None

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:  # events arrive in between; only the reply matters here
            reply = await asyncio.wait_for(self.ws.receive_json(), 30)
            if reply.get("id") == message_id:
                assert "error" not in reply, (method, reply["error"])
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def start_chromium(profile: Path) -> tuple[subprocess.Popen[str], str]:
    """Headless Chromium with a DevTools port of its choosing; (process, ws URL)."""
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
            "--disable-gpu",
            # Shared memory in /tmp, not /dev/shm: a container's default /dev/shm (64 MB)
            # is too small for Chromium, whose renderer then crashes.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # keeps reading so Chromium never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, "chromium exited before listening"
            continue
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    raise AssertionError("chromium never printed its DevTools address")


async def look_at_page(browser_ws: str, url: str, shot: Path) -> tuple[str, str]:
    """Load ``url``, wait for the dashboard; (screen buffer text, DOM text)."""
    line, column = terminal_open_location()
    async with aiohttp.ClientSession() as http, http.ws_connect(browser_ws, max_msg_size=0) as ws:
        tools = DevTools(ws)
        target = await tools.send("Target.createTarget", url="about:blank")
        attached = await tools.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        tools.session = attached["sessionId"]
        await tools.send("Page.enable")
        await tools.send("Runtime.enable")
        await tools.send("Debugger.enable")
        await tools.send(
            "Debugger.setBreakpointByUrl",
            urlRegex=r"textual\.js$",
            lineNumber=line,
            columnNumber=column,
            condition="(window.__anetuiTerminal = this.terminal, false)",
        )
        await tools.send("Page.navigate", url=url)
        screen = ""
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            screen = await tools.evaluate(READ_SCREEN) or ""
            if "torch-cpu" in screen and "backend" in screen:
                break
            await asyncio.sleep(1)
        shot.write_bytes(
            base64.b64decode((await tools.send("Page.captureScreenshot", format="png"))["data"])
        )
        await tools.evaluate("window.__anetuiTerminal.options.screenReaderMode = true")
        dom = ""
        for _ in range(20):
            dom = await tools.evaluate(READ_DOM) or ""
            if "torch-cpu" in dom:
                break
            await asyncio.sleep(0.5)
        await tools.send("Debugger.disable")
        return screen, dom


def test_served_dashboard_renders_in_chromium(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    args = [
        "--serve", "--port", str(port), "--backends", "torch-cpu", "--model", SMALL_MODEL,
        "--input-shape", ",".join(map(str, SMALL_SHAPE)), "--power", "none",
    ]  # fmt: skip
    server_log = (tmp_path / "serve.log").open("w")
    # Its own process group: the served dashboards are the server's children.
    server = subprocess.Popen(
        anetui_cmd(*args), stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    chromium: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        assert 'class="textual-terminal"' in page and f"ws://127.0.0.1:{port}/ws" in page
        chromium, browser_ws = start_chromium(tmp_path / "profile")
        shot = tmp_path / "served-dashboard.png"
        screen, dom = asyncio.run(look_at_page(browser_ws, url, shot))
    finally:
        if chromium is not None and chromium.poll() is None:
            chromium.terminate()
            try:
                chromium.wait(10)
            except subprocess.TimeoutExpired:
                chromium.kill()
                chromium.wait()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the dashboards it started
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        server_log.close()
    log = (tmp_path / "serve.log").read_text()
    assert "torch-cpu" in screen and "backend" in screen, f"screen:\n{screen}\nlog:\n{log}"
    assert "torch-cpu" in dom, f"DOM text:\n{dom}"
    assert "anetui --backends torch-cpu" in log.replace("\n", " ")  # minus --serve/--port
    assert "--serve" not in log.split("Serving", 1)[1].split("on http", 1)[0]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
