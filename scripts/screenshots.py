"""Regenerate screenshots/*.svg (and PNGs, where headless Chromium is installed) from a
real run on this machine: every backend that runs here on MobileNetV2 (the current
registry, whatever it holds), power replayed from the 24-window M1 recording (GPU
ramping 0 → 7.6 W: power that varies), two backends measured so that speed and energy
ratios show. Captured at 120x36 and 160x48, plus the help screen. The layout is fixed;
the numbers are whatever this machine measures. Run: make screenshots
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
from anetui.ui.app import AnetuiApp, make_app

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
RECORDING = (
    ROOT / "tests/data/powermetrics/m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt"
)
SIZES = ((120, 36), (160, 48))
#: Seconds each of the two measured backends runs before the capture.
RUN_S = 12.0


async def wait_for(pilot: object, condition: object, timeout_s: float) -> None:
    waited = 0.0
    while not condition():  # type: ignore[operator]
        await pilot.pause(0.5)  # type: ignore[attr-defined]
        waited += 0.5
        if waited > timeout_s:
            raise SystemExit("screenshots: the dashboard never got there (is the machine busy?)")


def measured(app: AnetuiApp, backend_id: str) -> bool:
    snap = app.snapshot
    return snap is not None and any(
        b.id == backend_id and b.summary is not None and b.summary.count > 20 for b in snap.backends
    )


async def capture(size: tuple[int, int], with_help: bool) -> list[Path]:
    config = RunConfig(
        iterations=None,
        duration_s=None,
        power=f"replay:{RECORDING}",
        replay_speed=4.0,  # windows 4x as often: >= 30 per backend, for an energy interval
        out_dir=Path(tempfile.mkdtemp()),
    )
    monitor, _ = monitor_for(config.power, config.interval_ms, config.replay_speed)
    assert monitor is not None  # replay:FILE loops: the power keeps varying
    app = make_app(config, monitor)
    written = []
    name = f"dashboard-{size[0]}x{size[1]}.svg"
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: bool(app.keyed) and measured(app, app.keyed[0]), 300)
        await pilot.pause(RUN_S)
        second = app.keyed[-1]  # the last runnable one: ONNX Runtime where it is installed
        await pilot.press(str(min(len(app.keyed), 9)))
        await wait_for(pilot, lambda: measured(app, second), 300)
        await pilot.pause(RUN_S)
        written.append(Path(app.save_screenshot(name, str(OUT))))
        if with_help:
            await pilot.press("question_mark")
            await pilot.pause(0.5)
            written.append(Path(app.save_screenshot("help.svg", str(OUT))))
            await pilot.press("escape")
        await pilot.press("q")
    return written


def to_png(svg: Path, size: tuple[int, int]) -> Path | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    png = svg.with_suffix(".png")
    window = f"{size[0] * 11 + 40},{size[1] * 24 + 60}"  # Textual's SVG cell size
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
                f"--window-size={window}",
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
    for old in ("dashboard.svg", "dashboard.png"):  # the single shot of earlier versions
        (OUT / old).unlink(missing_ok=True)
    for i, size in enumerate(SIZES):
        for svg in asyncio.run(capture(size, with_help=i == 0)):
            png = to_png(svg, size)
            print(svg.relative_to(ROOT), png.relative_to(ROOT) if png else "(no chromium: no PNG)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
