"""Cheap availability probes: file and platform checks, no runtime imports.

`anetui doctor` and the registry call these without importing torch; a backend's own
``available()`` then confirms with the runtime once it is selected.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from pathlib import Path

from anetui.backends.base import Availability


def package_version(name: str) -> str | None:
    """Installed version of a distribution, read from metadata (imports nothing)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_installed() -> Availability:
    if importlib.util.find_spec("torch") is None:
        return Availability.no("torch not installed (pip install torch)")
    return Availability.yes()


def torch_cuda() -> Availability:
    base = torch_installed()
    if not base.ok:
        return base
    version = package_version("torch") or ""
    if version.endswith("+cpu"):
        return Availability.no(f"torch {version} is a CPU-only build")
    if sys.platform == "darwin":
        return Availability.no("no NVIDIA GPU (CUDA does not run on macOS)")
    if not _nvidia_gpu_present():
        return Availability.no("no NVIDIA GPU (no NVIDIA driver or device found)")
    return Availability.yes()


def _nvidia_gpu_present() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    return Path("/dev/nvidia0").exists()


def torch_mps() -> Availability:
    base = torch_installed()
    if not base.ok:
        return base
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return Availability.no("MPS needs macOS on Apple silicon")
    return Availability.yes()


def macos_version() -> tuple[int, ...] | None:
    """(major, minor[, patch]) on macOS, else None."""
    if sys.platform != "darwin":
        return None
    text = platform.mac_ver()[0]
    try:
        return tuple(int(part) for part in text.split(".") if part)
    except ValueError:
        return None


def coreml(minimum_macos: tuple[int, ...] = (12,), unit: str = "Core ML") -> Availability:
    """Core ML prediction: coremltools installed, on macOS new enough for ``unit``."""
    if importlib.util.find_spec("coremltools") is None:
        return Availability.no("coremltools not installed (pip install 'anetui[coreml]')")
    version = macos_version()
    if version is None:
        return Availability.no("Core ML prediction needs macOS (conversion works here)")
    if version < minimum_macos:
        wanted = ".".join(str(v) for v in minimum_macos)
        return Availability.no(f"{unit} needs macOS {wanted}+")
    return Availability.yes()


def onnxruntime_installed() -> Availability:
    if importlib.util.find_spec("onnxruntime") is None:
        return Availability.no("onnxruntime not installed (pip install 'anetui[onnx]')")
    return Availability.yes()


def onnx_provider(provider: str, hint: str) -> Availability:
    """onnxruntime installed and offering ``provider`` (imports onnxruntime, not torch)."""
    base = onnxruntime_installed()
    if not base.ok:
        return base
    import onnxruntime

    if provider not in onnxruntime.get_available_providers():
        return Availability.no(f"onnxruntime has no {provider} here: {hint}")
    return Availability.yes()
