"""Keyed, atomically written cache entries in the user's cache directory.

Converted models (Core ML packages, ONNX files) are expensive to make and cheap to key:
an entry's key hashes everything that changes the result (model, input shape,
precision, converter and torch versions), so a changed key is a miss and never a stale
hit. An entry is a directory holding the artefact and ``meta.json``; it is built in a
temporary directory beside it and renamed into place, so a crash leaves no half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from anetui import privileges
from anetui.errors import AnetuiError, one_line
from anetui.models.spec import ModelSpec

#: Bump when the layout of an entry changes.
CACHE_FORMAT = 1


def cache_root() -> Path:
    """$ANETUI_CACHE_DIR, else the platform's user cache folder (platformdirs) + /anetui.

    It is always the folder of the user this process runs as: after the privilege drop
    the invoking user's; while still root (``--keep-root``) root's own, never the
    invoking user's, whose folder root must not write into (a symlink there could point
    anywhere). Nothing in the cache is ever chowned.
    """
    if os.environ.get("ANETUI_CACHE_DIR"):
        return Path(os.environ["ANETUI_CACHE_DIR"])
    path = Path(platformdirs.user_cache_dir("anetui", appauthor=False))
    if privileges.sudo_user() is None:
        return path
    # Root under sudo: sudo may have kept the user's HOME or XDG_CACHE_HOME (macOS keeps
    # HOME), which would point platformdirs into the user's folder. Use root's home.
    root_home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    try:
        return root_home / path.relative_to(Path.home())
    except ValueError:  # an XDG_CACHE_HOME outside HOME: the default place
        return root_home / ".cache" / "anetui"


def file_digest(path: Path) -> str:
    """sha256 of a file or of a directory's files (names and bytes), for cache keys."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_fields(spec: ModelSpec) -> dict[str, Any]:
    """What identifies a model and its input in any conversion key."""
    from anetui.versions import package_version

    model = {"name": spec.name} if spec.path is None else {"file": model_digest(spec.path)}
    return {
        "model": model,
        "kind": spec.kind,
        "input_shape": list(spec.input_shape),
        # Every input's name, shape, dtype and values: two input specs never share a key.
        "inputs": [i.as_dict() for i in spec.inputs],
        "torch": package_version("torch"),
    }


def model_digest(path: Path) -> str:
    """A model file's digest, with its side files: an ONNX file's external data
    (``<name>.data`` or whatever its tensors name) and an OpenVINO IR's ``.bin``."""
    digest = file_digest(path)
    extra = sorted(
        p for p in path.parent.glob(f"{path.name}.*") if p.is_file() and p.suffix == ".data"
    )
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        extra.append(path.with_suffix(".bin"))
    for side in extra:
        digest = hashlib.sha256((digest + file_digest(side)).encode()).hexdigest()
    return digest


def make_key(fields: Mapping[str, Any]) -> str:
    """A short stable key from a JSON-able mapping (sorted, so order never matters)."""
    text = json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Cache:
    """Entries ``<root>/<kind>/<key>/`` each with an artefact and ``meta.json``."""

    def __init__(self, kind: str, root: Path | None = None) -> None:
        self.dir = (root or cache_root()) / kind

    def entry(self, key: str) -> Path:
        return self.dir / key

    def meta(self, key: str) -> dict[str, Any]:
        """An entry's meta.json ({} if unreadable)."""
        try:
            data = json.loads((self.entry(key) / "meta.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lookup(self, key: str, artefact: str, valid: Callable[[Path], bool]) -> Path | None:
        """The artefact of a complete, valid entry, or None (a corrupt one is removed)."""
        entry = self.entry(key)
        target = entry / artefact
        if not (entry / "meta.json").is_file() or not target.exists():
            if entry.exists():
                shutil.rmtree(entry, ignore_errors=True)
            return None
        try:
            json.loads((entry / "meta.json").read_text())
            if valid(target):
                return target
        except Exception:  # any failure to read the entry means "rebuild it"
            pass
        shutil.rmtree(entry, ignore_errors=True)
        return None

    def store(
        self,
        key: str,
        artefact: str,
        build: Callable[[Path], Mapping[str, Any]],
        meta: Mapping[str, Any],
    ) -> Path:
        """Build ``artefact`` into a temporary directory, then rename it into place.

        ``build`` writes the artefact at the path it is given and returns what it learnt
        (e.g. the conversion method), which joins ``meta`` in ``meta.json``.
        """
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.dir))
        except OSError as exc:  # e.g. a cache folder (or a symlink) the user cannot write
            raise AnetuiError(
                f"cannot write the cache at {self.dir}: {one_line(exc)} "
                "(ANETUI_CACHE_DIR chooses another folder)"
            ) from None
        try:
            learnt = build(staging / artefact)
            record = {**meta, **learnt}
            (staging / "meta.json").write_text(json.dumps(record, indent=2) + "\n")
            entry = self.entry(key)
            if entry.exists():
                shutil.rmtree(entry)
            staging.rename(entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return entry / artefact
