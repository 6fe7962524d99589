"""The processes tests start never outlive them, and hang guards are generous (tests/processes.py; issue 13,
item 8 and issue 14): a test that fails, times out or is interrupted kills its child and the child's children."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .processes import HANG_GUARD, TIME_SCALE_ENV, guard, run, started, time_scale

# a child that starts a grandchild (marked by a token on its command line), prints its pid and sleeps
CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[1]])
print(grandchild.pid, flush=True)
if sys.argv[2] == "sleep":
    time.sleep(3600)
"""


def _running(token: str) -> list[int]:
    """Pids of live processes with `token` on their command line (a zombie's command line is empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_until_gone(token: str, *pids: int) -> None:
    """SIGKILL is delivered asynchronously: wait (a hang guard, not a speed limit) until nothing is left."""
    deadline = time.monotonic() + HANG_GUARD
    while _running(token) or any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {_running(token)} {[p for p in pids if _alive(p)]}"
        time.sleep(0.05)


pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)")


def test_a_failing_test_kills_the_child_and_its_grandchild() -> None:
    token = f"defection-test-{uuid.uuid4().hex}"
    with (
        pytest.raises(RuntimeError, match="the test failed"),
        started([sys.executable, "-c", CHILD, token, "sleep"], stdout=subprocess.PIPE, text=True) as proc,
    ):
        grandchild = int(proc.stdout.readline())  # type: ignore[union-attr]
        assert _alive(proc.pid) and _alive(grandchild)
        raise RuntimeError("the test failed")  # as a failed assertion would
    _wait_until_gone(token, proc.pid, grandchild)
    assert proc.returncode is not None  # reaped


def test_a_timeout_kills_the_grandchild_that_holds_the_output_pipe() -> None:
    """The child exits at once and its grandchild sleeps, holding stdout open: `subprocess.run(..., timeout=...)`
    raises TimeoutExpired but kills only the (dead) child, leaving the grandchild running. `run` kills the whole
    process group."""
    token = f"defection-test-{uuid.uuid4().hex}"
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run([sys.executable, "-c", CHILD, token, "exit"], timeout=5)
    printed = str(info.value.output or "").split()  # the grandchild's pid, unless the machine was frozen for 5 s
    _wait_until_gone(token, *(int(pid) for pid in printed[:1]))


def test_a_finished_command_returns_its_output() -> None:
    r = run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(subprocess.CalledProcessError):
        run([sys.executable, "-c", "raise SystemExit(1)"], check=True)


def test_hang_guards_are_generous_and_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HANG_GUARD >= 1800  # a command that simulates: minutes on a quiet machine, 5-10x that on a busy one
    monkeypatch.delenv(TIME_SCALE_ENV, raising=False)
    assert time_scale() == 1.0 and guard(60) == 60
    monkeypatch.setenv(TIME_SCALE_ENV, "3")
    assert guard(60) == 180
    for bad in ("slow", "0.5", "-2", "nan", "inf"):
        monkeypatch.setenv(TIME_SCALE_ENV, bad)
        assert time_scale() == 1.0, bad
    assert os.environ[TIME_SCALE_ENV] == "inf"
