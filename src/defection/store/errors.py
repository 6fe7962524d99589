"""What can go wrong with the results database, and what the user is told: the exception classes, the sentence for a
DuckDB error (a damaged file, one that cannot be written), and how a lock held by another process is recognised
and how long it is waited for."""

from __future__ import annotations

import os
import re
from pathlib import Path

from defection.store.schema import DEFAULT_DB

LOCK_WAIT_SECONDS = 60.0
"""How long an operation waits, in all, for a lock another process holds on the file before it gives up (a
finished run's results are then spilled to Parquet beside the database, never discarded; see `ResultsDB.spill`)."""
LOCK_WAIT_ENV = "DEFECTION_DB_LOCK_WAIT"
"""Environment variable overriding `LOCK_WAIT_SECONDS` (seconds, >= 0)."""
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.1, 8.0  # the back-off: 0.1 s, doubling, at most 8 s between attempts
LOCK_RETRY_SILENT = 0.4  # waits shorter than this are not announced (a brief overlap with another command)


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


class RunNotFound(KeyError):
    """No run (or no unique run) matches the given id or prefix."""

    def __init__(self, run_id: str, db_path: Path | str = DEFAULT_DB, detail: str | None = None):
        self.run_id = run_id
        self.db_path = str(db_path)
        self.message = detail or (f"run '{run_id}' not found in {self.db_path}; see `defection runs list`")
        super().__init__(run_id)

    def __str__(self) -> str:
        return self.message


def lock_wait_seconds() -> float:
    """Seconds to wait for another process's lock: $DEFECTION_DB_LOCK_WAIT if it is a number >= 0, else 60."""
    try:
        value = float(os.environ.get(LOCK_WAIT_ENV, "") or LOCK_WAIT_SECONDS)
    except ValueError:
        return LOCK_WAIT_SECONDS
    return value if value >= 0 and value == value else LOCK_WAIT_SECONDS


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def is_lock(message: str) -> bool:
    """Whether a DuckDB error message says another process holds the file's lock."""
    return "could not set lock" in message.lower() or "conflicting lock" in message.lower()


def lock_holder(message: str) -> str:
    """'pid 1234' from DuckDB's lock message, or a generic phrase."""
    found = re.search(r"\(PID (\d+)\)", message)
    return f"pid {found.group(1)}" if found else "process unknown"


_DAMAGE = ("checksum", "corrupt", "could not read enough bytes", "not a valid duckdb", "invalid database", "magic")
_DENIED = ("operation not permitted", "permission denied", "read-only file system", "read-only mode")


def describe_error(path: Path, e: BaseException, writing: bool = False) -> str:
    """A user-facing sentence for a DuckDB error on the database at `path`: what is wrong and what to do."""
    msg = first_line(e)
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
