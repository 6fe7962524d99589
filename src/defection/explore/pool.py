"""Which executor a sweep runs on, decided from its size alone, and a worker pool started before the sweep's own
modules load.

A light module on purpose: `defection sweep` imports it first, decides from the spec (pydantic only) whether the
experiments will run on the worker pool, and if so starts the workers at once. Each worker then imports the engine
and loads the compiled kernels (`defection.explore.points.prime`) while the command itself is still importing the
sweep machinery (DuckDB, pyarrow, SciPy's designs: about two seconds), instead of after it (docs/performance.md,
"What the commands cost"). The workers are the same processes the pool would have started later, and the tasks are
pure, so the results are identical.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor

EXECUTORS = ("auto", "pool", "dask")
"""`--executor`: `pool` (defection.workers' processes), `dask` (a Dask LocalCluster), `auto` (by the sweep's size)."""

DASK_MIN_AGENT_DAYS = 2_000_000_000
"""`auto` runs a sweep of fewer agent-days than this on the worker pool: a Dask LocalCluster costs seconds to start
(4.3 s of a 15 s sweep of examples/package-sweep.toml), which only a long sweep pays back with Dask's retries of a
task whose worker died."""


def runs_on_pool(workers: int, scheduler: str | None, kind: str, agent_days: float) -> bool:
    """Whether a sweep with these options runs on the worker pool: local workers, no scheduler, and `kind` 'pool',
    or 'auto' below DASK_MIN_AGENT_DAYS of agent-days to run."""
    if scheduler or workers <= 0:
        return False
    return kind == "pool" or (kind == "auto" and agent_days < DASK_MIN_AGENT_DAYS)


def primed_pool(workers: int) -> tuple[ProcessPoolExecutor, list[Future[bool]]]:
    """`workers` worker processes (`defection.workers.worker_pool`), each already given a task that imports the
    engine and loads its compiled kernels; the futures of those tasks."""
    from defection.explore.points import prime
    from defection.workers import worker_pool

    pool = worker_pool(workers)
    return pool, [pool.submit(prime) for _ in range(workers)]
