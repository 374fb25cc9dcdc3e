"""Pure, incremental parsers for macOS powermetrics output: bytes in, windows out.

Two formats:

* ``-f plist`` (what anetui launches): XML plist documents, each ending with
  ``</plist>``, separated by a NUL byte. ``*_energy`` keys are integer mJ over the window,
  ``*_power`` keys are mW, ``elapsed_ns`` is the window's length. Every key is optional;
  macOS 12 has ``package_energy``/``dram_energy`` where 13+ has ``combined_power``.
* ``-f text`` (the default, for recordings people paste): a ``*** Sampled system
  activity (…) (N ms elapsed) ***`` header per window, then ``Label: N mW`` lines whose
  labels change between macOS releases.

Cluster names (``E``, ``P0``, ``P``, ``M0`` …) are read from the data, never assumed.
Neither parser raises on any input: a document or window that does not parse, or that
carries a non-finite, negative or impossible value (a window under 1 ms or beyond
``max_window_ns``), is skipped and counted (``error_count``; the first ``MAX_ERRORS``
described in ``errors``). Bytes can arrive in chunks of any size, and the output is the
same; memory is bounded (``MAX_DOCUMENT_BYTES``, ``MAX_LINE_BYTES``) and every byte is
scanned a bounded number of times. A text stream cut off inside its last window drops
that window and says so. The shared model and limits are in
:mod:`anetui.power.powermetrics_window`, the text parser in
:mod:`anetui.power.powermetrics_text`; this module holds the plist parser and the
whole-recording entry points (``detect_format``, ``make_parser``, ``parse_bytes``).
"""

from __future__ import annotations

import math
import plistlib
from typing import Any

from anetui.errors import one_line
from anetui.power.base import ClusterInfo
from anetui.power.powermetrics_text import TextStreamParser
from anetui.power.powermetrics_window import (
    DEFAULT_MAX_WINDOW_NS,
    Errors,
    Window,
    rail_name,
    window_problem,
)

#: A document longer than this without ``</plist>`` is dropped, so memory stays bounded.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_PLIST_END = b"</plist>"


# -- plist ----------------------------------------------------------------------------
class PlistStreamParser(Errors):
    """Feed bytes in any chunking; complete documents come out as Windows."""

    def __init__(self, max_window_ns: int = DEFAULT_MAX_WINDOW_NS) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for </plist>
        self.max_window_ns = max_window_ns
        self.documents = 0

    def feed(self, data: bytes) -> list[Window]:
        self._buffer += data
        out: list[Window] = []
        while True:
            # Resume the search where the last one stopped (minus a partial end tag):
            # byte-by-byte feeding stays linear.
            end = self._buffer.find(_PLIST_END, max(0, self._scanned - len(_PLIST_END) + 1))
            if end < 0:
                self._scanned = len(self._buffer)
                if len(self._buffer) > MAX_DOCUMENT_BYTES:
                    self._error(f"dropped {len(self._buffer)} bytes without </plist>")
                    self._buffer.clear()
                    self._scanned = 0
                break
            cut = end + len(_PLIST_END)
            document = bytes(self._buffer[:cut]).strip(b"\0\r\n\t ")
            del self._buffer[:cut]
            self._scanned = 0
            window = self._parse_document(document)
            if window is not None:
                out.append(window)
        return out

    def close(self) -> list[Window]:
        """End of stream: whatever is left is an incomplete document."""
        rest = bytes(self._buffer).strip(b"\0\r\n\t ")
        self._buffer.clear()
        self._scanned = 0
        if rest:
            self._error(f"stream ended inside a document ({len(rest)} bytes)")
        return []

    def _parse_document(self, document: bytes) -> Window | None:
        self.documents += 1
        start = document.find(b"<?xml")
        if start < 0:
            start = document.find(b"<plist")
        if start > 0:
            self._error(f"document {self.documents}: skipped {start} bytes before it")
            document = document[start:]
        try:
            root = plistlib.loads(document, fmt=plistlib.FMT_XML)
        except Exception as exc:  # plistlib raises several types on bad XML
            self._error(f"document {self.documents}: not a valid plist ({one_line(exc, 160)})")
            return None
        if not isinstance(root, dict):
            self._error(f"document {self.documents}: not a dictionary")
            return None
        try:
            window = window_from_plist(root)
        except Exception as exc:  # any value we cannot use: skip the document, go on
            self._error(f"document {self.documents}: {one_line(exc, 160)}")
            return None
        problem = window_problem(window, self.max_window_ns)
        if problem is not None:
            self._error(f"document {self.documents}: {problem}")
            return None
        return window


def window_from_plist(root: dict[str, Any]) -> Window:
    """One plist document's dict -> Window. Raises ValueError without ``elapsed_ns``."""
    elapsed_ns = root.get("elapsed_ns")
    if not isinstance(elapsed_ns, int) or elapsed_ns <= 0:
        raise ValueError("no positive elapsed_ns")
    elapsed_ms = elapsed_ns / 1e6
    rails: dict[str, float] = {}
    processor = root.get("processor")
    if isinstance(processor, dict):
        _rails_from(processor, elapsed_ms, rails)
    gpu = root.get("gpu")
    if isinstance(gpu, dict):
        # The gpu sampler repeats gpu_energy over its own span; the processor's figure
        # (same window as cpu/ane) wins when both exist.
        _rails_from(gpu, elapsed_ms, rails, overwrite=False)
    clusters: dict[str, ClusterInfo] = {}
    if isinstance(processor, dict):
        for cluster in processor.get("clusters") or []:
            if isinstance(cluster, dict) and isinstance(cluster.get("name"), str):
                clusters[_cluster_name(cluster["name"])] = _cluster_from_plist(cluster)
    if isinstance(gpu, dict) and ("freq_hz" in gpu or "idle_ratio" in gpu):
        # powermetrics names it freq_hz but writes MHz for the GPU (338.0 on an M4 Max,
        # matching the text format's "GPU HW active frequency: 338 MHz").
        clusters["GPU"] = ClusterInfo(
            freq_mhz=_num(gpu.get("freq_hz")), active_ratio=_active(gpu), online_ratio=None
        )
    thermal = root.get("thermal_pressure")
    return Window(elapsed_ns, rails, thermal if isinstance(thermal, str) else None, clusters)


def _rails_from(
    section: dict[str, Any], elapsed_ms: float, rails: dict[str, float], overwrite: bool = True
) -> None:
    """``X_energy`` (mJ) and, where no energy is given, ``X_power`` (mW) -> rails[X] (mJ)."""
    found: dict[str, float] = {}
    for key, value in section.items():
        energy = _num(value) if key.endswith("_energy") else None
        if energy is not None:
            found[rail_name(key[: -len("_energy")])] = energy
    for key, value in section.items():
        power_mw = _num(value) if key.endswith("_power") else None
        if power_mw is not None:
            rail = rail_name(key[: -len("_power")])
            found.setdefault(rail, power_mw * elapsed_ms / 1000.0)  # mW × ms = µJ·1e3
    for rail, mj in found.items():
        if overwrite or rail not in rails:
            rails[rail] = mj


def _cluster_from_plist(cluster: dict[str, Any]) -> ClusterInfo:
    freq = _num(cluster.get("freq_hz"))
    return ClusterInfo(
        freq_mhz=freq / 1e6 if freq is not None else None,
        active_ratio=_active(cluster),
        online_ratio=_num(cluster.get("online_ratio")),
        power_w=None,
    )


def _active(section: dict[str, Any]) -> float | None:
    """Share of the window active: 1 − idle − down (a powered-down cluster is not idle)."""
    idle = _num(section.get("idle_ratio"))
    if idle is None:
        return None
    down = _num(section.get("down_ratio")) or 0.0
    return max(0.0, min(1.0, 1.0 - idle - down))


def _num(value: Any) -> float | None:
    """A plist number as a float (an integer too large for one is infinite, and so
    rejected with its document); anything else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _cluster_name(name: str) -> str:
    return name[: -len("-Cluster")] if name.endswith("-Cluster") else name


# -- whole files ----------------------------------------------------------------------
def detect_format(head: bytes) -> str:
    """'plist' when the data starts like an XML plist, else 'text'."""
    start = head.lstrip(b"\0\r\n\t \xef\xbb\xbf")[:64]
    return "plist" if start.startswith((b"<?xml", b"<plist", b"<!DOCTYPE plist")) else "text"


def make_parser(
    fmt: str, max_window_ns: int = DEFAULT_MAX_WINDOW_NS
) -> PlistStreamParser | TextStreamParser:
    if fmt == "plist":
        return PlistStreamParser(max_window_ns)
    if fmt == "text":
        return TextStreamParser(max_window_ns)
    raise ValueError(f"unknown powermetrics format '{fmt}' (plist or text)")


def parse_bytes(data: bytes, fmt: str | None = None) -> tuple[list[Window], list[str]]:
    """A whole recording -> (windows, errors). Never raises on bad content."""
    parser = make_parser(fmt or detect_format(data))
    windows = parser.feed(data)
    windows += parser.close()
    return windows, list(parser.errors)
