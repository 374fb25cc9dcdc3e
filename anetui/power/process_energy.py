"""Energy of this process on macOS: ``proc_pid_rusage(pid, RUSAGE_INFO_V6)`` →
``ri_energy_nj``, read through ctypes from libproc.

The layout of ``struct rusage_info_v6`` is copied from the public ``<sys/resource.h>``
(apple-oss-distributions/xnu, bsd/sys/resource.h): 16 bytes of UUID then 56 ``uint64_t``
(464 bytes). ``ri_energy_nj`` first appears in V6 — V4 and V5 only have
``ri_billed_energy``/``ri_serviced_energy`` — so V6 is asked for and an OS that
refuses it has no process energy here.

The kernel fills ``ri_energy_nj`` from its per-thread CPU accounting (the energy of the
CPU cores while our threads ran on them, E and P cores; ``ri_penergy_nj`` is the P-core
part). Work that the GPU or the Neural Engine does for us, DRAM, and work other
processes do on our behalf (Core ML's daemons, the window server) is not billed to us.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from typing import Any, cast

from anetui.errors import Availability

#: ``#define RUSAGE_INFO_V6 6`` in <sys/resource.h>.
RUSAGE_INFO_V6 = 6

_U64_FIELDS = (
    "ri_user_time",
    "ri_system_time",
    "ri_pkg_idle_wkups",
    "ri_interrupt_wkups",
    "ri_pageins",
    "ri_wired_size",
    "ri_resident_size",
    "ri_phys_footprint",
    "ri_proc_start_abstime",
    "ri_proc_exit_abstime",
    "ri_child_user_time",
    "ri_child_system_time",
    "ri_child_pkg_idle_wkups",
    "ri_child_interrupt_wkups",
    "ri_child_pageins",
    "ri_child_elapsed_abstime",
    "ri_diskio_bytesread",
    "ri_diskio_byteswritten",
    "ri_cpu_time_qos_default",
    "ri_cpu_time_qos_maintenance",
    "ri_cpu_time_qos_background",
    "ri_cpu_time_qos_utility",
    "ri_cpu_time_qos_legacy",
    "ri_cpu_time_qos_user_initiated",
    "ri_cpu_time_qos_user_interactive",
    "ri_billed_system_time",
    "ri_serviced_system_time",
    "ri_logical_writes",
    "ri_lifetime_max_phys_footprint",
    "ri_instructions",
    "ri_cycles",
    "ri_billed_energy",
    "ri_serviced_energy",
    "ri_interval_max_phys_footprint",
    "ri_runnable_time",
    "ri_flags",
    "ri_user_ptime",
    "ri_system_ptime",
    "ri_pinstructions",
    "ri_pcycles",
    "ri_energy_nj",
    "ri_penergy_nj",
)


class RusageInfoV6(ctypes.Structure):
    """``struct rusage_info_v6`` of <sys/resource.h> (natural alignment, 464 bytes)."""

    _fields_ = [
        ("ri_uuid", ctypes.c_uint8 * 16),
        *((name, ctypes.c_uint64) for name in _U64_FIELDS),
        ("ri_reserved", ctypes.c_uint64 * 14),
    ]


#: ``int proc_pid_rusage(int pid, int flavor, rusage_info_t *buffer)``; 0 on success.
ProcPidRusage = Callable[[int, int, Any], int]


def on_macos() -> bool:
    """Read at call time (tests pose as macOS), and opaque to mypy, which would otherwise
    skip the macOS-only code as unreachable when it runs on Linux."""
    return sys.platform == "darwin"


def load_proc_pid_rusage() -> ProcPidRusage | None:
    """libproc's ``proc_pid_rusage`` on macOS; None elsewhere or when it is missing."""
    if not on_macos():
        return None
    path = ctypes.util.find_library("proc") or "/usr/lib/libSystem.B.dylib"
    try:
        function: Any = ctypes.CDLL(path, use_errno=True).proc_pid_rusage
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    function.restype = ctypes.c_int
    return cast(ProcPidRusage, function)


class ProcessEnergy:
    """Cumulative CPU energy billed to one process (ours by default), in mJ."""

    def __init__(self, pid: int | None = None, call: ProcPidRusage | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self._call = call if call is not None else load_proc_pid_rusage()

    def available(self) -> Availability:
        if self._call is None:
            return Availability.no("process energy is macOS only (proc_pid_rusage)")
        if self.read_mj() is None:
            return Availability.no("proc_pid_rusage(RUSAGE_INFO_V6) is refused by this OS")
        return Availability.yes()

    def read_nj(self) -> int | None:
        """``ri_energy_nj`` now (nJ since the process started), or None if refused."""
        if self._call is None:
            return None
        info = RusageInfoV6()
        if self._call(self.pid, RUSAGE_INFO_V6, ctypes.byref(info)) != 0:
            return None
        return int(info.ri_energy_nj)

    def read_mj(self) -> float | None:
        nj = self.read_nj()
        return None if nj is None else nj / 1e6
