"""`defection sweep`: serial, worker-pool and Dask runs agree exactly (local processes, a local cluster and a real
scheduler with two workers),
failed points are recorded and do not stop a sweep, a SIGKILLed sweep resumes to the same table, and invalid
specs or folders give clean errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from defection.cli.app import app
from defection.explore.sweep import SweepFolder, load_plan
from defection.explore.sweep import sweep as sweep_api
from defection.store import ResultsDB

from .conftest import cli, cli_in_process
from .processes import HANG_GUARD, REQUEST, STOP, started

# 40 points of 990 agents × 20 days × 2 replicates; half the points ask for a rule that is invalid with zero growth
SPEC = """\
[experiment]
name = "tiny-sweep"
sampler = "{sampler}"
samples = {samples}
replicates = 2
seed = 7
days = 20
agents = 990

[[uncertainties]]
path = "regime.monitors_per_soldier"
low = 0.01
high = 0.1

[[levers]]
path = "offer.cash_usd"
low = 10_000.0
high = 10_000_000.0
log = true

[[levers]]
path = "offer.schedule.rule"
values = ["flat", "ratchet_topup"]

[[outcomes]]
name = "defected_share"
direction = "max"

[[outcomes]]
name = "caught_share"
"""
PLANNED = 40


def write_spec(
    folder: Path, name: str = "spec.toml", sampler: str = "lhs", samples: int = PLANNED, extra: str = ""
) -> Path:
    path = folder / name
    path.write_text(SPEC.format(sampler=sampler, samples=samples) + extra, encoding="utf-8")
    return path


def sweep_json(*args: str | Path) -> dict:
    r = cli("sweep", *map(str, args), "--json")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, "stdout must hold exactly one JSON object"
    return json.loads(lines[0])


def table(db: Path, run_id: str) -> pd.DataFrame:
    """The stored experiments without their timings (the only thing that may differ between equal runs)."""
    return ResultsDB(db).experiments(run_id).drop(columns="wall_seconds")


def parts(payload: dict) -> pd.DataFrame:
    """The sweep's Parquet parts, in experiment order, without their timings."""
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{payload['parts']}') ORDER BY experiment").df()
    return rows.drop(columns="wall_seconds").reset_index(drop=True)


def test_a_sweep_reports_the_agent_days_it_simulated_and_its_own_wall_time(reference: dict) -> None:
    payload = reference["payload"]
    assert payload["ran"] == PLANNED and 0 < payload["ok"] < PLANNED
    # experiments simulated × replicates × days × agents: a point refused as invalid simulates nothing
    assert payload["agent_days"] == payload["ok"] * 2 * 20 * 990
    stored = ResultsDB(reference["db"]).list_runs().set_index("run_id").loc[payload["run_id"]]
    # the command's wall time (imports, planning, storing included), not the experiments' alone
    assert payload["compute_seconds"] <= stored["wall_seconds"] <= payload["wall_seconds"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sweep run serially in the driver (--workers 0): what every other way of running it must equal."""
    root = tmp_path_factory.mktemp("sweep")
    spec = write_spec(root)
    db = root / "ref.duckdb"
    payload = sweep_json(spec, "--workers", "0", "--out", root / "ref", "--db", db)
    return {"spec": spec, "db": db, "payload": payload, "table": table(db, payload["run_id"]), "parts": parts(payload)}


def test_serial_sweep_records_every_experiment_and_failures(reference: dict) -> None:
    p, t = reference["payload"], reference["table"]
    assert p["planned"] == p["done"] == PLANNED and p["ok"] + p["failed"] == PLANNED
    assert p["ok"] > 0 and p["failed"] > 0 and p["resumed"] == 0 and p["ran"] == PLANNED
    assert list(t["experiment"]) == list(range(PLANNED))
    ratchet = t["offer.schedule.rule"] == "ratchet_topup"
    # an invalid combination is a failed point with its error and parameters, not a failed sweep
    assert (t.loc[ratchet, "status"] == "failed").all() and (t.loc[~ratchet, "status"] == "ok").all()
    assert t.loc[ratchet, "error"].str.contains("growth_per_step").all()
    assert t.loc[ratchet, "defected_share_median"].isna().all()
    assert t.loc[~ratchet, ["defected_share_median", "caught_share_p95"]].notna().all().all()
    failed = p["failures"][0]
    assert failed["params"]["offer.schedule.rule"] == "ratchet_topup" and "growth_per_step" in failed["error"]
    assert set(failed["params"]) == {"regime.monitors_per_soldier", "offer.cash_usd", "offer.schedule.rule"}
    # the parameters are the design's, and the Parquet parts hold the same rows as the database
    design = pd.read_parquet(Path(p["design"]))
    pd.testing.assert_series_equal(t["offer.cash_usd"], design["offer.cash_usd"], check_exact=True)
    parts = duckdb.sql(f"SELECT count(*), count(DISTINCT experiment) FROM read_parquet('{p['parts']}')").fetchall()[0]
    assert parts == (PLANNED, PLANNED)
    db = ResultsDB(reference["db"])
    run = db.get_run(p["run_id"])
    assert run["kind"] == "sweep" and run["status"] == "complete"
    assert db.artifact(p["run_id"], "counts") == {
        "planned": PLANNED,
        "done": PLANNED,
        "ok": p["ok"],
        "failed": p["failed"],
    }
    assert db.artifact(p["run_id"], "spec")["experiment"]["name"] == "tiny-sweep"
    assert len(db.artifact(p["run_id"], "design")["data"]) == PLANNED
    assert set(db.outcomes(p["run_id"])["outcome"]) == {"sweep:defected_share", "sweep:caught_share"}
    assert p["summary"]["defected_share"]["p05"] <= p["summary"]["defected_share"]["p95"]


def test_worker_pool_equals_serial(reference: dict, tmp_path: Path) -> None:
    """A small sweep on 2 workers runs on the worker pool (`--executor auto`), with the same table and parts."""
    db = tmp_path / "pool.duckdb"
    p = sweep_json(reference["spec"], "--workers", "2", "--out", tmp_path / "pool", "--db", db, "--flush-every", "7")
    assert p["executor"] == "worker pool (2 single-threaded processes)"
    assert (p["planned"], p["ok"], p["failed"]) == (PLANNED, reference["payload"]["ok"], reference["payload"]["failed"])
    pd.testing.assert_frame_equal(table(db, p["run_id"]), reference["table"], check_exact=True)
    pd.testing.assert_frame_equal(parts(p), reference["parts"], check_exact=True)


def test_executor_for_chooses_the_pool_for_small_sweeps() -> None:
    from defection.explore.pool import DASK_MIN_AGENT_DAYS
    from defection.explore.sweep import (
        DaskExecutor,
        PoolExecutor,
        SerialExecutor,
        executor_for,
    )

    assert isinstance(executor_for(2, None, agent_days=DASK_MIN_AGENT_DAYS - 1), PoolExecutor)
    assert isinstance(executor_for(2, None, agent_days=DASK_MIN_AGENT_DAYS), DaskExecutor)
    assert isinstance(executor_for(2, None, kind="dask"), DaskExecutor)
    assert isinstance(executor_for(2, None, kind="pool", agent_days=1e12), PoolExecutor)
    assert isinstance(executor_for(0, None, kind="pool"), SerialExecutor)
    assert isinstance(executor_for(2, "tcp://127.0.0.1:1", kind="auto"), DaskExecutor)
    with pytest.raises(ValueError, match="executor"):
        executor_for(2, None, kind="threads")


def test_the_command_decides_from_the_spec_alone_whether_to_start_the_pool_first() -> None:
    """`defection sweep` starts the worker pool before it loads the sweep machinery when, and only when, the
    executor it will choose is the pool (explore/pool.py)."""
    from defection.explore.pool import DASK_MIN_AGENT_DAYS, runs_on_pool
    from defection.explore.spec import design_agent_days, design_size, spec_from_dict

    assert runs_on_pool(2, None, "auto", DASK_MIN_AGENT_DAYS - 1) and not runs_on_pool(
        2, None, "auto", DASK_MIN_AGENT_DAYS
    )
    assert runs_on_pool(2, None, "pool", 1e15) and not runs_on_pool(2, None, "dask", 1.0)
    assert not runs_on_pool(0, None, "pool", 1.0) and not runs_on_pool(2, "tcp://h:1", "auto", 1.0)
    spec = spec_from_dict(
        {
            "experiment": {"name": "s", "sampler": "sobol", "samples": 8, "replicates": 3, "days": 10, "agents": 990},
            "uncertainties": [{"path": "regime.monitors_per_soldier", "low": 0.0, "high": 0.1}],
            "levers": [{"path": "offer.cash_usd", "low": 1e4, "high": 1e6}],
        }
    )
    assert design_size(spec) == 8 * (2 + 2)  # Saltelli without second order: N (d + 2)
    assert design_agent_days(spec) == 32 * 3 * 990 * 10


@pytest.mark.slow
def test_local_cluster_equals_serial(reference: dict, tmp_path: Path) -> None:
    db = tmp_path / "local.duckdb"
    p = sweep_json(
        reference["spec"],
        "--workers",
        "2",
        "--executor",
        "dask",
        "--out",
        tmp_path / "local",
        "--db",
        db,
        "--flush-every",
        "3",
        "--batch",
        "3",
    )
    assert "LocalCluster (2" in p["executor"]
    assert (p["planned"], p["ok"], p["failed"]) == (PLANNED, reference["payload"]["ok"], reference["payload"]["failed"])
    pd.testing.assert_frame_equal(table(db, p["run_id"]), reference["table"], check_exact=True)
    pd.testing.assert_frame_equal(parts(p), reference["parts"], check_exact=True)


@pytest.fixture
def dask_cluster(tmp_path: Path):
    """A real `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1."""
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    scheduler_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    # each process in a group of its own, killed with everything it started when the fixture ends, whatever happened
    with contextlib.ExitStack() as stack:
        log = stack.enter_context((tmp_path / "dask.log").open("w"))

        def start(*args: str) -> None:
            procs.append(
                stack.enter_context(started([dask, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path))
            )

        start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)
        )
        deadline = time.monotonic() + HANG_GUARD
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, "scheduler did not start"
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for k in range(2):
            start(
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{k}",
                "--local-directory",
                str(tmp_path / f"w{k}"),
            )
        from dask.distributed import Client

        with Client(address, timeout=f"{REQUEST:.0f}s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=HANG_GUARD)
        yield address


@pytest.mark.slow
def test_real_scheduler_equals_serial(reference: dict, dask_cluster: str, tmp_path: Path) -> None:
    db = tmp_path / "remote.duckdb"
    p = sweep_json(reference["spec"], "--scheduler", dask_cluster, "--out", tmp_path / "remote", "--db", db)
    assert dask_cluster in p["executor"] and "2 worker threads" in p["executor"]
    pd.testing.assert_frame_equal(table(db, p["run_id"]), reference["table"], check_exact=True)


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(reference: dict, tmp_path: Path) -> None:
    db, out = tmp_path / "resume.duckdb", tmp_path / "resume"
    cmd = [
        sys.executable,
        "-m",
        "defection",
        "sweep",
        str(reference["spec"]),
        "--workers",
        "2",
        "--out",
        str(out),
        "--db",
        str(db),
        "--flush-every",
        "1",
        "--json",
    ]
    # the process group (the driver's local workers) is killed on leaving the block, whatever happened
    with (
        (tmp_path / "killed.err").open("w") as errlog,
        started(cmd, stdout=subprocess.DEVNULL, stderr=errlog) as proc,
    ):
        deadline = time.monotonic() + HANG_GUARD
        while len(SweepFolder(out).parts()) < 3:
            assert proc.poll() is None, (tmp_path / "killed.err").read_text()
            assert time.monotonic() < deadline, "no parts were written"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its local workers notice and exit
        proc.wait(timeout=STOP)
    written = int(SweepFolder(out).done_mask(PLANNED).sum())
    assert 3 <= written < PLANNED, "the driver must be killed part-way"

    listed = cli_in_process("runs", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    [killed] = json.loads(listed.stdout)
    assert killed["status"] == "interrupted"

    p = sweep_json(reference["spec"], "--workers", "0", "--out", out, "--db", db, "--resume")
    assert p["resumed"] == written and p["resumed"] + p["ran"] == PLANNED and p["done"] == PLANNED
    final = table(db, p["run_id"])
    assert final["experiment"].is_unique and len(final) == PLANNED
    pd.testing.assert_frame_equal(final, reference["table"], check_exact=True)
    statuses = {
        r["run_id"]: r["status"] for r in json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
    }
    assert statuses == {killed["run_id"]: "interrupted", p["run_id"]: "complete"}

    # resuming the finished folder runs nothing and stores nothing: it names the run that holds it
    again = sweep_json(reference["spec"], "--workers", "0", "--out", out, "--db", db, "--resume")
    assert again["already_stored"] and again["run_id"] == p["run_id"] and again["ran"] == 0
    assert len(json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)) == 2


def _runs_and_rows(db: Path) -> tuple[list[str], int]:
    """The run ids in the database and its number of experiment rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
        [(rows,)] = con.execute("SELECT count(*) FROM experiments").fetchall()
    return runs, rows


@pytest.mark.slow
def test_resume_of_a_finished_sweep_changes_nothing(tmp_path: Path) -> None:
    """Issue 13, item 6: `--resume` of a finished, stored sweep said nothing and stored it all a second time."""
    spec, db, out = write_spec(tmp_path, samples=4), tmp_path / "r.duckdb", tmp_path / "out"
    plan = load_plan(spec)  # the Python API draws from no posterior unless given one: so does the CLI here
    sweep_api(plan, out, flush_every=1)  # four parts, one experiment each, never stored
    for part in SweepFolder(out).parts()[2:]:
        part.unlink()  # a half-finished sweep: two experiments left to run

    half = sweep_json(spec, "--workers", "0", "--out", out, "--db", db, "--resume", "--no-posterior")
    assert (half["resumed"], half["ran"], half["done"]) == (2, 2, 4)
    assert _runs_and_rows(db) == ([half["run_id"]], 4)
    assert list(table(db, half["run_id"])["experiment"]) == [0, 1, 2, 3]

    before = db.read_bytes()
    again = sweep_json(spec, "--workers", "0", "--out", out, "--db", db, "--resume", "--no-posterior")
    assert _runs_and_rows(db) == ([half["run_id"]], 4), "a second run or duplicate experiment rows were stored"
    assert again["already_stored"] and again["run_id"] == half["run_id"] and not half["already_stored"]
    assert (again["planned"], again["done"], again["ran"]) == (4, 4, 0)

    (out / "stored.json").unlink()  # a folder finished by an older version: the run is found by its folder
    r = cli("sweep", str(spec), "--workers", "0", "--out", str(out), "--db", str(db), "--resume", "--no-posterior")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "is complete" in said and half["run_id"] in said and "nothing was run or stored" in said
    assert _runs_and_rows(db) == ([half["run_id"]], 4)
    assert db.read_bytes() == before, "the database must not change"

    # a finished folder whose driver died before storing it (not in this database): resuming stores it, once
    other = tmp_path / "other.duckdb"
    first = sweep_json(spec, "--workers", "0", "--out", out, "--db", other, "--resume", "--no-posterior")
    assert (first["resumed"], first["ran"], first["already_stored"]) == (4, 0, False)
    assert _runs_and_rows(other) == ([first["run_id"]], 4)
    second = sweep_json(spec, "--workers", "0", "--out", out, "--db", other, "--resume", "--no-posterior")
    assert second["already_stored"] and second["run_id"] == first["run_id"]
    assert _runs_and_rows(other) == ([first["run_id"]], 4)


BAD_SPECS = [
    (
        "unknown parameter",
        ('path = "regime.monitors_per_soldier"', 'path = "regime.monitors_per_soldeir"'),
        ["uncertainties[0]", "regime.monitors_per_soldeir", "not a scenario parameter"],
    ),
    (
        "low above high",
        ("low = 10_000.0\nhigh = 10_000_000.0", "low = 10_000_000.0\nhigh = 10_000.0"),
        ["levers[0]", "must be below high"],
    ),
    (
        "lever not a parameter",
        ('path = "offer.schedule.rule"', 'path = "offer.schedule.flavour"'),
        ["levers[1]", "offer.schedule.flavour", "not a scenario parameter"],
    ),
    (
        "categorical with sobol",
        ('sampler = "lhs"', 'sampler = "sobol"'),
        ["sobol", "categorical", "offer.schedule.rule"],
    ),
    (
        "value not allowed",
        ('values = ["flat", "ratchet_topup"]', 'values = ["flat", "ratchet-top-up"]'),
        ["levers[1].values[1]", "ratchet-top-up", "offer.schedule.rule"],
    ),
    ("unknown outcome", ('name = "caught_share"', 'name = "caught_fraction"'), ["outcomes[1]", "caught_fraction"]),
    ("agents below one company", ("agents = 990", "agents = 50"), ["experiment", "smaller than one company"]),
    ("design too large", ('sampler = "lhs"', 'sampler = "factorial"'), ["experiment.samples", "at most"]),
]


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sweep", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(("case", "edit", "expected"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_invalid_spec_is_a_clean_error(case: str, edit: tuple[str, str], expected: list[str], tmp_path: Path) -> None:
    text = SPEC.format(sampler="lhs", samples=40000 if case == "design too large" else 8)
    assert edit[0] in text
    spec = tmp_path / "bad.toml"
    spec.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    code, output = _invoke(spec, "--workers", "0", "--out", tmp_path / "o", "--db", tmp_path / "x.duckdb")
    assert code == 2, output
    for fragment in expected:
        assert fragment in output, (fragment, output)
    assert not (tmp_path / "x.duckdb").exists(), "an invalid spec must not record a run"


def test_invalid_spec_subprocess_exit_code(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.format(sampler="lhs", samples=8).replace("high = 0.1", "high = 0.001"), encoding="utf-8")
    r = cli("sweep", str(spec), "--workers", "0", "--db", str(tmp_path / "x.duckdb"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "uncertainties[0]" in r.stderr and "must be below high" in r.stderr


def test_folder_errors(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, samples=8)
    db = tmp_path / "x.duckdb"
    code, output = _invoke(spec, "--out", tmp_path / "nothing", "--resume", "--db", db)
    assert code == 2 and "no sweep to resume" in output
    code, output = _invoke(spec, "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786", "--db", db)
    assert code == 2 and "--scheduler" in output
    code, output = _invoke(tmp_path / "missing.toml", "--db", db)
    assert code == 2 and "file not found" in output
    # a folder planned from this spec (nothing run yet): a new sweep may not reuse it, a changed spec may not resume
    folder = SweepFolder(tmp_path / "planned")
    with folder.lock():
        folder.prepare(load_plan(spec), resume=False)
    code, output = _invoke(spec, "--workers", "0", "--out", folder.path, "--db", db)
    assert code == 2 and "pass --resume" in output
    changed = write_spec(tmp_path, "changed.toml", samples=9)
    code, output = _invoke(changed, "--workers", "0", "--out", folder.path, "--resume", "--db", db)
    assert code == 2 and "the spec changed" in output and load_plan(spec).spec_hash in output
    assert not db.exists()


def test_old_database_gains_the_sweep_tables(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    ResultsDB(db)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE experiments")
        con.execute("DROP TABLE experiment_outcomes")
    ResultsDB(db)
    with duckdb.connect(str(db)) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"experiments", "experiment_outcomes", "runs"} <= tables


def flaky_task(base: str, changes: dict, run_settings: dict, outcomes: list[str]) -> dict:
    """A task that kills its worker process the first time it sees a point with `die`, or raises on `raise`."""
    marker = Path(changes["marker"])
    if changes.get("die") and not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    if changes.get("raise"):
        raise RuntimeError("this point always raises")
    return {"status": "ok", "error": None, "value": changes["k"]}


@pytest.mark.slow
def test_dask_retries_a_dead_worker_and_records_a_raising_task(tmp_path: Path) -> None:
    from defection.explore.sweep import DaskExecutor

    plan = load_plan(write_spec(tmp_path, samples=4))
    tasks = [(k, {"k": k, "marker": str(tmp_path / f"died-{k}"), "die": k == 1, "raise": k == 2}) for k in range(4)]
    with DaskExecutor(workers=1, task=flaky_task) as ex:
        results = {e: r for e, _, r in ex.run(plan, tasks)}
    assert (tmp_path / "died-1").exists(), "the worker should have died once"
    assert results[1] == {"status": "ok", "error": None, "value": 1}
    assert results[2]["status"] == "failed" and "this point always raises" in results[2]["error"]
    assert results[0]["value"] == 0 and results[3]["value"] == 3


@pytest.mark.parametrize("d, n, seed", [(1, 1, 0), (2, 7, 1), (3, 64, 12345), (9, 1000, 2**31 - 1), (5, 2, 2**62)])
def test_the_latin_hypercube_is_scipys_point_for_point(d: int, n: int, seed: int) -> None:
    """`rng.latin_hypercube` replaces SciPy's LHS (to keep scipy.stats out of a command's start-up): the same points,
    bit for bit, so that sweeps, optimisations' worlds and the regime's best response keep their designs."""
    from scipy.stats import qmc

    from defection.model.rng import latin_hypercube

    assert np.array_equal(latin_hypercube(d, n, seed), qmc.LatinHypercube(d=d, seed=seed).random(n))
