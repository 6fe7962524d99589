"""Shared helpers: small scenarios built from the default with dotted-path overrides."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from defection.scenario import Scenario, default_scenario, scenario_from_dict
from defection.store import ResultsDB

from .processes import HANG_GUARD, run

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in pytest-xdist workers, whose environment says COLUMNS=80 and LINES=24 although
    # their output goes to no terminal. The commands honour COLUMNS (cli/console.py), so the tests of what a pipe
    # receives (every column of a table) would see an 80-column terminal instead. A user's pipe has no such
    # setting; the tests of COLUMNS itself pass it explicitly.
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

# A world where money matters: soldiers believe the offer, know of it, and face modest moral costs.
SALIENT: dict[str, Any] = dict(
    credibility__prior_alpha=18.0,
    credibility__prior_beta=2.0,
    preferences__moral_cost_median_usd=60_000.0,
    information__initial_aware_share=1.0,
    regime__response__mode="static",
    offer__cash_usd=200_000.0,
    programme__extraction_capacity_per_day=5000.0,
)


def scenario(**overrides: Any) -> Scenario:
    """The default scenario with overrides such as ``offer__cash_usd=0`` (``__`` separates levels)."""
    data = default_scenario().model_dump(mode="json")
    for key, value in overrides.items():
        node = data
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return scenario_from_dict(data, "<test>")


def no_offer(**overrides: Any) -> Scenario:
    """A world with no programme: no cash, no package, no channels, no threat."""
    base = {
        "offer__cash_usd": 0.0,
        "offer__asylum_probability": 0.0,
        "offer__trip_value_usd": 0.0,
        "offer__education": False,
        "offer__threat__prosecution_probability": 0.0,
        "information__channels": [],
        "information__peer_imitation": 0.0,
    }
    base.update(overrides)
    return scenario(**base)


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = HANG_GUARD
) -> subprocess.CompletedProcess[str]:
    """Run the `defection` command line in a subprocess (in a process group of its own, killed whole if the
    generous hang guard expires or the test is interrupted: see tests/processes.py)."""
    full_env = {**os.environ, **(env or {})}
    return run([sys.executable, "-m", "defection", *args], cwd=cwd, env=full_env, timeout=timeout)


def cli_in_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `defection` command line in this process (Typer's CliRunner), for a command that refuses bad input
    or reads the store: what it prints and its exit code are the same as `cli`'s, without a new interpreter's start-up
    (1–3 s each on a 2-core machine). An exception other than the command's own exit fails the test here, where a
    process would have printed its traceback and exited with 1. Tests whose point is the real process (signals,
    locks, start-up imports, servers) use `cli`."""
    from typer.testing import CliRunner

    from defection.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"`defection {' '.join(args)}` raised {result.exception!r}") from result.exception
    return subprocess.CompletedProcess(["defection", *args], result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def wait_for_running(db: Path, proc: subprocess.Popen[str]) -> str:
    """The id of the run a subprocess has recorded as 'running' in `db` (a hang guard of HANG_GUARD seconds)."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists():
            try:
                runs = ResultsDB(db).list_runs()
            except Exception:  # the writer may hold the file for a moment
                runs = None
            if runs is not None and len(runs) and runs.iloc[0]["status"] == "running":
                time.sleep(1.0)  # let it get into the simulation
                return str(runs.iloc[0]["run_id"])
        time.sleep(0.2)
    raise AssertionError("run never started")


def plain(text: str) -> str:
    """A figure's title as it reads: tags (line breaks, <sup>) as spaces, runs of spaces as one."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def check_paired_baseline(store: ResultsDB, run_id: str, days: int) -> tuple[Any, Any, Any]:
    """A run stored with its paired no-offer baseline (seed 5, 2 replicates, as `run --paired-baseline` and a paired
    dashboard job store it) and its report's 'units combat-ineffective' figure drawing the paired effect beside the
    total; returns the run's daily rows, the baseline's and the figure for further checks."""
    from defection.claims import NO_OFFER, PAIRED_BASELINE
    from defection.report import report_figures
    from defection.report.series import stored_baseline

    stored = store.artifact(run_id, PAIRED_BASELINE)
    assert stored["seed"] == 5 and stored["replicates"] == 2 and stored["changes"] == NO_OFFER
    assert "no cash" in stored["definition"]
    daily, baseline = store.daily(run_id), stored_baseline(stored)
    assert baseline is not None and len(baseline) == len(daily) == 2 * days
    fig = report_figures(store, run_id)["units-ineffective"]
    title = plain(fig.layout.title.text)
    assert "paired effect" in title and "no cash" in title and "common random numbers" in title
    names = [t.name for t in fig.data]
    assert "no offer: median" in names and "offer − no offer (paired): median" in names
    return daily, baseline, fig


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked slow (a minute or more of CPU for the heaviest) run first. `make test`'s workers
    (pytest-xdist, --dist worksteal) share out what is left to run, but a test once started cannot be shared: one
    of two minutes started last would keep one worker busy alone at the end. The order within each group is kept."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
