"""OpenVINO backends: Intel CPUs, integrated GPUs and the NPUs of Core Ultra laptops.

The model is converted once to OpenVINO IR (cached, :mod:`anetui.models.convert.openvino`)
and compiled with the LATENCY performance hint and an explicit inference precision:
left alone, OpenVINO computes in bf16 on CPUs that have it (5e-3 off eager fp32 on this
machine's AVX512-BF16 CPU), so ``fp32`` forces f32 and the precision the compiled model
reports is recorded in the backend's info. One infer request; its inputs are set once
(by position, in the model's declared order, which conversions and ONNX files keep), the
timed call is the synchronous ``infer()``. A file's symbolic dimensions are reshaped to
the benchmark's shapes before compiling.

Nothing here imports openvino at module level; the probes of the GPU and NPU backends
import openvino (never torch) to list its devices.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import time
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
from anetui.models.convert.openvino import OpenVinoConversionError, convert
from anetui.models.spec import ModelSpec

#: backend id -> OpenVINO device name.
DEVICES = {"openvino-cpu": "CPU", "openvino-gpu": "GPU", "openvino-npu": "NPU"}
#: Our dtype names -> OpenVINO element type names (``openvino.Type`` attributes).
PRECISIONS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
GRAPH = "OpenVINO graph"


class OpenVinoBackend:
    def __init__(self, description: BackendDescription, options: BackendOptions) -> None:
        self.id = description.id
        self.device = description.device
        self.dtype = options.dtype or description.default_dtype
        if self.dtype not in PRECISIONS:
            raise BackendError(f"{self.id}: unknown dtype '{self.dtype}' (fp32, fp16, bf16)")
        self._description = description
        self._threads = options.threads
        self._request: Any = None
        self._inputs: list[np.ndarray] = []

    def available(self) -> Availability:
        probe = self._description.probe()
        if not probe.ok:
            return probe
        # Before any conversion: a precision the device cannot compute is "not available
        # here", like missing hardware — never a failed run, never a mislabelled one.
        return precision_support(DEVICES[self.id], self.dtype)

    def prepare(self, spec: ModelSpec) -> PrepareInfo:
        import openvino
        import openvino.properties as props
        import openvino.properties.hint as hints

        started = time.perf_counter()
        try:
            converted = convert(spec)
        except OpenVinoConversionError as exc:
            raise BackendError(f"{self.id}: {exc}") from None
        notes = []
        if spec.kind != "onnx":
            notes.append(
                "converted "
                + ("from the cache" if converted.cached else f"in {converted.seconds:.1f} s")
            )
        device = DEVICES[self.id]
        wanted = getattr(openvino.Type, PRECISIONS[self.dtype])
        config: dict[Any, Any] = {
            hints.performance_mode: hints.PerformanceMode.LATENCY,
            hints.inference_precision: wanted,
        }
        if self._threads is not None and device == "CPU":
            config[props.inference_num_threads] = self._threads
        core = openvino.Core()
        try:
            model = core.read_model(str(converted.path))
            if spec.kind in ("onnx", "openvino"):  # a file's own, maybe symbolic, shapes
                model.reshape(
                    {
                        port: list(i.concrete_shape())
                        for port, i in zip(model.inputs, spec.inputs, strict=True)
                    }
                )
            loaded = time.perf_counter()
            compiled = core.compile_model(model, device, config)
        except Exception as exc:
            raise BackendError(f"{self.id} could not compile: {one_line(exc)}") from None
        compiled_at = time.perf_counter()
        used = compiled.get_property(hints.inference_precision)
        if used != wanted:  # the last guard, should the capabilities have said otherwise
            raise NotAvailableHere(
                f"this {device} computes {PRECISIONS[self.dtype]} as {used.get_type_name()} "
                f"in OpenVINO (it compiled for {used.get_type_name()} when asked for "
                f"{PRECISIONS[self.dtype]})"
            )
        info: dict[str, object] = {
            "openvino": openvino.get_version(),
            "device_name": core.get_property(device, "FULL_DEVICE_NAME"),
            "inference_precision": used.get_type_name(),
            "performance_hint": "LATENCY",
        }
        if device == "CPU":
            info["threads"] = compiled.get_property(props.inference_num_threads)
        self._request = compiled.create_infer_request()
        # Kept alive: a tensor may share its array's memory. Set once.
        self._inputs = list(spec.make_inputs().values())
        if len(self._inputs) != len(compiled.inputs):
            raise BackendError(
                f"{self.id}: the model has {len(compiled.inputs)} inputs, not {len(self._inputs)}"
            )
        for index, array in enumerate(self._inputs):
            self._request.set_input_tensor(index, openvino.Tensor(array))
        first = time.perf_counter_ns()
        self.infer()
        first_ns = time.perf_counter_ns() - first
        return PrepareInfo(
            load_s=loaded - started - (0.0 if converted.cached else converted.seconds),
            compile_s=(compiled_at - loaded) + (0.0 if converted.cached else converted.seconds),
            first_inference_ms=first_ns / 1e6,
            notes=(*spec.notes, *notes),
            info=info,
        )

    def infer(self) -> None:
        self._request.infer()

    def thread_context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def outputs(self) -> list[np.ndarray]:
        self.infer()
        arrays = []
        for index in range(len(self._request.model_outputs)):
            data = np.array(self._request.get_output_tensor(index).data)
            arrays.append(data.astype(np.float32) if data.dtype.kind == "f" else data)
        return arrays

    def close(self) -> None:
        self._request = None
        self._inputs = []


# -- availability probes: no torch import ---------------------------------------------
def openvino_installed() -> Availability:
    if importlib.util.find_spec("openvino") is None:
        return Availability.no("openvino not installed (pip install 'anetui[openvino]')")
    return Availability.yes()


@functools.cache
def _devices() -> tuple[str, ...]:
    import openvino

    return tuple(openvino.Core().available_devices)


def openvino_device(device: str, hint: str) -> Availability:
    """openvino installed and listing ``device`` (imports openvino, not torch)."""
    base = openvino_installed()
    if not base.ok:
        return base
    try:
        devices = _devices()
    except Exception as exc:
        return Availability.no(f"openvino failed to list devices: {one_line(exc)}")
    if not any(d == device or d.startswith(f"{device}.") for d in devices):
        listed = ", ".join(devices) or "none"
        return Availability.no(f"OpenVINO lists no {device} here ({listed}): {hint}")
    return Availability.yes()


#: Our dtype names -> the device capability (``OPTIMIZATION_CAPABILITIES``) that computes it.
CAPABILITIES = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16"}


@functools.cache
def _capabilities(device: str) -> tuple[str, ...]:
    import openvino

    return tuple(openvino.Core().get_property(device, "OPTIMIZATION_CAPABILITIES"))


def computed_as(dtype: str, capabilities: tuple[str, ...]) -> str:
    """What OpenVINO computes instead of ``dtype`` on a device lacking it: a 16-bit hint
    falls to the other 16-bit type the device has (an f16 hint compiles as bf16 on
    AVX512-BF16 CPUs without AVX512-FP16), else to f32."""
    other = {"fp16": "bf16", "bf16": "fp16"}.get(dtype)
    if other is not None and CAPABILITIES[other] in capabilities:
        return PRECISIONS[other]
    return "f32"


def precision_support(device: str, dtype: str) -> Availability:
    """Whether OpenVINO's ``device`` computes ``dtype`` natively, from the device's own
    ``OPTIMIZATION_CAPABILITIES`` (imports openvino, never torch)."""
    try:
        capabilities = _capabilities(device)
    except Exception as exc:
        return Availability.no(f"OpenVINO did not report {device}'s capabilities: {one_line(exc)}")
    if CAPABILITIES[dtype] in capabilities:
        return Availability.yes()
    what = {"CPU": "this CPU", "GPU": "this GPU", "NPU": "this NPU"}.get(device, device)
    return Availability.no(
        f"{what} computes {PRECISIONS[dtype]} as {computed_as(dtype, capabilities)} in "
        f"OpenVINO (its OPTIMIZATION_CAPABILITIES: {', '.join(capabilities) or 'none'})"
    )


def _row(backend_id: str, device: str, dtype: str, summary: str, hint: str) -> BackendDescription:
    ov_device = DEVICES[backend_id]
    return BackendDescription(
        backend_id,
        "OpenVINO",
        device,
        dtype,
        summary,
        OpenVinoBackend,
        (lambda: openvino_installed())
        if ov_device == "CPU"
        else (lambda: openvino_device(ov_device, hint)),
        ("torchvision", "transformers", "hf", "export", "torchscript", "onnx", "openvino"),
        graph=GRAPH,
    )


BACKENDS = (
    _row(
        "openvino-cpu",
        "cpu",
        "fp32",
        "OpenVINO on the CPU, LATENCY hint, f32 forced for fp32 (not its bf16 default)",
        "",
    ),
    _row(
        "openvino-gpu",
        "gpu",
        "fp32",
        "OpenVINO on an Intel GPU (integrated or Arc), LATENCY hint",
        "an Intel GPU and its OpenCL driver (intel-opencl-icd)",
    ),
    _row(
        "openvino-npu",
        "npu",
        "fp16",
        "OpenVINO on the NPU of Intel Core Ultra, LATENCY hint, fp16",
        "an Intel Core Ultra NPU and its driver (intel-npu-driver)",
    ),
)
