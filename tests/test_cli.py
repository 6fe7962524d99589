"""The command line end to end: run --json, runs list/show/export, bench, and interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest

from defection.model.outputs import OUTCOMES
from defection.store import ResultsDB

from .conftest import ROOT, cli, cli_in_process, wait_for_running
from .processes import HANG_GUARD, communicate, started

REQUIRED_KEYS = {"run_id", "scenario_hash", "seed", "agents", "represented", "days", "replicates", "outcomes"}
REQUIRED_OUTCOMES = {
    "defected",
    "attempts",
    "caught",
    "killed_crossing",
    "strength_remaining_share",
    "units_ineffective_share",
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    db = tmp_path_factory.mktemp("cli") / "runs.duckdb"
    r = cli("run", "--replicates", "3", "--days", "30", "--agents", "2970", "--seed", "9", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, "stdout must hold exactly one JSON object"
    return db, json.loads(lines[0])


def test_run_json_shape(stored: tuple[Path, dict]) -> None:
    _, payload = stored
    assert payload.keys() >= REQUIRED_KEYS
    assert payload["outcomes"].keys() >= REQUIRED_OUTCOMES
    assert set(payload["outcomes"]) == set(OUTCOMES)
    for stats in payload["outcomes"].values():
        assert set(stats) == {"median", "p05", "p95"}
        if None not in stats.values():  # None: an open-ended outcome that was never reached
            assert stats["p05"] <= stats["median"] <= stats["p95"]
    assert payload["agents"] == 2970 and payload["represented"] == 700_000
    assert payload["seed"] == 9 and payload["days"] == 30 and payload["replicates"] == 3


def test_runs_list_show_export(stored: tuple[Path, dict], tmp_path: Path) -> None:
    db, payload = stored
    listed = json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
    row = next(r for r in listed if r["run_id"] == payload["run_id"])
    assert row["status"] == "complete"
    # the main outcome with its interval and the posterior that produced it, as the dashboard's list shows them
    assert row["headline_median"] == pytest.approx(payload["outcomes"]["defected_share"]["median"])
    assert row["headline"].endswith("%)") and "(" in row["headline"]  # "0.34% (0.13–0.43%)"
    assert row["posterior"] == (payload["posterior"]["hash"][:8] if payload.get("posterior") else "defaults")
    table = cli_in_process("runs", "list", "--db", str(db)).stdout
    assert "main outcome" in table and row["headline"] in table
    shown = cli_in_process("runs", "show", payload["run_id"][:6], "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["scenario"]["offer"]["cash_usd"] == 100_000.0
    assert info["outcomes"]["defected"]["median"] == pytest.approx(payload["outcomes"]["defected"]["median"])
    assert {"numba", "numpy", "duckdb"} <= info["library_versions"].keys()
    for fmt in ("parquet", "csv"):
        target = tmp_path / fmt
        r = cli_in_process("runs", "export", payload["run_id"], "--format", fmt, "-o", str(target), "--db", str(db))
        assert r.returncode == 0, r.stderr
        daily = pd.read_parquet(target / "daily.parquet") if fmt == "parquet" else pd.read_csv(target / "daily.csv")
        assert len(daily) == 3 * 30
    text = cli_in_process("runs", "show", payload["run_id"], "--db", str(db)).stdout
    assert "defected" in text and "complete" in text


def test_unknown_run_and_bad_format(stored: tuple[Path, dict], tmp_path: Path) -> None:
    db, payload = stored
    r = cli_in_process("runs", "show", "zzz", "--db", str(db))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = cli_in_process(
        "runs", "export", payload["run_id"], "--format", "xlsx", "-o", str(tmp_path / "o"), "--db", str(db)
    )
    assert r.returncode == 2 and "parquet" in r.stderr
    r = cli_in_process("runs", "list", "--db", str(tmp_path / "missing.duckdb"))
    assert r.returncode == 2 and "no results database" in r.stderr


def test_bench_json_reports_throughput() -> None:
    r = cli("bench", "--agents", "9900", "--days", "5", "--repeats", "1", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["agent_days_per_s"] > 0 and report["agents"] == 9900
    assert set(report["phase_seconds"]) >= {"information", "decision", "attrition"}


def _long_run(db: Path) -> AbstractContextManager[subprocess.Popen[str]]:
    """A run of 200 replicates × 3,650 days, far longer than any test: its process group is killed on leaving."""
    return started(
        [
            sys.executable,
            "-m",
            "defection",
            "run",
            "--days",
            "3650",
            "--replicates",
            "200",
            "--agents",
            "49500",
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_interrupted_run_leaves_database_consistent(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "runs.duckdb"
    done = cli("run", "--days", "5", "--replicates", "2", "--agents", "990", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    complete_id = json.loads(done.stdout)["run_id"]
    with _long_run(db) as proc:
        run_id = wait_for_running(db, proc)
        progress = tmp_path / "runs.duckdb.progress" / f"{run_id}.json"  # what the dashboard shows of it
        deadline = time.monotonic() + HANG_GUARD
        while not progress.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run never wrote its progress"
            time.sleep(0.05)
        os.kill(proc.pid, sig)  # the run's process only, as a Ctrl-C or a kill would
        _, stderr = communicate(proc)
    assert proc.returncode != 0
    assert "Traceback" not in stderr
    listed = cli_in_process("runs", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    status = {r["run_id"]: r["status"] for r in json.loads(listed.stdout)}
    assert status[complete_id] == "complete"
    assert status[run_id] == "interrupted"
    # its progress for the dashboard is gone: removed by the command on INT/TERM, by reconciling after a KILL
    assert not progress.exists()
    store = ResultsDB(db)
    assert store.daily(run_id).empty and store.outcomes(run_id).empty
    r = cli_in_process("runs", "export", run_id, "-o", str(tmp_path / "x"), "--db", str(db))
    assert r.returncode == 2 and "complete" in r.stderr


def test_console_width_into_a_pipe() -> None:
    """A terminal keeps its own width; COLUMNS decides when set; a pipe or file gets PIPE_WIDTH, not Rich's 80."""
    from defection.cli.console import PIPE_WIDTH, console_width

    assert console_width(True, {}) is None
    assert console_width(False, {"COLUMNS": "90"}) is None
    assert console_width(False, {}) == PIPE_WIDTH
    assert console_width(False, {"COLUMNS": ""}) == PIPE_WIDTH


def test_a_table_printed_to_a_pipe_keeps_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: tables printed to a pipe were cut to 80 columns. The parameter table, piped, keeps every column
    and every full parameter name on one line (at 80 columns Rich wrapped `meta.description` over two)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    proc = cli("params")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "parameter" in line and "source" in line)
    for column in ("parameter", "default", "unit", "range", "source"):
        assert column in header
    assert any("meta.description" in line for line in lines)
    assert any("offer.cash_usd" in line for line in lines)
    assert max(len(line) for line in lines) > 80
