"""As a new user would: `anetui bench` over a replayed recording whose cpu rail reads
zero throughout while torch-cpu runs marks that rail suspect in the results' warnings
and leaves it out of the totals; the untouched recording raises no warning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.test_cli import TINY_RUN, anetui

RECORDING = (
    REPO
    / "tests/data/powermetrics/m4max_mac16-5_macos26-2_25C56_plist_tasks_disk_cpu_gpu_thermal.plist"
)
CPU_ENERGY = b"<key>cpu_energy</key>\n<integer>3049</integer>"


#: The machine's load is measured and said (issue 10); on a busy test machine those
#: sentences are expected and are not what these tests are about.
_CONTENTION = re.compile(
    r"^[\w-]+: (other processes used|\d+ threads but only|the hypervisor took)"
)


def rail_warnings(doc: dict[str, Any]) -> list[str]:
    """The results' warnings, less those about the machine's load."""
    return [w for w in doc["warnings"] if not _CONTENTION.match(w)]


def bench(tmp_path: Path, recording: Path, *extra: str) -> tuple[dict[str, Any], str, str]:
    out = tmp_path / "r.json"
    proc = anetui(
        "bench",
        "--backends",
        "torch-cpu",
        *TINY_RUN,
        "--duration",
        "1.5",
        "--power",
        f"replay:{recording}",
        "--speed",
        "25",
        "--idle-seconds",
        "0.3",
        "--json",
        str(out),
        "--markdown",
        str(tmp_path / "r.md"),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stderr, (tmp_path / "r.md").read_text()


def test_a_cpu_rail_at_zero_is_suspect_and_left_out(tmp_path: Path) -> None:
    data = RECORDING.read_bytes()
    assert data.count(CPU_ENERGY) == 1
    zero_cpu = tmp_path / "m4max_cpu_zero.plist"
    zero_cpu.write_bytes(data.replace(CPU_ENERGY, b"<key>cpu_energy</key>\n<integer>0</integer>"))

    doc, stderr, markdown = bench(tmp_path, zero_cpu)
    (warning,) = rail_warnings(doc)
    assert warning.startswith("cpu reads 0 mJ over ")
    assert "windows while torch-cpu ran: the counter is dead or frozen" in warning
    assert doc["power"]["suspect_rails"] == [{"rail": "cpu", "reason": warning, "kept": False}]
    energy = doc["backends"][0]["energy"]
    assert "cpu" in energy["rails"] and energy["total_rails"] == ["gpu", "ane"]
    assert energy["mj_per_inference"] == energy["mj_per_inference_by_rail"]["gpu"]
    assert f"warning: {warning[:40]}" in " ".join(stderr.split())
    assert "**Suspect rail `cpu`**" in markdown

    kept, _, _ = bench(tmp_path, zero_cpu, "--keep-rail", "cpu")
    assert kept["backends"][0]["energy"]["total_rails"] == ["cpu", "gpu", "ane"]
    assert kept["power"]["suspect_rails"][0]["kept"] is True
    assert rail_warnings(kept)[0].endswith("kept in the totals as asked (--keep-rail)")


def test_the_untouched_recording_raises_no_warning(tmp_path: Path) -> None:
    doc, stderr, markdown = bench(tmp_path, RECORDING)
    assert rail_warnings(doc) == [] and doc["power"]["suspect_rails"] == []
    assert doc["backends"][0]["energy"]["total_rails"] == ["cpu", "gpu", "ane"]
    assert "reads 0 mJ" not in stderr and "Suspect rail" not in markdown
