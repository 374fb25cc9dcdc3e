"""Runs the real `anetui` CLI with the test doubles registered as backends, for tmux
checks of the dashboard in a real terminal (tests/test_ui_tmux.py):

    python -m tests.dashboard_launcher [--crash-after N] -- [anetui arguments]

``--crash-after N`` makes the status line raise on its Nth redraw, standing in for a bug
in the dashboard (the CLI must then restore the terminal, say one line naming a log file
and exit 1).
"""

from __future__ import annotations

import sys

from anetui.backends import registry
from tests import doubles

DOUBLES = {
    "double-ok": doubles.JitterBackend,
    "double-slow": doubles.SlowPrepareBackend,
    "double-fails": doubles.FailingBackend,
}


def register() -> None:
    for backend_id, cls in DOUBLES.items():
        registry.REGISTRY[backend_id] = doubles.describe_double(backend_id, cls)


def crash_after(calls: int) -> None:
    from anetui.ui.widgets import status

    original = status.StatusBar.show
    count = 0

    def show(self: status.StatusBar, *args: object, **kwargs: object) -> None:
        nonlocal count
        count += 1
        if count >= calls:
            raise ValueError("a bug in the dashboard (tests.dashboard_launcher)")
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    status.StatusBar.show = show  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--crash-after"]:
        crash_after(int(argv[1]))
        argv = argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    register()
    from anetui.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
