"""The embedded DuckDB results store: one row per run, its daily series, per-replicate outcomes and
intervals.

Connections are short-lived (one per operation) so another process can open the file between
writes. Timestamps are naive UTC.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb
import pandas as pd

from defection.model.outputs import OUTCOMES, SERIES

if TYPE_CHECKING:
    from defection.engine import RunResult
    from defection.scenario import Scenario

DEFAULT_DB = "defection.duckdb"
SCHEMA_VERSION = 3
"""The layout of the tables. A database of an older version down to ``OLDEST_READABLE_VERSION`` is brought up to
date in place when opened; a newer or older one is refused. Adding a daily series or an outcome (declared in
``model.outputs``) does not change the version: the ``daily`` table's series columns are derived from
``outputs.SERIES`` and missing ones are added on opening (``add_missing_columns``); outcomes are stored in long
form (one row per outcome), so a new outcome needs no column. Bump the version only for a change that old
files cannot be brought up to by adding columns."""
OLDEST_READABLE_VERSION = 2  # 2 → 3 added daily series (unit_strength_p10…p90), which adding columns repairs
LOCK_WAIT_SECONDS = 60.0
"""How long an operation waits, in all, for a lock another process holds on the file before it gives up (a
finished run's results are then spilled to Parquet beside the database, never discarded; see `ResultsDB.spill`)."""
LOCK_WAIT_ENV = "DEFECTION_DB_LOCK_WAIT"
"""Environment variable overriding `LOCK_WAIT_SECONDS` (seconds, >= 0)."""
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.1, 8.0  # the back-off: 0.1 s, doubling, at most 8 s between attempts
LOCK_RETRY_SILENT = 0.4  # waits shorter than this are not announced (a brief overlap with another command)
SPILL_SUFFIX = ".spill"
"""A run whose results cannot be written is spilled to `<database>.spill/<run_id>/`: one Parquet file per table
and `spill.json` (see `ResultsDB.spill` and `ResultsDB.ingest`)."""
SPILL_MANIFEST = "spill.json"
DATA_TABLES = ("daily", "replicate_outcomes", "outcomes", "artifacts", "experiments", "experiment_outcomes")
"""The tables that hold a run's results, keyed by run_id (besides its row in `runs`)."""

LIST_COLUMNS = (
    "run_id",
    "kind",
    "status",
    "created_at",
    "scenario_name",
    "scenario_hash",
    "seed",
    "agents",
    "represented",
    "days",
    "replicates",
    "wall_seconds",
)
RUN_COLUMNS_ADDED = {"posterior_hash": "VARCHAR", "posterior_path": "VARCHAR"}
"""Columns of ``runs`` added since schema version 3: a file that lacks them gets them (NULL for its runs) on opening,
as a missing daily series does. The posterior a run drew its calibrated parameters from: its content hash and where
it was read from (both NULL for a run with the hand-tuned defaults)."""

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR, created_at TIMESTAMP,
        finished_at TIMESTAMP, scenario_name VARCHAR, scenario_hash VARCHAR, scenario_json VARCHAR,
        seed BIGINT, agents BIGINT, represented BIGINT, days INTEGER, replicates INTEGER,
        package_version VARCHAR, library_versions VARCHAR, host VARCHAR, pid INTEGER,
        wall_seconds DOUBLE, error VARCHAR, """
    + ", ".join(f"{name} {kind}" for name, kind in RUN_COLUMNS_ADDED.items())
    + ")",
    "CREATE TABLE IF NOT EXISTS daily (run_id VARCHAR, replicate INTEGER, day INTEGER, "
    + ", ".join(f"{name} DOUBLE" for name in SERIES)
    + ")",
    """CREATE TABLE IF NOT EXISTS replicate_outcomes (
        run_id VARCHAR, replicate INTEGER, outcome VARCHAR, value DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS outcomes (
        run_id VARCHAR, outcome VARCHAR, median DOUBLE, p05 DOUBLE, p95 DOUBLE, mean DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS artifacts (run_id VARCHAR, name VARCHAR, payload VARCHAR)""",
    # sweeps (`defection sweep`): one row per planned experiment, and its outcome summaries in long form
    """CREATE TABLE IF NOT EXISTS experiments (
        run_id VARCHAR, experiment BIGINT, status VARCHAR, error VARCHAR, params_json VARCHAR,
        wall_seconds DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS experiment_outcomes (
        run_id VARCHAR, experiment BIGINT, outcome VARCHAR, mean DOUBLE, median DOUBLE, p05 DOUBLE, p95 DOUBLE)""",
]
SWEEP_STATS = ("mean", "median", "p05", "p95")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()
    return {r[0] for r in rows}


def missing_series(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The declared daily series (``outputs.SERIES``) that the open database's ``daily`` table has no column for."""
    have = _columns(con, "daily")
    return [name for name in SERIES if name not in have]


def missing_run_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The declared ``runs`` columns (``RUN_COLUMNS_ADDED``) that the open database's ``runs`` table lacks."""
    have = _columns(con, "runs")
    return [name for name in RUN_COLUMNS_ADDED if name not in have]


def add_missing_columns(
    con: duckdb.DuckDBPyConnection, missing: list[str], missing_runs: tuple[str, ...] | list[str] = ()
) -> None:
    """Add the `missing` daily series and `missing_runs` run columns, NULL for the runs already stored, and record
    the current schema version, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        for name in missing:
            con.execute(f"ALTER TABLE daily ADD COLUMN {name} DOUBLE")
        for name in missing_runs:
            con.execute(f"ALTER TABLE runs ADD COLUMN {name} {RUN_COLUMNS_ADDED[name]}")
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


class ResultsError(Exception):
    """The results database cannot be opened or used."""


class ResultsLocked(ResultsError):
    """Another process held the database's lock for longer than the wait allowed (`lock_wait_seconds`)."""


class ResultsSpilled(ResultsError):
    """A finished run could not be written to the database; its results are in a spill folder instead."""

    def __init__(self, run_id: str, spill: Path, db_path: Path, reason: str):
        self.run_id, self.spill, self.db_path, self.reason = run_id, spill, db_path, reason
        super().__init__(
            f"{reason}\nthe results of run {run_id} are safe in {spill}; store them with "
            f"`defection runs ingest {spill} --db {db_path}` once the database is available (ingesting twice "
            "stores nothing twice)"
        )


T = TypeVar("T")


def lock_wait_seconds() -> float:
    """Seconds to wait for another process's lock: $DEFECTION_DB_LOCK_WAIT if it is a number >= 0, else 60."""
    try:
        value = float(os.environ.get(LOCK_WAIT_ENV, "") or LOCK_WAIT_SECONDS)
    except ValueError:
        return LOCK_WAIT_SECONDS
    return value if value >= 0 and value == value else LOCK_WAIT_SECONDS


def spill_dir(db_path: Path | str) -> Path:
    """The folder beside a database where runs that could not be written are spilled."""
    path = Path(db_path)
    return path.with_name(path.name + SPILL_SUFFIX)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _is_lock(message: str) -> bool:
    return "could not set lock" in message.lower() or "conflicting lock" in message.lower()


def _lock_holder(message: str) -> str:
    """'pid 1234' from DuckDB's lock message, or a generic phrase."""
    found = re.search(r"\(PID (\d+)\)", message)
    return f"pid {found.group(1)}" if found else "process unknown"


_DAMAGE = ("checksum", "corrupt", "could not read enough bytes", "not a valid duckdb", "invalid database", "magic")
_DENIED = ("operation not permitted", "permission denied", "read-only file system", "read-only mode")


def describe_error(path: Path, e: BaseException, writing: bool = False) -> str:
    """A user-facing sentence for a DuckDB error on the database at `path`: what is wrong and what to do."""
    msg = _first_line(e)
    low = msg.lower()
    if any(k in low for k in _DAMAGE):
        return (
            f"results database {path} is damaged or truncated (DuckDB: {msg}). Move it aside "
            f"(`mv {path} {path}.damaged`) or restore it from a backup; the next run then starts a new database "
            "there, and stored runs can be re-created from their scenario files with `defection run`"
        )
    if any(k in low for k in _DENIED):
        return (
            f"results database {path} cannot be written: the file or its folder {path.parent} is not writable "
            f"(DuckDB: {msg}). Reading commands (`runs list`, `runs show`, `report`, `compare`, `serve`) still "
            "work on it; to store runs, make both writable or pass --db with a writable path"
        )
    return f"results database {path}: {'cannot write' if writing else 'cannot read'} (DuckDB: {msg})"


class RunNotFound(KeyError):
    """No run (or no unique run) matches the given id or prefix."""

    def __init__(self, run_id: str, db_path: Path | str = DEFAULT_DB, detail: str | None = None):
        self.run_id = run_id
        self.db_path = str(db_path)
        self.message = detail or (f"run '{run_id}' not found in {self.db_path}; see `defection runs list`")
        super().__init__(run_id)

    def __str__(self) -> str:
        return self.message


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


def posterior_label(run: dict[str, Any]) -> str:
    """Which posterior a stored run drew its calibrated parameters from: '<hash> (<path>)', or the defaults."""
    if not run.get("posterior_hash"):
        return "hand-tuned defaults (no posterior)"
    return f"{run['posterior_hash']} ({run.get('posterior_path') or 'path not recorded'})"


def new_run_id() -> str:
    """A short, unique, typable id: 'r' + 10 hex characters."""
    return "r" + uuid.uuid4().hex[:10]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


class DailyStage:
    """Where a running simulation streams its daily rows (`simulate(on_daily=stage)`): each replicate's rows are
    appended to a Parquet file in a staging folder beside the database, so they are not held in memory until the
    end; `ResultsDB.complete_run(..., staged=stage)` then moves them into the database in the same transaction that
    marks the run complete (a run that fails or is interrupted leaves no daily rows in the database). Use it as a
    context manager: the staging folder is removed on leaving, whatever happened."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: list[Path] = []
        self.rows = 0
        self._con: duckdb.DuckDBPyConnection | None = None

    def __call__(self, rows: pd.DataFrame) -> None:
        if self._con is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(":memory:")
        target = self.folder / f"daily-{len(self.files):06d}.parquet"
        self._con.register("stage_df", rows)
        try:
            self._con.execute(f"COPY (SELECT * FROM stage_df) TO '{_sql_path(target)}' (FORMAT parquet)")
        finally:
            self._con.unregister("stage_df")
        self.files.append(target)
        self.rows += len(rows)

    def source(self) -> str:
        """SQL reading every staged row (in replicate, day order)."""
        files = ", ".join(f"'{_sql_path(f)}'" for f in self.files)
        return f"(SELECT * FROM read_parquet([{files}]) ORDER BY replicate, day)"

    def close(self) -> None:
        """Remove the staged files."""
        if self._con is not None:
            self._con.close()
            self._con = None
        shutil.rmtree(self.folder, ignore_errors=True)
        with suppress(OSError):  # the spill folder, if nothing else is in it
            self.folder.parent.rmdir()
        self.files = []

    def __enter__(self) -> DailyStage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
            for stmt in _SCHEMA:
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
        doubling, at most 8 s) for `lock_wait_seconds()` in all, announcing each wait through `notify`. Raises
        `ResultsLocked` when the wait is over, `ResultsError` (with what to do) for any other failure."""
        budget = lock_wait_seconds()
        deadline = time.monotonic() + budget
        delay = LOCK_RETRY_FIRST
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as e:
                msg = _first_line(e)
                if not _is_lock(msg):
                    raise ResultsError(describe_error(self.path, e, writing)) from e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ResultsLocked(
                        f"results database {self.path} is locked by another process ({_lock_holder(msg)}); gave up "
                        f"after waiting {budget:g} s (${LOCK_WAIT_ENV} sets the wait). Close the other program "
                        "that has the file open (a Python shell, a notebook, a DuckDB CLI) and try again"
                    ) from e
                wait = min(delay, left)
                if wait >= LOCK_RETRY_SILENT:
                    self.notify(
                        f"results database {self.path} is locked by another process ({_lock_holder(msg)}); "
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
            "created_at": _now(),
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
            _insert_row(con, "runs", row)
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
                    _now(),
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
        self, run_id: str, artifacts: dict[str, Any], outcomes: pd.DataFrame | None = None, wall_seconds: float = 0.0
    ) -> None:
        """Complete a run that produced named JSON artifacts (a calibration, a backtest) rather than daily series,
        with an optional outcomes table (outcome, median, p05, p95, mean), all in one transaction."""

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
                [_now(), float(wall_seconds), run_id],
            )

        self._complete(run_id, write)

    def complete_sweep(
        self,
        run_id: str,
        parts: list[str | Path],
        outcomes: list[str],
        planned: int,
        artifacts: dict[str, Any],
        wall_seconds: float = 0.0,
    ) -> dict[str, int]:
        """Ingest a sweep's Parquet parts (see `defection.explore.sweep.part_schema`) into `experiments` and
        `experiment_outcomes`, store the spread of each outcome across the experiments in `outcomes` (as
        'sweep:<outcome>': median, p05 and p95 of the per-experiment medians, mean of the means), the artifacts
        and the counts, and mark the run complete, all in one transaction. The parts must hold each of the
        `planned` experiments exactly once, else nothing is stored. DuckDB reads the parts itself, so memory
        does not grow with the number of experiments. Returns {planned, done, ok, failed}."""
        if not parts:
            raise ValueError(f"sweep {run_id} has no result parts to ingest")
        files = "[" + ", ".join(f"'{_sql_path(Path(p))}'" for p in parts) + "]"

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
                [_now(), float(wall_seconds), run_id],
            )
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
                [status, error, _now(), run_id],
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
                con.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, error = coalesce(error, ?) "
                    "WHERE run_id = ? AND status = 'running'",
                    [_now(), why, rid],
                )
        return list(stale)

    # -- spilling ------------------------------------------------------------------------------------

    def spill(self, run_id: str, write: Callable[[duckdb.DuckDBPyConnection], Any]) -> Path:
        """Write a run's results to `<database>.spill/<run_id>/` (or, if that folder cannot be written, the same
        under the system's temporary folder) instead of the database: `write` runs against an in-memory database
        of the same layout holding the run's row, and each table's rows for the run go to `<table>.parquet`, with
        `spill.json` describing them. The folder appears complete or not at all (written beside, then renamed).
        `ingest` stores it. Returns the folder."""
        mem = duckdb.connect(":memory:")
        try:
            for stmt in _SCHEMA:
                mem.execute(stmt)
            begun = self._begun.get(run_id)
            _insert_row(mem, "runs", begun if begun is not None else {"run_id": run_id, "status": "running"})
            write(mem)
            errors: list[str] = []
            for base in (spill_dir(self.path), Path(tempfile.gettempdir()) / f"defection{SPILL_SUFFIX}"):
                try:
                    return _write_spill(mem, base, run_id, self.path, full=begun is not None)
                except (OSError, duckdb.Error) as e:
                    errors.append(f"{base}: {_first_line(e)}")
            raise ResultsError(f"run {run_id}: could not spill its results either ({'; '.join(errors)})")
        finally:
            mem.close()

    def ingest(self, path: str | Path) -> tuple[str, dict[str, int]]:
        """Store a spilled run (a folder written by `spill`, or its `spill.json`) and mark it complete, in one
        transaction. Idempotent: a run that is already complete is left as it is (returns empty counts). Returns
        (run_id, rows stored per table)."""
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        manifest_path = folder / SPILL_MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            run_id, tables, full = str(manifest["run_id"]), dict(manifest["tables"]), bool(manifest["full"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ResultsError(
                f"{folder} is not a spilled run (its {SPILL_MANIFEST} cannot be read: {type(e).__name__}: {e})"
            ) from e
        unknown = sorted(set(tables) - set(DATA_TABLES) - {"runs"})
        if unknown or not all((folder / f"{t}.parquet").is_file() for t in tables):
            raise ResultsError(f"{folder}: the spill is incomplete or has unknown tables ({', '.join(unknown)})")
        self._write_check(f"ingest {folder}")
        stored: dict[str, int] = {}
        with self._transaction() as con:
            found = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
            row = found[0] if found else None
            if row is not None and row[0] == "complete":
                return run_id, {}
            runs_file = _sql_path(folder / "runs.parquet")
            if row is None:
                if not full:
                    raise ResultsError(
                        f"run {run_id} is not in {self.path} and {folder} holds only its results, not its "
                        f"description: ingest it into the database it was spilled from ({manifest.get('database')})"
                    )
                con.execute(f"INSERT INTO runs BY NAME SELECT * FROM read_parquet('{runs_file}')")
            else:
                cols = [c for c in _columns(con, "runs") if c != "run_id"]
                spilled = con.execute(f"SELECT * FROM read_parquet('{runs_file}') LIMIT 0").description
                have = {d[0] for d in spilled}
                sets = ", ".join(f"{c} = coalesce(s.{c}, runs.{c})" for c in cols if c in have)
                con.execute(
                    f"UPDATE runs SET {sets} FROM read_parquet('{runs_file}') AS s WHERE runs.run_id = s.run_id"
                )
            con.execute("UPDATE runs SET error = NULL WHERE run_id = ? AND status = 'complete'", [run_id])
            for table in DATA_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # nothing partial stays
                if table in tables:
                    source = _sql_path(folder / f"{table}.parquet")
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{source}')")
                    stored[table] = int(tables[table])
            status = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
            if not status or status[0][0] != "complete":
                raise ResultsError(f"{folder}: the spilled run {run_id} is not marked complete; nothing was stored")
        return run_id, stored

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
                con.execute(f"COPY (SELECT * FROM export_df) TO '{_sql_path(target)}' {options}")
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


def _insert_row(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    names = list(row)
    con.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [row[n] for n in names],
    )


def _write_spill(mem: duckdb.DuckDBPyConnection, base: Path, run_id: str, db_path: Path, full: bool) -> Path:
    """Copy the in-memory database's tables (one run's rows) to `<base>/<run_id>/`, atomically; see `spill`."""
    base.mkdir(parents=True, exist_ok=True)
    target = base / run_id
    staging = base / f".{run_id}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        tables: dict[str, int] = {}
        for table in ("runs", *DATA_TABLES):
            rows = int(mem.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            if table == "runs" or rows:
                mem.execute(f"COPY {table} TO '{_sql_path(staging / f'{table}.parquet')}' (FORMAT parquet)")
                tables[table] = rows
        manifest = {
            "format": 1,
            "run_id": run_id,
            "database": str(db_path.resolve()),
            "spilled_at": _now().isoformat(),
            "full": full,
            "tables": tables,
        }
        (staging / SPILL_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():  # an earlier spill of the same run (it cannot have completed twice): keep the newest
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _ordered(names: list[str]) -> list[str]:
    """Outcome names in `OUTCOMES` order, unknown names after, alphabetically."""
    known = [n for n in OUTCOMES if n in names]
    return known + sorted(n for n in names if n not in OUTCOMES)
