"""Versions of installed packages and of macOS, read without importing anything heavy."""

from __future__ import annotations

import importlib.metadata
import platform
import sys


def package_version(name: str) -> str | None:
    """Installed version of a distribution, read from metadata (imports nothing)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def macos_version() -> tuple[int, ...] | None:
    """(major, minor[, patch]) on macOS, else None."""
    if sys.platform != "darwin":
        return None
    text = platform.mac_ver()[0]
    try:
        return tuple(int(part) for part in text.split(".") if part)
    except ValueError:
        return None
