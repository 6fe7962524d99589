"""Worker processes that simulate single-threaded, started once per command and kept warm across its tasks.

At the agent counts that commands use (5,000–100,000 agents), a replicate's day is short: its parallel kernels
spend much of their time forking and joining threads, and the daily loop's Python runs on one core whatever the
thread count. Running whole replicates side by side, one per core, in processes that each simulate on one thread,
uses both cores for all of the work (docs/performance.md, "Replicates side by side"). Results do not change:
each replicate's random numbers are keyed by (seed, replicate, day, agent, stream), not by where it runs.

A command opens `replicate_workers(n)` once and hands the pool to every `simulate(..., workers=pool)` it makes, so
the workers import the package and load the compiled kernels once, not once per variant or particle.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model is imported in the worker, when it runs its first task
    from defection.model.dynamics import EntryPoints, ReplicateOutput
    from defection.model.regime import CounterMeasures
    from defection.scenario import Scenario

WAIT_POLICY = "PASSIVE"
"""OpenMP threads sleep at a join instead of spinning (docs/performance.md, "Threads on a shared machine")."""

MIN_AGENT_DAYS = 20_000_000
"""Below this many agent-days in all (about a second of one core's work), a run stays in its own process: a
worker pool costs about two seconds to start (each worker imports the package and loads the compiled kernels)."""

MAX_AGENTS = 300_000
"""Above this many agents a replicate's day is long enough for the parallel kernels to use the cores well, and
a replicate per core would hold that many more populations in memory: such runs stay in one process."""


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def prefer_passive_threads(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Ask OpenMP for sleeping, not spinning, idle threads unless the user chose a wait policy; returns the policy.

    Must run before Numba starts its thread pool (the first parallel kernel call); the CLI's entry point and the
    engine's import call it. On a shared machine spinning threads take the cores from the thread they wait for:
    under 8 busy processes two spinning threads were slower than one (docs/performance.md)."""
    return environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


PARENT_POLL_SECONDS = 1.0
"""How often a worker checks that the command that started it is still alive."""


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as its parent is gone (killed with SIGKILL, say), not after its replicate."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def process_age() -> float:
    """Seconds since this process started (Linux: /proc), so that a command's wall time includes its start-up
    (imports); 0.0 where the platform does not tell."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0.0 <= age < 86_400 * 365 else 0.0


def _single_thread() -> None:
    """A worker's initializer: one simulation thread (the pool supplies the parallelism). Ctrl-C is the command's
    to handle (it stops the workers), not each worker's (which would print a traceback apiece); a worker whose
    command was killed exits within a second or so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    os.environ["NUMBA_NUM_THREADS"] = "1"  # read when Numba is first imported, which in a worker is after this
    import numba

    numba.set_num_threads(1)  # in case something imported Numba first


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` fresh processes (spawned, not forked: Numba's OpenMP layer is not fork-safe) that simulate
    single-threaded."""
    prefer_passive_threads()
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_single_thread
    )


@contextmanager
def replicate_workers(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A `worker_pool` for the length of a command (None for one worker), shut down however the command ends: at
    its end the workers finish and exit; on an error or an interrupt they are stopped at once, since the replicates
    they are running would be thrown away."""
    if workers <= 1:
        yield None
        return
    pool = worker_pool(workers)
    try:
        yield pool
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the pool's pending tasks and terminate its processes (the running tasks' results are not wanted)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def auto_workers(agents: int, days: int, replicates: int, cpus: int | None = None) -> int:
    """How many worker processes a run of this size should use: one per CPU, as many as there are replicates, when
    the run is large enough to pay for starting them and its replicates small enough to run side by side; else 1
    (the run stays in its process and its kernels use the threads)."""
    cpus = available_cpus() if cpus is None else cpus
    if cpus < 2 or replicates < 2 or agents > MAX_AGENTS or agents * days * replicates < MIN_AGENT_DAYS:
        return 1
    return min(cpus, replicates)


_ENTRY_POINTS: EntryPoints = {}


def process_entry_points() -> EntryPoints:
    """This process's compiled entry points of the daily kernels (`dynamics.DirectCall`), shared by every replicate
    it simulates, so each kernel's dispatcher is asked once per argument types and process, not once per replicate.
    Pure memoisation: an entry is what the kernel's dispatcher resolves for arguments of those Numba types, the same
    whichever replicate asked first, so no result depends on what the process ran before."""
    return _ENTRY_POINTS


def replicate_task(
    sc: Scenario, rep: int, n_agents: int, fixed: CounterMeasures | None, accounting: bool
) -> ReplicateOutput:
    """One replicate of `dynamics.run_replicate`, run in a worker (the same call `simulate` makes in-process)."""
    from defection.model.dynamics import run_replicate
    from defection.model.parameters import engine_params

    return run_replicate(
        sc,
        engine_params(sc),
        rep,
        n_agents,
        fixed_counter_measures=fixed,
        accounting=accounting,
        entry_points=process_entry_points(),
    )
