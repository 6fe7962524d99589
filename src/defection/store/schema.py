"""The layout of the results database: its default file name, tables and columns, the schema version and how an
older file is brought up to date (adding columns), and the small SQL helpers every part of the store shares.
Timestamps are naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from defection.model.outputs import SERIES

DEFAULT_DB = "defection.duckdb"
SCHEMA_VERSION = 3
"""The layout of the tables. A database of an older version down to ``OLDEST_READABLE_VERSION`` is brought up to
date in place when opened; a newer or older one is refused. Adding a daily series or an outcome (declared in
``model.outputs``) does not change the version: the ``daily`` table's series columns are derived from
``outputs.SERIES`` and missing ones are added on opening (``add_missing_columns``); outcomes are stored in long
form (one row per outcome), so a new outcome needs no column. Bump the version only for a change that old
files cannot be brought up to by adding columns."""
OLDEST_READABLE_VERSION = 2  # 2 → 3 added daily series (unit_strength_p10…p90), which adding columns repairs
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

CREATE_TABLES = [
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
"""The statistics of each outcome stored per sweep experiment (`experiment_outcomes`)."""


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The column names of a table in the open database."""
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()
    return {r[0] for r in rows}


def missing_series(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The declared daily series (``outputs.SERIES``) that the open database's ``daily`` table has no column for."""
    have = columns(con, "daily")
    return [name for name in SERIES if name not in have]


def missing_run_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The declared ``runs`` columns (``RUN_COLUMNS_ADDED``) that the open database's ``runs`` table lacks."""
    have = columns(con, "runs")
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


def insert_row(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    """Insert one row given as {column: value}."""
    names = list(row)
    con.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [row[n] for n in names],
    )


def sql_path(path: Path) -> str:
    """A path quoted for a SQL string literal."""
    return str(path).replace("'", "''")


def utc_now() -> datetime:
    """The current time as naive UTC (how the store records timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)
