"""A macOS personality for tests: run code here as it would run on an Apple-silicon Mac.

What it changes, all through ``monkeypatch`` (undone after the test):

- ``sys.platform`` is ``"darwin"``; ``platform.mac_ver()``, ``platform.system()``,
  ``platform.release()`` and ``platform.machine()`` answer as macOS 15.5 on arm64 does,
  and so does a ``sw_vers`` first on the PATH (coremltools asks it);
  ``platformdirs`` answers with its real macOS class (``~/Library/Caches/…``).
- The ``os`` functions that macOS's Python lacks are removed (:data:`MACOS_LACKS`, from
  the availability notes of CPython's ``os`` documentation: "not macOS", or Linux only),
  so code calling them fails here with the AttributeError a Mac user would see.
- coremltools' classes that anetui touches — ``MLModel``, ``CompiledMLModel``,
  ``MLComputePlan``, ``utils.compile_model``, and the compute devices — are replaced by
  ``unittest.mock.create_autospec`` of the real classes from the installed coremltools,
  with behaviour added (compiling makes a ``.mlmodelc`` folder, predicting returns an
  output and, for ``MLModel`` only, a duration). A stateful package (a decoder's KV
  cache) gets a fresh autospecced ``MLState`` from ``make_state()`` on either class;
  predict() refuses a stateful model without its state, and hands a prediction with one to
  :attr:`FakeCoreML.stateful` (a test's computation: e.g. the converted torch module on the
  CPU). An attribute the real class lacks raises
  AttributeError, as on a Mac: a ``CompiledMLModel`` has no ``path``, no
  ``get_compiled_model_path`` and no ``last_predict_duration_in_nano_seconds``.
- ``torch.mps.synchronize`` and ``torch.backends.mps.is_available`` are autospecs of the
  real functions (MPS exists, synchronising is counted).

What it cannot give: Apple hardware. Predictions return :attr:`FakeCoreML.output`
(by default a fixed array), or what :attr:`FakeCoreML.stateful` computes, not Core ML's
arithmetic.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

#: ``os`` functions that CPython's documentation marks "not macOS" or Linux-only. Left
#: out: the xattr functions (macOS lacks them too), because Linux's shutil binds them when
#: it is imported — removing them here would break the stdlib, not imitate macOS.
MACOS_LACKS = (
    # Availability: Unix, not WASI, not macOS, not iOS.
    "getresuid",
    "getresgid",
    "setresuid",
    "setresgid",
    "plock",
    # Availability: Linux (and some BSDs), not macOS.
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_setparam",
    "sched_getparam",
    "sched_rr_get_interval",
    "pipe2",
    "posix_fallocate",
    "posix_fadvise",
    "fexecve",
    "memfd_create",
    "eventfd",
    "eventfd_read",
    "eventfd_write",
    "splice",
    "copy_file_range",
    "getrandom",
    "pidfd_open",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "unshare",
    "setns",
)
MAC_VER = "15.5"
DARWIN_RELEASE = "24.5.0"  # the kernel of macOS 15.5
MACHINE = "arm64"

#: For a child process (``python -c``): the same ``os`` functions removed before anything
#: else runs, and ``sys.platform`` set to darwin.
CHILD_PRELUDE = (
    "import os, sys\n"
    f"for _name in {MACOS_LACKS!r}:\n"
    "    os.__dict__.pop(_name, None)\n"
    "sys.platform = 'darwin'\n"
)


@dataclass
class PlannedOp:
    """One ML Program operation as the fake compute plan reports it."""

    operator: str
    output: str
    preferred: str  # "cpu" | "gpu" | "ane"
    supported: tuple[str, ...]
    weight: float


@dataclass
class FakeCoreML:
    """The coremltools stand-ins and what they saw; set ``output`` to steer predict()."""

    ct: Any
    work_dir: Path
    output: np.ndarray = field(
        default_factory=lambda: np.linspace(-1, 1, 1000, dtype=np.float32).reshape(1, 1000)
    )
    duration_ns: int = 900_000
    #: What predict() returns for any other output a model declares (an intermediate
    #: tensor added for calibration): a range, not Core ML's arithmetic.
    intermediate: np.ndarray = field(
        default_factory=lambda: np.linspace(-4, 4, 64, dtype=np.float32)
    )
    #: ("MLModel" | "CompiledMLModel", path, compute unit name) per load.
    loads: list[tuple[str, str, str]] = field(default_factory=list)
    predictions: int = 0
    plans: list[tuple[str, str]] = field(default_factory=list)
    plan_ops: list[PlannedOp] = field(
        default_factory=lambda: [
            PlannedOp("const", "w", "cpu", ("cpu",), 0.0),
            PlannedOp("conv", "c1", "ane", ("cpu", "gpu", "ane"), 0.7),
            PlannedOp("conv", "c2", "ane", ("cpu", "gpu", "ane"), 0.1),
            PlannedOp("gather", "g", "cpu", ("cpu",), 0.2),
        ]
    )
    #: Raised by predict() when set (a runtime failing).
    predict_error: Exception | None = None
    #: Outputs by name that predict() returns (a package's own names); ``output`` else.
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: The spec description of the last package loaded: predict() checks its inputs'
    #: names, shapes and types against it, as Core ML does.
    description: Any = None
    instances: list[Any] = field(default_factory=list)
    #: Every state ``make_state()`` handed out, in order (autospecs of ``MLState``).
    states: list[Any] = field(default_factory=list)
    #: Computes a stateful prediction: (inputs, the state it is given) -> outputs. The
    #: state is one of :attr:`states`; a test keeps what it holds (e.g. a KV cache) by it.
    stateful: Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]] | None = None


#: What only a Core ML runtime (macOS) can answer: the stand-ins provide it.
RUNTIME_ONLY = {
    "predict",
    "get_compiled_model_path",
    "last_predict_duration_in_nano_seconds",
    "load_duration_in_nano_seconds",
    "make_state",
    "get_available_compute_devices",
}


def _check_compute_units(ct: Any, compute_units: Any) -> None:
    # The real classes' own check (CompiledMLModel._init_check, MLModel.__init__).
    if not isinstance(compute_units, ct.ComputeUnit):
        raise TypeError('The "compute_units" parameter must be of type: "coremltools.ComputeUnit".')


#: Core ML's ArrayFeatureType data types -> numpy.
_ARRAY_TYPES = {65568: np.float32, 65552: np.float16, 131104: np.int32}


def _check_inputs(description: Any, data: dict[str, Any]) -> None:
    """What Core ML refuses: a missing or extra input, another shape, another type."""
    wanted = {f.name: f.type.multiArrayType for f in description.input}
    if set(data) != set(wanted):
        raise RuntimeError(f"inputs {sorted(data)}, the model has {sorted(wanted)}")
    for name, array in data.items():
        kind = wanted[name]
        if kind.WhichOneof("ShapeFlexibility") == "shapeRange":
            # A flexible input (ct.RangeDim): each dimension within its declared bounds.
            bounds = [(r.lowerBound, r.upperBound) for r in kind.shapeRange.sizeRanges]
            if len(array.shape) != len(bounds) or any(
                not low <= size <= (high if high >= 0 else size)
                for size, (low, high) in zip(array.shape, bounds, strict=True)
            ):
                raise RuntimeError(f"input {name}: shape {array.shape}, not within {bounds}")
        elif tuple(array.shape) != tuple(kind.shape):
            raise RuntimeError(f"input {name}: shape {array.shape}, not {tuple(kind.shape)}")
        if array.dtype != _ARRAY_TYPES.get(kind.dataType):
            raise TypeError(f"input {name}: {array.dtype}, the model takes {kind.dataType}")


def _make_compiled(destination: Path) -> Path:
    """What Core ML's compiler leaves: a .mlmodelc folder with coremldata.bin in it."""
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "coremldata.bin").write_bytes(b"compiled by the macOS personality")
    (destination / "model.mil").write_text("program(1.0)\n")
    return destination


def install_coreml(monkeypatch: pytest.MonkeyPatch, work_dir: Path) -> FakeCoreML:
    import coremltools as ct
    import coremltools.models.compute_plan as compute_plan_module
    from coremltools.models import CompiledMLModel, MLModel
    from coremltools.models import compute_device as devices
    from coremltools.models.compute_plan import (
        MLComputePlan,
        MLComputePlanCost,
        MLComputePlanDeviceUsage,
        MLModelStructure,
        MLModelStructureProgram,
        MLModelStructureProgramBlock,
        MLModelStructureProgramFunction,
        MLModelStructureProgramNamedValueType,
        MLModelStructureProgramOperation,
        MLModelStructureProgramValueType,
    )
    from coremltools.models.model import MLState

    fake = FakeCoreML(ct, work_dir)

    def predict(data: dict[str, Any], state: Any = None) -> dict[str, np.ndarray]:
        if not isinstance(data, dict) or not data:
            raise TypeError("predict() needs a dict of input name -> array")
        if fake.description is None:
            for value in data.values():
                if not isinstance(value, np.ndarray) or value.dtype != np.float32:
                    raise TypeError("Core ML inputs here are fp32 numpy arrays")
        else:
            _check_inputs(fake.description, data)
        declares_states = fake.description is not None and len(fake.description.state) > 0
        if declares_states != (state is not None):
            # Core ML: a stateful model's predictions need its MLState, and a stateless
            # one takes none (coremltools passes ``state.__proxy__`` through).
            raise RuntimeError(
                "a stateful model needs state=make_state()"
                if declares_states
                else "this model has no state"
            )
        if state is not None and not any(state is made for made in fake.states):
            raise TypeError("state must come from this model's make_state()")
        if fake.predict_error is not None:
            raise fake.predict_error
        fake.predictions += 1
        if state is not None:
            if fake.stateful is None:
                raise AssertionError("a stateful prediction: set FakeCoreML.stateful")
            return fake.stateful(data, state)
        if fake.outputs:
            return {k: v.copy() for k, v in fake.outputs.items()}
        return {"output": fake.output.copy()}

    def make_state() -> Any:
        state = mock.create_autospec(MLState, instance=True)
        fake.states.append(state)
        return state

    def new_mlmodel(model: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("skip_model_load"):
            # Reading a package's spec needs no Core ML runtime: the real class does it.
            return MLModel(model, *args, **kwargs)
        units = kwargs.get("compute_units", ct.ComputeUnit.ALL)
        _check_compute_units(ct, units)
        # Everything but the runtime (spec, save, descriptions) is the real class's, which
        # works on any OS with skip_model_load; the runtime part is the autospec's.
        real = MLModel(model, *args, **{**kwargs, "skip_model_load": True})
        fake.description = real.get_spec().description
        instance = mock.create_autospec(MLModel, instance=True)
        for name in dir(MLModel):
            if name.startswith("__") or name in RUNTIME_ONLY:
                continue
            attribute = getattr(MLModel, name)
            if isinstance(attribute, property):
                with contextlib.suppress(Exception):
                    setattr(instance, name, getattr(real, name))
            elif callable(attribute):
                getattr(instance, name).side_effect = getattr(real, name)
        # Core ML compiles the package into a temporary folder when it loads it.
        compiled = _make_compiled(work_dir / f"tmp{len(fake.loads)}" / "model.mlmodelc")
        instance.get_compiled_model_path.return_value = str(compiled)

        # Every output the model declares gets an array: coremltools' activation
        # calibration (linear_quantize_activations) adds each intermediate tensor as an
        # output and reads its range from a prediction.
        declared = [o.name for o in real.get_spec().description.output]

        def timed_predict(data: dict[str, Any], state: Any = None) -> dict[str, np.ndarray]:
            result = predict(data, state)
            for name in declared:
                result.setdefault(name, fake.intermediate.copy())
            instance.last_predict_duration_in_nano_seconds = fake.duration_ns
            return result

        instance.predict.side_effect = timed_predict
        instance.make_state.side_effect = make_state
        instance.last_predict_duration_in_nano_seconds = None  # no prediction yet
        fake.loads.append(("MLModel", str(model) if isinstance(model, str) else "spec", units.name))
        fake.instances.append(instance)
        return instance

    def new_compiled(path: Any, compute_units: Any = ct.ComputeUnit.ALL, *a: Any, **k: Any) -> Any:
        if not isinstance(path, str):
            raise TypeError('The "path" parameter must be of type "str".')
        _check_compute_units(ct, compute_units)
        if not (Path(path) / "coremldata.bin").exists():
            raise RuntimeError(f"Error opening compiled model at {path}")
        instance = mock.create_autospec(CompiledMLModel, instance=True)
        instance.predict.side_effect = predict
        instance.make_state.side_effect = make_state
        fake.loads.append(("CompiledMLModel", path, compute_units.name))
        fake.instances.append(instance)
        return instance

    device_classes = {
        "cpu": devices.MLCPUComputeDevice,
        "gpu": devices.MLGPUComputeDevice,
        "ane": devices.MLNeuralEngineComputeDevice,
    }

    def device(name: str) -> Any:
        return mock.create_autospec(device_classes[name], instance=True)

    def load_plan(path: str, compute_units: Any = ct.ComputeUnit.ALL) -> Any:
        _check_compute_units(ct, compute_units)
        if not (Path(path) / "coremldata.bin").exists():
            raise RuntimeError(f"Failed to load the compute plan of {path}")
        fake.plans.append((path, compute_units.name))
        by_operation: dict[int, PlannedOp] = {}
        operations = []
        for op in fake.plan_ops:
            operation = MLModelStructureProgramOperation(
                inputs={},
                operator_name=op.operator,
                outputs=[
                    MLModelStructureProgramNamedValueType(
                        op.output, MLModelStructureProgramValueType()
                    )
                ],
                blocks=[],
                __proxy__=None,
            )
            by_operation[id(operation)] = op
            operations.append(operation)
        block = MLModelStructureProgramBlock(inputs=[], operations=operations, output_names=[])
        structure = MLModelStructure(
            neuralnetwork=None,
            program=MLModelStructureProgram(
                functions={"main": MLModelStructureProgramFunction(inputs=[], block=block)}
            ),
            pipeline=None,
        )
        plan = mock.create_autospec(MLComputePlan, instance=True)
        plan.model_structure = structure

        def usage(operation: Any) -> Any:
            op = by_operation[id(operation)]
            return MLComputePlanDeviceUsage(
                preferred_compute_device=device(op.preferred),
                supported_compute_devices=[device(d) for d in op.supported],
            )

        def cost(operation: Any) -> Any:
            op = by_operation[id(operation)]
            return None if op.operator == "const" else MLComputePlanCost(weight=op.weight)

        plan.get_compute_device_usage_for_mlprogram_operation.side_effect = usage
        plan.get_estimated_cost_for_mlprogram_operation.side_effect = cost
        return plan

    def compile_model(model: Any, destination_path: str | None = None) -> str:
        if not isinstance(model, str) or not Path(model).exists():
            raise FileNotFoundError(f"no model at {model!r}")
        target = Path(destination_path) if destination_path else work_dir / "compiled.mlmodelc"
        return str(_make_compiled(target))

    mlmodel_class = mock.create_autospec(MLModel, side_effect=new_mlmodel)
    compiled_class = mock.create_autospec(CompiledMLModel, side_effect=new_compiled)
    plan_class = mock.create_autospec(MLComputePlan)
    plan_class.load_from_path.side_effect = load_plan
    monkeypatch.setattr(ct.models, "MLModel", mlmodel_class)
    monkeypatch.setattr(ct.models, "CompiledMLModel", compiled_class)
    monkeypatch.setattr(compute_plan_module, "MLComputePlan", plan_class)
    monkeypatch.setattr(
        ct.utils,
        "compile_model",
        mock.create_autospec(ct.utils.compile_model, side_effect=compile_model),
    )
    return fake


@dataclass
class FakeMps:
    synchronize: Any
    is_available: Any


def install_mps(monkeypatch: pytest.MonkeyPatch) -> FakeMps:
    import torch

    synchronize = mock.create_autospec(torch.mps.synchronize, return_value=None)
    is_available = mock.create_autospec(torch.backends.mps.is_available, return_value=True)
    monkeypatch.setattr(torch.mps, "synchronize", synchronize)
    monkeypatch.setattr(torch.backends.mps, "is_available", is_available)
    return FakeMps(synchronize, is_available)


@dataclass
class MacOS:
    """The personality in force: what was removed, and the stand-ins to steer."""

    removed: list[str]
    coreml: FakeCoreML
    mps: FakeMps


def apply(monkeypatch: pytest.MonkeyPatch, work_dir: Path) -> MacOS:
    import platformdirs
    import platformdirs.macos

    # Native libraries are loaded before the platform changes: torch picks its shared
    # libraries by sys.platform when first imported (a .dylib on "darwin").
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    from anetui.models.convert.coreml import import_coremltools

    import_coremltools()
    monkeypatch.setattr(sys, "platform", "darwin")
    removed = [name for name in MACOS_LACKS if hasattr(os, name)]
    for name in removed:
        monkeypatch.delattr(os, name)
    monkeypatch.setattr(
        platform,
        "mac_ver",
        mock.create_autospec(platform.mac_ver, return_value=(MAC_VER, ("", "", ""), MACHINE)),
    )
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "release", lambda: DARWIN_RELEASE)
    monkeypatch.setattr(platform, "machine", lambda: MACHINE)
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.macos.MacOS)
    # macOS's own `sw_vers`, which coremltools runs to learn the version.
    bin_dir = work_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    sw_vers = bin_dir / "sw_vers"
    sw_vers.write_text(
        '#!/bin/sh\ncase "$1" in\n  -productVersion) echo ' + MAC_VER + " ;;\n"
        "  *) printf 'ProductName:\\tmacOS\\nProductVersion:\\t" + MAC_VER + "\\n' ;;\nesac\n"
    )
    sw_vers.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    coreml = install_coreml(monkeypatch, work_dir)
    mps = install_mps(monkeypatch)
    return MacOS(removed, coreml, mps)
