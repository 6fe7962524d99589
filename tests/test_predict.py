"""`defection predict`: the backtest's prediction for case files the library does not hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from defection.calibrate.abc import calibrate
from defection.calibrate.cases import load_case
from defection.scenario.posterior import Posterior

from .conftest import cli
from .test_calibration import write_case


@pytest.mark.slow
def test_predict_json_reports_every_observation_with_ordered_intervals(tmp_path: Path) -> None:
    case = write_case(tmp_path, "mine", defected=0.01, caught=0.02, days=60, agents=990)
    r = cli("predict", str(case), "--no-posterior", "--draws", "6", "--seed", "3", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["posterior"] is None and out["draws"] == 6
    assert out["discrepancy"].startswith("no model discrepancy")
    rows = out["observations"]
    assert [(o["case"], o["outcome"]) for o in rows] == [("mine", "defected_share"), ("mine", "caught_share")]
    for o in rows:
        keys = {"case", "outcome", "observed", "median", "p05", "p95", "p25", "p75", "inside_90", "likelihood"}
        assert set(o) == keys and o["likelihood"] == "lognormal"  # the shipped cases observe log shares
        assert o["p05"] <= o["p25"] <= o["median"] <= o["p75"] <= o["p95"]
        assert o["inside_90"] == (o["p05"] <= o["observed"] <= o["p95"])
    again = cli("predict", str(case), "--no-posterior", "--draws", "6", "--seed", "3", "--json", cwd=tmp_path)
    assert json.loads(again.stdout) == out  # a pure function of the case, the posterior and the seed


@pytest.mark.slow
def test_predict_with_a_posterior_draws_its_particles(tmp_path: Path) -> None:
    """With a posterior the prediction spreads over its particles and their discrepancy: wider than the hand-tuned
    defaults alone."""
    case = write_case(tmp_path, "mine", defected=0.01, caught=0.02, days=120, agents=2_970)
    cal = calibrate([load_case(case)], particles=6, generations=1, workers=1, seed=2, check_draws=2)
    post_file = cal.posterior.save(tmp_path / "post.json")
    args = ("predict", str(case), "--draws", "12", "--seed", "3", "--json")
    with_post = json.loads(cli(*args, "--posterior", str(post_file), cwd=tmp_path).stdout)
    without = json.loads(cli(*args, "--no-posterior", cwd=tmp_path).stdout)
    assert with_post["posterior"]["hash"] == Posterior.load(post_file).content_hash()
    assert with_post["discrepancy"].startswith("predictive includes")
    spread = [np.log(o["p95"] / max(o["p05"], 1e-9)) for o in with_post["observations"]]
    spread0 = [np.log(o["p95"] / max(o["p05"], 1e-9)) for o in without["observations"]]
    assert max(spread) > max(spread0)


def test_predict_refuses_bad_input_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[case]\nid = "x"\n')
    r = cli("predict", str(bad), "--json", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "bad.toml" in r.stderr
    case = write_case(tmp_path, "mine", days=30, agents=990)
    r = cli("predict", str(case), "--posterior", "p.json", "--no-posterior", cwd=tmp_path)
    assert r.returncode == 2 and "not both" in r.stderr
    r = cli("predict", str(case), str(case), "--no-posterior", cwd=tmp_path)
    assert r.returncode == 2 and "more than one" in r.stderr
