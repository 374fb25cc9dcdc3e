"""Files written atomically (temporary file + rename): results, reports, snapshots."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from anetui.core.results import Snapshot
from anetui.errors import AnetuiError
from anetui.report.markdown import to_markdown
from anetui.report.results_json import to_json


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and os.replace."""
    path = Path(path)
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


def write_json(path: Path, snapshot: Snapshot) -> None:
    # allow_nan=False: NaN is not JSON; a non-finite value here is a bug to surface.
    write_atomic(path, json.dumps(to_json(snapshot), indent=2, allow_nan=False) + "\n")


def write_markdown(path: Path, snapshot: Snapshot) -> None:
    write_atomic(path, to_markdown(snapshot))


def write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet: written aside, then hard-linked into place
    (which fails rather than replace an existing file)."""
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
