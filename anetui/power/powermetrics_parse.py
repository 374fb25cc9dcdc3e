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
that window and says so. (Both formats stay in this one module, over the usual length:
they share Window, the plausibility checks and the error tally.)
"""

from __future__ import annotations

import codecs
import math
import plistlib
import re
from dataclasses import dataclass, field
from typing import Any

from anetui.errors import one_line
from anetui.power.base import ClusterInfo, PowerSample

#: A document longer than this without ``</plist>`` is dropped, so memory stays bounded.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: A text line longer than this is dropped (real lines are under 1 KB).
MAX_LINE_BYTES = 64 * 1024
#: Windows shorter than this are not measurements (powermetrics' minimum interval is 1 ms).
MIN_WINDOW_NS = 1_000_000
#: Without a requested interval to compare with, a window longer than this is impossible.
DEFAULT_MAX_WINDOW_NS = 3600 * 1_000_000_000
#: How many error descriptions are kept (all are counted in ``error_count``).
MAX_ERRORS = 100
_PLIST_END = b"</plist>"


def max_window_ns_for(interval_ms: int) -> int:
    """Longest plausible window for a requested interval: 20x it, and at least 10 s
    (powermetrics stretches windows under load, never by this much)."""
    return max(20 * interval_ms * 1_000_000, 10_000_000_000)


class _Errors:
    """Skipped input, counted; the first MAX_ERRORS described."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.error_count = 0
        self.last_error: str | None = None

    def _error(self, message: str) -> None:
        self.error_count += 1
        self.last_error = message
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def window_problem(window: Window, max_window_ns: int) -> str | None:
    """Why a parsed window cannot be a measurement, or None if it can."""
    if not MIN_WINDOW_NS <= window.elapsed_ns <= max_window_ns:
        return f"impossible window length {window.elapsed_ns} ns"
    for rail, mj in window.rails_mj.items():
        if not math.isfinite(mj) or mj < 0:
            return f"impossible energy {mj} mJ on rail {rail}"
    for name, info in window.clusters.items():
        for value in (info.freq_mhz, info.active_ratio, info.online_ratio, info.power_w):
            if value is not None and (not math.isfinite(value) or value < 0):
                return f"impossible value {value} for cluster {name}"
    return None


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
class PlistStreamParser(_Errors):
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
            found[_rail(key[: -len("_energy")])] = energy
    for key, value in section.items():
        power_mw = _num(value) if key.endswith("_power") else None
        if power_mw is not None:
            rail = _rail(key[: -len("_power")])
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


class TextStreamParser(_Errors):
    """Feed bytes of ``-f text`` output; a window is complete at the next header or at
    :meth:`close`. Lines before the first header are ignored (the machine header)."""

    def __init__(self, max_window_ns: int = DEFAULT_MAX_WINDOW_NS) -> None:
        super().__init__()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # pieces of the unfinished line
        self._pending_chars = 0
        self._skipping_line = False  # inside an over-long line: drop to its end
        self._current: _TextWindow | None = None
        self._previous_rails: frozenset[str] | None = None
        self.max_window_ns = max_window_ns
        self.headers = 0
        self._orphan_lines = 0

    def feed(self, data: bytes) -> list[Window]:
        text = self._decoder.decode(data)
        out: list[Window] = []
        start = 0
        while (newline := text.find("\n", start)) >= 0:
            piece = text[start:newline]
            start = newline + 1
            if self._skipping_line:
                self._skipping_line = False
                self._pending, self._pending_chars = [], 0
                continue
            line = "".join([*self._pending, piece]) if self._pending else piece
            self._pending, self._pending_chars = [], 0
            self._take(self._line(line.rstrip("\r")), out)
        self._keep_partial(text[start:])
        return out

    def _keep_partial(self, piece: str) -> None:
        if self._skipping_line or not piece:
            return
        self._pending.append(piece)
        self._pending_chars += len(piece)
        if self._pending_chars > MAX_LINE_BYTES:
            self._error(f"dropped a line longer than {MAX_LINE_BYTES} characters")
            self._pending, self._pending_chars = [], 0
            self._skipping_line = True
            if self._current is not None:
                self._current.bad = "it holds an over-long line"

    def close(self) -> list[Window]:
        out: list[Window] = []
        rest = "".join(self._pending) + self._decoder.decode(b"", final=True)
        self._pending, self._pending_chars = [], 0
        cut_mid_line = bool(rest.strip()) and not self._skipping_line and not _complete(rest)
        if rest and not self._skipping_line:
            self._take(self._line(rest.rstrip("\r")), out)
        if self._current is not None:
            last, self._current = self._current, None
            missing = (self._previous_rails or frozenset()) - set(last.power_mw)
            if cut_mid_line:
                self._error(f"the last window ({last.elapsed_ns / 1e6:g} ms) was cut off: dropped")
            elif missing:
                self._error(
                    f"the last window ({last.elapsed_ns / 1e6:g} ms) lacks "
                    f"{', '.join(sorted(missing))} that the others have (cut off?): dropped"
                )
            else:
                self._take(last, out)
        if self.headers == 0 and self._orphan_lines:
            self._error(
                f"{self._orphan_lines} powermetrics lines but no '*** Sampled system activity "
                "… (N ms elapsed) ***' header: the window length, and so the energy, is unknown"
            )
        return out

    def _take(self, finished: _TextWindow | None, out: list[Window]) -> None:
        """A finished window, checked, into ``out`` (or counted as an error)."""
        if finished is None:
            return
        self._previous_rails = frozenset(finished.power_mw)
        problem = finished.bad
        window = None
        if problem is None:
            try:
                window = finished.finish_window()
            except (ValueError, OverflowError) as exc:
                problem = one_line(exc, 160)
        if window is not None:
            problem = window_problem(window, self.max_window_ns)
        if problem is not None or window is None:
            self._error(f"window {finished.number}: {problem}: skipped")
            return
        out.append(window)

    def _line(self, line: str) -> _TextWindow | None:
        """Handle one line; the window it completed, if any."""
        header = _HEADER.match(line)
        if header:
            self.headers += 1
            done = self._current
            self._current = _TextWindow(number=self.headers)
            try:
                self._current.elapsed_ns = round(float(header["ms"]) * 1e6)
            except (ValueError, OverflowError):
                self._current.bad = f"unreadable elapsed time {header['ms'][:40]!r}"
            return done
        if self._current is None:
            if _POWER.match(line) or _CLUSTER.match(line) or _THERMAL.match(line):
                self._orphan_lines += 1
            return None
        try:
            self._current.line(line)
        except (ValueError, OverflowError):
            self._current.bad = f"unreadable line {line[:60]!r}"
        return None


def _complete(line: str) -> bool:
    """Whether an unterminated last line is whole anyway (a file without a final
    newline), judged by the patterns that need its end to match."""
    line = line.rstrip("\r")
    return bool(
        _POWER.match(line) or _THERMAL.match(line) or _GPU_FREQ.match(line) or not line.strip()
    )


@dataclass
class _TextWindow:
    number: int
    elapsed_ns: int = 0
    bad: str | None = None  # why the window must be skipped
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

    def finish_window(self) -> Window:
        """The Window; raises ValueError/OverflowError on values that make none."""
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
