"""Pure, incremental parser for macOS powermetrics ``-f text`` output (the default, for
recordings people paste): bytes in, Windows out.

Each window starts with a ``*** Sampled system activity (…) (N ms elapsed) ***`` header,
then ``Label: N mW`` lines whose labels change between macOS releases; cluster names are
read from the data, never assumed. A window is complete at the next header or at
``close``; one cut off at the end of the stream is dropped, and said so. It never raises
on any input; memory is bounded (``MAX_LINE_BYTES``). Window, the plausibility checks and
the error tally are in :mod:`anetui.power.powermetrics_window`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from anetui.errors import one_line
from anetui.power.base import ClusterInfo
from anetui.power.powermetrics_window import (
    DEFAULT_MAX_WINDOW_NS,
    Errors,
    Window,
    rail_name,
    window_problem,
)

#: A text line longer than this is dropped (real lines are under 1 KB).
MAX_LINE_BYTES = 64 * 1024

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


class TextStreamParser(Errors):
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
            rail = _TEXT_RAILS.get(label, rail_name(label))
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
