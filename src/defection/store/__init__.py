"""The results store: runs, daily series and outcomes in an embedded DuckDB file, with Parquet export."""

from defection.store.db import (
    DEFAULT_DB,
    ResultsDB,
    ResultsError,
    ResultsLocked,
    ResultsSpilled,
    RunMeta,
    RunNotFound,
    pid_alive,
)

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
