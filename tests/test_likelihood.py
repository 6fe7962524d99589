"""Zeros and bounds (eq. 40b, calibrate/likelihood.py): counts and upper bounds under a negative binomial whose
overdispersion carries eq. 40's error; case files that state them; a calibration and a predictive check with them."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from defection.calibrate import likelihood as lk
from defection.calibrate.abc import calibrate, predictive_check
from defection.calibrate.backtest import scored_rows
from defection.calibrate.cases import CaseError, load_case
from defection.scenario.ranges import CALIBRATED

MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")

CASE = """
[case]
id = "{id}"
title = "synthetic"
period = "none"
sources = ["simulated with known parameters"]
calibration_agents = 990

[[observed]]
outcome = "defected_share"
value = {defected}
tolerance = 0.5
tag = "S2"
likelihood = "{likelihood}"

[scenario.force]
soldiers = 9900

[scenario.simulation]
days = 60
agents = 990
replicates = 1

[scenario.regime.response]
mode = "static"
"""


def write(folder: Path, case_id: str, defected: float, likelihood: str) -> Path:
    path = folder / f"{case_id}.toml"
    path.write_text(CASE.format(id=case_id, defected=defected, likelihood=likelihood))
    return path


def test_negative_binomial_terms_by_hand_and_against_scipy() -> None:
    """Eq. 40b: r = 1/(e^var − 1); the pmf and the bound against scipy.stats.nbinom, and a zero by hand."""
    r = lk.negative_binomial_size(0.5)
    assert r == pytest.approx(1 / (math.exp(0.5) - 1))
    for k, mu in [(0.0, 3.0), (4.0, 3.0), (40.0, 7.5), (0.0, 1e-6)]:
        p = r / (r + mu)
        assert lk.count_log_pmf(k, mu, r) == pytest.approx(stats.nbinom.logpmf(k, r, p), rel=1e-9)
        assert lk.bound_log_probability(k + 1, mu, r) == pytest.approx(stats.nbinom.logcdf(k, r, p), rel=1e-9)
    # a zero: (r/(r+μ))^r
    assert lk.count_log_pmf(0.0, 2.0, r) == pytest.approx(r * math.log(r / (r + 2.0)))
    # the extra-Poisson variance is a lognormal error's: var(X)/μ² − 1/μ = e^var − 1
    mu = 50.0
    assert stats.nbinom.var(r, r / (r + mu)) / mu**2 - 1 / mu == pytest.approx(math.expm1(0.5))
    # "fewer than 0.5 soldiers" is a zero; "fewer than 0" cannot happen; a zero mean is below any bound
    assert lk.bound_log_probability(0.5, 3.0, r) == pytest.approx(lk.count_log_pmf(0.0, 3.0, r))
    assert lk.bound_log_probability(0.0, 3.0, r) == -math.inf
    assert lk.bound_log_probability(1.0, 0.0, r) == 0.0


def test_the_observation_terms_mix_log_shares_counts_and_bounds() -> None:
    """Each kind's term, and the perfect fit (the early-rejection bound) at least as large, zeros included."""
    terms = lk.ObservationTerms({"a": "lognormal", "b": "count", "c": "upper_bound"}, dict.fromkeys("abc", 1_000.0))
    var = np.array([0.25, 0.5, 0.5])
    x = {"a": math.log(0.01), "b": math.log(0.002), "c": math.log(0.004)}  # simulated shares 1%, 0.2%, 0.4%
    x0 = {"a": math.log(0.02), "b": 0.0, "c": 3.0}  # observed: 2%; a zero count; fewer than 3 soldiers
    got = terms.log_terms(x, x0, list(x), var)
    r = lk.negative_binomial_size(0.5)
    assert got[0] == pytest.approx(-0.5 * math.log(2 * math.pi * 0.25) - 0.5 * math.log(0.5) ** 2 / 0.25)
    assert got[1] == pytest.approx(stats.nbinom.logpmf(0, r, r / (r + 2.0)))
    assert got[2] == pytest.approx(stats.nbinom.logcdf(2, r, r / (r + 4.0)))
    assert np.all(terms.perfect_fit(x0, list(x), var) >= got)
    assert terms.perfect_fit(x0, list(x), var)[1:].tolist() == [0.0, 0.0]


def test_case_files_state_zeros_and_bounds(tmp_path: Path) -> None:
    zero = load_case(write(tmp_path, "zero", 0.0, "count"), calibrated=())
    assert zero.observed[0].value == 0.0 and zero.observed[0].likelihood == "count"
    with pytest.raises(CaseError, match=re.escape('a zero is a count: likelihood = "count"')):
        load_case(write(tmp_path, "bad", 0.0, "lognormal"), calibrated=())
    with pytest.raises(CaseError, match=r"fewer than 0\.99 soldiers"):
        load_case(write(tmp_path, "tiny", 1e-4, "upper_bound"), calibrated=())
    assert lk.observed_data([zero]) == {"zero:0:defected_share": 0.0}


@pytest.mark.slow
def test_a_calibration_with_a_zero_and_a_bound_runs_and_predicts_them(tmp_path: Path) -> None:
    """A library of a zero count and an upper bound calibrates (the count kernel, with early rejection), and the
    predictive check draws counts: a zero observed inside its interval, a bound scored by the lower end only."""
    cases = [
        load_case(write(tmp_path, "zero", 0.0, "count"), calibrated=()),
        load_case(write(tmp_path, "bound", 0.01, "upper_bound"), calibrated=()),
    ]
    result = calibrate(cases, parameters=[MORAL], particles=12, generations=2, workers=1, seed=3, check_draws=0)
    assert result.posterior.samples.shape[0] == 12
    assert np.isfinite(result.posterior.weights).all()
    check = predictive_check(cases, result.posterior, draws=24, seed=1)
    assert list(check["likelihood"]) == ["count", "upper_bound"]
    zero_row, bound_row = check.iloc[0], check.iloc[1]
    counts = np.asarray(zero_row["draws"]) * 9900
    assert np.allclose(counts, np.round(counts))  # whole soldiers
    assert zero_row["inside"] == (zero_row["p05"] == 0.0)
    assert bound_row["inside"] == (bound_row["p05"] < 0.01)
    scored = scored_rows(check.assign(log_floor=1e-4))
    assert math.isnan(scored["pit"].iloc[1])
    assert bool(scored["inside_90"].iloc[1]) == bool(bound_row["p05"] < 0.01)


def test_a_backtest_summary_scores_again_as_it_was_scored() -> None:
    """`Backtest.from_dict` keeps a summary's predictions and scores them again: a summary of today's scores comes
    back unchanged (rows, scores, settings), and a summary written before rows kept their likelihood takes it from
    the mapping given (the case library's), so that its bound is scored as one."""
    from defection.calibrate.backtest import Backtest

    rows = pd.DataFrame(
        {
            "case": ["a", "b", "c", "c"],
            "outcome": ["defected_share"] * 4,
            "observed": [0.01, 0.02, 0.05, 0.3],
            "median": [0.0, 0.03, 0.04, 0.1],
            "p05": [0.0, 0.01, 0.02, 0.05],
            "p25": [0.0, 0.02, 0.03, 0.08],
            "p75": [0.001, 0.04, 0.05, 0.2],
            "p95": [0.002, 0.05, 0.07, 0.4],
            "draws": [[0.0, 0.001], [0.02, 0.03], [0.04, 0.05], [0.1, 0.2]],
            "likelihood": ["upper_bound", "lognormal", "lognormal", "lognormal"],
            "inside": [True, True, True, True],
            "abs_log_error": [0.0, 0.4, 0.2, 1.1],
            "log_floor": [1e-4] * 4,
            "tolerance": [0.5] * 4,
            "tag": ["S"] * 4,
        }
    )
    summary = json.loads(json.dumps(Backtest(rows, {"seed": 1}, 2.0).to_dict()))
    again = json.loads(json.dumps(Backtest.from_dict(summary).to_dict()))
    assert again == summary
    bound = summary["rows"][0]
    assert bound["likelihood"] == "upper_bound" and bound["inside_90"] is True
    # the bound (0.01) lies above the whole prediction: scored at the median, so only the widths count
    widths = (0.5 * 0 + 0.25 * (math.log(0.001) - math.log(1e-4)) + 0.05 * (math.log(0.002) - math.log(1e-4))) / 2.5
    assert bound["interval_score"] == pytest.approx(widths)
    old = {**summary, "rows": [{k: v for k, v in r.items() if k != "likelihood"} for r in summary["rows"]]}
    assert Backtest.from_dict(old).to_dict()["rows"][0]["interval_score"] > widths  # read as a point: a miss
    assert (
        json.loads(json.dumps(Backtest.from_dict(old, {("a", "defected_share"): "upper_bound"}).to_dict())) == summary
    )
