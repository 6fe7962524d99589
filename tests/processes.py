"""Processes that tests start, and how long a test waits for anything.

Hang guards: a guard is there to end a test that would otherwise wait for ever, never to judge speed, so each is far
longer than the wait it guards on a quiet machine: CI machines are shared, and a suite run on 2 busy cores (a load
average of 12) took 44 minutes. `HANG_GUARD` bounds a wait for work to finish (a command that simulates, a server or
a run to start, a job to end, a process to exit after a signal; on a quiet 2-core machine the longest of these takes
a few minutes, the first Numba compilation included); `REQUEST` bounds one HTTP request to a test server (or one
browser action), `STOP` a server's graceful stop when a test is done with it. Set DEFECTION_TEST_TIME_SCALE (a
factor ≥ 1) to stretch every guard on an even slower machine; pytest-timeout's per-test limit in pyproject.toml is
the last resort above them.

Processes: every process a test starts runs in a session (and process group) of its own, and the whole group is
killed with SIGKILL when the test leaves it, whether it passed, failed, timed out or was interrupted, so no
simulation, calibration worker or server outlives its test. Signals a test sends on purpose (SIGINT to a run) go
to the process itself, as before.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TIME_SCALE_ENV = "DEFECTION_TEST_TIME_SCALE"
HANG_GUARD_SECONDS = 1800.0
REQUEST_SECONDS = 600.0
STOP_SECONDS = 600.0
REAP_SECONDS = 60.0  # after SIGKILL of the group: the pipes close at once unless a process escaped the group


def time_scale() -> float:
    """$DEFECTION_TEST_TIME_SCALE if it is a finite number ≥ 1, else 1."""
    try:
        value = float(os.environ.get(TIME_SCALE_ENV, "") or 1.0)
    except ValueError:
        return 1.0
    return value if math.isfinite(value) and value >= 1.0 else 1.0


def guard(seconds: float) -> float:
    """A hang guard of `seconds` on a quiet machine, stretched by `time_scale()`."""
    return seconds * time_scale()


HANG_GUARD = guard(HANG_GUARD_SECONDS)
REQUEST = guard(REQUEST_SECONDS)
STOP = guard(STOP_SECONDS)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group `proc` leads (it was started with start_new_session=True) and reap `proc`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=REAP_SECONDS)


@contextlib.contextmanager
def started(args: Sequence[str | Path], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """`subprocess.Popen(args, **popen)` in a new session; on leaving the block for any reason, its whole process
    group (children and grandchildren included) is killed and the process reaped."""
    proc = subprocess.Popen([str(a) for a in args], start_new_session=True, **popen)
    try:
        yield proc
    finally:
        kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def communicate(proc: subprocess.Popen[Any], timeout: float = HANG_GUARD) -> tuple[Any, Any]:
    """`proc.communicate(timeout=timeout)`; on expiry the process group is killed first (so no grandchild keeps
    the pipes open) and TimeoutExpired carries what the process had written."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        try:
            out, err = proc.communicate(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:
            out = err = None
        raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None


def run(
    args: Sequence[str | Path], *, timeout: float = HANG_GUARD, check: bool = False, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Like `subprocess.run(args, capture_output=True, text=True, timeout=timeout)`, but in a process group of its
    own that is killed whole on a timeout or any other exception (subprocess.run kills only the child: a worker or
    grandchild it started lives on)."""
    with started(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as proc:
        out, err = communicate(proc, timeout)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result
