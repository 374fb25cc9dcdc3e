"""What every post-training quantization shares: the calibration inputs, their identity in
cache keys, and the result type.

No dataset ships with anetui, and none is downloaded: calibration uses a fixed number of
inputs drawn like the benchmark's own (the same generator, standard normal fp32) from the
seeds after the benchmark input's (``INPUT_SEED + 1`` …), so the timed input itself is
never one of them. A user may give a folder of ``.npy``/``.npz`` arrays instead. Either way
the results say what the quantized model was calibrated on: agreement with fp32 is what
anetui measures, accuracy on real data is not.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anetui.errors import AnetuiError
from anetui.models.cache import Cache, file_digest, make_key
from anetui.models.convert.common import Build, cached_conversion
from anetui.models.spec import INPUT_SEED, ModelSpec

#: Calibration inputs drawn when the user gives none: enough for min/max and histogram
#: observers on a single-input model, few enough to calibrate in seconds.
CALIBRATION_SAMPLES = 16
#: What every result calibrated on random inputs says (a backend note and a warning).
RANDOM_NOTE = (
    "calibrated on random inputs: agreement with fp32 is measured here, accuracy on real "
    "data is not"
)
#: The most arrays read from a calibration folder.
MAX_USER_SAMPLES = 256


class QuantizationError(AnetuiError):
    """The model could not be quantized; one line for the user."""


@dataclass(frozen=True)
class Calibration:
    """The inputs a quantizer observes, what they are, and their identity for cache keys."""

    samples: tuple[np.ndarray, ...]
    #: "random" or the folder given.
    source: str
    #: JSON-able identity of the samples (their seeds, or the folder's digest).
    key: dict[str, Any]
    note: str

    @property
    def is_random(self) -> bool:
        return self.source == "random"


def one_float_input(spec: ModelSpec) -> None:
    """Models with one float input only (images): calibrating several named inputs (token
    ids, masks) is not done yet, and is refused in one line rather than guessed."""
    if len(spec.inputs) > 1 or (spec.inputs and not spec.inputs[0].dtype.startswith("float")):
        listed = ", ".join(f"{i.name} {i.dtype}" for i in spec.inputs)
        raise QuantizationError(
            f"quantization calibrates models with one float input for now; this one has {listed}"
        )


def random_calibration(spec: ModelSpec, count: int = CALIBRATION_SAMPLES) -> Calibration:
    """``count`` inputs shaped and drawn like ``spec``'s benchmark input (standard normal
    fp32), from the seeds INPUT_SEED + 1 … INPUT_SEED + count: never the timed input."""
    one_float_input(spec)
    seeds = range(INPUT_SEED + 1, INPUT_SEED + 1 + count)
    samples = tuple(
        np.random.default_rng(seed).standard_normal(spec.input_shape, dtype=np.float32)
        for seed in seeds
    )
    return Calibration(
        samples,
        "random",
        {"source": "random", "generator": "standard_normal", "seeds": [seeds[0], seeds[-1]]},
        RANDOM_NOTE,
    )


def folder_calibration(spec: ModelSpec, folder: Path) -> Calibration:
    """Every array in ``folder``'s ``.npy`` and ``.npz`` files (sorted by name), each one
    input of exactly the benchmark's shape, as fp32."""
    one_float_input(spec)
    if not folder.is_dir():
        raise QuantizationError(f"--calibration {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
    samples: list[np.ndarray] = []
    for path in files:
        try:
            if path.suffix == ".npy":
                arrays = [np.load(path, allow_pickle=False)]
            else:
                with np.load(path, allow_pickle=False) as archive:
                    arrays = [archive[name] for name in sorted(archive.files)]
        except (OSError, ValueError) as exc:
            raise QuantizationError(f"--calibration: cannot read {path.name}: {exc}") from None
        for array in arrays:
            if tuple(array.shape) != tuple(spec.input_shape):
                raise QuantizationError(
                    f"--calibration: {path.name} holds an array of shape {tuple(array.shape)}, "
                    f"not the input's {tuple(spec.input_shape)}"
                )
            if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
                raise QuantizationError(f"--calibration: {path.name} is not finite numbers")
            samples.append(np.ascontiguousarray(array, dtype=np.float32))
    if not samples:
        raise QuantizationError(f"--calibration {folder}: no .npy or .npz arrays in it")
    samples = samples[:MAX_USER_SAMPLES]
    return Calibration(
        tuple(samples),
        str(folder),
        {"source": "folder", "digest": file_digest(folder), "count": len(samples)},
        f"calibrated on {len(samples)} inputs from {folder}: agreement with fp32 is measured "
        "here, accuracy on real data is not",
    )


def calibration_for(spec: ModelSpec, folder: Path | None) -> Calibration:
    """The user's folder when given, else random inputs drawn like the benchmark's."""
    return folder_calibration(spec, folder) if folder is not None else random_calibration(spec)


@dataclass(frozen=True)
class Quantized:
    """A quantized artefact (a hit in the cache or just made) and how it was made.

    seconds: the lookup, or the whole quantization on a miss (s), reported as compile_s.
    """

    path: Path
    cached: bool
    seconds: float
    scheme: str
    #: What the calibration was, for the results ("" for a weight-only scheme).
    calibration_note: str
    method: str
    notes: tuple[str, ...] = field(default=())
    #: The model's input name where the runtime needs it (a Core ML package's).
    input_name: str | None = None

    def describe(self) -> str:
        """'quantized (int8, …) in 4.1 s' or '… from the cache'."""
        how = "from the cache" if self.cached else f"in {self.seconds:.1f} s"
        return f"quantized {self.scheme} with {self.method}, {how}"


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """The block's writes to ``sys.stdout``/``sys.stderr`` go to a buffer: NNCF draws rich
    progress bars on stdout (which would land inside `bench --json -` output) and
    coremltools tqdm bars on stderr, per layer."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def cached_quantization(
    kind: str,
    fields: dict[str, Any],
    artefact: str,
    is_valid: Callable[[Path], bool],
    build: Build,
    *,
    scheme: str,
    calibration: Calibration | None,
    method: str,
    cache: Cache | None,
    progress: Callable[[str], None] | None,
    doing: str,
) -> Quantized:
    """``artefact`` from the cache of ``kind`` under a key of ``fields`` + the scheme + the
    calibration's identity, or quantized now by ``build`` and stored (atomically)."""
    key = make_key(
        {
            **fields,
            "quantization": scheme,
            "calibration": calibration.key if calibration is not None else None,
        }
    )
    meta = {
        "scheme": scheme,
        "method": method,
        "calibration": calibration.source if calibration is not None else None,
    }
    got = cached_conversion(
        cache or Cache(kind),
        key,
        artefact,
        is_valid,
        lambda: (build, meta),
        progress=progress,
        doing=doing,
    )
    return Quantized(
        got.path,
        got.hit,
        got.seconds(),
        scheme,
        calibration.note if calibration is not None else "",
        method,
    )


def size_bytes(path: Path) -> int:
    """The bytes of a file, or of every file in a folder (a package)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
