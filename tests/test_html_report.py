"""`--html` pages in a real headless Chromium (Debian's `chromium`): the page renders,
its charts are in the DOM with a size, and nothing is fetched from the network (the
DevTools protocol's network events and the page's own resource timing both say so)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from anetui.report.html import sweep_page
from anetui.report.sweep import sweep_json
from tests.conftest import SMALL_MODEL, anetui_cmd

REPLAY = Path(__file__).parent / "data" / "powermetrics"
RECORDING = REPLAY / "m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_a.plist"

# Its DevTools helpers (start_chromium) need aiohttp and textual-serve: `anetui[serve]`.
browser = pytest.importorskip(
    "tests.test_serve_browser", reason="pip install 'anetui[serve]' (make test does)"
)
aiohttp = pytest.importorskip("aiohttp")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        browser.CHROMIUM is None,
        reason="needs Debian's chromium: apt-get update && apt-get install -y chromium "
        "(`make test` installs it when run as root)",
    ),
]

CHARTS = """(() => [...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect();
  return {kind: s.dataset.chart, width: r.width, height: r.height,
          shapes: s.querySelectorAll('rect, polyline, circle').length};
}))()"""


class Cdp:
    """A DevTools Protocol client that keeps the events arriving between replies."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.ids, self.events = ws, itertools.count(1), []
        self.session: str | None = None

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:
            reply = await asyncio.wait_for(self.ws.receive_json(), 30)
            if reply.get("id") == message_id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})  # type: ignore[no-any-return]
            self.events.append(reply)

    async def until(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(await asyncio.wait_for(self.ws.receive_json(), 30))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


async def open_pages(browser_ws: str, pages: list[Path]) -> list[dict[str, Any]]:
    """Load each file:// page; what was requested, the charts, the title, the resources."""
    seen = []
    async with aiohttp.ClientSession() as http, http.ws_connect(browser_ws, max_msg_size=0) as ws:
        for path in pages:
            tools = Cdp(ws)
            target = await tools.send("Target.createTarget", url="about:blank")
            attached = await tools.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            tools.session = attached["sessionId"]
            await tools.send("Network.enable")
            await tools.send("Page.enable")
            await tools.send("Page.navigate", url=path.as_uri())
            await tools.until("Page.loadEventFired")
            seen.append(
                {
                    "requests": [
                        e["params"]["request"]["url"]
                        for e in tools.events
                        if e.get("method") == "Network.requestWillBeSent"
                    ],
                    "charts": await tools.evaluate(CHARTS),
                    "title": await tools.evaluate("document.title"),
                    "resources": await tools.evaluate(
                        "performance.getEntriesByType('resource').length"
                    ),
                    "text": await tools.evaluate("document.body.innerText"),
                }
            )
            await tools.send("Target.closeTarget", targetId=target["targetId"])
    return seen


def test_bench_sweep_and_report_pages_render_offline_with_their_charts(tmp_path: Path) -> None:
    results, bench_page = tmp_path / "run.json", tmp_path / "bench.html"
    proc = subprocess.run(
        anetui_cmd("bench", "--backends", "torch-cpu", "--model", SMALL_MODEL, "--input-shape",
                   "1,3,32,32", "--threads", "1", "--duration", "1", "--warmup", "1",
                   "--power", f"replay:{RECORDING}", "--speed", "10",
                   "--json", str(results), "--html", str(bench_page)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(results.read_text())
    report_page = tmp_path / "report.html"
    proc = subprocess.run(
        anetui_cmd("report", str(results), str(results), "--html", str(report_page)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bigger = copy.deepcopy(doc)  # a second point, as a sweep over the batch would give
    for backend in bigger["backends"]:
        backend["samples_per_s"] = (backend["throughput_per_s"] or 0) * 2
    page_of_sweep = tmp_path / "sweep.html"
    page_of_sweep.write_text(
        sweep_page(
            sweep_json(
                {"batch_size": [1, 2]}, [({"batch_size": 1}, doc), ({"batch_size": 2}, bigger)]
            )
        )
    )
    pages = [bench_page, page_of_sweep, report_page]
    for page in pages:
        text = page.read_text()
        # Nothing to load: no URL, no src/href, no CSS url(), no script.
        assert not re.search(r"https?://|\bsrc=|\bhref=|url\(|<script|@import", text), page

    proc_browser, ws_url = browser.start_chromium(tmp_path / "profile")
    try:
        bench, sweep, report = asyncio.run(open_pages(ws_url, pages))
    finally:
        proc_browser.terminate()
        proc_browser.wait(timeout=10)
    for seen, page in zip((bench, sweep, report), pages, strict=True):
        assert seen["requests"] == [page.as_uri()], seen["requests"]  # the page, nothing else
        assert seen["resources"] == 0
        assert all(c["width"] > 100 and c["height"] > 50 and c["shapes"] for c in seen["charts"])
    kinds = [c["kind"] for c in bench["charts"]]
    # The latency histogram, energy per inference, power per rail over time.
    assert kinds == ["histogram", "bars", "lines"]
    assert bench["title"] == f"anetui benchmark: {SMALL_MODEL}"
    for needed in ("Latency histograms", "Energy", "Achieved work rate", "GFLOP/s",
                   "Environment and configuration", "torch-cpu"):  # fmt: skip
        assert needed in bench["text"]
    for warning in doc["warnings"]:
        assert warning in bench["text"]
    assert [c["kind"] for c in sweep["charts"]][:2] == ["lines", "lines"]  # the curves
    assert len(report["charts"]) >= 2 and "Across files" in report["text"]
