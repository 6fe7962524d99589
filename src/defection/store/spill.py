"""Spill files: a finished run whose results cannot be written to the database (locked by another process for too
long, damaged, no longer writable) is written instead to `<database>.spill/<run_id>/`, one Parquet file per table
and a `spill.json` manifest, and stored later from there (`defection runs ingest`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from defection.store.errors import ResultsError, first_line
from defection.store.schema import CREATE_TABLES, DATA_TABLES, columns, insert_row, sql_path, utc_now

SPILL_SUFFIX = ".spill"
"""A run whose results cannot be written is spilled to `<database>.spill/<run_id>/`: one Parquet file per table
and `spill.json` (see `ResultsDB.spill` and `ResultsDB.ingest`)."""
SPILL_MANIFEST = "spill.json"


def spill_dir(db_path: Path | str) -> Path:
    """The folder beside a database where runs that could not be written are spilled."""
    path = Path(db_path)
    return path.with_name(path.name + SPILL_SUFFIX)


def spill_run(
    db_path: Path, run_id: str, begun: dict[str, Any] | None, write: Callable[[duckdb.DuckDBPyConnection], Any]
) -> Path:
    """Write a run's results to `<database>.spill/<run_id>/` (or, if that folder cannot be written, the same under
    the system's temporary folder): `write` runs against an in-memory database of the same layout holding the run's
    row (`begun`, as `begin_run` recorded it, or a bare 'running' row if this process did not begin it), and each
    table's rows for the run go to `<table>.parquet`, with `spill.json` describing them. Returns the folder."""
    mem = duckdb.connect(":memory:")
    try:
        for stmt in CREATE_TABLES:
            mem.execute(stmt)
        insert_row(mem, "runs", begun if begun is not None else {"run_id": run_id, "status": "running"})
        write(mem)
        errors: list[str] = []
        for base in (spill_dir(db_path), Path(tempfile.gettempdir()) / f"defection{SPILL_SUFFIX}"):
            try:
                return write_spill(mem, base, run_id, db_path, full=begun is not None)
            except (OSError, duckdb.Error) as e:
                errors.append(f"{base}: {first_line(e)}")
        raise ResultsError(f"run {run_id}: could not spill its results either ({'; '.join(errors)})")
    finally:
        mem.close()


def write_spill(mem: duckdb.DuckDBPyConnection, base: Path, run_id: str, db_path: Path, full: bool) -> Path:
    """Copy the in-memory database's tables (one run's rows) to `<base>/<run_id>/`, atomically (written beside,
    then renamed: the folder appears complete or not at all); see `spill_run`."""
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
                mem.execute(f"COPY {table} TO '{sql_path(staging / f'{table}.parquet')}' (FORMAT parquet)")
                tables[table] = rows
        manifest = {
            "format": 1,
            "run_id": run_id,
            "database": str(db_path.resolve()),
            "spilled_at": utc_now().isoformat(),
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


@dataclass(frozen=True)
class Spill:
    """A spill folder as its manifest describes it: the run, its rows per table, whether it holds the run's full
    description (`full`) or only its results, and the database it was spilled from."""

    folder: Path
    run_id: str
    tables: dict[str, int]
    full: bool
    database: object


def read_spill(path: str | Path) -> Spill:
    """The spill at `path` (a folder written by `spill_run`, or its `spill.json`); `ResultsError` if its manifest
    cannot be read, it is incomplete or it names unknown tables."""
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
    return Spill(folder, run_id, tables, full, manifest.get("database"))


def store_spill(con: duckdb.DuckDBPyConnection, spill: Spill, db_path: Path) -> dict[str, int]:
    """Store a spilled run through `con` (inside the caller's transaction) and check that it is marked complete;
    a run that is already complete is left as it is. Returns the rows stored per table (empty if none were)."""
    folder, run_id, tables = spill.folder, spill.run_id, spill.tables
    stored: dict[str, int] = {}
    found = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
    row = found[0] if found else None
    if row is not None and row[0] == "complete":
        return {}
    runs_file = sql_path(folder / "runs.parquet")
    if row is None:
        if not spill.full:
            raise ResultsError(
                f"run {run_id} is not in {db_path} and {folder} holds only its results, not its "
                f"description: ingest it into the database it was spilled from ({spill.database})"
            )
        con.execute(f"INSERT INTO runs BY NAME SELECT * FROM read_parquet('{runs_file}')")
    else:
        cols = [c for c in columns(con, "runs") if c != "run_id"]
        spilled = con.execute(f"SELECT * FROM read_parquet('{runs_file}') LIMIT 0").description
        have = {d[0] for d in spilled}
        sets = ", ".join(f"{c} = coalesce(s.{c}, runs.{c})" for c in cols if c in have)
        con.execute(f"UPDATE runs SET {sets} FROM read_parquet('{runs_file}') AS s WHERE runs.run_id = s.run_id")
    con.execute("UPDATE runs SET error = NULL WHERE run_id = ? AND status = 'complete'", [run_id])
    for table in DATA_TABLES:
        con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # nothing partial stays
        if table in tables:
            source = sql_path(folder / f"{table}.parquet")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{source}')")
            stored[table] = int(tables[table])
    status = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not status or status[0][0] != "complete":
        raise ResultsError(f"{folder}: the spilled run {run_id} is not marked complete; nothing was stored")
    return stored
