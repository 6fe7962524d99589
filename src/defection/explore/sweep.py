"""Sweeps: run every experiment of a spec's design (uncertainties × levers, each with the spec's replicates under
common random numbers) on local worker processes or Dask, stream the summaries to Parquet as they finish, and
resume an interrupted sweep without losing or repeating an experiment.

The output folder (`--out`) holds::

    sweep.json            the plan: spec, spec hash, base-scenario hash, number of planned experiments
    design.parquet        the planned experiments: `experiment` and one column per factor path
    parts/part-NNNNNN.parquet
                          results, append-only: one row per finished experiment (see `part_schema`)
    .lock                 the process id of the driver writing to the folder (removed when it ends)
    stored.json           the runs the finished sweep was stored as ({run_id, db}), written by `defection sweep`

A part is written under a temporary name and renamed into place (`os.replace`), so a killed driver leaves
only whole parts; the experiments of a part that was never renamed simply run again on `--resume`. The
planned experiments are a pure function of the spec (and its base scenario), so a resumed sweep plans the
same experiments, skips those already in the parts and runs the rest; every point uses the same seed, so a
point gives the same numbers whichever run, worker or process simulates it.

Tasks are plain data in, small dicts out (`defection.explore.points.run_point`, a few per task): no
simulation object crosses a process boundary, and the driver keeps at most a window of in-flight tasks and
one part's worth of results, so its memory does not grow with the number of experiments.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from defection.engine import RunSettings
from defection.explore.design import ExplorationPosterior, base_json, design, settings
from defection.explore.points import run_point, run_points, warm_up
from defection.explore.pool import EXECUTORS, runs_on_pool
from defection.explore.spec import Spec, SpecError, design_agent_days, design_size, load_spec
from defection.scenario import Problem, Scenario, ScenarioError, with_changes, with_overrides
from defection.store import ResultsDB, pid_alive

STATS = ("mean", "median", "p05", "p95")
MAX_EXPERIMENTS = 2_000_000
PLAN_FILE = "sweep.json"
DESIGN_FILE = "design.parquet"
PARTS_DIR = "parts"
LOCK_FILE = ".lock"
STORED_FILE = "stored.json"
FORMAT_VERSION = 1


class SweepError(Exception):
    """A sweep cannot start or continue (a folder that holds another sweep, a spec that changed, …)."""


# ----------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """Everything a sweep needs, all derived deterministically from the spec and its base scenario."""

    spec: Spec
    base: Scenario
    design: pd.DataFrame
    source: str = "<spec>"
    posterior: ExplorationPosterior | None = None  # what the replicates draw the calibrated parameters from

    @property
    def planned(self) -> int:
        return len(self.design)

    @property
    def outcomes(self) -> list[str]:
        return [o.name for o in self.spec.outcomes]

    @property
    def settings(self) -> RunSettings:
        return settings(self.spec, self.posterior)

    @property
    def base_json(self) -> str:
        return base_json(self.base)

    @property
    def spec_hash(self) -> str:
        """Hash of the spec, its base scenario and its posterior: equal hashes plan identical experiments."""
        text = f"{self.spec.content_hash()}:{self.base.content_hash()}:v{FORMAT_VERSION}"
        if self.posterior is not None:
            text += self.posterior.key()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def changes(self, experiments: Iterable[int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """(experiment, {path: value}) for the given experiments (default: all), in design order, as plain
        Python values (column by column, so an integer parameter stays an integer)."""
        paths = [c for c in self.design.columns if c != "experiment"]
        columns = [self.design[p].to_numpy() for p in paths]
        rows = range(self.planned) if experiments is None else experiments
        for i in rows:
            yield int(i), {p: _plain(col[int(i)]) for p, col in zip(paths, columns, strict=True)}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def check_spec(spec: Spec, base: Scenario, source: str = "<spec>") -> None:
    """What the spec schema cannot check alone: every listed value and every range end must be a valid value of
    its parameter on the base scenario (a point that is invalid only in combination, e.g. the rule
    'ratchet_topup' with zero growth, is left to run and be recorded as failed), and the design must not be
    absurdly large."""
    problems: list[Problem] = []
    n = design_size(spec)
    if n > MAX_EXPERIMENTS:
        problems.append(
            Problem(
                "experiment.samples",
                spec.experiment.samples,
                f"the {spec.experiment.sampler} design would have {n:,} experiments; at most "
                f"{MAX_EXPERIMENTS:,} are allowed",
            )
        )
    ex = spec.experiment
    try:
        with_overrides(base, source, replicates=ex.replicates, days=ex.days, seed=ex.seed, agents=ex.agents)
    except ScenarioError as e:
        problems += [
            Problem(
                p.path.replace("simulation.", "experiment.") if p.path.startswith("simulation.") else "experiment",
                p.value,
                p.message,
            )
            for p in e.problems
        ]
    for group in ("uncertainties", "levers"):
        for k, f in enumerate(getattr(spec, group)):
            tried = (
                [("values", j, v) for j, v in enumerate(f.values)]
                if f.values is not None
                else [("low", None, f.value(0.0)), ("high", None, f.value(1.0))]
            )
            for key, j, v in tried:
                try:
                    with_changes(base, {f.path: v}, source)
                except ScenarioError as e:
                    own = [p for p in e.problems if p.path == f.path]
                    if own:  # the value itself is wrong for the parameter, not just this combination
                        where = f"{group}[{k}].{key}" + (f"[{j}]" if j is not None else "")
                        problems.append(Problem(where, v, f"{f.path}: {own[0].message}"))
    if problems:
        raise SpecError(source, problems)


def make_plan(
    spec: Spec, base: Scenario, source: str = "<spec>", posterior: ExplorationPosterior | None = None
) -> Plan:
    check_spec(spec, base, source)
    return Plan(spec=spec, base=base, design=design(spec), source=source, posterior=posterior)


def load_plan(path: str | Path, *, scenario_posterior: bool = True) -> Plan:
    """Load and check a spec file and build its plan, without a posterior (`Plan.posterior`: the caller chooses
    one); raises SpecError/ScenarioError with field paths. `scenario_posterior=False` ignores a posterior file the
    base scenario names."""
    spec, base = load_spec(path, posterior=scenario_posterior)
    return make_plan(spec, base, str(path))


# ----------------------------------------------------------------------------- the folder
def part_schema(outcomes: list[str]) -> pa.Schema:
    """Columns of every part file: one row per finished experiment."""
    return pa.schema(
        [
            ("experiment", pa.int64()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("traceback", pa.string()),
            ("params_json", pa.string()),
            ("wall_seconds", pa.float64()),
            *[(f"{o}_{s}", pa.float64()) for o in outcomes for s in STATS],
        ]
    )


class SweepFolder:
    """The output folder of one planned sweep."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.parts_dir = self.path / PARTS_DIR

    def parts(self) -> list[Path]:
        """The finished part files, in the order they were written."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.glob("part-*.parquet") if p.is_file())

    def read_plan(self) -> dict[str, Any] | None:
        f = self.path / PLAN_FILE
        if not f.is_file():
            return None
        try:
            plan: dict[str, Any] = json.loads(f.read_text(encoding="utf-8"))
            return plan
        except (OSError, ValueError) as e:
            raise SweepError(f"{f} is unreadable ({e}); it is not a sweep folder this version can resume") from None

    def prepare(self, plan: Plan, resume: bool) -> np.ndarray:
        """Check the folder against the plan and set it up; return a boolean mask of experiments already done
        (all False for a new sweep)."""
        existing = self.read_plan()
        if not resume:
            if existing is not None:
                done = self.done_mask(plan.planned, strict=False).sum()
                raise SweepError(
                    f"--out {self.path} already holds the sweep '{existing.get('name')}' "
                    f"({done} of {existing.get('planned')} experiments done); pass --resume to "
                    "continue it, or choose another --out folder"
                )
            if any(p.name != LOCK_FILE for p in self.path.iterdir()):
                raise SweepError(f"--out {self.path} exists and is not an empty folder; choose another --out")
            self.parts_dir.mkdir(exist_ok=True)
            self._write_plan(plan)
            _atomic_parquet(plan.design, self.path / DESIGN_FILE)
            return np.zeros(plan.planned, dtype=bool)
        if existing is None:
            raise SweepError(
                f"--resume: {self.path} holds no sweep to resume (no {PLAN_FILE}); run without --resume to start one"
            )
        if existing.get("spec_hash") != plan.spec_hash:
            raise SweepError(
                f"--resume: the spec changed. {self.path} was planned from spec '{existing.get('name')}' with hash "
                f"{existing.get('spec_hash')}, but {plan.source} (with its base scenario) hashes to "
                f"{plan.spec_hash}. Resume with the original spec, or start the new one in another --out folder"
            )
        if int(existing.get("planned", -1)) != plan.planned:  # same hash, different design: another version
            raise SweepError(
                f"--resume: {self.path} planned {existing.get('planned')} experiments but this spec "
                f"plans {plan.planned}; start the sweep in another --out folder"
            )
        self.parts_dir.mkdir(exist_ok=True)
        for tmp in self.parts_dir.glob(".part-*.tmp"):  # a part a killed driver never finished
            tmp.unlink(missing_ok=True)
        if not (self.path / DESIGN_FILE).is_file():
            _atomic_parquet(plan.design, self.path / DESIGN_FILE)
        return self.done_mask(plan.planned, strict=True)

    def done_mask(self, planned: int, strict: bool = True) -> np.ndarray:
        """Which experiments have a row in the parts. Strict: a repeated or unknown experiment is an error."""
        mask = np.zeros(planned, dtype=bool)
        for part in self.parts():
            try:
                ids = pq.read_table(part, columns=["experiment"]).column("experiment").to_numpy()
            except (OSError, pa.ArrowException) as e:
                raise SweepError(f"cannot read result part {part}: {e}") from None
            if strict and (ids.min(initial=0) < 0 or ids.max(initial=0) >= planned):
                raise SweepError(f"{part} holds experiments outside the plan (0–{planned - 1})")
            ids = ids[(ids >= 0) & (ids < planned)]
            if strict and (mask[ids].any() or len(np.unique(ids)) != len(ids)):
                raise SweepError(f"{part} repeats experiments already in another part; the folder is damaged")
            mask[ids] = True
        return mask

    def stored(self) -> list[dict[str, str]]:
        """The runs this folder's finished sweep was stored as, from `stored.json`: [{run_id, db}] (an unreadable
        file counts as none: `stored_run` then finds the run by its folder)."""
        try:
            doc = json.loads((self.path / STORED_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        runs = doc.get("runs") if isinstance(doc, dict) else None
        if not isinstance(runs, list):
            return []
        return [r for r in runs if isinstance(r, dict) and isinstance(r.get("run_id"), str)]

    def record_stored(self, run_id: str, db: str | Path) -> None:
        """Note in `stored.json` that the finished sweep was stored as run `run_id` in database `db`."""
        runs = [*self.stored(), {"run_id": run_id, "db": str(Path(db).resolve())}]
        _atomic_text(json.dumps({"runs": runs}, indent=2) + "\n", self.path / STORED_FILE)

    def next_part_number(self) -> int:
        numbers = [int(p.stem.split("-")[1]) for p in self.parts() if p.stem.split("-")[1].isdigit()]
        return max(numbers, default=-1) + 1

    def _write_plan(self, plan: Plan) -> None:
        doc = {
            "format": FORMAT_VERSION,
            "name": plan.spec.experiment.name,
            "spec_hash": plan.spec_hash,
            "spec": plan.spec.model_dump(mode="json"),
            "base_scenario_hash": plan.base.content_hash(),
            "planned": plan.planned,
            "outcomes": plan.outcomes,
            "source": plan.source,
        }
        _atomic_text(json.dumps(doc, indent=2) + "\n", self.path / PLAN_FILE)

    @contextlib.contextmanager
    def lock(self, resume: bool = False) -> Iterator[None]:
        """Only one driver writes to a folder at a time; a lock left by a dead process on this host is taken
        over. Creates the folder for a new sweep; a resumed sweep's folder must exist."""
        if self.path.exists() and not self.path.is_dir():
            raise SweepError(f"--out {self.path} exists and is not a folder; choose another --out")
        if resume and not (self.path / PLAN_FILE).is_file():
            raise SweepError(
                f"--resume: {self.path} holds no sweep to resume (no {PLAN_FILE}); run without --resume to start one"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SweepError(f"--out {self.path}: cannot create the folder ({e})") from None
        f = self.path / LOCK_FILE
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                host, _, pid = f.read_text(encoding="utf-8").strip().partition(" ")
                if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
                    f.unlink(missing_ok=True)
                    continue
                raise SweepError(
                    f"{self.path} is in use by another sweep (process {pid} on {host}); wait for "
                    f"it to end, or delete {f} if that process is gone"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(me)
            break
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                if f.read_text(encoding="utf-8").strip() == me:
                    f.unlink()


def stored_run(folder: SweepFolder, plan: Plan, store: ResultsDB) -> str | None:
    """The newest complete run in `store` that holds this folder's sweep (same spec hash, and named in the folder's
    `stored.json` or stored from the same folder), or None: then its results are not in that database yet."""
    marked = {r["run_id"] for r in folder.stored()}
    here = folder.path.resolve()
    for run_id, out in reversed(store.stored_sweeps(plan.spec_hash)):
        if run_id in marked or (out and Path(out).resolve() == here):
            return run_id
    return None


def _atomic_text(text: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def _atomic_parquet(df: pd.DataFrame, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, target)


class PartWriter:
    """Buffers finished experiments and writes them as a new part every `every` results or `seconds` seconds
    (whichever comes first), atomically."""

    def __init__(self, folder: SweepFolder, outcomes: list[str], every: int = 32, seconds: float = 5.0):
        self.folder = folder
        self.schema = part_schema(outcomes)
        self.every = max(1, int(every))
        self.seconds = float(seconds)
        self.number = folder.next_part_number()
        self.buffer: list[dict[str, Any]] = []
        self.oldest = 0.0
        self.written = 0

    def add(self, experiment: int, changes: dict[str, Any], result: dict[str, Any]) -> None:
        row = {k: result.get(k) for k in self.schema.names if k in result}
        row.update(
            experiment=experiment,
            params_json=json.dumps(changes, sort_keys=True),
            status=result.get("status", "failed"),
        )
        if row["status"] != "ok" and not row.get("error"):
            row["error"] = "unknown error"
        if not self.buffer:
            self.oldest = time.monotonic()
        self.buffer.append(row)
        if len(self.buffer) >= self.every or time.monotonic() - self.oldest >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        name = f"part-{self.number:06d}.parquet"
        tmp = self.folder.parts_dir / f".{name}.tmp"
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder.parts_dir / name)
        self.number += 1
        self.written += len(self.buffer)
        self.buffer = []


# ----------------------------------------------------------------------------- executors
Task = tuple[int, dict[str, Any]]
Done = tuple[int, dict[str, Any], dict[str, Any]]


def auto_batch(todo: int, workers: int) -> int:
    """Experiments per task: enough tasks for ≥ 8 per worker (load balance, a fine-grained progress bar, little
    lost on an interrupt), at most 8 experiments in one task."""
    return max(1, min(8, todo // (8 * max(1, workers))))


class SerialExecutor:
    """Runs the tasks one after another in this process (the reference every parallel run must equal)."""

    description = "serial (this process)"
    workers = 1

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def warm(self, plan: Plan) -> None:
        warm_up(plan.base_json, plan.settings)

    def run(self, plan: Plan, tasks: Iterable[Task], todo: int | None = None) -> Iterator[Done]:
        base, run_settings, outcomes = plan.base_json, plan.settings, plan.outcomes
        for experiment, changes in tasks:
            yield experiment, changes, run_point(base, changes, run_settings, outcomes)


class PoolExecutor:
    """Runs the tasks on `workers` single-threaded worker processes of `defection.workers` (spawned once per
    command, kept warm across its experiments): no Dask scheduler to start, so a small sweep is not dominated by a
    cluster's start-up (docs/performance.md, "Fixed costs around the kernels"). A task runs a small batch of
    experiments (`run_points`); a bounded window of tasks is in flight. A point that fails is recorded by
    `run_point` itself; a worker that dies stops the sweep (the finished experiments are saved for `--resume`),
    where Dask would reschedule its task. `task` is the function each experiment runs (`run_point`)."""

    def __init__(
        self,
        workers: int = 2,
        window: int | None = None,
        task: Callable[..., dict[str, Any]] = run_point,
        batch: int | None = None,
        started: ProcessPoolExecutor | None = None,
    ):
        self.task = task
        self.batch = batch
        self.workers = max(1, workers)
        self.window = window
        self.started = started  # a pool of `workers` processes started earlier (`explore.pool.primed_pool`)
        self.pool: Any = None
        self.description = f"worker pool ({self.workers} single-threaded processes)"

    def __enter__(self) -> PoolExecutor:
        from defection.workers import worker_pool  # lazy: only a sweep on the pool starts processes

        self.pool, self.started = self.started or worker_pool(self.workers), None
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        from defection.workers import stop_workers

        if self.pool is None:
            return
        if exc_type is None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        else:  # an error or an interrupt: the running experiments' results are not wanted
            stop_workers(self.pool)
        self.pool = None

    def warm(self, plan: Plan) -> None:
        """Start every worker and load the compiled kernels in it (one task per worker, run side by side)."""
        futures = [self.pool.submit(warm_up, plan.base_json, plan.settings) for _ in range(self.workers)]
        for fut in futures:
            with contextlib.suppress(Exception):  # a worker that cannot warm up will fail its tasks visibly
                fut.result()

    def run(self, plan: Plan, tasks: Iterable[Task], todo: int | None = None) -> Iterator[Done]:
        """Results as they finish, experiments in batches of `batch` (default: `auto_batch` of `todo`)."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        base, run_settings, outcomes = plan.base_json, plan.settings, plan.outcomes
        size = self.batch or (auto_batch(todo, self.workers) if todo is not None else 1)
        window = self.window or max(8, 4 * self.workers)
        queue = iter(tasks)
        inflight: dict[Any, list[Task]] = {}

        def submit() -> bool:
            batch = list(itertools.islice(queue, size))
            if not batch:
                return False
            fut = self.pool.submit(run_points, base, [c for _, c in batch], run_settings, outcomes, self.task)
            inflight[fut] = batch
            return True

        for _ in range(window):
            if not submit():
                break
        try:
            while inflight:
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in finished:
                    batch = inflight.pop(fut)
                    try:
                        results = fut.result()
                    except BrokenProcessPool as e:  # a worker died: stop, and let --resume rerun its experiments
                        raise SweepError(
                            f"a worker process died while running experiments {[e for e, _ in batch]} ({e}); the "
                            "finished experiments are saved: continue with --resume"
                        ) from None
                    except Exception as e:  # the task itself raised (run_point never does)
                        results = [{"status": "failed", "error": f"{type(e).__name__}: {e}"}] * len(batch)
                    for (experiment, changes), result in zip(batch, results, strict=True):
                        yield experiment, changes, result
                    submit()
        finally:
            for fut in inflight:
                fut.cancel()


class DaskExecutor:
    """Runs the tasks on a Dask cluster: a LocalCluster of `workers` single-threaded processes, or the cluster
    behind `scheduler` (e.g. tcp://10.0.0.5:8786). A Dask task runs a small batch of experiments
    (`run_points`); a bounded window of tasks is in flight. A task whose worker dies is rescheduled by Dask,
    and a task that raises is retried twice, then its experiments are recorded as failed. `task` is the
    function each experiment runs (`run_point`; tests substitute one that kills its worker)."""

    def __init__(
        self,
        workers: int = 2,
        scheduler: str | None = None,
        window: int | None = None,
        connect_timeout: float = 20.0,
        task: Callable[..., dict[str, Any]] = run_point,
        batch: int | None = None,
    ):
        self.task = task
        self.batch = batch
        self.n_workers = workers
        self.scheduler = scheduler
        self.window = window
        self.connect_timeout = connect_timeout
        self.client: Any = None
        self.cluster: Any = None
        self.workers = 0
        self.description = ""
        self._log_levels: dict[str, int] = {}

    def __enter__(self) -> DaskExecutor:
        # lazy: Dask is imported only when a sweep runs on a Dask cluster, not for the serial executor
        import dask
        from dask.distributed import Client, LocalCluster

        for name in ("distributed", "tornado", "bokeh"):  # keep the terminal for the progress bar
            lg = logging.getLogger(name)
            self._log_levels[name] = lg.level
            lg.setLevel(logging.ERROR)
        try:
            if self.scheduler:
                try:
                    self.client = Client(self.scheduler, timeout=f"{self.connect_timeout}s", set_as_default=False)
                except (OSError, TimeoutError, ValueError) as e:
                    raise SweepError(
                        f"--scheduler {self.scheduler}: cannot reach a Dask scheduler there ({e})"
                    ) from None
                try:
                    self.client.wait_for_workers(1, timeout=self.connect_timeout)
                except (TimeoutError, OSError):
                    raise SweepError(
                        f"--scheduler {self.scheduler}: the scheduler has no workers (waited "
                        f"{self.connect_timeout:g} s); start some with `dask worker "
                        f"{self.scheduler} --nthreads 1`"
                    ) from None
                self.workers = sum(self.client.nthreads().values())
                self.description = f"Dask scheduler {self.scheduler} ({self.workers} worker threads)"
            else:
                env = {
                    "NUMBA_NUM_THREADS": "1",
                    "OMP_NUM_THREADS": "1",
                    "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1",
                }
                # no statistical profiler in the workers: its thread takes the GIL every 10 ms, which slows the
                # simulation measurably when the CPUs are busy; and no "Port 8787 is already in use" warning
                with dask.config.set({"distributed.worker.profile.enabled": False}), warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*already in use.*", category=UserWarning)
                    self.cluster = LocalCluster(
                        n_workers=self.n_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                        env=env,
                    )
                self.client = Client(self.cluster, set_as_default=False)
                self.workers = self.n_workers
                self.description = f"Dask LocalCluster ({self.n_workers} single-threaded worker processes)"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close(timeout=10)
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close(timeout=10)
        self.client = self.cluster = None
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)

    def warm(self, plan: Plan) -> None:
        with contextlib.suppress(Exception):  # a worker that cannot warm up will fail its tasks visibly
            self.client.run(warm_up, plan.base_json, plan.settings)

    def run(self, plan: Plan, tasks: Iterable[Task], todo: int | None = None) -> Iterator[Done]:
        """Results as they finish. Experiments go to the workers in batches of `batch` (default: `auto_batch`
        of `todo`, the number of tasks, when known)."""
        from dask.distributed import as_completed  # lazy: as in __enter__

        base, run_settings, outcomes, tag = plan.base_json, plan.settings, plan.outcomes, plan.spec_hash
        size = self.batch or (auto_batch(todo, self.workers) if todo is not None else 1)
        window = self.window or max(8, 4 * max(1, self.workers))
        queue = iter(tasks)
        inflight: dict[str, tuple[list[Task], Any]] = {}
        done = as_completed(loop=self.client.loop)

        def submit() -> bool:
            batch = list(itertools.islice(queue, size))
            if not batch:
                return False
            fut = self.client.submit(
                run_points,
                base,
                [c for _, c in batch],
                run_settings,
                outcomes,
                self.task,
                retries=2,
                pure=False,
                key=f"run_points-{tag}-{batch[0][0]}-{os.urandom(4).hex()}",
            )
            inflight[fut.key] = (batch, fut)
            done.add(fut)
            return True

        for _ in range(window):
            if not submit():
                break
        try:
            for fut in done:
                batch, _ = inflight.pop(fut.key)
                if fut.status == "finished":
                    results = fut.result()
                elif fut.status == "error":  # the task raised three times, or killed its workers (KilledWorker)
                    exc = fut.exception()
                    results = [{"status": "failed", "error": f"{type(exc).__name__}: {exc}"}] * len(batch)
                else:  # cancelled or lost: the cluster failed, not the experiment; stop, and let --resume rerun it
                    raise SweepError(
                        f"Dask reports experiments {[e for e, _ in batch]} as {fut.status} (was the "
                        "scheduler lost?); the finished experiments are saved: continue with --resume"
                    )
                fut.release()
                for (experiment, changes), result in zip(batch, results, strict=True):
                    yield experiment, changes, result
                submit()
        finally:
            with contextlib.suppress(Exception):
                self.client.cancel([fut for _, fut in inflight.values()])


Executor = SerialExecutor | PoolExecutor | DaskExecutor


def executor_for(
    workers: int,
    scheduler: str | None,
    batch: int | None = None,
    kind: str = "auto",
    agent_days: float = 0.0,
    started: ProcessPoolExecutor | None = None,
) -> Executor:
    """`--workers 0`: serial in this process; `--scheduler`: that Dask cluster; otherwise `workers` local processes,
    on the worker pool or a Dask LocalCluster as `kind` says (`auto`: the pool below `DASK_MIN_AGENT_DAYS` of
    `agent_days`, the sweep's agent-days to run). `started`: the pool's processes, started earlier by the caller
    (`explore.pool.primed_pool`), which the pool executor then uses and shuts down."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if scheduler:
        return DaskExecutor(scheduler=scheduler, batch=batch)
    if workers <= 0:
        return SerialExecutor()
    if not runs_on_pool(workers, scheduler, kind, agent_days):
        return DaskExecutor(workers=workers, batch=batch)
    return PoolExecutor(workers=workers, batch=batch, started=started)


def sweep_agent_days(plan: Plan, experiments: int | None = None) -> float:
    """Agent-days of `experiments` of the plan (default: all): experiments × replicates × agents × days."""
    return design_agent_days(plan.spec, plan.planned if experiments is None else experiments)


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepStats:
    planned: int
    resumed: int = 0  # experiments already in the parts when this invocation started
    ran: int = 0  # experiments this invocation ran
    failed_here: int = 0
    startup_seconds: float = 0.0  # starting the executor (a LocalCluster, or connecting to a scheduler)
    compute_seconds: float = 0.0  # from the first submitted experiment to the last result
    executor: str = ""
    parts: list[str] = field(default_factory=list)


def run_sweep(
    plan: Plan,
    folder: SweepFolder,
    done: np.ndarray,
    executor: Executor,
    flush_every: int = 32,
    flush_seconds: float = 5.0,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> SweepStats:
    """Run the planned experiments not marked in `done` (from `folder.prepare`), streaming results to new parts
    of the (locked) folder; the executor is started only if there is something to run. On any exception (an
    interrupt included) the buffered results are written first, so a resume loses nothing that finished."""
    stats = SweepStats(planned=plan.planned, resumed=int(done.sum()))
    todo = np.flatnonzero(~done)
    writer = PartWriter(folder, plan.outcomes, flush_every, flush_seconds)
    t0 = time.perf_counter()
    try:
        if len(todo):
            with executor:
                stats.executor = executor.description
                executor.warm(plan)
                stats.startup_seconds = time.perf_counter() - t0
                t0 = time.perf_counter()
                for experiment, changes, result in executor.run(plan, plan.changes(todo), len(todo)):
                    if done[experiment]:  # cannot happen with as_completed; never write an experiment twice
                        continue
                    done[experiment] = True
                    writer.add(experiment, changes, result)
                    stats.ran += 1
                    stats.failed_here += result.get("status") != "ok"
                    if on_result is not None:
                        on_result(experiment, result)
                stats.compute_seconds = time.perf_counter() - t0  # all results in, before the cluster shuts down
    finally:
        writer.flush()
    if not done.all():
        missing = np.flatnonzero(~done)
        raise SweepError(f"{len(missing)} planned experiments have no result (first: {missing[:5].tolist()})")
    stats.parts = [str(p) for p in folder.parts()]
    return stats


def sweep(
    plan: Plan,
    out: str | Path,
    workers: int = 0,
    scheduler: str | None = None,
    resume: bool = False,
    flush_every: int = 32,
    flush_seconds: float = 5.0,
    executor: str = "auto",
) -> SweepStats:
    """The Python API: run (or resume) a sweep into folder `out` without a results database (`executor`: see
    `executor_for`)."""
    folder = SweepFolder(out)
    with folder.lock(resume):
        done = folder.prepare(plan, resume)
        todo = int((~done).sum())
        chosen = executor_for(workers, scheduler, kind=executor, agent_days=sweep_agent_days(plan, todo))
        return run_sweep(plan, folder, done, chosen, flush_every, flush_seconds)


def failures(parts: list[str], limit: int = 10) -> list[dict[str, Any]]:
    """The first failed experiments in the parts: experiment, error and parameters (read by DuckDB)."""
    if not parts:
        return []
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT experiment, error, params_json FROM read_parquet({files}) WHERE status <> 'ok' "
            "ORDER BY experiment LIMIT ?",
            [int(limit)],
        ).fetchall()
    return [{"experiment": int(e), "error": err, "params": json.loads(p)} for e, err, p in rows]
