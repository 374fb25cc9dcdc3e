"""The command line: one module per command; :mod:`anetui.cli.main` holds the group."""

from anetui.cli.main import cli, main

__all__ = ["cli", "main"]
