"""Regenerate screenshots/*.svg (and PNGs, where headless Chromium is installed) from a
real run on this machine: torch-cpu then torch-cpu-opt on MobileNetV2, power replayed from
a recorded M4 Max powermetrics stream. Layout is deterministic (160x48); the numbers are
whatever this machine measures. Run: make screenshots
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from anetui.core.config import RunConfig
from anetui.power.registry import monitor_for
from anetui.ui.app import make_app

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
RECORDING = ROOT / "tests/data/powermetrics/m4max_mac16-6_macos15-5_24F74_text_default_samplers.txt"
SIZE = (160, 48)


async def capture() -> list[Path]:
    config = RunConfig(
        backends=("torch-cpu", "torch-cpu-opt", "coreml-ane", "torch-cuda"),
        iterations=None,
        duration_s=None,
        power=f"replay:{RECORDING}",
        replay_speed=5.0,
        out_dir=Path(tempfile.mkdtemp()),
    )
    monitor, _ = monitor_for(config.power, config.interval_ms, config.replay_speed)
    app = make_app(config, monitor)
    written = []
    async with app.run_test(size=SIZE) as pilot:
        while app.active != "torch-cpu":
            await pilot.pause(0.5)
        await pilot.pause(10)
        await pilot.press("2")
        await pilot.pause(12)
        written.append(Path(app.save_screenshot("dashboard.svg", str(OUT))))
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        written.append(Path(app.save_screenshot("help.svg", str(OUT))))
        await pilot.press("escape")
        await pilot.press("q")
    return written


def to_png(svg: Path) -> Path | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    png = svg.with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                "--window-size=1720,1160",
                f"--screenshot={png}",
                svg.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for svg in asyncio.run(capture()):
        png = to_png(svg)
        print(svg.relative_to(ROOT), png.relative_to(ROOT) if png else "(no chromium: no PNG)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
