"""Bad input fails at once with one clear line: NaN and infinity on the command line,
output paths that cannot be written (before any measurement), malformed results files
given to `anetui report` (Hypothesis: any JSON document carrying the schema)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anetui.errors import AnetuiError
from anetui.report.compare import comparison_markdown
from tests.test_cli import TINY_RUN, anetui, assert_one_line_error

BAD_NUMBERS = ["nan", "inf", "-inf", "NaN", "Infinity"]


@pytest.mark.parametrize(
    "argv",
    [
        *[("bench", "--duration", v) for v in BAD_NUMBERS[:3]],
        ("bench", "--speed", "inf"),
        ("bench", "--idle-seconds", "nan"),
        ("power", "--duration", "nan"),
        ("power", "--speed", "inf"),
        ("--idle-seconds", "nan"),
        ("--auto-seconds", "inf"),
        ("--exit-after", "nan"),
    ],
)
def test_non_finite_numbers_are_usage_errors(argv: tuple[str, ...]) -> None:
    proc = anetui(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "is not a finite number" in proc.stderr or "is not in the range" in proc.stderr


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_an_unwritable_output_fails_before_measuring(tmp_path: Path, option: str) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = anetui(
        "bench", *TINY_RUN, "--backends", "torch-cpu", "--duration", "30", option, str(folder)
    )
    assert_one_line_error(proc, 2, "is a directory")
    assert "preparing" not in proc.stderr  # nothing was measured
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    proc = anetui("bench", *TINY_RUN, "--duration", "30", option, str(not_a_folder / "out.json"))
    assert_one_line_error(proc, 2, "is not a folder")


def test_a_folder_the_user_cannot_write_fails_before_measuring() -> None:
    """As a user (here: root simulating `sudo`, so the check runs after the drop to
    uid 65534), a results path in a folder the user may not write is refused at once."""
    import shutil
    import subprocess
    import tempfile

    from tests.conftest import REPO, anetui_cmd

    if os.geteuid() != 0:
        folder = Path(tempfile.mkdtemp())
        folder.chmod(0o500)
        env = dict(os.environ)
    else:
        folder = Path(tempfile.mkdtemp())  # root's; mode 0755: the user may look, not write
        folder.chmod(0o755)
        env = {**os.environ, "SUDO_UID": "65534", "SUDO_GID": "65534", "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run(
            anetui_cmd("bench", *TINY_RUN, "--duration", "30", "--json", str(folder / "r.json")),
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert_one_line_error(proc, 2, f"cannot create files in {folder}")
        assert "preparing" not in proc.stderr and not (folder / "r.json").exists()
    finally:
        folder.chmod(0o700)
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00garbage", "not JSON: not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # id: nested
        (b'{"schema": "anetui.results/1", "environment": []}', "'environment' is not an object"),
        (
            b'{"schema": "anetui.results/1", "backends": [{"id": "x", "latency_ms": '
            b'{"p50": 1, "p99": 2, "p50_ci95": [1]}}]}',
            "p50_ci95' is not a pair of numbers",
        ),
        (b'{"schema": "anetui.results/1", "backends": [7]}', "backends[0]: not an object"),
        (b'{"schema": "anetui.results/1", "backends": {}}', "'backends' is not a list"),
    ],
    ids=["binary", "nested", "environment", "ci", "backend", "backends"],
)
def test_report_on_malformed_files_is_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    proc = anetui("report", str(path))
    assert_one_line_error(proc, 1, message)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
KEYS = ["environment", "config", "power", "backends", "ratios", "created"]
BACKEND_KEYS = ["id", "dtype", "count", "latency_ms", "energy", "throughput_per_s"]


@st.composite
def results_like(draw: st.DrawFn) -> dict:
    """Documents shaped like results files, with any value in any field."""
    doc = {"schema": "anetui.results/1"}
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True)):
        doc[key] = draw(JSON)
    if draw(st.booleans()):
        doc["backends"] = [
            {k: draw(JSON) for k in draw(st.lists(st.sampled_from(BACKEND_KEYS), unique=True))}
            | ({"latency_ms": {"p50": draw(JSON), "p99": 1.0, "p50_ci95": draw(JSON)}})
            for _ in range(draw(st.integers(0, 3)))
        ]
    return doc


@settings(max_examples=200, deadline=None)
@given(results_like())
def test_report_never_fails_with_anything_but_a_one_line_error(doc: dict) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.json"
        path.write_text(json.dumps(doc))
        try:
            text = comparison_markdown([path])
        except AnetuiError as exc:
            assert "\n" not in str(exc)
        else:
            assert text.startswith("# anetui comparison")
