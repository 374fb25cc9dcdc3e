"""The error type the CLI turns into a one-line message, and the "can it run here" answer
that backends and power sources share. The bottom layer: imports nothing of anetui.
"""

from __future__ import annotations

from dataclasses import dataclass


class AnetuiError(Exception):
    """An expected failure (bad input, unavailable backend …); str() is one line."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend or power source can run here and, when not, why in one line."""

    ok: bool
    reason: str | None = None

    @classmethod
    def yes(cls) -> Availability:
        return cls(True, None)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)
