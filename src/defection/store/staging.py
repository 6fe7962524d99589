"""Staging of a running simulation's daily rows: each replicate's rows go to a Parquet file beside the database as
they are produced, and are moved into the database when the run completes (`DailyStage`)."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path

import duckdb
import pandas as pd

from defection.store.schema import sql_path


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
            self._con.execute(f"COPY (SELECT * FROM stage_df) TO '{sql_path(target)}' (FORMAT parquet)")
        finally:
            self._con.unregister("stage_df")
        self.files.append(target)
        self.rows += len(rows)

    def source(self) -> str:
        """SQL reading every staged row (in replicate, day order)."""
        files = ", ".join(f"'{sql_path(f)}'" for f in self.files)
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
