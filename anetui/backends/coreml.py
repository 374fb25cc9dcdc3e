"""Core ML backends: one converted ML Program, four compute-unit choices.

Prediction needs macOS; everything up to it (conversion, caching, the input) runs
anywhere. ``predict`` blocks until Core ML is done, so wall-clock time around it is the
latency a caller sees; Core ML's own prediction duration, where coremltools offers it
(``MLModel.last_predict_duration_in_nano_seconds``), is recorded beside it. A model
loaded from the compiled cache is a ``CompiledMLModel``, which in coremltools 9.0 has no
such duration (and no path): the path is kept here, and a note says the duration is
missing.

A decoder (``spec.kind == "decoder"``, the generative workload) is converted to a
stateful package (:mod:`anetui.models.convert.coreml_decoder`, macOS 15+) and one
``infer()`` is one greedy generation (:class:`~anetui.backends.coreml_decoder.CoreMLGenerator`);
the backend then offers the contract of :mod:`anetui.backends.generation`.

Lines that only run on macOS are marked ``# macOS only``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anetui.backends.base import (
    BackendDescription,
    BackendError,
    BackendOptions,
    NotAvailableHere,
    PrepareInfo,
)
from anetui.errors import Availability, one_line
from anetui.models.cache import Cache, file_digest
from anetui.models.convert.coreml import (
    COMPUTE_UNITS,
    OUTPUT_NAME,
    ConversionError,
    convert,
    import_coremltools,
)
from anetui.models.spec import DECODER_KIND, ModelSpec
from anetui.versions import macos_version

COMPILED = "compiled.mlmodelc"


class CoreMLBackend:
    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in ("fp16", "fp32"):
            raise BackendError(f"{self.id}: Core ML computes in fp16 or fp32, not {self.dtype}")
        self.compute_unit = COMPUTE_UNITS[self.id.removeprefix("coreml-")]
        self._description = description
        self._model: Any = None
        self._predict: Any = None
        self._inputs: dict[str, np.ndarray] = {}
        self._output_names: tuple[str, ...] = (OUTPUT_NAME,)
        self._has_runtime_duration = False
        #: The compiled model (.mlmodelc) in use, recorded when it is loaded: a
        #: CompiledMLModel cannot say where it came from.
        self._compiled: Path | None = None
        #: The generation loop, when prepared with a decoder (the generative workload).
        self._generator: Any = None
        self._tokens_per_run = 0

    def available(self) -> Availability:
        return self._description.probe()

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        if spec.kind == DECODER_KIND:
            _require_states()
        ct = import_coremltools()
        notes: list[str] = []
        started = time.perf_counter()
        self.phase = "converting"  # shown live; a cached package makes this quick
        try:
            package, input_names, output_names = self._package(spec, notes)
        except ConversionError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        converted = time.perf_counter()
        self.phase = "loading"
        self._output_names = output_names
        try:
            self._model = self._load(ct, package, notes)  # macOS only
        except Exception as exc:
            raise BackendError(f"{self.id} could not load the model: {one_line(exc)}") from None
        loaded = time.perf_counter()
        self._predict = self._model.predict
        if spec.kind == DECODER_KIND:
            self._generator = self._make_generator(spec)
        # MLModel has it; CompiledMLModel (a compiled-cache hit) has not, in coremltools 9.0.
        self._has_runtime_duration = hasattr(self._model, "last_predict_duration_in_nano_seconds")
        if not self._has_runtime_duration and self._generator is None:
            notes.append(
                f"no Core ML prediction duration: {self._model.__class__.__name__} does not "
                "offer it; only wall-clock latency"
            )
        # Built once, outside the timed loop; Core ML's integers are int32.
        if self._generator is None:
            self._inputs = {
                name: array.astype(np.int32) if array.dtype.kind in "biu" else array
                for name, array in zip(input_names, spec.make_inputs().values(), strict=True)
            }
        first_start = time.perf_counter_ns()
        try:
            self.infer()
        except Exception as exc:
            raise BackendError(f"{self.id}: the first prediction failed: {one_line(exc)}") from None
        first_ns = time.perf_counter_ns() - first_start
        info: dict[str, object] = {
            "compute_units": self.compute_unit,
            "package": str(package),
            "compiled": str(self._compiled) if self._compiled else None,
            "runtime_latency": (
                "Core ML prediction duration"
                if self._has_runtime_duration and self._generator is None
                else None
            ),
        }
        share = self._plan_share(ct, notes)
        if share is not None:
            info["compute_plan_share"] = share
        return PrepareInfo(
            load_s=loaded - converted,
            compile_s=converted - started,
            first_inference_ms=first_ns / 1e6,
            notes=tuple(notes),
            info=info,
        )

    def _package(
        self, spec: ModelSpec, notes: list[str]
    ) -> tuple[Path, tuple[str, ...], tuple[str, ...]]:
        """The .mlpackage to run, its input names and its output names, in order."""
        if spec.kind == DECODER_KIND:
            return self._decoder_package(spec, notes)
        if spec.kind == "mlpackage":
            assert spec.path is not None
            return (
                spec.path,
                tuple(i.name for i in spec.inputs),
                tuple(o.name for o in spec.outputs) or (OUTPUT_NAME,),
            )
        conversion = convert(spec, self.dtype)
        how = "from the cache" if conversion.cached else f"in {conversion.seconds:.1f} s"
        notes.append(f"converted via {conversion.method} ({conversion.precision}), {how}")
        notes.extend(conversion.notes)
        return conversion.path, conversion.input_names, conversion.output_names

    def _decoder_package(
        self, spec: ModelSpec, notes: list[str]
    ) -> tuple[Path, tuple[str, ...], tuple[str, ...]]:
        from anetui.backends.coreml_decoder import decoder_notes
        from anetui.models.convert.coreml_decoder import convert_decoder

        conversion = convert_decoder(spec, self.dtype)
        how = "from the cache" if conversion.cached else f"in {conversion.seconds:.1f} s"
        notes.append(f"converted via {conversion.method} ({conversion.precision}), {how}")
        notes.extend(conversion.notes)
        notes.extend(decoder_notes(self.compute_unit, self.dtype))
        return conversion.path, conversion.input_names, conversion.output_names

    def _make_generator(self, spec: ModelSpec) -> Any:
        from anetui.backends.coreml_decoder import CoreMLGenerator
        from anetui.models.convert.coreml_decoder import mask_dtype

        assert spec.generation is not None
        generator = CoreMLGenerator(
            self._model,
            spec.make_inputs()["input_ids"],
            spec.generation.gen_len,
            mask_dtype(self.dtype),
        )
        if self._tokens_per_run:  # set before prepare()
            generator.set_tokens_per_run(self._tokens_per_run)
        return generator

    @property
    def tokens_per_run(self) -> int:
        """Tokens one ``infer()`` generates (the generative workload; 0 otherwise)."""
        if self._generator is not None:
            return int(self._generator.tokens_per_run)
        return self._tokens_per_run

    @tokens_per_run.setter
    def tokens_per_run(self, tokens: int) -> None:
        if self._generator is not None:
            self._generator.set_tokens_per_run(tokens)
        self._tokens_per_run = tokens

    def token_times_ns(self) -> tuple[int, Sequence[int]] | None:
        """The last generation's start and per-token stamps (ns); None before one."""
        return None if self._generator is None else self._generator.token_times_ns()

    def generated_tokens(self) -> list[int]:
        """The last generation's tokens ([] before one, or for a one-pass model)."""
        return [] if self._generator is None else list(self._generator.generated_tokens())

    def _load(self, ct: Any, package: Path, notes: list[str]) -> Any:  # macOS only
        """Load the compiled model from the cache when there is one (fast, a
        ``CompiledMLModel``); otherwise load the package, which compiles it (an ``MLModel``),
        and keep the compiled copy for next time. Either way ``self._compiled`` is set."""
        units = getattr(ct.ComputeUnit, self.compute_unit)
        cache = Cache("coreml-compiled")
        key = file_digest(package)[:24]
        compiled = cache.lookup(key, COMPILED, lambda p: (p / "coremldata.bin").exists())
        if compiled is not None:
            notes.append("loaded the compiled model from the cache")
            model = ct.models.CompiledMLModel(str(compiled), units)
            self._compiled = compiled
            return model
        model = ct.models.MLModel(str(package), compute_units=units)
        # Valid while ``model`` lives; the cached copy (when stored) outlives it.
        source = Path(model.get_compiled_model_path())
        self._compiled = source
        with contextlib.suppress(OSError):  # caching is an optimisation, never an error
            self._compiled = cache.store(
                key, COMPILED, lambda target: _copy(source, target), {"package": str(package)}
            )
        return model

    def _plan_share(self, ct: Any, notes: list[str]) -> dict[str, float] | None:
        """Cost-weighted share per device from Core ML's compute plan, where available."""
        from anetui.models.convert.coreml_plan import (
            PlanUnavailable,
            compute_plan,
            plan_unavailable_reason,
        )

        try:
            reason = plan_unavailable_reason()  # the same answer compute_plan would give
            if reason is not None:
                raise PlanUnavailable(reason)
            return compute_plan(ct, self._compiled_path(), self.compute_unit).share  # macOS only
        except PlanUnavailable as exc:
            notes.append(f"no compute plan: {exc}")
        except Exception as exc:  # the plan is a nicety: Core ML failing it is a note
            notes.append(f"no compute plan: Core ML failed to make one: {one_line(exc)}")
        return None

    def _compiled_path(self) -> Path:
        """The compiled model loaded by prepare() (recorded then, never asked of Core ML)."""
        from anetui.models.convert.coreml_plan import PlanUnavailable

        if self._compiled is None:
            raise PlanUnavailable("no compiled model loaded")
        return self._compiled

    def infer(self) -> None:
        if self._generator is not None:
            self._generator.generate()  # one whole generation
            return
        self._predict(self._inputs)  # blocking: returns when Core ML is done

    def runtime_latency_ns(self) -> int | None:
        """Core ML's own duration of the prediction just timed (ns), read by the runner
        outside the timed region; None where the loaded class does not report it, and for
        a generation (many predictions: the last one's duration is not the run's)."""
        if self._has_runtime_duration and self._generator is None:
            duration = self._model.last_predict_duration_in_nano_seconds
            if duration:
                return int(duration)
        return None

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def outputs(self) -> list[np.ndarray]:
        if self._generator is not None:  # a full generation, whatever tokens_per_run is
            saved = self._generator.tokens_per_run
            self._generator.set_tokens_per_run(self._generator.capacity)
            try:
                self._generator.generate()
            finally:
                self._generator.set_tokens_per_run(saved)
            return [np.array(self._generator.generated_tokens(), dtype=np.int64)]
        result = self._predict(self._inputs)
        arrays = [np.asarray(result[name]) for name in self._output_names]
        return [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]

    def close(self) -> None:
        self._model = self._predict = self._generator = None
        self._compiled = None


def _copy(source: Path, target: Path) -> dict[str, object]:
    shutil.copytree(source, target)
    return {}


def _require_states() -> None:
    """Stateful models (the decoder's KV cache) need macOS 15: this backend cannot run the
    generative workload on an older Mac (an image model still runs)."""
    version = macos_version()
    if version is not None and version < (15,):
        raise NotAvailableHere("a stateful Core ML model (KV cache) needs macOS 15+")


def coreml_probe(minimum_macos: tuple[int, ...] = (12,), unit: str = "Core ML") -> Availability:
    """Core ML prediction: coremltools installed, on macOS new enough for ``unit``."""
    if importlib.util.find_spec("coremltools") is None:
        return Availability.no("coremltools not installed (pip install 'anetui[coreml]')")
    version = macos_version()
    if version is None:
        return Availability.no("Core ML prediction needs macOS (conversion works here)")
    if version < minimum_macos:
        wanted = ".".join(str(v) for v in minimum_macos)
        return Availability.no(f"{unit} needs macOS {wanted}+")
    return Availability.yes()


_KINDS = ("torchvision", "transformers", "hf", "export", "torchscript", "mlpackage", DECODER_KIND)
_UNIT_TEXT = {
    "all": ("all", "Core ML, ComputeUnit.ALL: CPU, GPU and Neural Engine as Core ML decides"),
    "cpu": ("cpu", "Core ML, ComputeUnit.CPU_ONLY"),
    "gpu": ("cpu+gpu", "Core ML, ComputeUnit.CPU_AND_GPU"),
    "ane": ("cpu+ane", "Core ML, ComputeUnit.CPU_AND_NE: the Apple Neural Engine"),
}
BACKENDS = tuple(
    BackendDescription(
        f"coreml-{unit}",
        "Core ML",
        device,
        "fp16",
        summary,
        CoreMLBackend,
        # CPU_AND_NE exists from macOS 13 on.
        (lambda: coreml_probe((13,), "coreml-ane")) if unit == "ane" else coreml_probe,
        _KINDS,
        graph="Core ML program",
    )
    for unit, (device, summary) in _UNIT_TEXT.items()
)
