"""Faults of the results database: a lock held by another process, a read-only file or folder, a truncated or
corrupted file. Finished results are never lost (they are spilled to Parquet and `runs ingest` stores them once),
and every fault is a clear message naming the file, a non-zero exit and no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

import defection
from defection.engine import RunResult
from defection.store import ResultsDB, RunMeta

from .processes import HANG_GUARD

LOCK_WAIT = "3"  # seconds the store waits for another process's lock in these tests ($DEFECTION_DB_LOCK_WAIT)
GENEROUS = HANG_GUARD  # the longest any subprocess may take here: a hang guard, never a speed test


@pytest.fixture(scope="module")
def result() -> RunResult:
    return defection.simulate(replicates=1, days=5, agents=300, seed=1)


def _run(*args: str, timeout: float = GENEROUS, **env: str) -> subprocess.CompletedProcess[str]:
    """The `defection` command line in its own process group, killed with its children if it hangs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "defection", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DEFECTION_DB_LOCK_WAIT": LOCK_WAIT, "COLUMNS": "200", **env},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@contextmanager
def _lock_holder(db: Path) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Another process (a Python shell, say) that will open the database, which takes DuckDB's file lock: started
    and its import of DuckDB done at once, the lock taken when the test calls what this yields (in milliseconds,
    so that a test can take it while a short run is still simulating, however loaded the machine)."""
    code = (
        "import duckdb, sys, time\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "while True:  # the database may be open in the other process for a moment\n"
        "    try:\n"
        "        c = duckdb.connect(sys.argv[1])\n"
        "        break\n"
        "    except duckdb.IOException:\n"
        "        time.sleep(0.05)\n"
        "print('locked', flush=True)\n"
        "time.sleep(3600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def lock() -> subprocess.Popen[str]:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("lock\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        return holder

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield lock
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


@contextmanager
def _lock_held(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the database open, which takes DuckDB's file lock."""
    with _lock_holder(db) as lock:
        yield lock()


def _no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr


def _stored(db: Path, result: RunResult, runs: int = 2) -> list[str]:
    store = ResultsDB(db)
    return [store.store(result) for _ in range(runs)]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------------------- a lock held by another process


def test_a_slow_lock_wait_is_announced_before_the_budget_runs_out(tmp_path: Path, monkeypatch) -> None:
    """On a loaded machine each attempt to open a locked file can take longer than the back-off's short first
    waits: the wait is announced once it has lasted LOCK_RETRY_SILENT, not only when the next wait is that long
    (under 8 busy processes a `run` once gave up after its 3 s without having said that it waited)."""
    import duckdb

    from defection.store import ResultsLocked
    from defection.store import db as store_db

    def slow_locked(*args: object, **kwargs: object) -> None:
        time.sleep(0.5)  # an attempt that takes long (here: by construction)
        raise duckdb.IOException('Could not set lock on file "x": Conflicting lock is held in python (PID 4242)')

    said: list[str] = []
    store = ResultsDB(tmp_path / "runs.duckdb", notify=said.append)
    monkeypatch.setenv("DEFECTION_DB_LOCK_WAIT", "1.5")
    monkeypatch.setattr(store_db.duckdb, "connect", slow_locked)
    with pytest.raises(ResultsLocked, match=r"locked by another process \(pid 4242\); gave up after waiting 1\.5 s"):
        store.list_runs()
    # attempts end at about 0.5, 1.1 and 1.8 s: the back-off's own waits (0.1, 0.2 s) are below the 0.4 s threshold,
    # so only the time already spent makes the wait worth announcing
    assert said and all("pid 4242" in m and "retrying in" in m for m in said), said


def test_lock_at_completion_spills_the_run_and_ingest_stores_it_once(tmp_path: Path, result: RunResult) -> None:
    """The store layer (used by run, sweep, calibrate, search, claims and the dashboard's jobs): a finished run
    whose database stays locked is written to a spill folder, and ingesting it twice stores its rows once."""
    from defection.store import ResultsSpilled  # not on main: the lock made it discard the results

    db = tmp_path / "runs.duckdb"
    said: list[str] = []
    store = ResultsDB(db, notify=said.append)
    run_id = store.begin_run(RunMeta.from_scenario(result.scenario))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEFECTION_DB_LOCK_WAIT", LOCK_WAIT)
        with _lock_held(db) as holder, pytest.raises(ResultsSpilled) as caught:
            store.complete_run(run_id, result)
    assert any(f"pid {holder.pid}" in m and "retrying in" in m for m in said), said  # it said what it waits for
    spill = caught.value.spill
    assert spill == tmp_path / "runs.duckdb.spill" / run_id and (spill / "daily.parquet").is_file()
    assert f"defection runs ingest {spill}" in str(caught.value)
    assert ResultsDB(db).get_run(run_id)["status"] == "running"  # nothing half-written in the database

    for _ in range(2):  # idempotent
        ResultsDB(db).ingest(spill)
    again = ResultsDB(db)
    assert again.get_run(run_id)["status"] == "complete"
    assert len(again.daily(run_id)) == len(result.daily)
    assert len(again.outcomes(run_id)) == len(result.outcomes())
    # a spill carries the run's own row: it can be stored into another database too
    other = ResultsDB(tmp_path / "other.duckdb")
    other.ingest(spill / "spill.json")
    assert other.get_run(run_id)["scenario_hash"] == result.scenario.content_hash()


def test_calibration_artifacts_are_spilled_too(
    tmp_path: Path, result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`complete_artifacts` (calibrate, backtest, sensitivity, optimize, discover) takes the same path: a run
    begun by another process (as the dashboard's jobs are) spills its results without its description, and
    ingesting completes the row the database already has."""
    from defection.store import ResultsSpilled

    db = tmp_path / "runs.duckdb"
    run_id = ResultsDB(db).begin_run(RunMeta(kind="calibration", scenario_name="cases"))
    store = ResultsDB(db, notify=lambda m: None)  # another instance: it does not know the run's description
    monkeypatch.setenv("DEFECTION_DB_LOCK_WAIT", "1")
    with _lock_held(db), pytest.raises(ResultsSpilled) as caught:
        store.complete_artifacts(run_id, {"posterior": {"particles": [1, 2, 3]}}, result.outcomes(), 1.5)
    monkeypatch.delenv("DEFECTION_DB_LOCK_WAIT")
    again = ResultsDB(db)
    assert again.get_run(run_id)["status"] == "running"
    again.ingest(caught.value.spill)
    again.ingest(caught.value.spill)
    assert again.get_run(run_id)["status"] == "complete"
    assert again.artifact(run_id, "posterior") == {"particles": [1, 2, 3]}
    assert len(again.outcomes(run_id)) == len(result.outcomes())


@pytest.mark.slow
def test_run_waits_for_a_lock_then_spills_and_runs_ingest_is_idempotent(tmp_path: Path) -> None:
    """`defection run` with a Python shell holding the database when the simulation ends: it retries, says what it
    waits for, spills the results, exits 3 with the ingest command; `runs ingest` twice stores the rows once."""
    db = tmp_path / "defection.duckdb"
    # the longest run allowed at the smallest size (about 1.5 s quiet), and the lock's holder started before it, so
    # that the lock is taken while the run simulates even under load (it once finished first under 8 busy processes)
    args = ["run", "--agents", "300", "--days", "3650", "--replicates", "1", "--no-posterior", "--db", str(db)]
    with _lock_holder(db) as lock:
        proc = subprocess.Popen(
            [sys.executable, "-m", "defection", *args, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DEFECTION_DB_LOCK_WAIT": LOCK_WAIT, "COLUMNS": "200"},
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + GENEROUS
            while not (db.exists() and _running(db)):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the run was never recorded"
                time.sleep(0.2)
            lock()
            assert proc.poll() is None, "the run ended before the lock was taken: make it longer"
            stdout, stderr = proc.communicate(timeout=GENEROUS)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stdout + stderr, stderr
    assert "locked by another process" in stderr and "retrying in" in stderr
    spills = list((tmp_path / "defection.duckdb.spill").iterdir())
    assert len(spills) == 1
    spill = spills[0]
    assert f"defection runs ingest {spill}" in " ".join(stderr.split())
    run_id = spill.name
    listed = json.loads(_run("runs", "list", "--db", str(db), "--json").stdout)
    assert [r["status"] for r in listed if r["run_id"] == run_id] == ["interrupted"]  # its process is gone
    assert str(spill) in ResultsDB(db).get_run(run_id)["error"]  # … and it points at the spill

    first = _run("runs", "ingest", str(spill), "--db", str(db))
    assert first.returncode == 0 and f"stored run {run_id}" in first.stdout, first.stderr
    second = _run("runs", "ingest", str(spill), "--db", str(db))
    assert second.returncode == 0 and "already complete" in second.stdout, second.stderr
    store = ResultsDB(db)
    assert store.get_run(run_id)["status"] == "complete"
    assert len(store.daily(run_id)) == 3650  # days × replicates, once


def _running(db: Path) -> bool:
    try:
        runs = ResultsDB(db).list_runs()
    except Exception:  # the writer holds the file for a moment
        return False
    return bool(len(runs)) and runs.iloc[0]["status"] == "running"


# ----------------------------------------------------------------------------- read-only file or folder


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make a file or folder unwritable: chmod for a normal user; root ignores modes, so the immutable flag."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
            pytest.skip("running as root without chattr: cannot make a path read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_database_can_be_browsed_and_refuses_writes_clearly(
    tmp_path: Path, result: RunResult, what: str
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.duckdb"
    first, second = _stored(db, result)
    stale = ResultsDB(db).begin_run(RunMeta.from_scenario(result.scenario))
    with ResultsDB(db)._connect() as con:  # a run whose process died: reconciled only where writable
        con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", [_dead_pid(), stale])
    before = db.read_bytes()
    with _read_only(folder if what == "folder" else db):
        listed = _run("runs", "list", "--db", str(db), "--json")
        assert listed.returncode == 0, listed.stderr
        statuses = {r["run_id"]: r["status"] for r in json.loads(listed.stdout)}
        assert statuses == {first: "complete", second: "complete", stale: "interrupted"}
        shown = _run("runs", "show", first, "--db", str(db), "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "complete", shown.stderr
        report = _run("report", first, "--db", str(db), "--output", str(tmp_path / "report.html"))
        assert report.returncode == 0, report.stderr
        compare = _run("compare", first, second, "--db", str(db), "--output", str(tmp_path / "compare.html"))
        assert compare.returncode == 0, compare.stderr
        writer = _run("run", "--agents", "300", "--days", "3", "--no-posterior", "--db", str(db))
        assert writer.returncode == 2, writer.stderr
        _no_traceback(writer)
        message = " ".join(writer.stderr.split())
        assert f"results database {db} is read-only" in message and "--db" in message
        assert db.read_bytes() == before  # nothing was written, not even the reconciled row
    assert (tmp_path / "report.html").stat().st_size > 0 and (tmp_path / "compare.html").stat().st_size > 0
    assert ResultsDB(db).get_run(stale)["status"] == "interrupted"  # writable again: reconciled on disk


# ----------------------------------------------------------------------------- truncated or corrupted file


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "truncated":  # the catalog opens; the runs' blocks are missing
        db.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "truncated-header":
        db.write_bytes(bytes(data[:100]))
    else:  # corrupted blocks: garble 400 bytes inside every 256 KiB block after the three 4 KiB headers and the
        # first block, so that the file opens and the damage is found when the runs are read
        assert len(data) > 3 * 4096 + 2 * 262_144, "too small a database to corrupt a block after the first"
        for start in range(3 * 4096 + 262_144, len(data) - 1000, 262_144):
            data[start + 500 : start + 900] = bytes(range(256)) + bytes(144)
        db.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "truncated-header", "corrupted"])
def test_damaged_database_is_a_clear_error_without_traceback(tmp_path: Path, result: RunResult, how: str) -> None:
    db = tmp_path / "runs.duckdb"
    run_id = _stored(db, result, runs=1)[0]
    _damage(db, how)
    commands = [
        ("runs", "list"),
        ("runs", "show", run_id),
        ("report", run_id, "--output", str(tmp_path / "r.html")),
        ("run", "--agents", "300", "--days", "3", "--no-posterior"),
    ]
    for command in commands:
        r = _run(*command, "--db", str(db))
        assert r.returncode != 0, (command, r.stdout)
        _no_traceback(r)
        message = " ".join(r.stderr.split())
        assert f"results database {db} is damaged or truncated" in message, (command, r.stderr)
        assert f"mv {db} {db}.damaged" in message and "backup" in message


@pytest.mark.slow
def test_serve_on_a_damaged_database_refuses_to_start_with_a_clear_message(tmp_path: Path, result: RunResult) -> None:
    db = tmp_path / "runs.duckdb"
    _stored(db, result, runs=1)
    _damage(db, "corrupted")
    r = _run("serve", "--db", str(db), "--port", "0", "--no-posterior")
    assert r.returncode == 2, r.stderr
    _no_traceback(r)
    assert f"results database {db} is damaged or truncated" in " ".join(r.stderr.split())


# ----------------------------------------------------------------------------- daily rows streamed to the store


def test_daily_rows_are_streamed_per_replicate_and_stored_at_completion(tmp_path: Path) -> None:
    """`simulate(on_daily=...)` hands each replicate's rows over as soon as the replicate is done (not held until
    the end); staged by the store, they reach the database only with the run's completion, bit for bit the rows
    an unstreamed run holds."""
    days, replicates = 5, 3
    done = 0
    seen: list[tuple[int, int, int]] = []  # (replicate, rows, days simulated when the rows arrived)

    def progress(d: int, total: int) -> None:
        nonlocal done
        done = d

    db = ResultsDB(tmp_path / "runs.duckdb")
    plain = defection.simulate(replicates=replicates, days=days, agents=300, seed=4)
    run_id = db.begin_run(RunMeta.from_scenario(plain.scenario))
    with db.stage_daily(run_id) as staged:

        def sink(rows: pd.DataFrame) -> None:
            seen.append((int(rows["replicate"].iloc[0]), len(rows), done))
            staged(rows)

        streamed = defection.simulate(
            replicates=replicates, days=days, agents=300, seed=4, progress=progress, on_daily=sink
        )
        assert streamed.daily.empty  # nothing held in memory
        assert staged.folder.is_dir() and db.daily(run_id).empty  # staged beside, not yet in the database
        db.complete_run(run_id, streamed, staged=staged)
    assert seen == [(r, days, (r + 1) * days) for r in range(replicates)]
    assert not staged.folder.exists() and not staged.folder.parent.exists()  # no empty spill folder left either
    stored = db.daily(run_id)
    assert stored.equals(plain.daily[stored.columns].astype(stored.dtypes.to_dict()))
    assert streamed.per_replicate.equals(plain.per_replicate)

    # a run that fails after streaming leaves no daily rows in the database and no staged files
    failed = db.begin_run(RunMeta.from_scenario(plain.scenario))
    with db.stage_daily(failed) as staged:
        defection.simulate(replicates=1, days=days, agents=300, seed=4, on_daily=staged)
        assert staged.files
    db.mark_run(failed, "failed", "test")
    assert db.daily(failed).empty and not staged.folder.exists()
