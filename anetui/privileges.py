"""sudo handling: start what needs root, then become the invoking user for the rest.

Under ``sudo``, the root-only power sources are started first (powermetrics spawned,
RAPL files opened); then the process drops to ``SUDO_UID``/``SUDO_GID`` with that user's
supplementary groups, before any model is loaded or any file written, so results belong
to the user and no model code runs as root. ``--keep-root`` opts out.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import pwd
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

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


class PrivilegeDropError(AnetuiError):
    """The drop to the sudo user failed before anything changed; nothing was dropped."""


#: What the commands that run models import after the drop (and what those import from
#: the standard library at import time): preloaded when the user could not read them.
MODEL_RUNTIMES = ("torch", "torchvision")

#: Standard-library modules that the runtimes (and ``importlib.metadata``, rich, textual)
#: import only when first used: always preloaded when the user could not import them
#: after the drop. Found by running each command (bench over every backend, convert,
#: doctor --deep, the dashboard) and listing the standard-library modules loaded beyond
#: those of this package and torch; tests/test_least_privilege.py runs doctor and report
#: under a simulated sudo with nothing imported beforehand.
LAZY_STDLIB = (
    "concurrent.futures.process",
    "configparser",
    "ctypes.util",
    "email._header_value_parser",
    "email.feedparser",
    "email.headerregistry",
    "email.parser",
    "encodings.raw_unicode_escape",
    "encodings.unicode_escape",
    "getopt",
    "graphlib",
    "importlib.readers",
    "importlib.resources._itertools",
    "importlib.resources.readers",
    "multiprocessing.popen_fork",
    "multiprocessing.queues",
    "multiprocessing.synchronize",
    "pkgutil",
    "tracemalloc",
    "tty",
)


#: Where libraries put their files under a home: pointed at root's own while anetui is
#: root under sudo, and given back to the user by the drop.
_HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
_users_home_variables: dict[str, str] = {}


def use_roots_home() -> None:
    """While root under sudo, let $HOME be root's (and no XDG folder the user's).

    sudo may keep the invoking user's HOME (macOS does) or XDG folders, and libraries
    write under them when imported or used — onnxruntime writes a telemetry id to
    ``$HOME/.cache`` on import — which as root would leave root's files in the user's
    folders (or follow a symlink there anywhere). A no-op when not root under sudo; the
    drop gives the user's values back.
    """
    target = sudo_user()
    if target is None or _users_home_variables:
        return
    for name in _HOME_VARIABLES:
        if name in os.environ:
            _users_home_variables[name] = os.environ.pop(name)
    try:
        os.environ["HOME"] = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        os.environ["HOME"] = "/var/root" if sys.platform == "darwin" else "/root"


def drop_to_sudo_user(preload: tuple[str, ...] = ()) -> Privileges:
    """Become the sudo user for good; a no-op when not running as root under sudo.

    When this interpreter's standard library is not readable by the invoking user (a
    Python installed under root's mode-700 home), the user could not import anything new
    after the drop: first this package's modules, :data:`LAZY_STDLIB` and ``preload``
    (the runtimes a command will use) are imported. Importing an installed package is not
    loading a model; no model file is read before the drop.

    The order is the one both Linux and macOS need: the invoking user's supplementary
    groups (``initgroups``), then ``setgid``, then ``setuid`` — each sets the real,
    effective and saved ids when called as root (POSIX), so no ``setres*id`` is needed
    (macOS has none). Afterwards the drop is checked: every id is the user's and neither
    ``setuid(0)`` nor ``seteuid(0)`` works. Fail closed: an error before anything changed
    raises :class:`PrivilegeDropError`; one after a partial change ends the process with
    a one-line message and exit status 1, since it must never go on half-dropped.
    """
    target = sudo_user()
    if target is None:
        return current()
    uid, gid = target
    # The standard library is where os.py lives (sysconfig would need the platform's
    # build data, and this runs on every sudo start).
    if not _readable_by_others(Path(os.__file__).parent):
        for module in (*LAZY_STDLIB, *_own_modules(), *preload):
            with contextlib.suppress(Exception):  # a missing runtime says so later
                importlib.import_module(module)
        with contextlib.suppress(Exception):  # loads the build data (_sysconfigdata_*)
            sysconfig.get_config_vars()
    try:
        entry = pwd.getpwuid(uid)
        name: str | None = entry.pw_name
        home: str | None = entry.pw_dir
    except KeyError:  # a uid without a passwd entry: its primary group only
        name, home = None, None
    try:
        _set_groups(name, gid)  # setgroups/initgroups change all or nothing
    except OSError as exc:
        raise PrivilegeDropError(
            f"cannot drop root to uid {uid}: setting its groups failed: {exc}"
        ) from None
    try:
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        _abort(f"dropping root to uid {uid}/gid {gid} failed: {exc}")
    problem = _still_privileged(uid, gid)
    if problem:
        _abort(f"dropping root to uid {uid}/gid {gid} is incomplete: {problem}")
    os.environ.update(_users_home_variables)  # the user's XDG folders, as sudo kept them
    if home:
        # Caches (model conversions, torch's hub dir) then go to the user's home.
        os.environ["HOME"] = home
    if name:
        os.environ["USER"] = os.environ["LOGNAME"] = name
    global _dropped
    _dropped = Privileges("dropped", uid, name)
    return _dropped


def _own_modules() -> list[str]:
    """Every module of this package (not ``__main__``, which runs the CLI): importing them
    loads what they import from the standard library, ~0.3 s, only when the user could
    not. None of them does work at import time."""
    import anetui

    return [
        info.name
        for info in pkgutil.walk_packages(anetui.__path__, "anetui.")
        if not info.name.endswith(".__main__")
    ]


def _readable_by_others(path: Path) -> bool:
    """Whether any user can reach ``path`` (o+x on every folder above it, o+r on it):
    the test for "the invoking user can still import from here after the drop"."""
    try:
        if not os.stat(path).st_mode & 0o004:
            return False
        return all(os.stat(folder).st_mode & 0o001 for folder in path.parents)
    except OSError:
        return False


def _set_groups(name: str | None, gid: int) -> None:
    """The invoking user's supplementary groups (with ``gid``), as login would set them."""
    if name is None:
        os.setgroups([gid])
        return
    try:
        os.initgroups(name, gid)
    except OSError:
        # initgroups refused (e.g. more groups than the kernel allows): the same list,
        # cut to the limit (16 on macOS), the primary group first.
        limit = os.sysconf("SC_NGROUPS_MAX")
        limit = limit if limit > 0 else 16
        groups = [gid, *(g for g in os.getgrouplist(name, gid) if g != gid)]
        os.setgroups(groups[:limit])


def _still_privileged(uid: int, gid: int) -> str | None:
    """What is left of root after the drop, or None when nothing is."""
    if (os.getuid(), os.geteuid()) != (uid, uid):
        return f"uid/euid are {os.getuid()}/{os.geteuid()}"
    if (os.getgid(), os.getegid()) != (gid, gid):
        return f"gid/egid are {os.getgid()}/{os.getegid()}"
    getresuid = getattr(os, "getresuid", None)  # Linux has it, macOS has not
    if getresuid is not None and 0 in getresuid():
        return f"saved uid still 0 ({getresuid()})"
    for regain in (os.setuid, os.seteuid):
        try:
            regain(0)
        except PermissionError:
            continue
        return f"{regain.__name__}(0) still works"
    return None


def _abort(message: str) -> NoReturn:
    """Half-dropped is worse than any error: say so and end the process now."""
    sys.stderr.write(f"anetui: error: {message}; exiting rather than running half-dropped\n")
    sys.stderr.flush()
    os._exit(1)
