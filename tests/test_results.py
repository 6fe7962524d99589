"""The DuckDB results store: round trip, atomicity, stale-run reconciliation, export, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import defection
from defection.engine import RunResult
from defection.model.outputs import OUTCOMES, SERIES
from defection.store import DEFAULT_DB, ResultsDB, ResultsError, RunMeta, RunNotFound

from .processes import run

REPLICATES, DAYS = 2, 5


@pytest.fixture(scope="module")
def result() -> RunResult:
    return defection.simulate(replicates=REPLICATES, days=DAYS, agents=990, seed=1)


@pytest.fixture()
def db(tmp_path: Path) -> ResultsDB:
    return ResultsDB(tmp_path / DEFAULT_DB)


def _meta(result: RunResult) -> RunMeta:
    return RunMeta.from_scenario(result.scenario)


def _complete(db: ResultsDB, result: RunResult) -> str:
    run_id = db.begin_run(_meta(result))
    db.complete_run(run_id, result)
    return run_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set_pid(db: ResultsDB, run_id: str, pid: int) -> None:
    with db._connect() as con:
        con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", [pid, run_id])


def _count(db: ResultsDB, table: str, run_id: str) -> int:
    with db._connect() as con:
        row = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()
    assert row is not None
    return int(row[0])


def test_schema_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    ResultsDB(path)
    db = ResultsDB(path)
    assert db.list_runs().empty
    assert list(db.list_runs().columns) == [
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
    ]


def test_round_trip(db: ResultsDB, result: RunResult) -> None:
    run_id = db.begin_run(_meta(result))
    assert run_id.startswith("r") and len(run_id) == 11
    assert db.list_runs().loc[0, "status"] == "running"  # this process is alive
    db.complete_run(run_id, result)

    runs = db.list_runs()
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["run_id"] == run_id and row["status"] == "complete"
    assert row["scenario_hash"] == result.scenario_hash
    assert row["agents"] == result.agents and row["days"] == DAYS and row["replicates"] == REPLICATES
    assert row["wall_seconds"] == pytest.approx(result.wall_seconds)

    daily = db.daily(run_id)
    assert len(daily) == REPLICATES * DAYS
    assert list(daily.columns) == ["replicate", "day", *SERIES]
    np.testing.assert_allclose(daily[list(SERIES)].to_numpy(), result.daily[list(SERIES)].to_numpy())

    expected = result.outcomes()
    got = db.outcomes(run_id)
    assert list(got["outcome"]) == list(expected["outcome"])
    cols = ["median", "p05", "p95", "mean"]
    np.testing.assert_allclose(got[cols].to_numpy(), expected[cols].to_numpy())

    wide = db.replicate_outcomes(run_id)
    assert list(wide.columns) == ["replicate", *OUTCOMES]
    np.testing.assert_allclose(wide[list(OUTCOMES)].to_numpy(), result.per_replicate[list(OUTCOMES)].to_numpy())
    assert _count(db, "replicate_outcomes", run_id) == REPLICATES * len(OUTCOMES)

    run = db.get_run(run_id)
    assert run["status"] == "complete" and run["finished_at"] is not None
    assert isinstance(run["library_versions"], dict) and "duckdb" in run["library_versions"]
    assert isinstance(run["scenario_json"], str)
    assert json.loads(run["scenario_json"])["meta"]["name"] == result.scenario.meta.name

    with pytest.raises(ValueError, match="already complete"):
        db.complete_run(run_id, result)
    with pytest.raises(ValueError, match="complete"):
        db.mark_run(run_id, "failed", "no")


def test_list_newest_first_and_limit(db: ResultsDB, result: RunResult) -> None:
    ids = [db.begin_run(_meta(result)) for _ in range(3)]
    listed = db.list_runs()
    assert list(listed["run_id"]) == ids[::-1]
    assert len(db.list_runs(limit=2)) == 2


def test_dead_running_run_is_interrupted(db: ResultsDB, result: RunResult) -> None:
    run_id = db.begin_run(_meta(result))
    _set_pid(db, run_id, _dead_pid())
    runs = db.list_runs()
    assert runs.set_index("run_id").loc[run_id, "status"] == "interrupted"
    run = db.get_run(run_id)  # the reconciliation was written, not only reported
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    with pytest.raises(ValueError, match="interrupted"):
        db.export(run_id, "csv", db.path.parent / "out")


def test_other_host_running_run_is_left_alone(db: ResultsDB, result: RunResult) -> None:
    run_id = db.begin_run(_meta(result))
    with db._connect() as con:
        con.execute("UPDATE runs SET host = 'elsewhere', pid = ? WHERE run_id = ?", [_dead_pid(), run_id])
    assert db.list_runs().loc[0, "status"] == "running"


def test_mark_run(db: ResultsDB, result: RunResult) -> None:
    run_id = db.begin_run(_meta(result))
    db.mark_run(run_id, "failed", "ValueError: boom")
    run = db.get_run(run_id)
    assert run["status"] == "failed" and run["error"] == "ValueError: boom"
    with pytest.raises(ValueError):
        db.mark_run(run_id, "complete")  # type: ignore[arg-type]


def test_complete_run_is_atomic_when_a_later_insert_fails(
    db: ResultsDB, result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = db.begin_run(_meta(result))

    def broken_outcomes(self: RunResult) -> pd.DataFrame:
        return pd.DataFrame({"outcome": ["defected"], "median": [1.0]})  # no p05/p95/mean

    monkeypatch.setattr(RunResult, "outcomes", broken_outcomes)
    with pytest.raises(Exception):  # noqa: B017 - whatever DuckDB raises for the missing column
        db.complete_run(run_id, result)
    assert _count(db, "daily", run_id) == 0
    assert _count(db, "replicate_outcomes", run_id) == 0
    assert _count(db, "outcomes", run_id) == 0
    assert db.get_run(run_id)["status"] == "running"

    monkeypatch.undo()
    db.complete_run(run_id, result)  # a retry after the failure still works
    assert _count(db, "daily", run_id) == REPLICATES * DAYS


def test_complete_run_is_atomic_with_bad_daily(db: ResultsDB, result: RunResult) -> None:
    run_id = db.begin_run(_meta(result))
    bad = RunResult(**{**result.__dict__, "daily": result.daily.drop(columns=["serving"])})
    with pytest.raises(Exception):  # noqa: B017
        db.complete_run(run_id, bad)
    assert _count(db, "daily", run_id) == 0
    assert db.get_run(run_id)["status"] != "complete"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(db: ResultsDB, result: RunResult, tmp_path: Path, fmt: str) -> None:
    run_id = _complete(db, result)
    out = tmp_path / "export" / fmt
    files = db.export(run_id, fmt, out)  # type: ignore[arg-type]
    names = sorted(p.name for p in files)
    assert names == sorted([f"daily.{fmt}", f"replicate_outcomes.{fmt}", f"outcomes.{fmt}", "run.json"])
    assert all(p.exists() and p.parent == out for p in files)
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    daily = read(out / f"daily.{fmt}")
    assert len(daily) == REPLICATES * DAYS
    assert list(daily.columns) == ["replicate", "day", *SERIES]
    reps = read(out / f"replicate_outcomes.{fmt}")
    assert len(reps) == REPLICATES and "defected" in reps.columns
    outs = read(out / f"outcomes.{fmt}")
    assert len(outs) == len(OUTCOMES)
    np.testing.assert_allclose(outs["median"].to_numpy(), result.outcomes()["median"].to_numpy())
    doc = json.loads((out / "run.json").read_text())
    assert doc["run_id"] == run_id and doc["status"] == "complete"
    assert doc["scenario"]["meta"]["name"] == result.scenario.meta.name
    assert "scenario_json" not in doc

    db.export(run_id, fmt, out)  # exporting again overwrites in place


def test_export_rejects_file_target_and_bad_format(db: ResultsDB, result: RunResult, tmp_path: Path) -> None:
    run_id = _complete(db, result)
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        db.export(run_id, "csv", target)
    with pytest.raises(ValueError, match="format"):
        db.export(run_id, "xlsx", tmp_path / "o")  # type: ignore[arg-type]


def test_export_of_running_run_raises(db: ResultsDB, result: RunResult, tmp_path: Path) -> None:
    run_id = db.begin_run(_meta(result))
    with pytest.raises(ValueError, match="not complete"):
        db.export(run_id, "parquet", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_unknown_run(db: ResultsDB) -> None:
    with pytest.raises(RunNotFound) as info:
        db.get_run("rnothere")
    msg = str(info.value)
    assert "run 'rnothere' not found in" in msg and str(db.path) in msg
    assert "defection runs list" in msg
    assert isinstance(info.value, KeyError)
    for fn in (db.daily, db.outcomes, db.replicate_outcomes):
        with pytest.raises(RunNotFound):
            fn("rnothere")


def test_prefix_lookup(db: ResultsDB, result: RunResult) -> None:
    run_id = _complete(db, result)
    assert db.get_run(run_id[:4])["run_id"] == run_id
    assert len(db.daily(run_id[:5])) == REPLICATES * DAYS
    with db._connect() as con:  # two ids sharing a prefix
        con.execute("INSERT INTO runs (run_id, status) VALUES ('rabc1', 'failed'), ('rabc2', 'failed')")
    with pytest.raises(RunNotFound, match="ambiguous"):
        db.get_run("rabc")
    assert db.get_run("rabc1")["run_id"] == "rabc1"


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(ResultsError) as info:
        ResultsDB(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="does not exist"):
        ResultsDB(tmp_path / "nope" / "x.duckdb")


def test_store_helper(db: ResultsDB, result: RunResult) -> None:
    run_id = db.store(result, kind="sweep")
    run = db.get_run(run_id)
    assert run["kind"] == "sweep" and run["status"] == "complete"


def test_connection_not_held_between_calls(db: ResultsDB, result: RunResult) -> None:
    run_id = _complete(db, result)
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select status from runs').fetchone()[0])"
    )
    proc = run([sys.executable, "-c", code, str(db.path)], check=True)
    assert proc.stdout.strip() == "complete"
    assert db.get_run(run_id)["status"] == "complete"


def test_a_schema_2_database_is_upgraded_in_place(tmp_path: Path, result: RunResult) -> None:
    import duckdb

    from defection.report import render_report

    path = tmp_path / "old.duckdb"
    old_run = ResultsDB(path).store(result)
    new_cols = [c for c in SERIES if c.startswith("unit_strength_")]
    assert new_cols
    with duckdb.connect(str(path)) as con:  # make it look like a file written by schema 2
        for c in new_cols:
            con.execute(f"ALTER TABLE daily DROP COLUMN {c}")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db = ResultsDB(path)
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"
    old = db.daily(old_run)
    assert len(old) == len(result.daily) and old[new_cols].isna().all().all()
    assert np.allclose(old["arrived"], result.daily["arrived"])  # the old data are intact
    new_run = db.store(result)
    assert np.allclose(db.daily(new_run)[new_cols], result.daily[new_cols])
    assert "fig-defections" in render_report(db, old_run)  # an old run still has a report


def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "future.duckdb"
    ResultsDB(path)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ResultsError, match="schema version 99"):
        ResultsDB(path)
