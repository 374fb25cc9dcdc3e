"""Contention is measured: a real CPU hog beside the measured process shows up as other
processes' cores, and the warning names the remedy."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from anetui.core.contention import (
    MEANINGFUL_CORES,
    MEANINGFUL_SHARE,
    Contention,
    ContentionSampler,
)

#: A busy loop that says when it is spinning (read by the test: a state, not a time).
HOG = (
    "import time\nend = time.monotonic() + 20\nprint('spinning', flush=True)\n"
    "while time.monotonic() < end:\n    pass\n"
)


def test_a_cpu_hog_is_seen_as_other_processes_cores() -> None:
    sampler = ContentionSampler(interval_s=0.2)
    # Enough hogs for a warning on this machine: the threshold grows with the core
    # count (one hog is below it from 9 cores on), each hog holds at most one core.
    threshold = max(MEANINGFUL_CORES, MEANINGFUL_SHARE * sampler.cores)
    n_hogs = min(sampler.cores, math.ceil(threshold / 0.8))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else sampler.cores
    if n_hogs > usable:
        sampler.close()
        pytest.skip(
            f"the sampler counts {sampler.cores} cores but this process may use {usable}: "
            f"{n_hogs} hogs cannot each hold a core (run without a CPU affinity limit)"
        )
    hogs = [
        subprocess.Popen([sys.executable, "-c", HOG], stdout=subprocess.PIPE, text=True)
        for _ in range(n_hogs)
    ]
    try:
        for hog in hogs:
            assert hog.stdout is not None and hog.stdout.readline() == "spinning\n"
        sampler.set_owner("torch-cpu", threads=sampler.cores)
        time.sleep(1.5)  # this process sleeps: whatever ran was someone else
        sampler.set_owner(None)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        sampler.close()
    figures = sampler.figures()["torch-cpu"]
    assert figures.seconds >= 1.4
    # The hogs' cores (and whatever else ran); on a virtual machine the hypervisor may
    # have stolen part of them, which is reported apart.
    assert figures.others_cores + (figures.steal_cores or 0.0) >= 0.8 * n_hogs
    assert figures.own_cores < 0.2
    warnings = figures.warnings("torch-cpu")
    assert any("other processes used" in w and "--threads 1" in w for w in warnings)
    assert figures.to_json()["free_cores"] <= figures.cores - 0.8 * n_hogs


def test_a_quiet_machine_gives_no_warning() -> None:
    quiet = Contention(
        seconds=5.0,
        cores=8,
        others_cores=0.1,
        own_cores=1.0,
        steal_cores=0.0,
        load_1m=1.1,
        threads=1,
    )
    assert quiet.warnings("onnx-cpu") == []
    crowded = Contention(
        seconds=5.0,
        cores=2,
        others_cores=1.0,
        own_cores=0.9,
        steal_cores=None,
        load_1m=2.0,
        threads=2,
    )
    assert crowded.warnings("torch-cpu") == [
        "torch-cpu: other processes used 1.0 of 2 cores while it ran, load 2.0, so its "
        "figures are slower than on a quiet machine; measure on a quieter machine, or "
        "with --threads 1",
        "torch-cpu: 2 threads but only 1.0 cores were free; try --threads 1",
    ]
