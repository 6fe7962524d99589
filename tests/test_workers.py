"""Replicates side by side in worker processes (defection.workers, issue 14): the same numbers as one process, the
threading policy, and no worker outliving its command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from defection.claims import run_claims
from defection.engine import simulate
from defection.scenario import default_scenario, with_changes
from defection.scenario.posterior import Posterior, shipped_posterior_path
from defection.workers import MAX_AGENTS, MIN_AGENT_DAYS, auto_workers, prefer_passive_threads, replicate_workers
from tests.conftest import ROOT, cli, wait_for_running
from tests.processes import REQUEST, communicate, run, started

pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def pool():  # type: ignore[no-untyped-def]
    with replicate_workers(2) as workers:
        yield workers


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_workers_give_the_same_numbers_as_one_process(pool) -> None:  # type: ignore[no-untyped-def]
    """Every daily value and outcome of every replicate, bit for bit, with and without a posterior (each replicate
    its own particle), the adaptive regime and programme included."""
    sc = with_changes(default_scenario(), {"simulation.days": 40, "simulation.agents": 1980})
    posterior = Posterior.load(shipped_posterior_path())
    for post in (None, posterior):
        alone = simulate(sc, replicates=5, posterior=post)
        side_by_side = simulate(sc, replicates=5, posterior=post, workers=pool)
        _same(alone.daily, side_by_side.daily)
        _same(alone.per_replicate, side_by_side.per_replicate)
        assert side_by_side.agent_days == alone.agent_days


def test_workers_stream_rows_in_replicate_order(pool) -> None:  # type: ignore[no-untyped-def]
    """`on_daily` receives each replicate's rows once, in replicate order, as in one process."""
    sc = with_changes(default_scenario(), {"simulation.days": 20, "simulation.agents": 990})
    streamed: list[pd.DataFrame] = []
    done: list[tuple[int, int]] = []
    res = simulate(sc, replicates=6, workers=pool, on_daily=streamed.append, progress=lambda d, n: done.append((d, n)))
    assert res.daily.empty
    assert [int(f["replicate"].iloc[0]) for f in streamed] == list(range(6))
    _same(pd.concat(streamed, ignore_index=True), simulate(sc, replicates=6).daily)
    assert done[-1] == (6 * 20, 6 * 20) and [d for d, _ in done] == list(range(1, 6 * 20 + 1))


def test_claims_with_workers_match_one_process(pool) -> None:  # type: ignore[no-untyped-def]
    """Every claim's numbers and verdict are the same when each variant's replicates run side by side."""
    base = default_scenario()
    alone = run_claims(base, 2, 30, 990, 7).to_dict()
    side_by_side = run_claims(base, 2, 30, 990, 7, workers=pool).to_dict()
    for report in (alone, side_by_side):
        report.pop("simulate_seconds")
    assert side_by_side == alone


def test_how_many_workers_a_run_gets() -> None:
    """Worth it only for several replicates of a run large enough to pay for starting processes, and small enough
    per replicate that threads use the cores poorly; never more workers than CPUs or replicates."""
    days = MIN_AGENT_DAYS // (10_000 * 2)  # 10,000 agents × 2 replicates: just large enough
    assert auto_workers(10_000, days, 2, cpus=2) == 2
    assert auto_workers(10_000, days - 1, 2, cpus=2) == 1
    assert auto_workers(19_800, 365, 12, cpus=2) == 2
    assert auto_workers(19_800, 365, 12, cpus=16) == 12
    assert auto_workers(19_800, 365, 12, cpus=1) == 1
    assert auto_workers(19_800, 365, 1, cpus=2) == 1  # one replicate: its kernels use the threads
    assert auto_workers(990, 30, 4, cpus=2) == 1  # about 0.1 s of work: not worth two seconds of start-up
    assert auto_workers(MAX_AGENTS + 1, 365, 20, cpus=2) == 1  # threads do well, memory would double


def test_wait_policy_is_passive_unless_the_user_chose_one() -> None:
    env: dict[str, str] = {}
    assert prefer_passive_threads(env) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert prefer_passive_threads(env) == "ACTIVE" and env == {"OMP_WAIT_POLICY": "ACTIVE"}
    # importing the engine sets it before any kernel starts Numba's threads; a user's choice is kept
    code = "import os, defection.engine; print(os.environ['OMP_WAIT_POLICY'])"
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if given is not None:
            env["OMP_WAIT_POLICY"] = given
        r = run([sys.executable, "-c", code], env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected


@pytest.mark.slow
def test_run_with_workers_stores_the_same_run(tmp_path: Path) -> None:
    """`defection run --workers 2` and `--workers 1` print and store the same outcomes."""
    outcomes = []
    for workers in ("2", "1"):
        db = tmp_path / f"w{workers}.duckdb"
        r = cli("run", "-k", "1980", "-d", "30", "-r", "4", "--workers", workers, "--db", str(db), "--json")
        assert r.returncode == 0, r.stderr
        outcomes.append(json.loads(r.stdout)["outcomes"])
    assert outcomes[0] == outcomes[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["INT", "KILL"])
def test_no_worker_outlives_its_command(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C stops the workers with the command (no traceback from them); after a SIGKILL of the command its
    workers notice and exit within a second or so, not after their replicates (here each is minutes of one core's
    work; the guard allows REQUEST seconds, so that a slow machine alone never fails the test)."""
    db = tmp_path / "runs.duckdb"
    args = [sys.executable, "-m", "defection", "run", "-k", "198000", "-d", "3650", "-r", "8", "--workers", "2"]
    with started([*args, "--yes", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        wait_for_running(db, p)
        time.sleep(3.0)  # the workers have started their replicates
        os.kill(p.pid, sig)  # the command only, as a Ctrl-C or a kill of its pid would
        _, stderr = communicate(p)
        deadline = time.monotonic() + REQUEST
        while _group_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(p.pid), "a worker outlived its command"
    assert p.returncode != 0
    assert "Traceback" not in (stderr or "")
