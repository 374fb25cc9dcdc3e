"""The error type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class AnetuiError(Exception):
    """An expected failure (bad input, unavailable backend …); str() is one line."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
