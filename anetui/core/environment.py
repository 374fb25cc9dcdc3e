"""The environment a measurement was taken in, stated in every result.

Versions come from package metadata, so collecting them imports no runtime.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from anetui import __version__
from anetui.versions import package_version


def cpu_model() -> str:
    """The CPU's marketing name, or the architecture when it cannot be read."""
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["/usr/sbin/sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def privileges() -> str:
    """'root', 'user', or 'dropped' (started as root under sudo, now the sudo user)."""
    from anetui import privileges as privs

    return privs.current().state


def collect(threads: int | None = None) -> dict[str, object]:
    """OS, machine, CPU, Python, runtime versions, thread count and privileges."""
    return {
        "os": f"{platform.system()} {platform.release()}",
        "os_version": platform.mac_ver()[0] or platform.version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "torchvision": package_version("torchvision"),
        "coremltools": package_version("coremltools"),
        "onnxruntime": package_version("onnxruntime"),
        "openvino": package_version("openvino"),
        "executorch": package_version("executorch"),
        "anetui": __version__,
        "threads": threads,
        "privileges": privileges(),
    }
