"""The calibrated model shipped in the package (issue 11, part 3; docs/calibration.md, "The shipped posterior")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from defection.calibrate.cases import library_hash, load_cases
from defection.cli.console import choose_posterior
from defection.scenario import default_scenario
from defection.scenario.posterior import Posterior, effective_sample_size, shipped_posterior_path
from defection.scenario.ranges import CALIBRATED
from tests.conftest import cli

SHIPPED = shipped_posterior_path()


def test_the_package_ships_a_posterior_made_from_todays_case_library() -> None:
    """Fails when a case file changes (or one is added) without `make calibrate`: the shipped posterior must come
    from the library the package holds."""
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: run `make calibrate`"
    post = Posterior.load(SHIPPED)
    assert post.meta.get("cases_hash") == library_hash(load_cases()), (
        "the shipped posterior was calibrated on another case library; run `make calibrate` and commit "
        "src/defection/data/posterior/default.json"
    )
    assert post.meta.get("code_version"), "the shipped posterior must record the code that made it"
    assert set(u.path for u in CALIBRATED) <= set(post.parameters)
    # the effective sample size it states is that of its weights (docs/calibration.md says how thin it is)
    assert post.meta["effective_sample_size"] == pytest.approx(effective_sample_size(post.weights), rel=1e-9)


def test_run_uses_the_shipped_posterior_by_default_and_no_posterior_turns_it_off(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    args = ("run", "--agents", "4950", "--days", "3", "--replicates", "2", "--db", str(db), "--json")
    used = cli(*args)
    assert used.returncode == 0, used.stderr
    posterior = json.loads(used.stdout)["posterior"]
    assert posterior == {"hash": Posterior.load(SHIPPED).content_hash(), "path": str(SHIPPED.resolve())}
    plain = cli(*args, "--no-posterior")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["posterior"] is None
    shown = cli("runs", "show", json.loads(used.stdout)["run_id"], "--db", str(db))
    assert shown.returncode == 0 and Posterior.load(SHIPPED).content_hash()[:12] in shown.stdout, shown.stdout


def test_claims_and_predict_choose_the_shipped_posterior_unless_told_otherwise() -> None:
    post, where = choose_posterior(default_scenario(), None, False)
    assert post is not None and post.content_hash() == Posterior.load(SHIPPED).content_hash()
    assert "shipped posterior" in where
    assert choose_posterior(default_scenario(), None, True) == (None, "scenario values (--no-posterior)")
