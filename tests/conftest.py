from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# At most two OpenMP threads per torch process, whatever the machine's core count: the
# suite starts several processes at once, and no test depends on the number (a test that
# needs a thread count sets it).
os.environ.setdefault("OMP_NUM_THREADS", "2")
# What rich and Textual read from the environment would change text and snapshots.
for _name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"):
    os.environ.pop(_name, None)
# Run as `sudo make test`, SUDO_UID would make every command (and the dashboard under
# Pilot, in this very process) drop root to that user part-way through the suite. Tests
# of the sudo path set these variables themselves, for their own child processes.
for _name in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"):
    os.environ.pop(_name, None)

# Property tests draw the same examples on every run (a fresh CI machine has no example
# database, and a suite must not pass or fail by chance); ANETUI_EXPLORE=1 draws new
# ones, to look for bugs rather than to gate a change.
settings.register_profile(
    "deterministic", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("explore" if os.environ.get("ANETUI_EXPLORE") == "1" else "deterministic")

REPO = Path(__file__).resolve().parent.parent
#: A small torchvision model and input: real torch, a fraction of a second per run.
SMALL_MODEL = "mobilenet_v3_small"
SMALL_SHAPE = (1, 3, 64, 64)


@pytest.fixture(scope="session")
def small_spec():  # type: ignore[no-untyped-def]
    from anetui.models.resolve import resolve_model

    return resolve_model(SMALL_MODEL, input_shape=SMALL_SHAPE)


def anetui_cmd(*args: str) -> list[str]:
    """The installed CLI, run as a real subprocess with this interpreter."""
    return [sys.executable, "-m", "anetui", *args]


@pytest.fixture
def fake_powermetrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An executable path running tests/fake_powermetrics.py (a real subprocess) with this
    interpreter; FAKE_PM_* variables set by the test steer it.

    The launcher starts powermetrics only as root (the real one needs it); the stand-in
    does not, so in this process the root check answers as under sudo, whoever runs the
    tests. (test_powermetrics_source.py checks the refusal without root.)"""
    wrapper = tmp_path / "powermetrics"
    stand_in = Path(__file__).parent / "fake_powermetrics.py"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {stand_in} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAKE_PM_ARGV", str(tmp_path / "argv.jsonl"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return str(wrapper)


@pytest.fixture
def macos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the test as on an Apple-silicon Mac (tests/macos.py says what that changes)."""
    from tests import macos as personality

    return personality.apply(monkeypatch, tmp_path / "macos")


# -- converter tests: one cache per test module, shared by its tests -------------------
@pytest.fixture(scope="module")
def cache_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conversion cache kept for the module's tests (a conversion costs seconds)."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-cache")


@pytest.fixture
def isolated_cache(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's cache, and never the user's: ANETUI_CACHE_DIR points at it."""
    monkeypatch.setenv("ANETUI_CACHE_DIR", str(cache_root))
    return cache_root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny exported program (.pt2): converts in seconds, not a whole torchvision model."""
    from tests.tiny_export import save_tiny_export

    return save_tiny_export(tmp_path_factory.mktemp("tiny"))
