"""The CPU features that change what the CPU backends compute: bf16 and fp16 arithmetic,
int8 dot products (VNNI, AMX, Arm's dot product and i8mm).

Read from what the OS says (``/proc/cpuinfo`` flags on Linux, ``sysctl hw.optional`` on
macOS), never from a runtime: `anetui doctor` shows them without importing torch. The
runtimes decide for themselves (OpenVINO's ``OPTIMIZATION_CAPABILITIES``, oneDNN's
checks); these lines say *why* a precision runs natively, is emulated, or is computed as
another one.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: feature -> the flags (Linux x86 ``flags``, Linux Arm ``Features``, macOS
#: ``hw.optional`` names, lower-cased) any one of which provides it.
FEATURE_FLAGS: dict[str, tuple[str, ...]] = {
    "bf16": ("avx512_bf16", "amx_bf16", "bf16", "feat_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "asimdhp", "fphp", "feat_fp16", "neon_fp16"),
    "int8": (
        "avx512_vnni",
        "avx_vnni",
        "amx_int8",
        "asimddp",
        "i8mm",
        "feat_dotprod",
        "feat_i8mm",
    ),
}
#: What each feature changes, in the words `doctor` and the README use.
CONSEQUENCES: dict[str, tuple[str, str]] = {
    "bf16": (
        "bf16 runs natively; OpenVINO computes fp32 models in bf16 unless told (anetui asks "
        "for f32)",
        "no native bf16: OpenVINO runs a bf16 request in f32, PyTorch emulates bf16 (slow)",
    ),
    "fp16": (
        "fp16 runs natively (OpenVINO, PyTorch's oneDNN kernels)",
        "no native fp16: OpenVINO computes an f16 request as bf16 or f32, so openvino-cpu "
        "--dtype fp16 is not available; PyTorch emulates fp16 (slow)",
    ),
    "int8": (
        "int8 dot products: the int8 kernels of ONNX Runtime, OpenVINO, XNNPACK and oneDNN "
        "use them",
        "no int8 dot-product instructions: int8 models run, with little or no speed-up",
    ),
}


@dataclass(frozen=True, slots=True)
class CpuFeatures:
    """The precision-relevant features found, and the flags that showed each."""

    arch: str
    found: dict[str, tuple[str, ...]]
    #: Where the flags came from ("/proc/cpuinfo", "sysctl"), or why none were read.
    source: str

    def has(self, feature: str) -> bool:
        return bool(self.found.get(feature))

    def lines(self) -> list[str]:
        """One line per feature: yes/no, the flags, and what it changes."""
        out = []
        for feature, (yes, no) in CONSEQUENCES.items():
            flags = self.found.get(feature, ())
            shown = f" ({', '.join(flags)})" if flags else ""
            out.append(f"{feature}: {'yes' if flags else 'no'}{shown} — {yes if flags else no}")
        return out


def features_from_flags(flags: set[str], arch: str, source: str) -> CpuFeatures:
    """The features that a set of lower-cased flag names provides."""
    found = {
        feature: tuple(flag for flag in names if flag in flags)
        for feature, names in FEATURE_FLAGS.items()
    }
    return CpuFeatures(arch=arch, found=found, source=source)


def parse_cpuinfo(text: str) -> set[str]:
    """The flags of the first processor in a ``/proc/cpuinfo`` (x86 ``flags``, Arm
    ``Features``), lower-cased."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return {flag.lower() for flag in value.split()}
    return set()


def parse_sysctl(text: str) -> set[str]:
    """The features set to 1 in ``sysctl hw.optional`` output (``hw.optional.arm.FEAT_BF16:
    1``, ``hw.optional.avx512f: 1``), by their last name component, lower-cased."""
    flags = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.strip() == "1":
            flags.add(name.strip().rsplit(".", 1)[-1].lower())
    return flags


def detect() -> CpuFeatures:
    """This machine's features (no runtime imported)."""
    arch = platform.machine()
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["/usr/sbin/sysctl", "hw.optional"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            ).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            return features_from_flags(set(), arch, f"sysctl failed: {exc}")
        return features_from_flags(parse_sysctl(out), arch, "sysctl hw.optional")
    cpuinfo = Path("/proc/cpuinfo")
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError as exc:
        return features_from_flags(set(), arch, f"{cpuinfo} unreadable: {exc.strerror}")
    return features_from_flags(parse_cpuinfo(text), arch, str(cpuinfo))
