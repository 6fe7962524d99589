"""Explorations draw from the calibrated model: `sweep`, `sensitivity`, `optimize` and `discover` simulate each
replicate with a particle of the posterior (the shipped one unless told otherwise), except for the calibrated
parameters the spec's own factors set, and record which posterior produced their numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from defection.engine import simulate
from defection.explore.design import base_json, exploration_posterior, settings
from defection.explore.points import run_point
from defection.explore.spec import spec_from_dict
from defection.scenario import default_scenario, with_changes, with_posterior
from defection.scenario.posterior import Posterior, shipped_posterior_path
from defection.store import ResultsDB

from .conftest import cli, cli_in_process
from .test_search import _json, _write

MORAL = "preferences.moral_cost_median_usd"
SPEC = {
    "experiment": {"name": "t", "samples": 2, "replicates": 3, "seed": 5, "days": 20, "agents": 990},
    "uncertainties": [{"path": MORAL, "low": 2e4, "high": 2e6, "log": True}],
    "levers": [{"path": "offer.cash_usd", "low": 1e6, "high": 1e8, "log": True}],
}


def _shipped() -> Posterior:
    return Posterior.load(shipped_posterior_path())


def test_the_design_sets_its_own_calibrated_parameters_and_the_posterior_the_rest() -> None:
    post = _shipped()
    assert MORAL in post.parameters
    chosen = exploration_posterior(spec_from_dict(SPEC), post, "the shipped posterior")
    assert chosen.set_by_design == (MORAL,)
    assert chosen.drawn is not None and MORAL not in chosen.drawn.parameters
    assert set(chosen.drawn.parameters) == set(post.parameters) - {MORAL}
    assert chosen.record() == {"hash": post.content_hash(), "path": post.source, "set_by_the_design": [MORAL]}
    assert "set by the design instead: " + MORAL in chosen.describe()
    run = settings(spec_from_dict(SPEC), chosen)
    assert run["posterior"].parameters == chosen.drawn.parameters and run["replicates"] == 3
    none = exploration_posterior(spec_from_dict(SPEC), None, "scenario values (--no-posterior)")
    assert "posterior" not in settings(spec_from_dict(SPEC), none) and none.record() is None
    assert none.describe() == "calibrated parameters: none; scenario values (--no-posterior)"


def test_a_point_with_the_posterior_is_the_engine_run_with_its_particles() -> None:
    spec = spec_from_dict(SPEC)
    chosen = exploration_posterior(spec, _shipped(), "the shipped posterior")
    changes = {MORAL: 300_000.0, "offer.cash_usd": 5e6}
    # a base scenario that names the posterior file: the task's base leaves it out and the settings carry it
    base = with_posterior(default_scenario(), shipped_posterior_path())
    assert json.loads(base_json(base))["simulation"]["posterior"] == ""
    point = run_point(base_json(base), changes, settings(spec, chosen), ["defected_share", "lost_share"])
    assert point["status"] == "ok", point.get("error")
    direct = simulate(
        with_changes(default_scenario(), changes), posterior=chosen.drawn, replicates=3, days=20, seed=5, agents=990
    )
    for name in ("defected_share", "lost_share"):
        v = direct.per_replicate[name].to_numpy(dtype=float)
        assert point[f"{name}_median"] == float(np.median(v))
        assert point[f"{name}_p95"] == float(np.quantile(v, 0.95))
    plain = run_point(base_json(default_scenario()), changes, settings(spec), ["lost_share"])
    assert plain["lost_share_median"] != point["lost_share_median"]  # the particles move the calibrated route rates


def test_optimize_and_sweep_record_the_posterior_that_produced_their_numbers(tmp_path: Path) -> None:
    spec, db = _write(tmp_path, "tiny-posterior", samples=2, replicates=3), tmp_path / "r.duckdb"
    post = _shipped()
    opt_args = ("optimize", str(spec), "--target", "0.0005", "--probability", "0.5", "--trials", "2", "--batch", "2")
    drawn = _json(cli(*opt_args, "--workers", "0", "--db", str(db), "--json"))
    assert drawn["posterior"] == {"hash": post.content_hash(), "path": post.source, "set_by_the_design": [MORAL]}
    assert drawn["parameters"].startswith("the shipped posterior")
    plain = _json(cli(*opt_args, "--workers", "0", "--db", str(db), "--json", "--no-posterior"))
    assert plain["posterior"] is None and plain["parameters"] == "scenario values (--no-posterior)"
    assert plain["study"] != drawn["study"]  # a journal never mixes trials scored under different parameters
    swept = _json(cli("sweep", str(spec), "--workers", "0", "--out", str(tmp_path / "sw"), "--db", str(db), "--json"))
    assert swept["posterior"] == drawn["posterior"]
    store = ResultsDB(db)
    for payload in (drawn, swept):
        assert store.get_run(payload["run_id"])["posterior_hash"] == post.content_hash()
    assert store.get_run(plain["run_id"])["posterior_hash"] is None  # drawn from no posterior
    text = cli("sweep", str(spec), "--workers", "0", "--out", str(tmp_path / "sw2"), "--db", str(db), "--no-posterior")
    assert text.returncode == 0 and "calibrated parameters: none; scenario values (--no-posterior)" in text.stdout


def test_both_posterior_flags_are_a_clean_error(tmp_path: Path) -> None:
    spec = _write(tmp_path, "tiny-posterior", samples=2, replicates=3)
    for command in ("sweep", "optimize", "sensitivity", "discover"):
        extra = ("--outcome", "defected_share", "--threshold", "0.1") if command == "discover" else ()
        r = cli_in_process(command, str(spec), *extra, "--posterior", "x.json", "--no-posterior")
        assert r.returncode == 2, (command, r.stdout)
        assert "--posterior and --no-posterior contradict each other" in r.stdout + r.stderr
