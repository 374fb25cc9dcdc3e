"""The shape every converter shares: look the artefact up in its :class:`Cache`, and only
on a miss load the PyTorch model, convert it and store the result. What is a converter's
own (its checks, its key, its build, its metadata, its errors) stays in its module.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError, one_line
from anetui.models.cache import Cache
from anetui.models.spec import ModelSpec
from anetui.models.torch_load import load_torch_model

#: Writes the artefact at the path it is given and returns what it learnt, which joins
#: the metadata in ``meta.json`` (see :meth:`Cache.store`).
Build = Callable[[Path], Mapping[str, Any]]


@dataclass(frozen=True)
class Cached:
    """An artefact found in the cache (``hit``) or just built and stored."""

    path: Path
    hit: bool
    #: ``time.perf_counter()`` just before the lookup.
    started: float

    def seconds(self) -> float:
        """Seconds since the lookup began; read it once the converter's result is complete."""
        return time.perf_counter() - self.started


def cached_conversion(
    cache: Cache,
    key: str,
    artefact: str,
    is_valid: Callable[[Path], bool],
    prepare: Callable[[], tuple[Build, Mapping[str, Any]]],
    *,
    progress: Callable[[str], None] | None,
    doing: str,
) -> Cached:
    """The artefact of the valid entry ``key`` in ``cache``, or of one converted and stored now.

    A hit costs the lookup alone (:meth:`Cache.lookup`, which removes a corrupt entry). On
    a miss ``doing`` goes to ``progress``, ``prepare()`` loads what the conversion needs
    and returns the build and the metadata, and :meth:`Cache.store` runs the build in a
    temporary directory and renames it into place. The clock starts before the lookup
    (not before the key, whose file digest may take a while) and stops when the caller
    reads :meth:`Cached.seconds`.
    """
    started = time.perf_counter()
    found = cache.lookup(key, artefact, is_valid)
    if found is not None:
        return Cached(found, True, started)
    if progress:
        progress(doing)
    build, meta = prepare()
    return Cached(cache.store(key, artefact, build, meta), False, started)


def torch_model_and_input(spec: ModelSpec) -> tuple[Any, Any]:
    """The PyTorch module for ``spec`` and its benchmark inputs as a tuple of tensors in
    the declared order (imports torch)."""
    import torch

    return load_torch_model(spec), tuple(torch.from_numpy(a) for a in spec.make_inputs().values())


def torch_output_names(model: Any, spec: ModelSpec, examples: tuple[Any, ...]) -> list[str]:
    """The names a conversion gives the model's outputs (one forward pass, no grad)."""
    import torch

    from anetui.models.torch_load import output_names, tensors_to_numpy

    with torch.no_grad():
        count = len(tensors_to_numpy(model(*examples)))
    return output_names(model, spec, count)


@contextlib.contextmanager
def failures_as(error: type[AnetuiError], what: str) -> Iterator[None]:
    """Any exception in the block raised again as ``error("<what>: <its first line>")``,
    without the original chained: the user gets one line, not a converter's traceback."""
    try:
        yield
    except Exception as exc:
        raise error(f"{what}: {one_line(exc)}") from None


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """The logger ``name`` at ERROR for the block: a library's chatter on stderr that
    says nothing about the run (onnxscript's constant folding, torchao's pytree Enums)."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)
