"""The core must not pull in the UI or, at import time, any runtime."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "anetui.cli",
    "anetui.config",
    "anetui.backends",
    "anetui.backends.base",
    "anetui.backends.probes",
    "anetui.runner",
    "anetui.stats",
    "anetui.session",
    "anetui.report",
    "anetui.environment",
    "anetui.bench",
    "anetui.doctor",
    "anetui.models",
]


def test_importing_the_core_loads_neither_textual_nor_torch() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert set(CORE) <= loaded
    assert not {
        m for m in loaded if m.split(".")[0] in {"textual", "torch", "torchvision", "coremltools"}
    }
