"""A precision the device cannot compute is "not available here", with the reason, before
any conversion — never a failed run and never a mislabelled one (issue 19). Every test
holds on any CPU: each states what the device reports and checks the outcome against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anetui.backends import cpu_features
from anetui.backends import openvino as ov_backend
from anetui.core.config import RunConfig
from anetui.core.results import BackendState
from anetui.core.session import Session
from anetui.models.resolve import resolve_model

SMALL = ["--model", "mobilenet_v3_small", "--input-shape", "1,3,32,32"]


# -- OpenVINO's capabilities, decided before anything is converted ----------------------
@pytest.mark.parametrize(
    ("capabilities", "dtype", "expected"),
    [
        (("BF16", "FP32", "INT8"), "fp16", "this CPU computes f16 as bf16 in OpenVINO"),
        (("FP32", "INT8"), "fp16", "this CPU computes f16 as f32 in OpenVINO"),
        (("FP32", "INT8"), "bf16", "this CPU computes bf16 as f32 in OpenVINO"),
        (("FP16", "FP32"), "bf16", "this CPU computes bf16 as f16 in OpenVINO"),
        (("BF16", "FP16", "FP32"), "fp16", None),
        (("FP32",), "fp32", None),
    ],
)
def test_precision_support_follows_the_reported_capabilities(
    monkeypatch: pytest.MonkeyPatch,
    capabilities: tuple[str, ...],
    dtype: str,
    expected: str | None,
) -> None:
    monkeypatch.setattr(ov_backend, "_capabilities", lambda device: capabilities)
    answer = ov_backend.precision_support("CPU", dtype)
    if expected is None:
        assert answer.ok, answer.reason
    else:
        assert not answer.ok
        assert answer.reason is not None and answer.reason.startswith(expected)
        assert ", ".join(capabilities) in answer.reason  # the evidence is named


def _capabilities() -> tuple[str, ...]:
    pytest.importorskip("openvino")
    return ov_backend._capabilities("CPU")


def test_openvino_fp16_is_measured_or_unavailable_by_name(tmp_path: Path) -> None:
    """Asked for by name: measured in f16 where the CPU has it, else exit 1 with one line
    saying what this CPU computes instead — whichever CPU runs the suite."""
    native = "FP16" in _capabilities()
    out = tmp_path / "r.json"
    argv = [sys.executable, "-m", "anetui", "bench", *SMALL, "--backends", "openvino-cpu"]
    argv += ["--dtype", "fp16", "--warmup", "1", "--iterations", "2", "--json", str(out)]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ANETUI_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert "Traceback" not in proc.stderr
    if native:
        assert proc.returncode == 0, proc.stderr
        row = json.loads(out.read_text())["backends"][0]
        assert row["count"] == 2 and row["dtype"] == "fp16"
    else:
        assert proc.returncode == 1, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("anetui: error: openvino-cpu: not run — this CPU computes f16")
        assert not (tmp_path / "cache").exists()  # refused before any conversion


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_after_compile_guard_reports_unavailable_not_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dtype: str
) -> None:
    """With the probe told that every precision is native, the compiled model's own
    precision is the last guard: it is measured in the precision asked for, or the
    backend is unavailable saying what OpenVINO compiled — never state "error"."""
    pytest.importorskip("openvino")
    monkeypatch.setenv("ANETUI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(ov_backend, "_capabilities", lambda device: ("BF16", "FP16", "FP32"))
    config = RunConfig(
        model="mobilenet_v3_small",
        input_shape=(1, 3, 32, 32),
        backends=("openvino-cpu",),
        dtype=dtype,
        warmup=1,
        iterations=2,
        duration_s=None,
    )
    spec = resolve_model(config.model, input_shape=config.input_shape)
    session = Session(config, spec)
    assert session.availability()["openvino-cpu"].ok  # the probe was told yes
    session.prepare()
    session.run()
    row = session.snapshot().backends[0]
    session.close()
    assert row.state != BackendState.ERROR, row.error
    wanted = ov_backend.PRECISIONS[dtype]
    if row.state == BackendState.UNAVAILABLE:
        assert row.reason is not None
        assert row.reason.startswith(f"this CPU computes {wanted} as ")
        assert f"when asked for {wanted}" in row.reason
    else:
        assert row.summary is not None and row.summary.count == 2
        assert row.prepare is not None
        assert row.prepare.info["inference_precision"] == wanted


# -- CPU features, parsed from what the OS says ------------------------------------------
EPYC_FLAGS = (
    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 avx avx2 fma avx512f "
    "avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni avx_vnni avx512_vbmi2"
)
HASWELL_FLAGS = "flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2"
SAPPHIRE_RAPIDS_FLAGS = (
    "flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_vnni avx512_fp16 amx_bf16 "
    "amx_tile amx_int8 avx_vnni"
)
GRAVITON3_FEATURES = (
    "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 "
    "crc32 atomics fphp asimdhp cpuid asimdrdm asimddp sve i8mm bf16 svebf16"
)
M1_SYSCTL = (
    "hw.optional.arm.FEAT_FP16: 1\nhw.optional.arm.FEAT_BF16: 0\n"
    "hw.optional.arm.FEAT_DotProd: 1\nhw.optional.arm.FEAT_I8MM: 0\nhw.optional.neon: 1"
)


@pytest.mark.parametrize(
    ("text", "parse", "bf16", "fp16", "int8"),
    [
        (EPYC_FLAGS, cpu_features.parse_cpuinfo, True, False, True),
        (HASWELL_FLAGS, cpu_features.parse_cpuinfo, False, False, False),
        (SAPPHIRE_RAPIDS_FLAGS, cpu_features.parse_cpuinfo, True, True, True),
        (GRAVITON3_FEATURES, cpu_features.parse_cpuinfo, True, True, True),
        (M1_SYSCTL, cpu_features.parse_sysctl, False, True, True),
    ],
    ids=["epyc-bf16", "haswell", "sapphire-rapids", "graviton3", "m1-sysctl"],
)
def test_cpu_features_from_recorded_flags(
    text: str, parse: object, bf16: bool, fp16: bool, int8: bool
) -> None:
    assert callable(parse)
    features = cpu_features.features_from_flags(parse(text), "x", "recorded")
    assert (features.has("bf16"), features.has("fp16"), features.has("int8")) == (
        bf16,
        fp16,
        int8,
    )
    lines = features.lines()
    assert [line.split(":")[0] for line in lines] == ["bf16", "fp16", "int8"]
    for line, present in zip(lines, (bf16, fp16, int8), strict=True):
        assert line.split(":")[1].split()[0] == ("yes" if present else "no")


def test_doctor_shows_the_cpu_features_without_torch() -> None:
    code = (
        "import sys\nfrom anetui.cli.doctor import print_doctor\nprint_doctor()\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cpu features"))
    shown = [line.strip().split(":")[0] for line in lines[start + 1 : start + 4]]
    assert shown == ["bf16", "fp16", "int8"]
    assert lines[-1] == "NO-TORCH"
    detected = cpu_features.detect()
    for line in lines[start + 1 : start + 4]:
        feature, verdict = line.strip().split(":")[0], line.split(":")[1].split()[0]
        assert verdict == ("yes" if detected.has(feature) else "no")
