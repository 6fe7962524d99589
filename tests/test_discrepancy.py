"""The model discrepancy and the observation model (docs/calibration.md, "Discrepancy and observation model")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defection.calibrate.abc import Calibration, calibrate, case_run, log_recorded_shares, predictive_check
from defection.calibrate.cases import Case, CaseError, load_case, load_cases, log_floor
from defection.scenario import default_scenario
from defection.scenario.build import with_changes
from defection.scenario.posterior import Posterior, PosteriorError
from defection.scenario.ranges import CALIBRATED, DISCREPANCY

MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")
PEER = "preferences.peer_weight"
CONVENTIONAL = "discrepancy.conventional"

CASE = """
[case]
id = "synth"
title = "synthetic"
period = "none"
sources = ["simulated with known parameters"]
calibration_agents = {agents}
{family}
{observed}
[scenario.simulation]
days = {days}
agents = {agents}
replicates = 1

[scenario.preferences]
peer_weight = 0.0
precedent_weight = 0.0

[scenario.regime.response]
mode = "static"

# the one-route war these tests were written on (crossing only), so that a share's spread is the crossing flow's
[scenario.routes.home]
open = false

[scenario.routes.surrender]
open = false
"""

OBSERVED = """
[[observed]]
outcome = "defected_share"
value = {value}
tolerance = 0.25
tag = "S"
{extra}
"""


def write_case(
    folder: Path, values: list[float], extra: str = "", family: str = "", days: int = 20, agents: int = 990
) -> Path:
    observed = "".join(OBSERVED.format(value=v, extra=extra) for v in values)
    path = folder / "synth.toml"
    path.write_text(CASE.format(agents=agents, days=days, family=family, observed=observed))
    return path


def load(path: Path) -> Case:
    """A synthetic case, which may fix calibrated parameters (peer and precedent terms off)."""
    return load_case(path, calibrated=())


# ----------------------------------------------------------------------------- the observation model
def test_capture_scales_what_is_compared_and_reported(tmp_path: Path) -> None:
    """A record that catches half the flow halves the simulated share before it is compared (the summary statistic)
    and before it is reported against the observation (the predictive draws, whose observation error is the same
    for both: same seed, case and tolerance). 120 days and 4,950 agents, so that no halved draw falls below the log
    floor."""
    full = load(write_case(tmp_path, [0.01], days=120, agents=4950))
    half = load(
        write_case(
            tmp_path,
            [0.01],
            'recorded = "prisoners taken"\ncapture = 0.5\ncapture_source = "assumption"',
            days=120,
            agents=4950,
        )
    )
    assert half.observed[0].recorded == "prisoners taken"
    row = pd.Series({"defected_share": 0.02})
    (stat,) = log_recorded_shares(half, row, 990).values()
    assert stat == pytest.approx(math.log(0.01))
    (stat_full,) = log_recorded_shares(full, row, 990).values()
    assert stat_full == pytest.approx(math.log(0.02))
    a, b = predictive_check([full], None, 4, 5), predictive_check([half], None, 4, 5)
    assert np.allclose(np.asarray(b["draws"][0]), 0.5 * np.asarray(a["draws"][0]))
    assert min(b["draws"][0]) > b["log_floor"][0]  # a comparison of floors would prove nothing
    assert "no model discrepancy" in a.attrs["discrepancy"] and "observations' error" in a.attrs["discrepancy"]


def test_capture_without_a_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="capture_source"):
        load(write_case(tmp_path, [0.01], "capture = 0.5"))
    with pytest.raises(CaseError, match="capture"):
        load(write_case(tmp_path, [0.01], 'capture = 1.5\ncapture_source = "assumption"'))


def test_the_shipped_cases_state_family_and_record() -> None:
    cases = {c.id: c for c in load_cases()}
    assert cases["chieu-hoi-1966"].meta.family == "insurgency"
    assert cases["colombia-2007-08"].meta.family == "insurgency"
    assert cases["gulf-1991"].meta.family == "conventional"
    assert all(o.recorded for c in cases.values() for o in c.observed)


# ----------------------------------------------------------------------------- the posterior file
def test_a_posterior_carries_the_discrepancy_and_apply_leaves_it_out() -> None:
    data = {
        "format": "defection-posterior/1",
        "parameters": [PEER, CONVENTIONAL],
        "samples": [[0.5, 0.3], [1.5, 2.0]],
        "weights": [1, 1],
    }
    post = Posterior.from_dict(data)
    sc = default_scenario()
    assert post.apply(sc, 1) == with_changes(sc, {PEER: 1.5}, "<test>")
    assert post.discrepancy(1, "conventional") == 2.0 and post.discrepancy(1, "insurgency") is None
    only = Posterior((CONVENTIONAL,), np.array([[0.7]]), np.array([1.0]))
    assert only.apply(sc, 0) == sc
    assert set(post.summary()["parameter"]) == {PEER, CONVENTIONAL}
    with pytest.raises(PosteriorError, match="outside the prior range"):
        Posterior.from_dict({**data, "samples": [[0.5, 0.3], [1.5, 9.0]]})


def test_predictive_intervals_widen_with_the_discrepancy(tmp_path: Path) -> None:
    """The same simulations (the discrepancy does not enter the scenario) with δ = 0.1 and δ = 1: the 90% interval
    on the log scale widens by about the ratio of the total spreads (with the observation error, tolerance 0.25:
    0.27 and 1.03; 4,950 agents and 120 days keep the simulation's own spread smaller); draws are reproducible."""
    case = load(write_case(tmp_path, [0.01], days=120, agents=4950))

    def check(delta: float) -> pd.DataFrame:
        return predictive_check([case], Posterior((CONVENTIONAL,), np.array([[delta]]), np.array([1.0])), 60, 3)

    narrow, wide = check(0.1), check(1.0)
    width = {k: math.log(f["p95"][0] / f["p05"][0]) for k, f in (("narrow", narrow), ("wide", wide))}
    assert width["wide"] > 2 * width["narrow"] and width["wide"] > 2.5, width
    assert check(1.0)["draws"][0] == wide["draws"][0]
    assert "includes" in wide.attrs["discrepancy"]
    # a share is at most the whole force: a wide discrepancy on the log scale is capped at 1
    huge = np.asarray(check(2.5)["draws"][0])
    assert huge.max() == 1.0 and (huge < 1.0).any()


# ----------------------------------------------------------------------------- recovery of a known discrepancy
@dataclass
class SyntheticWar:
    """A synthetic library with a known discrepancy and its calibration (made once for the tests below)."""

    delta_true: float
    truth: dict[str, float]
    folder: Path
    cal: Calibration


TOLERANCE = 0.25  # OBSERVED's tolerance: the observation error the synthetic records carry beside δ


def observation_errors(delta: float, z: np.ndarray) -> np.ndarray:
    """Eq. 40's error of a record on the log scale, √(tolerance² + δ²)·z: what the calibration assumes."""
    return np.asarray(math.sqrt(TOLERANCE**2 + delta**2) * z)


AGENTS = 9900  # the synthetic war's agents: about 30 defections in 120 days, a log share resolved to about ±0.3


@pytest.fixture(scope="module")
def synthetic_war(tmp_path_factory: pytest.TempPathFactory) -> SyntheticWar:
    """One synthetic case observed twenty times, generated by eq. 40's error model: one simulation of the case at a
    known moral cost, each observation that share times exp(√(tolerance² + δ_true²)·z) with δ_true = 0.5 and fixed
    z's (standardised); calibrated with its discrepancy."""
    tmp_path = tmp_path_factory.mktemp("synthetic-war")
    delta_true, truth = 0.5, {MORAL.path: 1e5}
    probe = load(write_case(tmp_path, [0.01], days=120, agents=AGENTS))
    share = float(case_run(probe, truth, seed=0)["defected_share"].iloc[0])
    assert share > 0
    z = np.random.default_rng(11).standard_normal(20)
    z = (z - z.mean()) / z.std()
    values = list(share * np.exp(observation_errors(delta_true, z)))
    case = load(write_case(tmp_path, values, days=120, agents=AGENTS))
    cal = calibrate([case], parameters=[MORAL], particles=32, generations=3, workers=1, seed=2)
    return SyntheticWar(delta_true, truth, tmp_path, cal)


@pytest.mark.slow
def test_calibration_recovers_a_known_discrepancy(synthetic_war: SyntheticWar) -> None:
    """The calibrated δ's 90% interval covers the true 0.5 and excludes the prior's edges."""
    cal, delta_true = synthetic_war.cal, synthetic_war.delta_true
    assert cal.posterior.parameters == (MORAL.path, CONVENTIONAL)
    row = cal.posterior.summary().set_index("parameter").loc[CONVENTIONAL]
    assert row["p05"] <= delta_true <= row["p95"], row.to_dict()
    prior = next(u for u in DISCREPANCY if u.path == CONVENTIONAL)
    assert row["p95"] - row["p05"] < 0.8 * (prior.hi - prior.lo), row.to_dict()
    assert cal.populations["epsilon"].iloc[-1] == pytest.approx(1.0)


@pytest.mark.slow
def test_held_out_synthetic_observations_are_covered_at_the_nominal_rate(synthetic_war: SyntheticWar) -> None:
    """The predictive 90% interval of the calibrated synthetic war covers between 80% and 97% of forty held-out
    records of the same war, each made as the library's were: a fresh simulation at the true parameters (a zero
    raised to the floor, as eq. 40 does), times eq. 40's error at an evenly spaced quantile, so that the coverage is
    not itself a lottery. A predictive that left out the observation error (before 2026-12-03) or the discrepancy
    would miss many more. Measured: 0.95 here; 0.95 and 0.825 with other z's and another realisation of the
    library's share (the calibration sees one realisation, whose simulation noise shifts the whole posterior)."""
    from scipy.stats import norm

    n = 40
    probe = load(write_case(synthetic_war.folder, [0.01], days=120, agents=AGENTS))
    shares = np.array([case_run(probe, synthetic_war.truth, seed=100 + k)["defected_share"].iloc[0] for k in range(n)])
    assert np.median(shares) > 0
    shares = np.maximum(shares, log_floor(AGENTS))  # eq. 40's statistic: a zero is raised to the floor
    z = np.random.default_rng(12).permutation(norm.ppf((np.arange(n) + 0.5) / n))
    folder = synthetic_war.folder / "held-out"
    folder.mkdir()
    values = list(shares * np.exp(observation_errors(synthetic_war.delta_true, z)))
    held_out = load(write_case(folder, values, days=120, agents=AGENTS))
    table = predictive_check([held_out], synthetic_war.cal.posterior, draws=60, seed=5)
    inside = (table["p05"] <= table["observed"]) & (table["observed"] <= table["p95"])
    assert 0.80 <= inside.mean() <= 0.97, (inside.mean(), table[["observed", "p05", "p95"]].describe())
