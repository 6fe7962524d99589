"""The embedded DuckDB results store: one row per run, its daily series, per-replicate outcomes and
intervals.

Connections are short-lived (one per operation) so another process can open the file between
writes. Timestamps are naive UTC.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
LOCK_WAIT_SECONDS = 10.0

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


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


class ResultsDB:
    """A DuckDB file of runs. Opening it creates the schema if missing."""

    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        if not self.path.parent.exists():
            raise ResultsError(f"cannot open results database {self.path}: directory {self.path.parent} does not exist")
        if self.path.is_dir():
            raise ResultsError(f"cannot open results database {self.path}: it is a directory")
        with self._connect() as con:
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

    # -- connections -------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One short-lived connection; waits a little if another process holds the file lock."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.Error as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                if "lock" in msg.lower() and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise ResultsError(f"cannot open results database {self.path}: {msg}") from e
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect() as con:
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
        run_id = new_run_id()
        with self._connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, kind, status, created_at, scenario_name, scenario_hash, "
                "scenario_json, seed, agents, represented, days, replicates, package_version, "
                "library_versions, host, pid) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    meta.kind,
                    _now(),
                    meta.scenario_name,
                    meta.scenario_hash,
                    meta.scenario_json,
                    meta.seed,
                    meta.agents,
                    meta.represented,
                    meta.days,
                    meta.replicates,
                    meta.package_version,
                    json.dumps(meta.library_versions, sort_keys=True),
                    socket.gethostname(),
                    os.getpid(),
                ],
            )
        return run_id

    def complete_run(self, run_id: str, result: RunResult, artifacts: dict[str, Any] | None = None) -> None:
        """Store a run's results (and named JSON artifacts, e.g. a claims report) and mark it 'complete', all in
        one transaction."""
        status = self._status(run_id)
        if status == "complete":
            raise ValueError(f"run '{run_id}' is already complete; its results cannot be replaced")
        daily = result.daily
        per_rep = result.per_replicate
        names = [c for c in per_rep.columns if c != "replicate"]
        long = per_rep.melt(id_vars="replicate", value_vars=names, var_name="outcome", value_name="value")
        table = result.outcomes()
        series = ", ".join(SERIES)
        with self._transaction() as con:
            con.register("daily_df", daily)
            con.execute(
                f"INSERT INTO daily (run_id, replicate, day, {series}) "
                f"SELECT $rid, replicate, day, {series} FROM daily_df",
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

    def complete_artifacts(
        self, run_id: str, artifacts: dict[str, Any], outcomes: pd.DataFrame | None = None, wall_seconds: float = 0.0
    ) -> None:
        """Complete a run that produced named JSON artifacts (a calibration, a backtest) rather than daily series,
        with an optional outcomes table (outcome, median, p05, p95, mean), all in one transaction."""
        if self._status(run_id) == "complete":
            raise ValueError(f"run '{run_id}' is already complete; its results cannot be replaced")
        with self._transaction() as con:
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
        if self._status(run_id) == "complete":
            raise ValueError(f"run '{run_id}' is already complete; its results cannot be replaced")
        if not parts:
            raise ValueError(f"sweep {run_id} has no result parts to ingest")
        files = "[" + ", ".join(f"'{_sql_path(Path(p))}'" for p in parts) + "]"
        with self._transaction() as con:
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
        if self._status(run_id) == "complete":
            raise ValueError(f"run '{run_id}' is complete; it cannot be marked {status}")
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                [status, error, _now(), run_id],
            )

    def reconcile(self) -> list[str]:
        """Mark 'running' rows of this host whose process is gone as 'interrupted'; return their ids."""
        host = socket.gethostname()
        with self._connect() as con:
            rows = con.execute("SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]).fetchall()
            stale = [rid for rid, pid in rows if pid is None or not pid_alive(int(pid))]
            for rid in stale:
                con.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, "
                    "error = coalesce(error, 'process ended before the run completed') "
                    "WHERE run_id = ? AND status = 'running'",
                    [_now(), rid],
                )
        return stale

    # -- reading -----------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> pd.DataFrame:
        """Runs, newest first (stale 'running' rows are reconciled first)."""
        self.reconcile()
        sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM runs ORDER BY created_at DESC, run_id"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._connect() as con:
            return con.execute(sql, params).df()

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


def _ordered(names: list[str]) -> list[str]:
    """Outcome names in `OUTCOMES` order, unknown names after, alphabetically."""
    known = [n for n in OUTCOMES if n in names]
    return known + sorted(n for n in names if n not in OUTCOMES)
