"""The results store: runs, daily series and outcomes in an embedded DuckDB file, with Parquet export.

Its modules, from the bottom up: `schema` (the tables, their columns and how an older file is brought up to date),
`errors` (the exceptions, the messages for a damaged or read-only file, lock detection and the wait for a lock),
`staging` (a running simulation's daily rows, streamed to Parquet), `spill` (a finished run's results written
beside a database that cannot take them, and ingested later) and `progress` (a running command's progress, a small
JSON file beside the database), and `db` (`ResultsDB` and `RunMeta`)."""

from defection.store.db import ResultsDB, RunMeta, pid_alive
from defection.store.errors import ResultsError, ResultsLocked, ResultsSpilled, RunNotFound
from defection.store.schema import DEFAULT_DB

__all__ = [
    "DEFAULT_DB",
    "ResultsDB",
    "ResultsError",
    "ResultsLocked",
    "ResultsSpilled",
    "RunMeta",
    "RunNotFound",
    "pid_alive",
]
