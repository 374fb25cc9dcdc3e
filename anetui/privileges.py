"""sudo handling: start what needs root, then become the invoking user for the rest.

Under ``sudo``, the root-only power sources are started first (powermetrics spawned,
RAPL files opened); then the process drops to ``SUDO_UID``/``SUDO_GID`` with that user's
supplementary groups, before any model is loaded or any file written, so results belong
to the user and no model code runs as root. ``--keep-root`` opts out.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from anetui.errors import AnetuiError


@dataclass(frozen=True)
class Privileges:
    """What the process runs as: 'user', 'root' or 'dropped' (root, now the sudo user)."""

    state: str
    uid: int
    user: str | None = None


_dropped: Privileges | None = None


def current() -> Privileges:
    if _dropped is not None:
        return _dropped
    uid = os.geteuid()
    return Privileges("root" if uid == 0 else "user", uid)


def sudo_user() -> tuple[int, int] | None:
    """(uid, gid) of the user who ran sudo, or None when not under sudo as root."""
    if os.geteuid() != 0:
        return None
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if not uid or not gid:
        return None
    try:
        parsed = int(uid), int(gid)
    except ValueError:
        raise AnetuiError(f"SUDO_UID/SUDO_GID are not numbers: {uid!r}/{gid!r}") from None
    return None if parsed[0] == 0 else parsed


def sudo_user_home() -> Path | None:
    """The invoking user's home while running as root under sudo, else None."""
    target = sudo_user()
    if target is None:
        return None
    try:
        return Path(pwd.getpwuid(target[0]).pw_dir)
    except KeyError:
        return None


def drop_to_sudo_user() -> Privileges:
    """Become the sudo user for good (groups, gid, then uid); no-op when not under sudo."""
    target = sudo_user()
    if target is None:
        return current()
    uid, gid = target
    try:
        entry = pwd.getpwuid(uid)
        name, home = entry.pw_name, entry.pw_dir
    except KeyError:
        name, home = None, None
    groups = os.getgrouplist(name, gid) if name else [gid]
    # Order matters: groups and gid need root, so they go before the uid.
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() != uid or os.getuid() != uid:
        raise AnetuiError("privilege drop failed: still running as root")
    if home:
        # Caches (model conversions, torch's hub dir) then go to the user's home.
        os.environ["HOME"] = home
    if name:
        os.environ["USER"] = os.environ["LOGNAME"] = name
    global _dropped
    _dropped = Privileges("dropped", uid, name)
    return _dropped
