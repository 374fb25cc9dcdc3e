"""The powermetrics parsers against every recorded fixture (tests/data/powermetrics,
copied verbatim from ../shared/fixtures/powermetrics; provenance in its SOURCES.md)."""

from __future__ import annotations

import itertools
import plistlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anetui.power.powermetrics_parse import PlistStreamParser, detect_format, parse_bytes
from anetui.power.powermetrics_text import TextStreamParser
from anetui.power.powermetrics_window import windows_to_samples

DATA = Path(__file__).parent / "data" / "powermetrics"
PLISTS = sorted(DATA.glob("*.plist"))
TEXTS = sorted(p for p in DATA.glob("*.txt") if "_help" not in p.name)


def plist_documents(path: Path) -> list[dict]:
    raw = path.read_bytes()
    return [plistlib.loads(d) for d in raw.split(b"\0") if d.strip()]


def test_every_fixture_is_covered() -> None:
    assert len(PLISTS) == 5 and len(TEXTS) == 9


@pytest.mark.parametrize("path", PLISTS, ids=lambda p: p.name[:40])
def test_plist_rails_equal_the_files_energy_and_power(path: Path) -> None:
    windows, errors = parse_bytes(path.read_bytes())
    assert errors == []
    docs = plist_documents(path)
    assert len(windows) == len(docs)
    for window, doc, sample in zip(windows, docs, windows_to_samples(windows), strict=True):
        assert window.elapsed_ns == doc["elapsed_ns"]
        elapsed_s = doc["elapsed_ns"] / 1e9
        expected: dict[str, float] = {}
        for section in ("gpu", "processor"):  # processor wins where both have a rail
            for key, value in doc.get(section, {}).items():
                if key.endswith("_energy"):
                    expected[key[:-7]] = value
        for key, value in doc.get("processor", {}).items():
            if key.endswith("_power") and key[:-6] not in expected:
                expected[key[:-6]] = value * elapsed_s  # mW × s = mJ
        assert sample.rails_mj == pytest.approx(expected, rel=1e-9)
        for rail, mj in expected.items():
            assert sample.rails_w[rail] == pytest.approx(mj / 1000 / elapsed_s, rel=1e-9)
            power_key = f"{rail}_power"
            if power_key in doc.get("processor", {}):
                # powermetrics' own mW agrees with energy / elapsed to rounding (±1 mJ).
                assert sample.rails_w[rail] * 1000 == pytest.approx(
                    doc["processor"][power_key], abs=1.0 / elapsed_s + 0.01
                )
        assert sample.thermal_pressure == doc.get("thermal_pressure")
        names = {
            c["name"].removesuffix("-Cluster") for c in doc.get("processor", {}).get("clusters", [])
        }
        assert names <= set(sample.clusters)


def test_m4_max_plist_details() -> None:
    (window,), _ = parse_bytes(
        (DATA / "m4max_mac16-5_macos26-2_25C56_plist_tasks_disk_cpu_gpu_thermal.plist").read_bytes()
    )
    assert window.rails_mj["cpu"] == 3049 and window.rails_mj["gpu"] == 276  # not gpu dict's 284
    assert set(window.clusters) == {"E", "P0", "P1", "GPU"}
    assert window.clusters["P1"].online_ratio is None  # the key is absent for P1
    assert window.clusters["P1"].active_ratio == pytest.approx(1 - 0.00237207 - 0.997273)
    assert window.clusters["E"].freq_mhz == pytest.approx(1154.44)
    assert window.clusters["GPU"].freq_mhz == pytest.approx(338.0)


def text_expectations(path: Path) -> list[tuple[float, dict[str, float]]]:
    """(elapsed ms, {rail: mW}) per window, read with the plainest regexes possible."""
    windows: list[tuple[float, dict[str, float]]] = []
    names = {
        "CPU": "cpu",
        "GPU": "gpu",
        "ANE": "ane",
        "DRAM": "dram",
        "Package": "package",
        "Combined": "combined",
        "Clusters Total": "cpu",
    }
    for line in path.read_text().splitlines():
        header = re.search(r"\(([0-9.]+)ms elapsed\)", line)
        if header:
            windows.append((float(header[1]), {}))
            continue
        power = re.match(
            r"^(CPU|GPU|ANE|DRAM|Package|Combined|Clusters Total) Power.*?: (\d+) mW", line
        )
        if power and windows:
            rail = names[power[1]]
            if rail == "cpu" and power[1] == "CPU":
                windows[-1][1]["cpu"] = float(power[2])
            windows[-1][1].setdefault(rail, float(power[2]))
    return windows


def cut_off_mid_line(path: Path) -> bool:
    """The fragment ends inside a line (no final newline, and the last line is not one
    that is complete without one): its last window is incomplete."""
    last_line = path.read_bytes().rsplit(b"\n", 1)[-1].decode()
    return bool(last_line) and not re.search(r"mW$|level: \w+$", last_line)


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name[:40])
def test_text_rails_equal_the_files_power_times_elapsed(path: Path) -> None:
    raw = path.read_bytes()
    windows, errors = parse_bytes(raw)
    expected = text_expectations(path)
    if expected and cut_off_mid_line(path):
        # A fragment cut off mid-line: its last window is incomplete, dropped and said so.
        assert errors == [f"the last window ({expected[-1][0]:g} ms) was cut off: dropped"]
        expected, errors = expected[:-1], []
    assert len(windows) == len(expected)
    if not expected and not windows and errors == []:
        return
    if not expected:  # a fragment without any header: a clear error, no sample
        assert errors and "no '*** Sampled system activity" in errors[0]
        return
    assert errors == []
    for window, (elapsed_ms, mw) in zip(windows, expected, strict=True):
        assert window.elapsed_ns == round(elapsed_ms * 1e6)
        assert window.rails_mj == pytest.approx({r: p * elapsed_ms / 1000 for r, p in mw.items()})
        sample = window.at(window.elapsed_ns)
        assert sample.rails_w == pytest.approx({r: p / 1000 for r, p in mw.items()})


def test_text_details_across_macos_versions() -> None:
    gb5, _ = parse_bytes(
        (DATA / "m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt").read_bytes()
    )
    assert len(gb5) == 24
    gpu_w = [w.rails_mj["gpu"] / (w.elapsed_ns / 1e6) for w in gb5]
    assert min(gpu_w) == 0 and 7.0 < max(gpu_w) < 8.0  # GPU ramps to ~7.6 W in that log
    assert set(gb5[0].clusters) == {"E", "P", "GPU"}
    m4, _ = parse_bytes(
        (DATA / "m4max_mac16-6_macos15-5_24F74_text_default_samplers.txt").read_bytes()
    )
    assert m4[0].rails_mj["combined"] == pytest.approx(983 * 5.02196)
    assert m4[0].clusters["P0"].online_ratio == pytest.approx(0.14)
    thermal, _ = parse_bytes(
        (
            DATA / "m2_mac14-2_macos26-1_25B78_text_thermal_FRAGMENT_blanklines_normalized.txt"
        ).read_bytes()
    )
    assert [w.thermal_pressure for w in thermal] == ["Nominal", "Nominal"]
    assert all(w.rails_mj == {} for w in thermal)  # thermal only: no rail is invented


def test_format_detection() -> None:
    for path in PLISTS:
        assert detect_format(path.read_bytes()[:100]) == "plist"
    for path in TEXTS:
        assert detect_format(path.read_bytes()[:100]) == "text"


def plist_stream() -> bytes:
    """All plist fixtures as one NUL-separated stream, as powermetrics writes it."""
    docs = [d.strip(b"\0\n") for p in PLISTS for d in p.read_bytes().split(b"\0") if d.strip()]
    return b"\n\0".join(docs) + b"\n"


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**7), max_size=60))
def test_plist_parser_is_independent_of_chunking(cuts: list[int]) -> None:
    data = plist_stream()
    whole, _ = parse_bytes(data, "plist")
    parser = PlistStreamParser()
    pieces = []
    for chunk in chunked(data, cuts):
        pieces += parser.feed(chunk)
    pieces += parser.close()
    assert pieces == whole and len(whole) == 11 and parser.errors == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=60))
def test_text_parser_is_independent_of_chunking(cuts: list[int]) -> None:
    data = (DATA / "m1_macmini9-1_macos11-2_20D80_text_cpu_gpu_gb5metal_excerpt.txt").read_bytes()
    whole, _ = parse_bytes(data, "text")
    parser = TextStreamParser()
    pieces = []
    for chunk in chunked(data, cuts):
        pieces += parser.feed(chunk)
    pieces += parser.close()
    assert pieces == whole and len(whole) == 24


def test_truncated_stream_keeps_complete_documents_and_says_what_was_lost() -> None:
    data = plist_stream()
    cut = data[: len(data) - 500]
    windows, errors = parse_bytes(cut, "plist")
    assert len(windows) == 10
    left = len(cut.rsplit(b"</plist>", 1)[1].strip(b"\0\r\n\t "))
    assert errors == [f"stream ended inside a document ({left} bytes)"]


def test_a_corrupted_document_is_skipped_and_parsing_continues() -> None:
    docs = plist_stream().split(b"\0")
    docs[2] = docs[2].replace(b"<key>elapsed_ns</key>", b"<key>elapsed_ns<key>", 1)  # bad XML
    docs[4] = docs[4].replace(b"<key>elapsed_ns</key>", b"<key>renamed</key>", 1)  # no window
    windows, errors = parse_bytes(b"\0".join(docs), "plist")
    assert len(windows) == 9
    assert len(errors) == 2
    assert errors[0].startswith("document 3: not a valid plist")
    assert errors[1] == "document 5: no positive elapsed_ns"


@pytest.mark.parametrize("data", [b"", b"\0\0\n", b"garbage without any structure", b"<plist>"])
def test_empty_and_garbage_streams_give_no_sample_and_no_exception(data: bytes) -> None:
    for fmt in ("plist", "text"):
        windows, _errors = parse_bytes(data, fmt)
        assert windows == []


def test_binary_noise_never_raises() -> None:
    import random

    rng = random.Random(5)
    noise = bytes(rng.randrange(256) for _ in range(20_000))
    for fmt in ("plist", "text"):
        parse_bytes(noise + plist_stream() + noise, fmt)
    windows, errors = parse_bytes(noise + plist_stream(), "plist")
    assert len(windows) >= 10 and errors  # the noise is reported, the documents survive
