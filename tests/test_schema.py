"""The output schema declared once in model.outputs: its numeric layout, the recipe "add an outcome" end to end,
and a results database that lacks a declared daily series being brought up to date in place."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

import defection
from defection.engine import RunResult
from defection.model import outputs
from defection.model.regime import CounterMeasures
from defection.report import render_report
from defection.scenario import TYPE_NAMES
from defection.store import ResultsDB, ResultsError

from .processes import run

# A launcher that adds one outcome through the declaration only, then runs the ordinary command line.
LAUNCHER = """
import sys

import numpy as np

from defection.model import outputs

outputs.add_outcome(
    "arrived_peak",
    "Largest number of soldiers arriving on one day.",
    lambda daily, sc: float(np.max(daily[:, outputs.COL["arrived"]])),
)

from defection.cli.app import main

sys.argv = ["defection", *sys.argv[1:]]
main()
"""
NEW = "arrived_peak"


def test_status_and_counter_codes_are_those_the_stored_results_were_written_with() -> None:
    assert (outputs.SERVING, outputs.ARRIVED, outputs.CAUGHT, outputs.EXECUTED) == (0, 1, 2, 3)
    assert (outputs.KILLED_CROSSING, outputs.KILLED, outputs.WOUNDED, outputs.QUEUED) == (4, 5, 6, 7)
    assert (outputs.C_ATTEMPTS, outputs.C_ARRIVED, outputs.C_KILLED_X, outputs.C_KILLED) == (0, 1, 4, 5)
    assert (outputs.C_REPLACED, outputs.C_CONTACTS, outputs.C_PAID, outputs.C_REJECTED) == (7, 8, 11, 12)
    assert outputs.C_ARRIVED_TYPE == 13 and 13 + len(TYPE_NAMES) == outputs.C_EXTRACTED
    assert (outputs.DESERTED, outputs.SURRENDERED) == (8, 9)  # the exit routes (issue 12), appended
    assert (outputs.C_DESERTED, outputs.C_SURRENDERED, outputs.C_CAUGHT_DESERTING) == (19, 20, 21)
    assert (outputs.C_RETURNED, outputs.C_KILLED_SURRENDERING) == (22, 23)
    assert 19 + len(TYPE_NAMES) == outputs.N_COUNTERS
    assert all(type(v) is int for v in (outputs.SERVING, outputs.QUEUED, outputs.C_ARRIVED, outputs.N_COUNTERS))


def test_the_series_are_unique_and_every_count_series_reads_its_own_counter() -> None:
    assert len(set(outputs.SERIES)) == len(outputs.SERIES)
    assert all(outputs.SERIES[k] == name for name, k in outputs.COL.items())
    counts = {**outputs.COUNT_SERIES, **outputs.ROUTE_SERIES}
    assert all(outputs.COUNTERS[col] == name for name, col in counts.items())
    assert set(counts) == set(outputs.COUNTERS)
    assert outputs.SERIES[:6] == ("offer_usd", "programme_open", "serving", "queued", "aware", "contacts")
    # the route series come last, so every older series keeps its column
    assert outputs.SERIES[-len(outputs.ROUTE_SERIES) :] == tuple(outputs.ROUTE_SERIES)
    measures = outputs.SERIES[: -len(outputs.ROUTE_SERIES)][-len(outputs.COUNTER_MEASURES) :]
    assert measures == outputs.COUNTER_MEASURES
    assert tuple(f.name for f in dataclasses.fields(CounterMeasures)) == outputs.COUNTER_MEASURES


def test_an_outcome_is_declared_once() -> None:
    assert set(outputs.OUTCOMES) >= outputs.OPEN_ENDED
    with pytest.raises(ValueError, match="already declared"):
        outputs.add_outcome("defected", "twice", lambda daily, sc: 0.0)
    assert "defected" not in outputs.DERIVED_OUTCOMES


def _launch(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(script), *args])


def test_an_outcome_added_through_the_declaration_reaches_run_the_store_and_the_report(tmp_path: Path) -> None:
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER, encoding="utf-8")
    db = tmp_path / "runs.duckdb"
    r = _launch(
        script, "run", "--replicates", "3", "--days", "20", "--agents", "990", "--seed", "4", "--db", str(db), "--json"
    )
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert NEW in payload["outcomes"]

    # the stored per-replicate value is the largest daily arrival count of that replicate's stored series
    store = ResultsDB(db)
    daily = store.daily(payload["run_id"])
    peaks = daily.groupby("replicate")["arrived"].max()
    per_replicate = store.replicate_outcomes(payload["run_id"]).set_index("replicate")[NEW]
    assert np.allclose(per_replicate.sort_index().to_numpy(), peaks.sort_index().to_numpy())
    assert peaks.max() > 0  # a run where nobody arrived would not tell a peak from a zero
    assert payload["outcomes"][NEW]["median"] == pytest.approx(float(np.median(peaks)))

    shown = _launch(script, "runs", "show", payload["run_id"], "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outcomes"][NEW]["median"] == pytest.approx(float(np.median(peaks)))

    html = tmp_path / "report.html"
    rep = _launch(script, "report", payload["run_id"], "-o", str(html), "--db", str(db))
    assert rep.returncode == 0, rep.stderr
    text = html.read_text(encoding="utf-8")
    assert NEW in text and "Largest number of soldiers arriving on one day." in text


@pytest.fixture(scope="module")
def result() -> RunResult:
    return defection.simulate(replicates=2, days=5, agents=990, seed=2)


def test_a_database_lacking_a_declared_daily_series_gets_the_column_and_keeps_its_runs(
    tmp_path: Path, result: RunResult
) -> None:
    path = tmp_path / "old.duckdb"
    old_run = ResultsDB(path).store(result)
    absent = [outputs.SERIES[-1], "unit_strength_p50"]  # as if declared after this file was written
    with duckdb.connect(str(path)) as con:
        for name in absent:
            con.execute(f"ALTER TABLE daily DROP COLUMN {name}")
    db = ResultsDB(path)
    with duckdb.connect(str(path)) as con:
        columns = {r[0] for r in con.execute("DESCRIBE daily").fetchall()}
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    assert set(absent) <= columns
    old = db.daily(old_run)
    assert len(old) == len(result.daily) and old[absent].isna().all().all()
    assert np.allclose(old["arrived"], result.daily["arrived"])
    assert db.replicate_outcomes(old_run).shape[0] == 2
    new_run = db.store(result)
    assert np.allclose(db.daily(new_run)[absent], result.daily[absent])
    assert "fig-defections" in render_report(db, old_run)
    ResultsDB(path)  # opening it again changes nothing and does not fail


def test_a_database_older_than_the_oldest_readable_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ancient.duckdb"
    ResultsDB(path)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(ResultsError, match="schema version 1"):
        ResultsDB(path)
