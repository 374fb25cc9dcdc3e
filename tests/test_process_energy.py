"""Process energy through a fake libproc ``proc_pid_rusage`` with the real layout of
``struct rusage_info_v6`` (xnu bsd/sys/resource.h): 16-byte UUID, then uint64 fields,
``ri_energy_nj`` the 41st of them (byte 336), ``ri_penergy_nj`` next, 14 reserved; 464
bytes. The fake writes raw bytes at those offsets, not through our ctypes class."""

from __future__ import annotations

import ctypes
import struct
import sys

import pytest

from anetui.power import process_energy
from anetui.power.process_energy import RUSAGE_INFO_V6, ProcessEnergy, RusageInfoV6

SIZE_V6 = 16 + 8 * (42 + 14)
ENERGY_NJ_OFFSET = 16 + 8 * 40
PENERGY_NJ_OFFSET = ENERGY_NJ_OFFSET + 8
PROTOTYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


class FakeLibproc:
    """A C-callable ``int proc_pid_rusage(int, int, rusage_info_t *)``."""

    def __init__(self, energies_nj: list[int], refuse_flavors: tuple[int, ...] = ()) -> None:
        self.energies_nj = list(energies_nj)
        self.refuse_flavors = refuse_flavors
        self.calls: list[tuple[int, int]] = []
        self.function = PROTOTYPE(self._call)

    def _call(self, pid: int, flavor: int, buffer: int) -> int:
        self.calls.append((pid, flavor))
        if flavor in self.refuse_flavors:
            return -1  # EINVAL for an unknown flavor
        raw = (ctypes.c_char * SIZE_V6).from_address(buffer)
        energy = self.energies_nj.pop(0) if len(self.energies_nj) > 1 else self.energies_nj[0]
        struct.pack_into("<QQ", raw, ENERGY_NJ_OFFSET, energy, energy // 3)
        struct.pack_into("<Q", raw, 16, 999)  # ri_user_time, to show fields do not mix
        return 0


def test_the_struct_has_the_header_layout() -> None:
    assert ctypes.sizeof(RusageInfoV6) == SIZE_V6 == 464
    assert RusageInfoV6.ri_energy_nj.offset == ENERGY_NJ_OFFSET
    assert RusageInfoV6.ri_penergy_nj.offset == PENERGY_NJ_OFFSET
    assert RusageInfoV6.ri_billed_energy.offset == 16 + 8 * 31
    assert RUSAGE_INFO_V6 == 6


def test_reads_our_energy_through_the_fake_libproc() -> None:
    fake = FakeLibproc([2_500_000_000, 2_750_000_000])
    energy = ProcessEnergy(pid=4242, call=fake.function)
    assert energy.read_nj() == 2_500_000_000
    assert energy.read_mj() == pytest.approx(2750.0)
    assert fake.calls == [(4242, RUSAGE_INFO_V6)] * 2
    assert energy.available().ok


def test_an_os_that_refuses_v6_has_no_process_energy() -> None:
    fake = FakeLibproc([1], refuse_flavors=(RUSAGE_INFO_V6,))
    energy = ProcessEnergy(call=fake.function)
    assert energy.read_mj() is None
    availability = energy.available()
    assert not availability.ok and "RUSAGE_INFO_V6" in (availability.reason or "")


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the non-macOS answer")
def test_elsewhere_it_says_macos_only() -> None:
    assert process_energy.load_proc_pid_rusage() is None
    availability = ProcessEnergy().available()
    assert not availability.ok and "macOS only" in (availability.reason or "")
