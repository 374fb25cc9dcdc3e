#!/usr/bin/env python3
"""A stand-in for /usr/bin/powermetrics: writes a real recording to stdout in chunks.

Driven by environment variables so tests can make it behave as the real one does, or
fail as the real one can:

FAKE_PM_RECORDING  file to write (default: the 5-window M4 Pro gpu_power plist)
FAKE_PM_CHUNK      bytes per write (default 700); FAKE_PM_DELAY seconds between writes
FAKE_PM_END        exit (default) | crash (stop halfway, message on stderr, exit 3)
                   | hang (stay alive after writing) | loop (repeat until stopped)
                   | silent (write nothing at all and stay alive: SIGPIPE never comes)
FAKE_PM_IGNORE_TERM=1  ignore SIGTERM (to test the escalation to SIGKILL)
FAKE_PM_ARGV       append our argv, one JSON line per run, to this file
FAKE_PM_PIDFILE    write our pid to this file when started (not for --help)
FAKE_PM_HELP       the recorded `powermetrics --help` to print for --help
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

DATA = Path(__file__).parent / "data" / "powermetrics"


def main() -> int:
    if os.environ.get("FAKE_PM_ARGV"):
        with open(os.environ["FAKE_PM_ARGV"], "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    if "--help" in sys.argv or "-h" in sys.argv:
        help_file = os.environ.get(
            "FAKE_PM_HELP", DATA / "m1_macmini9-1_macos11-2_powermetrics_help.txt"
        )
        sys.stdout.write(Path(help_file).read_text())
        return 0
    if os.environ.get("FAKE_PM_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("FAKE_PM_PIDFILE"):
        Path(os.environ["FAKE_PM_PIDFILE"]).write_text(str(os.getpid()))
    end = os.environ.get("FAKE_PM_END", "exit")
    if end == "silent":
        while True:
            time.sleep(1)
    recording = Path(
        os.environ.get(
            "FAKE_PM_RECORDING",
            DATA / "m4pro_mac16-8_macos15-5_24F74_plist_gpu_power_5samples_nulsep.plist",
        )
    ).read_bytes()
    chunk = int(os.environ.get("FAKE_PM_CHUNK", "700"))
    delay = float(os.environ.get("FAKE_PM_DELAY", "0.005"))
    if end == "crash":
        recording = recording[: len(recording) // 2]
    out = sys.stdout.buffer
    while True:
        for i in range(0, len(recording), chunk):
            out.write(recording[i : i + chunk])
            out.flush()
            time.sleep(delay)
        if end != "loop":
            break
        out.write(b"\0")
    if end == "crash":
        sys.stderr.write("powermetrics: unable to read the SMC (fake crash)\n")
        return 3
    if end == "hang":
        while True:
            time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
