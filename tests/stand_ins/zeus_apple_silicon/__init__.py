"""Stand-in for ``zeus_apple_silicon`` (which installs only on macOS), built from the
library's documented API — README "API Reference" and bindings/energy_bindings.hpp of
ml-energy/zeus-apple-silicon 1.1:

- ``AppleEnergyMonitor()``; ``begin_window(key, restart=False)`` raises RuntimeError for
  a key already open unless ``restart``; ``end_window(key) -> AppleEnergyMetrics`` raises
  RuntimeError for a key never opened; ``get_cumulative_energy() -> AppleEnergyMetrics``.
- ``AppleEnergyMetrics()`` with read-write fields, integers in mJ or ``None``:
  cpu_total_mj, efficiency_cores_mj, performance_cores_mj, efficiency_cluster_mj,
  performance_cluster_mj (lists), efficiency_core_manager_mj,
  performance_core_manager_mj, dram_mj, gpu_mj, gpu_sram_mj, ane_mj.

Like the library's own test ``Mocker``, the readings come from a queue the test fills:
each IOReport sample (``get_cumulative_energy``, ``begin_window``, ``end_window``) takes
the next cumulative reading; the last one repeats once the queue is empty.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

FIELDS = (
    "cpu_total_mj",
    "efficiency_cores_mj",
    "performance_cores_mj",
    "efficiency_cluster_mj",
    "performance_cluster_mj",
    "efficiency_core_manager_mj",
    "performance_core_manager_mj",
    "dram_mj",
    "gpu_mj",
    "gpu_sram_mj",
    "ane_mj",
)


class AppleEnergyMetrics:
    __slots__ = FIELDS

    def __init__(self) -> None:
        for name in FIELDS:
            setattr(self, name, None)


def _metrics(values: dict[str, Any]) -> AppleEnergyMetrics:
    metrics = AppleEnergyMetrics()
    for name, value in values.items():
        setattr(metrics, name, list(value) if isinstance(value, list | tuple) else value)
    return metrics


def _delta(a: AppleEnergyMetrics, b: AppleEnergyMetrics) -> AppleEnergyMetrics:
    out = AppleEnergyMetrics()
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            continue
        setattr(
            out, name, [j - i for i, j in zip(x, y, strict=True)] if isinstance(x, list) else y - x
        )
    return out


class Mocker:
    """The queue of cumulative readings (one dict of AppleEnergyMetrics fields each)."""

    readings: ClassVar[deque[dict[str, Any]]] = deque()
    last: ClassVar[dict[str, Any] | None] = None
    samples_taken: ClassVar[int] = 0
    fail_with: ClassVar[str | None] = None  # the constructor raises RuntimeError(this)

    @classmethod
    def load(cls, readings: list[dict[str, Any]]) -> None:
        cls.readings = deque(readings)
        cls.last = None
        cls.samples_taken = 0
        cls.fail_with = None

    @classmethod
    def next(cls) -> AppleEnergyMetrics:
        if cls.readings:
            cls.last = cls.readings.popleft()
        if cls.last is None:
            return AppleEnergyMetrics()  # no channels at all: every field None
        cls.samples_taken += 1
        return _metrics(cls.last)


class AppleEnergyMonitor:
    def __init__(self) -> None:
        if Mocker.fail_with is not None:
            raise RuntimeError(Mocker.fail_with)
        self._open: dict[str, AppleEnergyMetrics] = {}

    def get_cumulative_energy(self) -> AppleEnergyMetrics:
        return Mocker.next()

    def begin_window(self, key: str, restart: bool = False) -> None:
        if key in self._open and not restart:
            raise RuntimeError("Measurement with specified key already exists.")
        self._open[key] = Mocker.next()

    def end_window(self, key: str) -> AppleEnergyMetrics:
        if key not in self._open:
            raise RuntimeError("No measurement with provided key had been started.")
        return _delta(self._open.pop(key), Mocker.next())
