"""Runs without cost accounting (`simulate(..., accounting=False)`, used by calibration): the same soldiers."""

from __future__ import annotations

import math

import numpy as np

from defection import simulate
from defection.calibrate.abc import case_run
from defection.calibrate.cases import SHARE_OUTCOMES, load_cases
from defection.engine import RunResult
from defection.model.outputs import OUTCOMES

from .conftest import SALIENT, scenario

COST_OUTCOMES = {
    "programme_cost_usd",
    "programme_cost_nominal_usd",
    "cost_per_genuine_defector_usd",
    "fraud_losses_usd",
    "budget_share",
    "regime_cost_usd",
    "regime_loss_usd",
    "fraud_claimants",
    "fraud_paid",
}


def assert_same_soldiers(full: RunResult, lean: RunResult) -> None:
    """Every column the accounting does not write is bit-identical; every outcome that is not a cost too."""
    written = [c for c in full.daily.columns if not lean.daily[c].isna().all()]
    assert len(written) > 20  # the counts, the force, the offer, the regime's measures
    assert full.daily[written].equals(lean.daily[written])
    for outcome in OUTCOMES:
        if outcome in COST_OUTCOMES:
            continue
        a, b = full.per_replicate[outcome].to_numpy(), lean.per_replicate[outcome].to_numpy()
        assert np.array_equal(a, b, equal_nan=True), outcome


def test_every_shipped_case_gives_the_same_shares_without_the_accounting() -> None:
    """What calibration compares (every case's observed shares) does not depend on the cost accounting, and the
    costs it skipped are NaN, not zeros that a reader could take for a free programme."""
    for case in load_cases():
        kw = {"replicates": 1, "seed": 3, "agents": case.meta.calibration_agents}
        full = simulate(case.scenario, **kw)
        lean = simulate(case.scenario, accounting=False, **kw)
        assert_same_soldiers(full, lean)
        assert math.isnan(lean.per_replicate["programme_cost_usd"].iloc[0])
        assert lean.daily["unit_strength_p50"].isna().all()
        runs = case_run(case, {}, 3)  # calibration's own entry point skips it
        for o in case.observed:
            assert runs[o.outcome].iloc[0] == full.per_replicate[o.outcome].iloc[0], (case.id, o.outcome)
        assert {o.outcome for o in case.observed} <= set(SHARE_OUTCOMES)


def test_a_budget_cap_keeps_the_accounting_because_it_closes_the_programme() -> None:
    """With a budget cap the costs decide when the programme closes, so they are booked either way."""
    sc = scenario(**dict(SALIENT, offer__schedule__budget_cap_usd=50_000_000.0))
    kw = {"replicates": 2, "days": 90, "agents": 4950, "seed": 4}
    full, lean = simulate(sc, **kw), simulate(sc, accounting=False, **kw)
    assert (full.daily["offer_usd"] == 0).any()  # the cap closed it
    assert_same_soldiers(full, lean)
    assert lean.daily["programme_cost"].equals(full.daily["programme_cost"])


def test_best_response_keeps_the_accounting() -> None:
    """The regime's best response chooses the policy with the lowest loss, a cost: nothing is skipped."""
    sc = scenario(**dict(SALIENT, regime__response__mode="best_response", regime__response__best_response_trials=2))
    kw = {"replicates": 1, "days": 30, "agents": 990, "seed": 4}
    full, lean = simulate(sc, **kw), simulate(sc, accounting=False, **kw)
    assert full.daily.equals(lean.daily)
    assert full.regime_choice == lean.regime_choice
