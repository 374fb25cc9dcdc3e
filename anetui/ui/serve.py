"""`anetui --serve`: the dashboard in a browser, through textual-serve.

textual-serve answers HTTP with a page holding a terminal emulator (xterm.js) and, for
each browser session that connects, starts the served command in a subprocess whose
screen it streams over a websocket. The served command is this same `anetui` with the
user's options minus ``--serve``, ``--host`` and ``--port``, so each browser gets the
dashboard the terminal would have shown.

Loopback by default. Another host serves the dashboard — which starts models and, under
sudo, a root-only power source — to anyone who can reach the port, without
authentication or encryption (README, "Many machines").
"""

from __future__ import annotations

import shlex
import socket
import sys
from collections.abc import Sequence

from anetui.errors import AnetuiError, one_line

#: Options of the serving process itself, with whether they take a value.
SERVE_OPTIONS = {"--serve": False, "--host": True, "--port": True}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def served_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` without --serve, --host X, --port X (or their --opt=X forms)."""
    out: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        name, eq, _value = arg.partition("=")
        if name in SERVE_OPTIONS:
            skip_value = SERVE_OPTIONS[name] and not eq
            continue
        out.append(arg)
    return out


def served_command(argv: Sequence[str]) -> str:
    """The shell command textual-serve runs per browser session: this interpreter and
    this anetui, with the user's dashboard options."""
    return shlex.join([sys.executable, "-m", "anetui", *served_arguments(argv)])


def public_url(host: str, port: int) -> str:
    """The URL the page's websocket connects back to: the host as given, or this
    machine's name when serving on every interface (0.0.0.0 or ::)."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve(argv: Sequence[str], host: str, port: int) -> int:
    """Serve the dashboard until Ctrl+C or SIGTERM; returns the exit code."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise AnetuiError(
            "--serve needs textual-serve: pip install 'anetui[serve]' (make run installs it)"
        ) from None
    command = served_command(argv)
    if host not in LOOPBACK_HOSTS:
        print(
            f"anetui: warning: serving the dashboard on {host}:{port}: anyone who can reach "
            "this port can drive it (no authentication, no TLS)",
            file=sys.stderr,
        )
    url = public_url(host, port)
    server = Server(command, host=host, port=port, title="anetui", public_url=url)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, or the host is not this machine's
        raise AnetuiError(f"cannot serve on {host}:{port}: {one_line(exc)}") from None
    return 0
