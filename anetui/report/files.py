"""Files written atomically (temporary file + rename): results, reports, snapshots.

Under sudo with ``--keep-root`` the process is still root, but the paths it writes are
the user's to choose: each file is then written by a forked child that has dropped to
the invoking user, so root never creates or replaces anything in a user-controlled
place (a symlink planted there cannot redirect a root write), and nothing needs chown.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from anetui import privileges
from anetui.core.results import Snapshot
from anetui.errors import AnetuiError, one_line
from anetui.report.markdown import to_markdown
from anetui.report.results_json import to_json


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and os.replace."""
    as_invoking_user(lambda: _write_atomic(Path(path), text), path)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def as_invoking_user(write: Callable[[], None], path: Path) -> None:
    """Run ``write`` here, or, while root under sudo, in a child that first drops to the
    invoking user (the child imports nothing: the parent built the text). Errors come
    back as the same exception types where they are the usual ones."""
    if privileges.sudo_user() is None:
        write()
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop, write, report, exit without running any clean-up
        code = 0
        try:
            os.close(read_end)
            privileges.drop_to_sudo_user()
            write()
        except FileExistsError as exc:
            code, message = 3, one_line(exc)
        except BaseException as exc:
            code, message = 1, one_line(exc)
        if code:
            os.write(write_end, message.encode(errors="replace")[:2000])
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 3:
        raise FileExistsError(message)
    if code:
        raise AnetuiError(f"cannot write {path} as the invoking user: {message or code}")


def append_text(path: Path, text: str) -> None:
    """Append text to path (created if missing): the way a CI job's step summary
    (``$GITHUB_STEP_SUMMARY``) is written, several steps adding to one file."""

    def append() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")

    try:
        as_invoking_user(append, path)
    except OSError as exc:
        raise AnetuiError(f"cannot append to {path}: {one_line(exc)}") from None


def write_json(path: Path, snapshot: Snapshot) -> None:
    # allow_nan=False: NaN is not JSON; a non-finite value here is a bug to surface.
    write_atomic(path, json.dumps(to_json(snapshot), indent=2, allow_nan=False) + "\n")


def write_markdown(path: Path, snapshot: Snapshot) -> None:
    write_atomic(path, to_markdown(snapshot))


def write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet: written aside, then hard-linked into place
    (which fails rather than replace an existing file)."""
    as_invoking_user(lambda: _write_new(path, text), path)


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_snapshot_set(out_dir: Path, snapshot: Snapshot, svg: str | None = None) -> list[Path]:
    """``anetui-YYYYmmdd-HHMMSS[-N].{json,md,svg}`` in out_dir; never overwrites."""
    stamp = snapshot.created.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    contents = {
        ".json": json.dumps(to_json(snapshot), indent=2, allow_nan=False) + "\n",
        ".md": to_markdown(snapshot),
    }
    if svg is not None:
        contents[".svg"] = svg
    for attempt in range(1000):
        base = f"anetui-{stamp}" + (f"-{attempt}" if attempt else "")
        paths = [out_dir / (base + suffix) for suffix in contents]
        if any(p.exists() for p in paths):
            continue
        try:
            for path, text in zip(paths, contents.values(), strict=True):
                write_new(path, text)
        except FileExistsError:
            continue  # another snapshot took this name between the check and the link
        return paths
    raise AnetuiError(f"no free snapshot name in {out_dir}")
