"""The results store's entry point: `ResultsDB`, one DuckDB file of runs (connections and transactions, recording
and completing runs and sweeps, reading them back, export), and `RunMeta`, what is recorded as a run starts.

The file's layout is in `schema`, its errors and lock handling in `errors`, the staging of daily rows during a run
in `staging`, and the spill files written when the file cannot be written in `spill`. Connections are short-lived
(one per operation) so another process can open the file between writes. Timestamps are naive UTC.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb
import pandas as pd

from defection.model.outputs import OUTCOMES, SERIES
from defection.store.errors import (
    LOCK_RETRY_FIRST,
    LOCK_RETRY_MAX,
    LOCK_RETRY_SILENT,
    LOCK_WAIT_ENV,
    ResultsError,
    ResultsLocked,
    ResultsSpilled,
    RunNotFound,
    describe_error,
    first_line,
    is_lock,
    lock_holder,
    lock_wait_seconds,
)
from defection.store.progress import read_progress, remove_progress
from defection.store.schema import (
    CREATE_TABLES,
    DEFAULT_DB,
    LIST_COLUMNS,
    OLDEST_READABLE_VERSION,
    SCHEMA_VERSION,
    SWEEP_STATS,
    add_missing_columns,
    insert_row,
    missing_run_columns,
    missing_series,
    sql_path,
    utc_now,
)
from defection.store.spill import SPILL_MANIFEST, read_spill, spill_dir, spill_run, store_spill
from defection.store.staging import DailyStage

if TYPE_CHECKING:
    from defection.engine import RunResult
    from defection.scenario import Scenario

__all__ = [  # what `from defection.store.db import ...` offered before the store was split by concept
    "DEFAULT_DB",
    "DailyStage",
    "ResultsDB",
    "ResultsError",
    "ResultsLocked",
    "ResultsSpilled",
    "RunMeta",
    "RunNotFound",
    "pid_alive",
    "posterior_label",
]

T = TypeVar("T")

HEADLINE = "defected_share"
"""The outcome the runs list shows for each run (with its 90% interval)."""
BRIEF_FIELDS = {
    "claims": "json_object('verdicts', json_extract(payload, '$.claims[*].verdict'))",
    "optimize": (
        "json_object('mode', payload->'$.mode', 'target', payload->'$.target', 'best', payload->'$.best.metrics', "
        "'best_interval', payload->'$.best.interval', 'closest', payload->'$.closest.metrics', "
        "'closest_interval', payload->'$.closest.interval', 'pareto', json_array_length(payload, '$.pareto'))"
    ),
    "counts": "payload::JSON",
    "curve": (
        "json_object('lever', payload->'$.lever', 'levels', payload->'$.levels', "
        f"'medians', json_extract(payload, '$.curves[0].points[*].outcomes.{HEADLINE}.median'))"
    ),
    "calibration": (
        "json_object('cases', json_array_length(payload, '$.cases'), 'posterior_hash', payload->'$.posterior_hash', "
        "'cut_short', payload->'$.cut_short')"
    ),
    "backtest": "json_object('observations', payload->'$.observations', 'coverage', payload->'$.coverage')",
    "sensitivity": "json_object('method', payload->'$.method', 'points', payload->'$.points')",
    "discover": (
        "json_object('cases', payload->'$.cases', 'of_interest', payload->'$.cases_of_interest', "
        "'boxes', json_array_length(payload, '$.boxes'))"
    ),
}
"""The few fields of each artifact that summarise its run in one line (DuckDB JSON expressions on `payload`); the
runs list reads these instead of whole artifacts, which can be large (a posterior's particles, an optimisation's
trials)."""


@dataclass
class RunMeta:
    """What is known about a run before it starts."""

    kind: str = "run"
    scenario_name: str = ""
    scenario_hash: str = ""
    scenario_json: str = "{}"
    seed: int = 0
    agents: int = 0
    represented: int = 0
    days: int = 0
    replicates: int = 0
    package_version: str = ""
    library_versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scenario: Scenario, kind: str = "run") -> RunMeta:
        """Metadata from a scenario (agents is the requested count; `complete_run` stores the actual)."""
        from defection.engine import library_versions, package_version

        sim = scenario.simulation
        return cls(
            kind=kind,
            scenario_name=scenario.meta.name,
            scenario_hash=scenario.content_hash(),
            scenario_json=scenario.canonical_json(),
            seed=sim.seed,
            agents=sim.agents,
            represented=scenario.force.soldiers,
            days=sim.days,
            replicates=sim.replicates,
            package_version=package_version(),
            library_versions=library_versions(),
        )


def _record_posterior(
    con: duckdb.DuckDBPyConnection, run_id: str, posterior_hash: str | None, posterior_path: str | None
) -> None:
    """Record on a run's row the posterior its simulations drew from (nothing when they drew from none)."""
    if posterior_hash is not None:
        con.execute(
            "UPDATE runs SET posterior_hash = ?, posterior_path = ? WHERE run_id = ?",
            [posterior_hash, posterior_path, run_id],
        )


def posterior_label(run: dict[str, Any]) -> str:
    """Which posterior a stored run drew its calibrated parameters from: '<hash> (<path>)', or the defaults."""
    if not run.get("posterior_hash"):
        return "hand-tuned defaults (no posterior)"
    return f"{run['posterior_hash']} ({run.get('posterior_path') or 'path not recorded'})"


def new_run_id() -> str:
    """A short, unique, typable id: 'r' + 10 hex characters."""
    return "r" + uuid.uuid4().hex[:10]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ResultsDB:
    """A DuckDB file of runs. Opening it creates the schema if missing.

    `read_only`: None (the default) opens the file read-only when it or its folder is not writable (reading works,
    writing raises `ResultsError` naming the file), else read-write; True or False forces the mode. A read-only
    database is not reconciled on disk: stale 'running' rows are shown as 'interrupted' without being rewritten.
    `notify`: where the messages about waiting for another process's lock go (default: a line on stderr)."""

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        read_only: bool | None = None,
        notify: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.notify = notify or _to_stderr
        self._begun: dict[str, dict[str, Any]] = {}
        if not self.path.parent.exists():
            raise ResultsError(f"cannot open results database {self.path}: directory {self.path.parent} does not exist")
        if self.path.is_dir():
            raise ResultsError(f"cannot open results database {self.path}: it is a directory")
        if self.path.exists() and not self.path.is_file():
            raise ResultsError(f"cannot open results database {self.path}: it is not a regular file")
        if read_only is None:
            folder_ok = os.access(self.path.parent, os.W_OK)
            read_only = self.path.exists() and not (folder_ok and os.access(self.path, os.W_OK))
            if not self.path.exists() and not folder_ok:
                raise ResultsError(
                    f"cannot create results database {self.path}: folder {self.path.parent} is not writable; "
                    "pass --db with a writable path"
                )
        self.read_only = bool(read_only)
        if self.read_only:
            self._check_readable()
            return
        with self._connect(writing=True) as con:
            for stmt in CREATE_TABLES:
                con.execute(stmt)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            elif not OLDEST_READABLE_VERSION <= int(row[0]) <= SCHEMA_VERSION:
                raise ResultsError(
                    f"results database {self.path} has schema version {row[0]}; this version of "
                    f"defection-lab uses {SCHEMA_VERSION}. Use a new file with --db"
                )
            else:  # a series or a run column declared since the file was written
                missing, missing_runs = missing_series(con), missing_run_columns(con)
                if missing or missing_runs or int(row[0]) < SCHEMA_VERSION:
                    add_missing_columns(con, missing, missing_runs)

    def _check_readable(self) -> None:
        """A read-only database must already have this version's layout: it cannot be brought up to date."""
        with self._connect() as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if not {"meta", "runs", "daily"} <= tables:
                raise ResultsError(f"{self.path} is not a defection results database (it has no runs table)")
            rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
            if not rows or int(rows[0][0]) != SCHEMA_VERSION or missing_series(con) or missing_run_columns(con):
                raise ResultsError(
                    f"results database {self.path} was written by an older version of defection-lab and must be "
                    "brought up to date, which needs write access: make the file and its folder writable and run "
                    "any `defection runs list` once"
                )

    def _write_check(self, what: str) -> None:
        if self.read_only:
            raise ResultsError(
                f"results database {self.path} is read-only (the file or its folder {self.path.parent} is not "
                f"writable): cannot {what}. Make both writable, or pass --db with a writable path"
            )

    # -- connections -------------------------------------------------------------------------------

    def _open(self, writing: bool) -> duckdb.DuckDBPyConnection:
        """A connection; while another process holds the file's lock, retry with exponential back-off (0.1 s,
        doubling, at most 8 s) for `lock_wait_seconds()` in all, announcing through `notify` each wait once the
        waiting has lasted LOCK_RETRY_SILENT or the next wait is that long (a brief overlap stays quiet; on a
        loaded machine, where each attempt is slow, the user still hears before the budget runs out). Raises
        `ResultsLocked` when the wait is over, `ResultsError` (with what to do) for any other failure."""
        budget = lock_wait_seconds()
        started = time.monotonic()
        deadline = started + budget
        delay = LOCK_RETRY_FIRST
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as e:
                msg = first_line(e)
                if not is_lock(msg):
                    raise ResultsError(describe_error(self.path, e, writing)) from e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ResultsLocked(
                        f"results database {self.path} is locked by another process ({lock_holder(msg)}); gave up "
                        f"after waiting {budget:g} s (${LOCK_WAIT_ENV} sets the wait). Close the other program "
                        "that has the file open (a Python shell, a notebook, a DuckDB CLI) and try again"
                    ) from e
                wait = min(delay, left)
                if wait >= LOCK_RETRY_SILENT or time.monotonic() - started >= LOCK_RETRY_SILENT:
                    self.notify(
                        f"results database {self.path} is locked by another process ({lock_holder(msg)}); "
                        f"retrying in {wait:.1f} s ({max(left, 0):.0f} s left of {budget:g} s)"
                    )
                time.sleep(wait)
                delay = min(delay * 2, LOCK_RETRY_MAX)

    @contextmanager
    def _connect(self, writing: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One short-lived connection (see `_open`); a DuckDB error while it is used becomes a `ResultsError` that
        names the file and what to do (a damaged file, a folder that is not writable)."""
        con = self._open(writing)
        try:
            yield con
        except duckdb.Error as e:
            raise ResultsError(describe_error(self.path, e, writing)) from e
        finally:
            with suppress(duckdb.Error):
                con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(writing=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                with suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------

    def begin_run(self, meta: RunMeta) -> str:
        """Record a run as 'running' (committed at once) and return its new id."""
        self._write_check("record a run")
        run_id = new_run_id()
        row: dict[str, Any] = {
            "run_id": run_id,
            "kind": meta.kind,
            "status": "running",
            "created_at": utc_now(),
            "scenario_name": meta.scenario_name,
            "scenario_hash": meta.scenario_hash,
            "scenario_json": meta.scenario_json,
            "seed": meta.seed,
            "agents": meta.agents,
            "represented": meta.represented,
            "days": meta.days,
            "replicates": meta.replicates,
            "package_version": meta.package_version,
            "library_versions": json.dumps(meta.library_versions, sort_keys=True),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        with self._connect(writing=True) as con:
            insert_row(con, "runs", row)
        self._begun[run_id] = row
        return run_id

    def _complete(self, run_id: str, write: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `write` (the INSERTs and the UPDATE that completes the run) in one transaction, after checking that
        the run exists and is not complete. If the database cannot be written (locked by another process for
        longer than `lock_wait_seconds()`, damaged, no longer writable), the same `write` fills a spill folder
        instead (`spill`) and `ResultsSpilled` says where: finished results are never discarded."""
        try:
            self._write_check(f"store run {run_id}")
            with self._transaction() as con:
                rows = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
                if not rows:
                    raise RunNotFound(run_id, self.path)
                if rows[0][0] == "complete":
                    raise ValueError(f"run '{run_id}' is already complete; its results cannot be replaced")
                return write(con)
        except ResultsError as e:
            target = self.spill(run_id, write)
            raise ResultsSpilled(run_id, target, self.path, str(e)) from e

    def stage_daily(self, run_id: str) -> DailyStage:
        """A sink for a running simulation's daily rows (see `DailyStage`), staged in
        `<database>.spill/.<run_id>.daily/`."""
        return DailyStage(spill_dir(self.path) / f".{run_id}.daily")

    def complete_run(
        self,
        run_id: str,
        result: RunResult,
        artifacts: dict[str, Any] | None = None,
        staged: DailyStage | None = None,
    ) -> None:
        """Store a run's results (and named JSON artifacts, e.g. a claims report) and mark it 'complete', all in
        one transaction. `staged`: the daily rows were streamed there during the run (`result.daily` is then
        empty)."""
        daily = result.daily
        per_rep = result.per_replicate
        names = [c for c in per_rep.columns if c != "replicate"]
        long = per_rep.melt(id_vars="replicate", value_vars=names, var_name="outcome", value_name="value")
        table = result.outcomes()
        series = ", ".join(SERIES)

        def write(con: duckdb.DuckDBPyConnection) -> None:
            con.register("daily_df", daily)
            con.execute(
                f"INSERT INTO daily (run_id, replicate, day, {series}) "
                f"SELECT $rid, replicate, day, {series} FROM daily_df",
                {"rid": run_id},
            )
            if staged is not None and staged.files:
                con.execute(
                    f"INSERT INTO daily (run_id, replicate, day, {series}) "
                    f"SELECT $rid, replicate, day, {series} FROM {staged.source()}",
                    {"rid": run_id},
                )
            con.register("rep_df", long)
            con.execute(
                "INSERT INTO replicate_outcomes (run_id, replicate, outcome, value) "
                "SELECT $rid, replicate, outcome, value FROM rep_df",
                {"rid": run_id},
            )
            con.register("out_df", table)
            con.execute(
                "INSERT INTO outcomes (run_id, outcome, median, p05, p95, mean) "
                "SELECT $rid, outcome, median, p05, p95, mean FROM out_df",
                {"rid": run_id},
            )
            for name, payload in (artifacts or {}).items():
                con.execute("INSERT INTO artifacts VALUES (?, ?, ?)", [run_id, name, json.dumps(payload)])
            con.execute(
                "UPDATE runs SET status = 'complete', finished_at = ?, wall_seconds = ?, error = NULL, "
                "seed = ?, agents = ?, represented = ?, days = ?, replicates = ?, posterior_hash = ?, "
                "posterior_path = ? WHERE run_id = ?",
                [
                    utc_now(),
                    float(result.wall_seconds),
                    int(result.seed),
                    int(result.agents),
                    int(result.represented),
                    int(result.days),
                    int(result.replicates),
                    result.posterior_hash,
                    result.posterior_path,
                    run_id,
                ],
            )

        self._complete(run_id, write)

    def complete_artifacts(
        self,
        run_id: str,
        artifacts: dict[str, Any],
        outcomes: pd.DataFrame | None = None,
        wall_seconds: float = 0.0,
        *,
        agents: int | None = None,
        posterior_hash: str | None = None,
        posterior_path: str | None = None,
    ) -> None:
        """Complete a run that produced named JSON artifacts (a calibration, a backtest, a response curve) rather
        than daily series, with an optional outcomes table (outcome, median, p05, p95, mean), all in one transaction.
        `agents` (the simulated count, when it differs from the requested one) and the posterior the simulations
        drew from, if given, are recorded on the run's row as `complete_run` records them."""

        def write(con: duckdb.DuckDBPyConnection) -> None:
            if outcomes is not None and not outcomes.empty:
                con.register("out_df", outcomes[["outcome", "median", "p05", "p95", "mean"]])
                con.execute(
                    "INSERT INTO outcomes (run_id, outcome, median, p05, p95, mean) "
                    "SELECT $rid, outcome, median, p05, p95, mean FROM out_df",
                    {"rid": run_id},
                )
            for name, payload in artifacts.items():
                con.execute("INSERT INTO artifacts VALUES (?, ?, ?)", [run_id, name, json.dumps(payload)])
            con.execute(
                "UPDATE runs SET status = 'complete', finished_at = ?, wall_seconds = ?, error = NULL WHERE run_id = ?",
                [utc_now(), float(wall_seconds), run_id],
            )
            if agents is not None:
                con.execute("UPDATE runs SET agents = ? WHERE run_id = ?", [int(agents), run_id])
            _record_posterior(con, run_id, posterior_hash, posterior_path)

        self._complete(run_id, write)

    def complete_sweep(
        self,
        run_id: str,
        parts: list[str | Path],
        outcomes: list[str],
        planned: int,
        artifacts: dict[str, Any],
        wall_seconds: float = 0.0,
        *,
        posterior_hash: str | None = None,
        posterior_path: str | None = None,
    ) -> dict[str, int]:
        """Ingest a sweep's Parquet parts (see `defection.explore.sweep.part_schema`) into `experiments` and
        `experiment_outcomes`, store the spread of each outcome across the experiments in `outcomes` (as
        'sweep:<outcome>': median, p05 and p95 of the per-experiment medians, mean of the means), the artifacts
        and the counts, and mark the run complete, all in one transaction. The parts must hold each of the
        `planned` experiments exactly once, else nothing is stored. DuckDB reads the parts itself, so memory
        does not grow with the number of experiments. The posterior the simulations drew from, if given, is
        recorded on the run's row. Returns {planned, done, ok, failed}."""
        if not parts:
            raise ValueError(f"sweep {run_id} has no result parts to ingest")
        files = "[" + ", ".join(f"'{sql_path(Path(p))}'" for p in parts) + "]"

        def write(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
            con.execute(f"CREATE TEMP VIEW sweep_parts AS SELECT * FROM read_parquet({files})")
            try:
                rows, distinct, lo, hi, ok, failed = con.execute(
                    "SELECT count(*), count(DISTINCT experiment), min(experiment), max(experiment), "
                    "count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status <> 'ok') "
                    "FROM sweep_parts"
                ).fetchone()  # type: ignore[misc]
                if rows != planned or distinct != planned or lo != 0 or hi != planned - 1:
                    raise ValueError(
                        f"sweep {run_id}: the parts hold {rows} rows for {distinct} distinct experiments "
                        f"(ids {lo}–{hi}), not each of the {planned} planned experiments once"
                    )
                con.execute(
                    "INSERT INTO experiments (run_id, experiment, status, error, params_json, wall_seconds) "
                    "SELECT $rid, experiment, status, error, params_json, wall_seconds FROM sweep_parts "
                    "ORDER BY experiment",
                    {"rid": run_id},
                )
                for name in outcomes:
                    cols = ", ".join(f'"{name}_{s}"' for s in SWEEP_STATS)
                    con.execute(
                        "INSERT INTO experiment_outcomes (run_id, experiment, outcome, mean, median, p05, "
                        f"p95) SELECT $rid, experiment, $name, {cols} FROM sweep_parts WHERE status = 'ok' "
                        "ORDER BY experiment",
                        {"rid": run_id, "name": name},
                    )
                    con.execute(
                        "INSERT INTO outcomes (run_id, outcome, median, p05, p95, mean) "
                        f'SELECT $rid, $label, quantile_cont("{name}_median", 0.5), '
                        f'quantile_cont("{name}_median", 0.05), quantile_cont("{name}_median", 0.95), '
                        f"avg(\"{name}_mean\") FROM sweep_parts WHERE status = 'ok' HAVING count(*) > 0",
                        {"rid": run_id, "label": f"sweep:{name}"},
                    )
            finally:
                con.execute("DROP VIEW IF EXISTS sweep_parts")
            counts = {"planned": int(planned), "done": int(rows), "ok": int(ok), "failed": int(failed)}
            for name, payload in {**artifacts, "counts": counts}.items():
                con.execute("INSERT INTO artifacts VALUES (?, ?, ?)", [run_id, name, json.dumps(payload)])
            con.execute(
                "UPDATE runs SET status = 'complete', finished_at = ?, wall_seconds = ?, error = NULL WHERE run_id = ?",
                [utc_now(), float(wall_seconds), run_id],
            )
            _record_posterior(con, run_id, posterior_hash, posterior_path)
            return counts

        return self._complete(run_id, write)

    def experiments(self, run_id: str, params: bool = True) -> pd.DataFrame:
        """A sweep's experiments, one row each in experiment order: experiment, status, error, wall_seconds, one
        column per parameter (from params_json; with params=True) and `<outcome>_<mean|median|p05|p95>`."""
        rid = self.resolve(run_id)
        with self._connect() as con:
            base = con.execute(
                "SELECT experiment, status, error, params_json, wall_seconds FROM experiments "
                "WHERE run_id = ? ORDER BY experiment",
                [rid],
            ).df()
            long = con.execute(
                "SELECT experiment, outcome, mean, median, p05, p95 FROM experiment_outcomes WHERE run_id = ?", [rid]
            ).df()
        if params and not base.empty:
            values = pd.DataFrame([json.loads(t) for t in base["params_json"]], index=base.index)
            base = pd.concat([base, values], axis=1)
        if long.empty:
            return base
        wide = long.pivot(index="experiment", columns="outcome", values=list(SWEEP_STATS))
        names = _ordered(list(long["outcome"].unique()))
        wide.columns = [f"{o}_{s}" for s, o in wide.columns]
        wide = wide[[f"{o}_{s}" for o in names for s in SWEEP_STATS]]
        return base.merge(wide, left_on="experiment", right_index=True, how="left")

    def stored_sweeps(self, spec_hash: str) -> list[tuple[str, str]]:
        """The complete sweeps planned from a spec hash, oldest first, as (run_id, the --out folder it was stored
        from, as given then)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT r.run_id, a.payload FROM runs r JOIN artifacts a ON a.run_id = r.run_id AND a.name = 'sweep' "
                "WHERE r.kind = 'sweep' AND r.status = 'complete' AND r.scenario_hash = ? "
                "ORDER BY r.finished_at, r.run_id",
                [spec_hash],
            ).fetchall()
        return [(str(rid), str(json.loads(payload).get("out", ""))) for rid, payload in rows]

    def latest(self, kind: str) -> str | None:
        """The id of the newest complete run of a kind (e.g. 'calibration'), or None."""
        with self._connect() as con:
            row = con.execute(
                "SELECT run_id FROM runs WHERE kind = ? AND status = 'complete' "
                "ORDER BY finished_at DESC, run_id LIMIT 1",
                [kind],
            ).fetchone()
        return None if row is None else str(row[0])

    def store(self, result: RunResult, kind: str = "run", artifacts: dict[str, Any] | None = None) -> str:
        """Record an already finished result as a complete run; return its id."""
        run_id = self.begin_run(RunMeta.from_scenario(result.scenario, kind=kind))
        try:
            self.complete_run(run_id, result, artifacts)
        except BaseException as e:
            self.mark_run(run_id, "failed", f"{type(e).__name__}: {e}")
            raise
        return run_id

    def mark_run(self, run_id: str, status: Literal["failed", "interrupted"], error: str | None = None) -> None:
        """Mark a run that did not complete as 'failed' or 'interrupted'."""
        if status not in ("failed", "interrupted"):
            raise ValueError(f"status must be 'failed' or 'interrupted', not {status!r}")
        self._write_check(f"record run {run_id} as {status}")
        if self._status(run_id) == "complete":
            raise ValueError(f"run '{run_id}' is complete; it cannot be marked {status}")
        with self._connect(writing=True) as con:
            con.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                [status, error, utc_now(), run_id],
            )

    def _stale(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """The 'running' runs of this host whose process is gone, each with why it ended (its results may have
        been spilled: then where, and how to store them)."""
        host = socket.gethostname()
        rows = con.execute("SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]).fetchall()
        stale: dict[str, str] = {}
        for rid, pid in rows:
            if pid is None or not pid_alive(int(pid)):
                spilled = spill_dir(self.path) / str(rid)
                stale[str(rid)] = (
                    f"the results could not be written and were spilled to {spilled}; store them with "
                    f"`defection runs ingest {spilled} --db {self.path}`"
                    if (spilled / SPILL_MANIFEST).is_file()
                    else "process ended before the run completed"
                )
        return stale

    def reconcile(self) -> list[str]:
        """Mark 'running' rows of this host whose process is gone as 'interrupted'; return their ids. A read-only
        database is left as it is (its readers show such rows as interrupted, see `list_runs`)."""
        if self.read_only:
            return []
        with self._connect(writing=True) as con:
            stale = self._stale(con)
            for rid, why in stale.items():
                shutil.rmtree(spill_dir(self.path) / f".{rid}.daily", ignore_errors=True)  # its staged daily rows
                remove_progress(self.path, rid)  # a dead process's progress is never shown
                con.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, error = coalesce(error, ?) "
                    "WHERE run_id = ? AND status = 'running'",
                    [utc_now(), why, rid],
                )
        return list(stale)

    # -- spilling ------------------------------------------------------------------------------------

    def spill(self, run_id: str, write: Callable[[duckdb.DuckDBPyConnection], Any]) -> Path:
        """Write a run's results to `<database>.spill/<run_id>/` instead of the database (see `spill.spill_run`):
        `write` runs against an in-memory database of the same layout holding the run's row. The folder appears
        complete or not at all. `ingest` stores it. Returns the folder."""
        return spill_run(self.path, run_id, self._begun.get(run_id), write)

    def ingest(self, path: str | Path) -> tuple[str, dict[str, int]]:
        """Store a spilled run (a folder written by `spill`, or its `spill.json`) and mark it complete, in one
        transaction. Idempotent: a run that is already complete is left as it is (returns empty counts). Returns
        (run_id, rows stored per table)."""
        spilled = read_spill(path)
        self._write_check(f"ingest {spilled.folder}")
        with self._transaction() as con:
            stored = store_spill(con, spilled, self.path)
        return spilled.run_id, stored

    # -- reading -----------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> pd.DataFrame:
        """Runs, newest first (stale 'running' rows are reconciled first; on a read-only database they are shown
        as 'interrupted' without being rewritten)."""
        self.reconcile()
        sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM runs ORDER BY created_at DESC, run_id"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._connect() as con:
            df = con.execute(sql, params).df()
            stale = self._stale(con) if self.read_only else {}
        if stale:
            df.loc[df["run_id"].isin(list(stale)), "status"] = "interrupted"
        return df

    def run_summaries(self, limit: int | None = None) -> pd.DataFrame:
        """`list_runs` with what an analyst reads first, in one query: `posterior_hash`, `error`, the headline
        outcome's interval (`headline_median`, `headline_p05`, `headline_p95`: defected_share, or for a sweep the
        spread of its experiments' medians, 'sweep:defected_share') and `brief`, a small JSON object of the fields
        of the run's artifacts that summarise it (`BRIEF_FIELDS`; NULL when it has none). Stale 'running' rows are
        reconciled first, as in `list_runs`."""
        self.reconcile()
        cols = ", ".join([*LIST_COLUMNS, "posterior_hash", "error"])
        limited = "LIMIT ?" if limit is not None else ""
        briefs = " ".join(f"WHEN '{name}' THEN {expr}" for name, expr in BRIEF_FIELDS.items())
        names = ", ".join(f"'{name}'" for name in BRIEF_FIELDS)
        sql = f"""
            WITH r AS (SELECT {cols} FROM runs ORDER BY created_at DESC, run_id {limited}),
            a AS (
                SELECT run_id, json_group_object(name, CASE name {briefs} END) AS brief FROM artifacts
                WHERE name IN ({names}) AND run_id IN (SELECT run_id FROM r) GROUP BY run_id)
            SELECT r.*, o.median AS headline_median, o.p05 AS headline_p05, o.p95 AS headline_p95,
                CAST(a.brief AS VARCHAR) AS brief
            FROM r
            LEFT JOIN outcomes o ON o.run_id = r.run_id
                AND o.outcome = CASE WHEN r.kind = 'sweep' THEN 'sweep:{HEADLINE}' ELSE '{HEADLINE}' END
            LEFT JOIN a ON a.run_id = r.run_id
            ORDER BY r.created_at DESC, r.run_id"""
        with self._connect() as con:
            df = con.execute(sql, [int(limit)] if limit is not None else []).df()
            stale = self._stale(con) if self.read_only else {}
        if stale:
            gone = df["run_id"].isin(list(stale))
            df.loc[gone, "status"] = "interrupted"
            df.loc[gone, "error"] = df.loc[gone, "error"].fillna(df.loc[gone, "run_id"].map(stale))
        return df

    def running(self) -> list[str]:
        """The ids of the runs still running (stale rows reconciled first; on a read-only database, left out)."""
        self.reconcile()
        with self._connect() as con:
            ids = [str(r[0]) for r in con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()]
            stale = self._stale(con) if self.read_only else {}
        return [rid for rid in ids if rid not in stale]

    def progress(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The progress that running commands wrote beside the database (`defection.store.progress`), by run id.
        Callers pass only runs that are still 'running' after reconciling, so a dead process's is never shown."""
        return read_progress(self.path, run_ids)

    def resolve(self, run_id: str) -> str:
        """The full id of a run given its id or a unique prefix."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id", [run_id]
            ).fetchall()
        ids = [str(r[0]) for r in rows]
        if run_id in ids:
            return run_id
        if len(ids) == 1 and run_id:
            return ids[0]
        if len(ids) > 1 and run_id:
            shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
            raise RunNotFound(
                run_id,
                self.path,
                f"run id prefix '{run_id}' is ambiguous in {self.path}: matches {shown}; give more characters",
            )
        raise RunNotFound(run_id, self.path)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run's row as a dict (library_versions parsed; scenario_json kept as text)."""
        self.reconcile()
        rid = self.resolve(run_id)
        with self._connect() as con:
            cur = con.execute("SELECT * FROM runs WHERE run_id = ?", [rid])
            cols = [d[0] for d in cur.description]
            row = cur.fetchone()
        if row is None:
            raise RunNotFound(run_id, self.path)
        out = dict(zip(cols, row, strict=True))
        if self.read_only and out["status"] == "running":
            with self._connect() as con:
                why = self._stale(con).get(rid)
            if why is not None:
                out["status"], out["error"] = "interrupted", out["error"] or why
        out["library_versions"] = json.loads(out["library_versions"] or "{}")
        return out

    def daily(self, run_id: str) -> pd.DataFrame:
        """Daily series: replicate, day and one column per series."""
        rid = self.resolve(run_id)
        with self._connect() as con:
            return con.execute(
                f"SELECT replicate, day, {', '.join(SERIES)} FROM daily WHERE run_id = ? ORDER BY replicate, day", [rid]
            ).df()

    def replicate_outcomes(self, run_id: str) -> pd.DataFrame:
        """Per-replicate outcomes, wide: replicate and one column per outcome."""
        rid = self.resolve(run_id)
        with self._connect() as con:
            long = con.execute("SELECT replicate, outcome, value FROM replicate_outcomes WHERE run_id = ?", [rid]).df()
        if long.empty:
            return pd.DataFrame({"replicate": pd.Series(dtype="int32")})
        wide = long.pivot(index="replicate", columns="outcome", values="value")
        wide = wide[_ordered(list(wide.columns))].sort_index().reset_index()
        wide.columns.name = None
        return wide

    def artifact(self, run_id: str, name: str) -> Any:
        """A JSON artifact stored with a run (None if there is none by that name)."""
        rid = self.resolve(run_id)
        with self._connect() as con:
            row = con.execute("SELECT payload FROM artifacts WHERE run_id = ? AND name = ?", [rid, name]).fetchone()
        return None if row is None else json.loads(row[0])

    def outcomes(self, run_id: str) -> pd.DataFrame:
        """Median, p05, p95 and mean of every outcome across replicates."""
        rid = self.resolve(run_id)
        with self._connect() as con:
            df = con.execute("SELECT outcome, median, p05, p95, mean FROM outcomes WHERE run_id = ?", [rid]).df()
        order = {name: k for k, name in enumerate(_ordered(list(df["outcome"])))}
        return df.sort_values("outcome", key=lambda s: s.map(order)).reset_index(drop=True)

    def _status(self, run_id: str) -> str:
        with self._connect() as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise RunNotFound(run_id, self.path)
        return str(row[0])

    # -- export ------------------------------------------------------------------------------------

    def export(self, run_id: str, fmt: Literal["parquet", "csv"], out: str | Path) -> list[Path]:
        """Write daily, replicate_outcomes and outcomes tables plus run.json into directory `out`."""
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"export format must be 'parquet' or 'csv', not {fmt!r}")
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"export target {out} exists and is not a directory; give a directory path")
        run = self.get_run(run_id)
        rid = run["run_id"]
        if run["status"] != "complete":
            raise ValueError(f"run '{rid}' is {run['status']}, not complete; only complete runs can be exported")
        out.mkdir(parents=True, exist_ok=True)
        options = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER)"
        tables = {
            "daily": self.daily(rid),
            "replicate_outcomes": self.replicate_outcomes(rid),
            "outcomes": self.outcomes(rid),
        }
        written: list[Path] = []
        with self._connect() as con:
            for name, df in tables.items():
                target = out / f"{name}.{fmt}"
                con.register("export_df", df)
                con.execute(f"COPY (SELECT * FROM export_df) TO '{sql_path(target)}' {options}")
                con.unregister("export_df")
                written.append(target)
        doc = dict(run)
        doc["scenario"] = json.loads(doc.pop("scenario_json") or "{}")
        for key, value in doc.items():
            if isinstance(value, datetime):
                doc[key] = value.isoformat()
        target = out / "run.json"
        target.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        written.append(target)
        return written


def _ordered(names: list[str]) -> list[str]:
    """Outcome names in `OUTCOMES` order, unknown names after, alphabetically."""
    known = [n for n in OUTCOMES if n in names]
    return known + sorted(n for n in names if n not in OUTCOMES)
