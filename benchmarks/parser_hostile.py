"""How do the powermetrics parsers cope with hostile streams? (issue 12, item 5)

Prints, for each case, the seconds taken and the growth of the process's peak RSS:

(a) a 64 MB text stream with no newline, fed in 64 KB chunks (was 30 s and 146 MB);
(b) a 260 KB plist document fed one byte at a time (was 13.8 s);
(c) 3,630 random mutations of the recordings (hostile numbers, random bytes, random
    chunking): how many raised (was 23).

Run: ``.venv/bin/python benchmarks/parser_hostile.py`` (well under a minute).
"""

from __future__ import annotations

import random
import resource
import time
from pathlib import Path

from anetui.power.powermetrics_parse import PlistStreamParser, make_parser
from anetui.power.powermetrics_text import TextStreamParser

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "powermetrics"
HOSTILE = [b"9" * 400, b"1.2.3", b"nan", b"-inf", b"inf", b"-5", b"1e999", b"\0", b"</plist>"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def no_newline_text() -> tuple[float, float]:
    parser, chunk = TextStreamParser(), b"x" * 65536
    rss, started = peak_rss_mb(), time.perf_counter()
    for _ in range(64 * 1024 * 1024 // len(chunk)):
        parser.feed(chunk)
    parser.close()
    return time.perf_counter() - started, peak_rss_mb() - rss


def plist_byte_by_byte() -> tuple[float, int]:
    document = DATA / "m4max_mac16-5_macos26-2_25C56_plist_tasks_disk_cpu_gpu_thermal.plist"
    data = document.read_bytes().split(b"\0")[0]
    data = data.replace(
        b"<dict>", b"<dict><key>pad</key><string>" + b"p" * 1000 + b"</string>", 200
    )
    parser, windows = PlistStreamParser(), 0
    started = time.perf_counter()
    for i in range(len(data)):
        windows += len(parser.feed(data[i : i + 1]))
    return time.perf_counter() - started, len(data)


def mutations(count: int = 3630) -> int:
    rng = random.Random(12)
    recordings = [p.read_bytes() for p in DATA.iterdir() if p.suffix in (".plist", ".txt")]
    raised = 0
    for _ in range(count):
        data = bytearray(rng.choice(recordings))
        for _ in range(rng.randint(1, 6)):
            start = rng.randrange(len(data))
            data[start : start + rng.randint(0, 30)] = rng.choice(HOSTILE)
        parser = make_parser(rng.choice(["plist", "text"]))
        try:
            position = 0
            while position < len(data):
                step = rng.randint(1, 8192)
                parser.feed(bytes(data[position : position + step]))
                position += step
            parser.close()
        except Exception:  # counting them is the point
            raised += 1
    return raised


def main() -> None:
    seconds, rss = no_newline_text()
    print(f"(a) 64 MB text without a newline: {seconds:.2f} s, peak RSS +{rss:.1f} MB")
    seconds, size = plist_byte_by_byte()
    print(f"(b) {size / 1024:.0f} KB plist document byte by byte: {seconds:.2f} s")
    print(f"(c) 3630 mutated recordings: {mutations()} raised")


if __name__ == "__main__":
    main()
