"""Least privilege under a simulated sudo (the tests run as root; the "user" is uid
65534): every command that needs no root drops first, root writes nothing into the
user's folders, and nothing is chowned. Each case runs in a real child process that
imports what it needs before the (permanent) drop: root's home, where this Python
lives, is closed to the user."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

USER = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="simulating sudo needs root")

#: The child's prologue: pwd answers with homes inside the test's folder, so neither
#: root's real home nor a real user's is touched.
PROLOGUE = """
import json, os, pwd, sys
real_getpwuid = pwd.getpwuid
HOMES = {0: sys.argv[1] + "/root-home", USER: sys.argv[1] + "/user-home"}
def fake_getpwuid(uid):
    e = real_getpwuid(uid)
    home = HOMES.get(uid, e.pw_dir)
    return pwd.struct_passwd((e.pw_name, "x", uid, e.pw_gid, "", home, "/bin/sh"))
pwd.getpwuid = fake_getpwuid
""".replace("USER", str(USER))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both root and the user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="anetui-privs-"))
    path.chmod(0o755)
    (path / "root-home").mkdir(mode=0o700)
    user_home = path / "user-home"
    user_home.mkdir()
    os.chown(user_home, USER, USER)
    yield path
    shutil.rmtree(path)


def run_child(shared: Path, body: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SUDO_", "XDG_", "ANETUI_"))},
        "SUDO_UID": str(USER),
        "SUDO_GID": str(USER),
        "HOME": str(shared / "user-home"),  # as macOS's sudo keeps it
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PROLOGUE + body, str(shared)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def plant_symlinked_cache(shared: Path) -> Path:
    """The user's ~/.cache/anetui is a symlink to a root-only folder with a 0600 file."""
    secret_dir = shared / "root-secrets"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "shadow"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    cache = shared / "user-home" / ".cache"
    cache.mkdir()
    os.chown(cache, USER, USER)
    (cache / "anetui").symlink_to(secret_dir)
    os.lchown(cache / "anetui", USER, USER)
    return secret


STORE = """
from anetui.models.cache import Cache
%(before)s
def build(path):
    path.write_text("model")
    return {}
try:
    entry = Cache("onnx").store("k1", "model.onnx", build, {})
    print(json.dumps({"entry": str(entry), "owner": entry.stat().st_uid}))
except Exception as exc:
    print(json.dumps({"error": str(exc)}))
"""


def assert_untouched(secret: Path) -> None:
    info = secret.stat()
    assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o600
    assert secret.read_text() == "root's secret\n"
    for path in secret.parent.iterdir():
        assert path.lstat().st_uid == 0, path
    assert secret.parent.stat().st_uid == 0


def test_keep_root_caches_in_roots_own_folder_and_chowns_nothing(shared_dir: Path) -> None:
    secret = plant_symlinked_cache(shared_dir)
    result = run_child(shared_dir, STORE % {"before": ""})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["entry"].startswith(str(shared_dir / "root-home")), out
    assert out["owner"] == 0
    assert_untouched(secret)
    assert list(secret.parent.iterdir()) == [secret]


def test_after_the_drop_a_symlinked_cache_is_only_what_the_user_may_write(
    shared_dir: Path,
) -> None:
    secret = plant_symlinked_cache(shared_dir)
    body = STORE % {"before": "from anetui import privileges; privileges.drop_to_sudo_user()"}
    result = run_child(shared_dir, body)
    assert result.returncode == 0, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error.startswith("cannot write the cache at") and "Permission denied" in error
    assert_untouched(secret)


def test_after_the_drop_the_cache_belongs_to_the_user(shared_dir: Path) -> None:
    body = STORE % {"before": "from anetui import privileges; privileges.drop_to_sudo_user()"}
    result = run_child(shared_dir, body)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["owner"] == USER and out["entry"].startswith(str(shared_dir / "user-home"))


#: command line -> the function it reaches after option parsing (patched to report the
#: uid it runs as, in place of the work).
REACHED = {
    ("convert", "--to", "onnx"): "anetui.cli.convert:convert_command",
    ("plan",): "anetui.cli.convert:plan_command",
    ("doctor",): "anetui.cli.doctor:print_doctor",
    ("power", "--parse", "recording.plist"): "anetui.cli.power:parse_file",
}

PROBE = """
import importlib
from anetui.cli.main import main
module_name, _, attribute = sys.argv[2].partition(":")
module = importlib.import_module(module_name)
def probe(*args, **kwargs):
    print(json.dumps({"euid": os.geteuid(), "uid": os.getuid()}))
    return 0
setattr(module, attribute, probe)
main(sys.argv[3:])
"""


@pytest.mark.parametrize("argv", sorted(REACHED))
def test_commands_that_need_no_root_drop_before_working(
    shared_dir: Path, argv: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROLOGUE + PROBE, str(shared_dir), REACHED[argv], *argv],
        env={**os.environ, "SUDO_UID": str(USER), "SUDO_GID": str(USER), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout.splitlines()[0]) == {"euid": USER, "uid": USER}, result.stderr


# Nothing imported beforehand: the drop itself must leave the command able to import
# what it needs (this Python lives in root's mode-700 home here).
REPORT = """
from anetui.cli.main import main
code = main(["report", sys.argv[1] + "/results.json", "--out", sys.argv[1] + "/out/report.md"])
print(json.dumps({"code": code}))
"""


def test_report_writes_its_file_as_the_user(shared_dir: Path) -> None:
    (shared_dir / "results.json").write_text(json.dumps({"schema": "anetui.results/1"}))
    (shared_dir / "results.json").chmod(0o644)
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    result = run_child(shared_dir, REPORT)
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0}, result.stderr
    assert (out / "report.md").stat().st_uid == USER


KEEP_ROOT_WRITE = """
from anetui.errors import AnetuiError
from anetui.report import files
target = sys.argv[1] + "/" + sys.argv[2]
try:
    files.write_atomic(__import__("pathlib").Path(target), "results\\n")
    print(json.dumps({"euid": os.geteuid(), "owner": os.stat(target).st_uid}))
except AnetuiError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_keep_root_writes_results_as_the_invoking_user(shared_dir: Path) -> None:
    out = shared_dir / "out"
    out.mkdir()
    os.chown(out, USER, USER)
    result = subprocess.run(
        [sys.executable, "-c", PROLOGUE + KEEP_ROOT_WRITE, str(shared_dir), "out/r.json"],
        env={**os.environ, "SUDO_UID": str(USER), "SUDO_GID": str(USER), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout) == {"euid": 0, "owner": USER}, result.stderr
    # A folder only root may write: refused, rather than written as root.
    (shared_dir / "rootonly").mkdir(mode=0o755)
    result = subprocess.run(
        [sys.executable, "-c", PROLOGUE + KEEP_ROOT_WRITE, str(shared_dir), "rootonly/r.json"],
        env={**os.environ, "SUDO_UID": str(USER), "SUDO_GID": str(USER), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    error = json.loads(result.stdout)["error"]
    assert "as the invoking user" in error and "Permission denied" in error
    assert not (shared_dir / "rootonly" / "r.json").exists()


def test_bench_keep_root_writes_its_results_as_the_user(shared_dir: Path) -> None:
    """End to end: `sudo anetui bench --keep-root --json …` stays root to measure, but
    the results file is the user's, created by the user."""
    out = shared_dir / "out"
    out.mkdir()
    os.chown(out, USER, USER)
    result = subprocess.run(
        [
            sys.executable, "-m", "anetui", "bench", "--keep-root",
            "--model", "mobilenet_v3_small", "--input-shape", "1,3,32,32",
            "--backends", "torch-cpu", "--warmup", "1", "--iterations", "3",
            "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
        ],
        env={**os.environ, "SUDO_UID": str(USER), "SUDO_GID": str(USER), "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "r.json").read_text())["environment"]["privileges"] == "root"
    assert (out / "r.json").stat().st_uid == USER and (out / "r.md").stat().st_uid == USER
    assert list(out.iterdir()) != [] and all(p.stat().st_uid == USER for p in out.iterdir())


DEEP_DOCTOR = """
from anetui.cli import doctor_deep
from anetui.cli.main import main
seen = {}
def checker(kind):
    def check(**kwargs):
        seen[kind] = os.geteuid()
        return [doctor_deep.Check(kind, kind + "-probe", "pass", "")]
    return check
doctor_deep.check_power_sources = checker("power")
doctor_deep.check_backends = checker("backend")
import anetui.cli.doctor as doctor_cli
doctor_cli.print_doctor = lambda console=None: seen.setdefault("listing", os.geteuid())
code = main(["doctor", "--deep", "--json", sys.argv[1] + "/user-home/d.json"])
out = sys.argv[1] + "/user-home/d.json"
print(json.dumps({"code": code, "seen": seen, "owner": os.stat(out).st_uid}))
"""


def test_deep_doctor_checks_power_as_root_then_runs_backends_and_writes_as_the_user(
    shared_dir: Path,
) -> None:
    """`sudo anetui doctor --deep`: root only while the power sources are checked (some
    are root-only); the listing, the backends and the report are the invoking user's."""
    result = run_child(shared_dir, DEEP_DOCTOR)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    # The listing too: it imports onnxruntime, which writes under $HOME on import.
    assert out == {
        "code": 0,
        "seen": {"power": 0, "listing": USER, "backend": USER},
        "owner": USER,
    }


PLAIN_DOCTOR = """
from pathlib import Path
from anetui.power.rapl import RaplSource
RaplSource.__init__.__defaults__ = (250, Path(sys.argv[1] + "/powercap"))
from anetui.cli.main import main
main(["doctor"])
"""


def test_doctor_under_sudo_says_a_root_only_source_is_root_only_not_missing(
    shared_dir: Path,
) -> None:
    """Plain doctor drops first thing, so a root-only counter is unreadable to it: it must
    say that `sudo anetui` starts it, not "needs root: run `sudo anetui`" to a user who did."""
    zone = shared_dir / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("123456\n")
    (zone / "energy_uj").chmod(0o600)  # as the kernel has it since 2020 (PLATYPUS)
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    result = run_child(shared_dir, PLAIN_DOCTOR)
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("• rapl ")]
    assert "root-only: `sudo anetui` starts it" in line and "doctor dropped root" in line, line
    assert "running as dropped" in result.stdout.splitlines()[0]


KEEP_ROOT_ONNX = """
from anetui.cli.main import main
code = main([
    "bench", "--keep-root", "--model", "mobilenet_v3_small", "--input-shape", "1,3,32,32",
    "--backends", "onnx-cpu", "--warmup", "1", "--iterations", "3",
    "--json", sys.argv[1] + "/user-home/r.json",
])
print(json.dumps({"code": code}))
"""


def test_keep_root_leaves_nothing_of_roots_in_the_users_home(shared_dir: Path) -> None:
    """sudo kept the user's HOME (as macOS's does) and the run stays root: onnxruntime,
    imported as root, writes its telemetry id under $HOME/.cache — which must then be
    root's home, so that every file in the user's home is the user's."""
    result = run_child(shared_dir, KEEP_ROOT_ONNX)
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0}, result.stderr
    home = shared_dir / "user-home"
    assert (home / "r.json").exists()
    roots = [str(p) for p in home.rglob("*") if p.stat().st_uid != USER]
    assert roots == [], roots
    assert (shared_dir / "root-home" / ".cache" / "anetui").is_dir()  # conversions: root's


HOMES_AROUND_THE_DROP = """
from anetui import privileges
privileges.use_roots_home()
as_root = {k: os.environ.get(k) for k in ("HOME", "XDG_CACHE_HOME")}
privileges.drop_to_sudo_user()
as_user = {k: os.environ.get(k) for k in ("HOME", "XDG_CACHE_HOME")}
print(json.dumps({"root": as_root, "user": as_user}))
"""


def test_root_works_in_its_own_home_and_the_drop_gives_the_users_back(
    shared_dir: Path,
) -> None:
    xdg = str(shared_dir / "user-home" / "xdg-cache")
    result = run_child(shared_dir, HOMES_AROUND_THE_DROP, XDG_CACHE_HOME=xdg)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["root"] == {"HOME": str(shared_dir / "root-home"), "XDG_CACHE_HOME": None}
    assert seen["user"] == {"HOME": str(shared_dir / "user-home"), "XDG_CACHE_HOME": xdg}
