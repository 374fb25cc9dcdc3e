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
Neither parser raises on bad input: a bad document or window is skipped and described in
``errors``; bytes can arrive in chunks of any size, and the output is the same.
"""

from __future__ import annotations

import codecs
import plistlib
import re
from dataclasses import dataclass, field
from typing import Any

from anetui.errors import one_line
from anetui.power.base import ClusterInfo, PowerSample

#: A document longer than this without ``</plist>`` is dropped, so memory stays bounded.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_PLIST_END = b"</plist>"


@dataclass(frozen=True, slots=True)
class Window:
    """One parsed powermetrics window, before it is placed on the monotonic clock."""

    elapsed_ns: int
    rails_mj: dict[str, float]
    thermal_pressure: str | None = None
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)

    def at(self, t_end_ns: int) -> PowerSample:
        """This window as a PowerSample ending at ``t_end_ns``."""
        return PowerSample(
            t_end_ns - self.elapsed_ns,
            t_end_ns,
            dict(self.rails_mj),
            self.thermal_pressure,
            dict(self.clusters),
        )


def windows_to_samples(windows: list[Window]) -> list[PowerSample]:
    """Windows laid end to end from t = 0 (for parsing a recording)."""
    samples, t = [], 0
    for window in windows:
        t += window.elapsed_ns
        samples.append(window.at(t))
    return samples


# -- plist ----------------------------------------------------------------------------
class PlistStreamParser:
    """Feed bytes in any chunking; complete documents come out as Windows."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.errors: list[str] = []
        self.documents = 0

    def feed(self, data: bytes) -> list[Window]:
        self._buffer += data
        out: list[Window] = []
        while True:
            end = self._buffer.find(_PLIST_END)
            if end < 0:
                if len(self._buffer) > MAX_DOCUMENT_BYTES:
                    self.errors.append(f"dropped {len(self._buffer)} bytes without </plist>")
                    self._buffer.clear()
                break
            cut = end + len(_PLIST_END)
            document = bytes(self._buffer[:cut]).strip(b"\0\r\n\t ")
            del self._buffer[:cut]
            window = self._parse_document(document)
            if window is not None:
                out.append(window)
        return out

    def close(self) -> list[Window]:
        """End of stream: whatever is left is an incomplete document."""
        rest = bytes(self._buffer).strip(b"\0\r\n\t ")
        self._buffer.clear()
        if rest:
            self.errors.append(f"stream ended inside a document ({len(rest)} bytes)")
        return []

    def _parse_document(self, document: bytes) -> Window | None:
        self.documents += 1
        start = document.find(b"<?xml")
        if start < 0:
            start = document.find(b"<plist")
        if start > 0:
            self.errors.append(f"document {self.documents}: skipped {start} bytes before it")
            document = document[start:]
        try:
            root = plistlib.loads(document, fmt=plistlib.FMT_XML)
        except Exception as exc:  # plistlib raises several types on bad XML
            self.errors.append(
                f"document {self.documents}: not a valid plist ({one_line(exc, 160)})"
            )
            return None
        if not isinstance(root, dict):
            self.errors.append(f"document {self.documents}: not a dictionary")
            return None
        try:
            return window_from_plist(root)
        except (TypeError, ValueError) as exc:
            self.errors.append(f"document {self.documents}: {one_line(exc, 160)}")
            return None


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
        if key.endswith("_energy") and _num(value) is not None:
            found[_rail(key[: -len("_energy")])] = float(value)
    for key, value in section.items():
        if key.endswith("_power") and _num(value) is not None:
            rail = _rail(key[: -len("_power")])
            found.setdefault(rail, float(value) * elapsed_ms / 1000.0)  # mW × ms = µJ·1e3
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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _cluster_name(name: str) -> str:
    return name[: -len("-Cluster")] if name.endswith("-Cluster") else name


def _rail(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


# -- text -----------------------------------------------------------------------------
_HEADER = re.compile(
    r"^\*\*\* Sampled system activity \(.*\) \((?P<ms>[0-9.]+)\s*ms elapsed\) \*\*\*"
)
# "CPU Power: 954 mW", and "Combined Power (CPU + GPU + ANE): 983 mW" on macOS 13+.
_POWER = re.compile(
    r"^(?P<label>[A-Za-z][A-Za-z0-9 /_-]*?) Power(?: \([^)]*\))?: (?P<mw>[0-9.]+) mW\b"
)
_CLUSTER = re.compile(
    r"^(?P<name>\S+)-Cluster (?P<what>[^:]+):\s*(?P<value>[0-9.]+(?:e[+-]?[0-9]+)?)"
)
_GPU_FREQ = re.compile(r"^GPU (?:HW )?active frequency: (?P<mhz>[0-9.]+) MHz")
_GPU_ACTIVE = re.compile(r"^GPU (?:HW )?active residency:\s*(?P<pct>[0-9.]+)%")
_GPU_IDLE = re.compile(r"^GPU idle residency:\s*(?P<pct>[0-9.]+)%")
_THERMAL = re.compile(r"^Current pressure level: (?P<level>\w+)")
#: Labels whose rail has a fixed name across releases. Others become their lower-case
#: label ("GPU SRAM" -> "gpu_sram"), never dropped.
_TEXT_RAILS = {
    "CPU": "cpu",
    "GPU": "gpu",
    "ANE": "ane",
    "DRAM": "dram",
    "Package": "package",
    "Combined": "combined",
    "Clusters Total": "cpu",  # macOS 11: the CPU clusters' total, i.e. the CPU rail
}


class TextStreamParser:
    """Feed bytes of ``-f text`` output; a window is complete at the next header or at
    :meth:`close`. Lines before the first header are ignored (the machine header)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._current: _TextWindow | None = None
        self.errors: list[str] = []
        self.headers = 0
        self._orphan_lines = 0

    def feed(self, data: bytes) -> list[Window]:
        text = self._partial + self._decoder.decode(data)
        lines = text.split("\n")
        self._partial = lines.pop()
        out: list[Window] = []
        for line in lines:
            window = self._line(line.rstrip("\r"))
            if window is not None:
                out.append(window)
        return out

    def close(self) -> list[Window]:
        out: list[Window] = []
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if rest:
            window = self._line(rest.rstrip("\r"))
            if window is not None:
                out.append(window)
        if self._current is not None:
            out.append(self._current.finish())
            self._current = None
        if self.headers == 0 and self._orphan_lines:
            self.errors.append(
                f"{self._orphan_lines} powermetrics lines but no '*** Sampled system activity "
                "… (N ms elapsed) ***' header: the window length, and so the energy, is unknown"
            )
        return out

    def _line(self, line: str) -> Window | None:
        header = _HEADER.match(line)
        if header:
            self.headers += 1
            done = self._current.finish() if self._current is not None else None
            self._current = _TextWindow(elapsed_ns=round(float(header["ms"]) * 1e6))
            return done
        if self._current is None:
            if _POWER.match(line) or _CLUSTER.match(line) or _THERMAL.match(line):
                self._orphan_lines += 1
            return None
        self._current.line(line)
        return None


@dataclass
class _TextWindow:
    elapsed_ns: int
    power_mw: dict[str, float] = field(default_factory=dict)
    clusters: dict[str, dict[str, float]] = field(default_factory=dict)
    gpu: dict[str, float] = field(default_factory=dict)
    thermal: str | None = None

    def line(self, line: str) -> None:
        cluster = _CLUSTER.match(line)
        if cluster:
            self._cluster_line(cluster["name"], cluster["what"], float(cluster["value"]))
            return
        power = _POWER.match(line)
        if power:
            label = power["label"].strip()
            rail = _TEXT_RAILS.get(label, _rail(label))
            # "GPU Power" is printed twice (processor and GPU sections): keep the first;
            # "CPU Power" beats macOS 11's "Clusters Total Power" if both appear.
            if rail not in self.power_mw or (rail == "cpu" and label == "CPU"):
                self.power_mw[rail] = float(power["mw"])
            return
        for pattern, key in (
            (_GPU_FREQ, "freq_mhz"),
            (_GPU_ACTIVE, "active_pct"),
            (_GPU_IDLE, "idle_pct"),
        ):
            match = pattern.match(line)
            if match:
                self.gpu.setdefault(key, float(match.group(1)))
                return
        thermal = _THERMAL.match(line)
        if thermal:
            self.thermal = thermal["level"]

    def _cluster_line(self, name: str, what: str, value: float) -> None:
        info = self.clusters.setdefault(name, {})
        keys = {
            "HW active frequency": "freq_mhz",
            "HW active residency": "active_pct",
            "idle residency": "idle_pct",
            "down residency": "down_pct",
            "Online": "online_pct",
            "Power": "power_mw",
        }
        if what in keys:
            info.setdefault(keys[what], value)

    def finish(self) -> Window:
        elapsed_ms = self.elapsed_ns / 1e6
        rails = {rail: mw * elapsed_ms / 1000.0 for rail, mw in self.power_mw.items()}
        clusters = {name: _cluster_from_text(info) for name, info in self.clusters.items()}
        if self.gpu:
            clusters["GPU"] = _cluster_from_text(self.gpu)
        return Window(self.elapsed_ns, rails, self.thermal, clusters)


def _cluster_from_text(info: dict[str, float]) -> ClusterInfo:
    active = info.get("active_pct")
    if active is None and "idle_pct" in info:
        active = 100.0 - info["idle_pct"] - info.get("down_pct", 0.0)
    return ClusterInfo(
        freq_mhz=info.get("freq_mhz"),
        active_ratio=max(0.0, min(1.0, active / 100.0)) if active is not None else None,
        online_ratio=info["online_pct"] / 100.0 if "online_pct" in info else None,
        power_w=info["power_mw"] / 1000.0 if "power_mw" in info else None,
    )


# -- whole files ----------------------------------------------------------------------
def detect_format(head: bytes) -> str:
    """'plist' when the data starts like an XML plist, else 'text'."""
    start = head.lstrip(b"\0\r\n\t \xef\xbb\xbf")[:64]
    return "plist" if start.startswith((b"<?xml", b"<plist", b"<!DOCTYPE plist")) else "text"


def make_parser(fmt: str) -> PlistStreamParser | TextStreamParser:
    if fmt == "plist":
        return PlistStreamParser()
    if fmt == "text":
        return TextStreamParser()
    raise ValueError(f"unknown powermetrics format '{fmt}' (plist or text)")


def parse_bytes(data: bytes, fmt: str | None = None) -> tuple[list[Window], list[str]]:
    """A whole recording -> (windows, errors). Never raises on bad content."""
    parser = make_parser(fmt or detect_format(data))
    windows = parser.feed(data)
    windows += parser.close()
    return windows, list(parser.errors)
