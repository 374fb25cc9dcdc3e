"""The powermetrics parsers under hostile input: they never raise, never let an
impossible value through, keep memory bounded, and skip a bad document without losing
the good ones around it (Hypothesis: arbitrary bytes, mutations of the recordings, huge
numbers, random chunking)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anetui.power.powermetrics_parse import MAX_DOCUMENT_BYTES, PlistStreamParser, make_parser
from anetui.power.powermetrics_text import MAX_LINE_BYTES, TextStreamParser
from anetui.power.powermetrics_window import Window, window_problem
from tests.conftest import anetui_cmd

DATA = Path(__file__).parent / "data" / "powermetrics"
PLIST = (DATA / "m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist").read_bytes()
PLIST_THERMAL = (DATA / "m1_mbp17-1_macos13-3_22E252_plist_cpu_gpu_thermal_a.plist").read_bytes()
TEXT = (DATA / "m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt").read_bytes()
HOSTILE_NUMBERS = [b"9" * 400, b"1.2.3", b"nan", b"-inf", b"inf", b"-5", b"1e999", b"-0", b""]


def feed_all(
    fmt: str, chunks: list[bytes]
) -> tuple[list[Window], PlistStreamParser | TextStreamParser]:
    parser = make_parser(fmt)
    windows: list[Window] = []
    for chunk in chunks:
        windows += parser.feed(chunk)
    windows += parser.close()
    return windows, parser


def assert_sane(windows: list[Window], parser: PlistStreamParser | TextStreamParser) -> None:
    for window in windows:
        assert window_problem(window, parser.max_window_ns) is None
        assert all(math.isfinite(v) and v >= 0 for v in window.rails_mj.values())
    assert parser.error_count >= len(parser.errors)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000), st.sampled_from(["plist", "text"]), st.lists(st.integers(0, 4000)))
def test_arbitrary_bytes_never_raise(data: bytes, fmt: str, cuts: list[int]) -> None:
    windows, parser = feed_all(fmt, split(data, cuts))
    assert_sane(windows, parser)


@st.composite
def mutated(draw: st.DrawFn, source: bytes) -> bytes:
    """The recording with a few slices replaced: random bytes or hostile numbers."""
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(data) - 1))
        length = draw(st.integers(0, 40))
        replacement = draw(st.one_of(st.binary(max_size=20), st.sampled_from(HOSTILE_NUMBERS)))
        data[start : start + length] = replacement
    return bytes(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(PLIST + b"\0" + PLIST_THERMAL), st.lists(st.integers(0, 10**6), max_size=20))
def test_mutated_plist_recordings_never_raise(data: bytes, cuts: list[int]) -> None:
    windows, parser = feed_all("plist", split(data, cuts))
    assert_sane(windows, parser)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(TEXT), st.lists(st.integers(0, 10**6), max_size=20))
def test_mutated_text_recordings_never_raise(data: bytes, cuts: list[int]) -> None:
    windows, parser = feed_all("text", split(data, cuts))
    assert_sane(windows, parser)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(["integer", "real"]))
def test_a_hostile_number_skips_only_its_own_document(number: bytes, tag: str) -> None:
    docs = [d for d in PLIST.split(b"\0") if d.strip()]
    hostile = (
        docs[2]
        .replace(
            b"<key>gpu_energy</key><integer>",
            b"<key>gpu_energy</key><"
            + tag.encode()
            + b">"
            + number
            + b"</"
            + tag.encode()
            + b"><!-- ",
            1,
        )
        .replace(b"</integer>", b" -->", 1)
        if False
        else _set_energy(docs[2], tag, number)
    )
    stream = b"\0".join([*docs[:2], hostile, *docs[3:]])
    windows, parser = feed_all("plist", [stream])
    assert_sane(windows, parser)
    good, _ = feed_all("plist", [PLIST])
    if number == b"-0":
        assert len(windows) == len(good)  # -0 mJ is a valid zero
    else:
        assert len(windows) == len(good) - 1 and parser.error_count == 1, parser.errors
        assert parser.errors[0].startswith("document 3:")
        assert [w.rails_mj for w in windows] == [w.rails_mj for i, w in enumerate(good) if i != 2]


def _set_energy(document: bytes, tag: str, number: bytes) -> bytes:
    """The document with its gpu section's energy value replaced by ``number``."""
    key = b"<key>gpu_energy</key>"
    start = document.index(key) + len(key)
    end = document.index(b"\n", start)
    return document[:start] + b"<%s>%s</%s>" % (tag.encode(), number, tag.encode()) + document[end:]


@pytest.mark.parametrize(
    ("header_ms", "problem"),
    [
        ("0.0001", "impossible window length"),
        ("9" * 400, "unreadable elapsed time"),
        ("1.2.3", "unreadable elapsed time"),
        ("99999999", "impossible window length"),
    ],
)
def test_a_hostile_text_window_is_skipped_and_counted(header_ms: str, problem: str) -> None:
    text = TEXT.decode()
    headers = [i for i, line in enumerate(text.split("\n")) if line.startswith("*** Sampled")]
    lines = text.split("\n")
    lines[headers[3]] = re.sub(r"[0-9.]+(?=\s*ms elapsed)", header_ms, lines[headers[3]])
    windows, parser = feed_all("text", ["\n".join(lines).encode()])
    good, _ = feed_all("text", [TEXT])
    assert len(windows) == len(good) - 1
    assert (
        parser.error_count == 1 and problem in parser.errors[0] and "window 4" in parser.errors[0]
    )


def test_buffers_stay_bounded() -> None:
    text = TextStreamParser()
    for _ in range(40):
        text.feed(b"x" * (MAX_LINE_BYTES // 8))  # no newline, ever
        assert text._pending_chars <= MAX_LINE_BYTES
    assert text.error_count == 1 and "longer than" in text.errors[0]
    assert text.feed(b"tail of that line\n" + TEXT) != []  # recovers at the next line
    plist = PlistStreamParser()
    chunk = b"<" * (1 << 20)
    for _ in range(MAX_DOCUMENT_BYTES // len(chunk) + 2):
        plist.feed(chunk)
        assert len(plist._buffer) <= MAX_DOCUMENT_BYTES + len(chunk)
    assert plist.error_count == 1


def test_errors_are_counted_beyond_the_kept_descriptions() -> None:
    bad = b"<plist><dict></dict></plist>\0" * 500
    windows, parser = feed_all("plist", [bad])
    assert windows == [] and parser.error_count == 500 and len(parser.errors) == 100


def test_a_truncated_text_stream_drops_and_reports_its_last_window() -> None:
    cut = TEXT[: TEXT.rindex(b"Package Power") + 5]  # inside a line of the last window
    windows, parser = feed_all("text", [cut])
    good, _ = feed_all("text", [TEXT])
    assert len(windows) == len(good) - 1
    assert parser.errors == [
        f"the last window ({good[-1].elapsed_ns / 1e6:g} ms) was cut off: dropped"
    ]
    # Cut at a line end instead: the window lacks the rails the others have.
    cut_at_line = TEXT[: TEXT.rindex(b"\nPackage Power") + 1]
    windows, parser = feed_all("text", [cut_at_line])
    assert len(windows) == len(good) - 1 and "(cut off?): dropped" in parser.errors[0]


def test_power_parse_skips_one_hostile_document_and_says_so(tmp_path: Path) -> None:
    docs = [d for d in PLIST.split(b"\0") if d.strip()]
    docs[1] = _set_energy(docs[1], "real", b"nan")
    recording = tmp_path / "one-hostile.plist"
    recording.write_bytes(b"\0".join(docs))
    result = subprocess.run(
        anetui_cmd("power", "--parse", str(recording)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    samples = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(samples) == len(docs) - 1
    assert "document 2: impossible energy nan mJ on rail gpu" in result.stderr


def test_power_parse_of_an_endless_file_stops_at_the_limit() -> None:
    result = subprocess.run(
        anetui_cmd("power", "--parse", "/dev/zero", "--parse-limit-mb", "4"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "anetui: error: /dev/zero goes on past 4 MiB: stopped reading "
        "(not a recording? --parse-limit-mb raises the limit)"
    ]


def test_a_hostile_document_does_not_kill_the_live_source(
    fake_powermetrics: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anetui.power.powermetrics import PowermetricsSource

    docs = [d for d in PLIST.split(b"\0") if d.strip()]
    docs[1] = docs[1].replace(b"<integer>", b"<integer>" + b"9" * 400, 1)
    docs[3] = _set_energy(docs[3], "real", b"-inf")
    recording = tmp_path / "hostile.plist"
    recording.write_bytes(b"\0".join(docs))
    monkeypatch.setenv("FAKE_PM_RECORDING", str(recording))

    async def scenario() -> tuple[int, PowermetricsSource]:
        source = PowermetricsSource(executable=fake_powermetrics)
        count = 0
        async for _sample in source:
            count += 1
        await source.aclose()
        return count, source

    count, source = asyncio.run(scenario())
    assert count == len(docs) - 2
    assert source.skipped == 2 and source.reason is not None and "lost" not in source.reason
