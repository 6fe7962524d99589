"""Invariants of the simulator: conservation, determinism, common random numbers, monotonicity."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from defection import simulate
from defection.engine import RunResult
from defection.model.outputs import SERIES

from .conftest import ROOT, no_offer, scenario
from .processes import run

SMALL = {"replicates": 3, "days": 120, "agents": 4_950, "seed": 11}


def _series(result) -> np.ndarray:
    return result.daily[list(SERIES)].to_numpy()


def test_conservation_of_soldiers() -> None:
    """Establishment = present + everyone who left by any route − replacements, every day of every replicate (the
    default opens all three routes; a deserter returned to his unit has not left)."""
    sc = scenario(
        combat__death_hazard=2e-3,
        combat__replacement_rate=0.05,
        crossing__catch_base=0.2,
        preferences__moral_cost_median_usd=20_000.0,
        combat__opportunity_line=0.05,
        information__initial_aware_share=0.5,
        programme__extraction_capacity_per_day=200.0,
        # crossing only, so that the crossing attempts' identity below holds alone (all routes: tests/test_routes.py)
        routes__home__open=False,
        routes__surrender__open=False,
    )
    res = simulate(sc, **SMALL)
    daily = res.daily
    for col in ("arrived", "arrived_programme", "caught", "detected_waiting", "replaced", "contacts"):
        assert daily[col].sum() > 0, col
    w = res.represented / res.agents
    for _, rep in daily.groupby("replicate"):
        left = rep[["arrived", "deserted", "surrendered", "killed_crossing", "killed_surrendering"]].sum(axis=1)
        left = (left + rep["caught"] - rep["returned_to_unit"] + rep["killed_in_action"] + rep["wounded"]).cumsum()
        joined = rep["replaced"].cumsum()
        balance = (rep["serving"] + left - joined).to_numpy() / w
        assert np.allclose(balance, res.agents, rtol=0, atol=1e-6)
        assert (rep["executed"] <= rep["caught"]).all()
        # every crossing attempt ends as an arrival, a capture at the crossing, or a death
        at_crossing = rep["caught"] - rep["detected_waiting"]
        assert np.allclose(rep["attempts"], rep["arrived"] + at_crossing + rep["killed_crossing"])
        # a queue entry is extracted, detected, still waiting, or gone with its soldier
        assert rep["extracted"].sum() + rep["detected_waiting"].sum() <= rep["contacts"].sum() + 1e-9
        assert rep["queued"].iloc[-1] <= rep["contacts"].sum() + 1e-9
        by_type = rep[[f"arrived_{t}" for t in ("contract", "mobilised", "convict", "conscript", "officer")]]
        assert np.allclose(by_type.sum(axis=1), rep["arrived"])
        assert np.allclose(rep["paid"] + rep["rejected"], rep["arrived_programme"])
    per = res.per_replicate
    assert (per["defected"] <= per["attempts"]).all()
    assert ((per["strength_remaining_share"] >= 0) & (per["strength_remaining_share"] <= 1)).all()


@pytest.fixture(scope="module")
def proposal() -> RunResult:
    """`simulate(scenario(), **SMALL)`: the default scenario at the small settings, simulated once for the module
    (the tests only read it)."""
    return simulate(scenario(), **SMALL)


def test_same_seed_same_result_and_different_seed_differs(proposal: RunResult) -> None:
    a = proposal  # and b simulated afresh: two runs of one seed
    b = simulate(scenario(), **SMALL)
    c = simulate(scenario(), **{**SMALL, "seed": 12})
    assert np.array_equal(_series(a), _series(b))
    assert not np.array_equal(_series(a), _series(c))


_THREAD_SCRIPT = """
import hashlib, json, numba
from defection import simulate
from defection.engine import RunResult
res = simulate(replicates=2, days=60, agents=9_900, seed=5)
print(json.dumps({"threads": numba.get_num_threads(),
                  "hash": hashlib.sha256(res.daily.to_numpy().tobytes()).hexdigest()}))
"""


@pytest.mark.slow
def test_identical_across_thread_counts() -> None:
    out = {}
    for n in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": n}
        proc = run([sys.executable, "-c", _THREAD_SCRIPT], env=env, cwd=ROOT, check=True)
        out[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["1"]["threads"] == 1 and out["2"]["threads"] == 2
    assert out["1"]["hash"] == out["2"]["hash"]
    res = simulate(replicates=2, days=60, agents=9_900, seed=5)
    assert hashlib.sha256(res.daily.to_numpy().tobytes()).hexdigest() == out["1"]["hash"]


def test_common_random_numbers_noop_lever(proposal: RunResult) -> None:
    """A lever change that cannot matter (a channel with zero reach, a new name) changes nothing."""
    base = scenario()
    channels = [*base.model_dump()["information"]["channels"], {"name": "sms", "daily_reach": 0.0, "coverage": 0.0}]
    noop = scenario(information__channels=channels, meta__name="renamed")
    a = proposal  # simulate(base, **SMALL)
    b = simulate(noop, **SMALL)
    assert np.array_equal(_series(a), _series(b))


def test_common_random_numbers_shared_population() -> None:
    """Policy variants see the same soldiers: day-0 deaths and the initial population do not depend on cash."""
    a = simulate(scenario(offer__cash_usd=0.0), **SMALL)
    b = simulate(scenario(offer__cash_usd=1e6), **SMALL)
    first = a.daily["day"] == 0
    pd.testing.assert_series_equal(a.daily.loc[first, "killed_in_action"], b.daily.loc[first, "killed_in_action"])


LONG = {"replicates": 9, "days": 240, "agents": 9_900, "seed": 3}


@pytest.fixture(scope="module")
def proposal_long() -> RunResult:
    """`simulate(scenario(), **LONG)`: a level of both monotonicity tests ($100k cash, 0.05 monitors per soldier are
    the defaults), simulated once for the module."""
    return simulate(scenario(), **LONG)


def _medians(levels: list[float], make, default: RunResult) -> list[float]:
    """The median defections at each level; `default` is the run of the default scenario (LONG), used where a level
    makes it."""
    out = []
    for level in levels:
        sc = make(level)
        res = default if sc == scenario() else simulate(sc, **LONG)
        out.append(float(res.per_replicate["defected"].median()))
    return out


@pytest.mark.slow
def test_more_cash_does_not_lower_defections(proposal_long: RunResult) -> None:
    med = _medians([0.0, 1e5, 1e6, 1e7], lambda c: scenario(offer__cash_usd=c), proposal_long)
    assert all(b >= a for a, b in itertools.pairwise(med)), med
    assert med[-1] > med[0], med


@pytest.mark.slow
def test_more_monitoring_does_not_raise_defections(proposal_long: RunResult) -> None:
    med = _medians([0.0, 0.05, 0.1, 0.3], lambda m: scenario(regime__monitors_per_soldier=m), proposal_long)
    assert all(b <= a for a, b in itertools.pairwise(med)), med
    assert med[-1] < med[0], med


def test_zero_awareness_nobody_responds_to_the_offer() -> None:
    """With no channel reach, no word of mouth and nobody aware on day 0, the offer changes nothing."""
    unheard = scenario(
        information__channels=[],
        information__peer_imitation=0.0,
        information__initial_aware_share=0.0,
        offer__cash_usd=1e7,
    )
    a = simulate(unheard, **SMALL)
    b = simulate(no_offer(), **SMALL)
    assert a.daily["aware"].sum() == 0
    programme = {"offer_usd", "programme_open", "programme_cost", "programme_cost_pv", "cost_communications_pv"}
    cols = [c for c in SERIES if c not in programme]
    assert np.array_equal(a.daily[cols].to_numpy(), b.daily[cols].to_numpy())
    # and the same offer, once heard, does change behaviour
    heard = simulate(scenario(offer__cash_usd=1e7), **SMALL)
    assert heard.per_replicate["defected"].sum() > a.per_replicate["defected"].sum()


def test_replacements_never_exceed_the_army_s_capacity() -> None:
    """Eq. 21b: with heavy losses (five times the combat intensity), the day's replacements stay within the capacity
    on average (the binomial noise of one day can exceed it), units end weaker than without the cap, and a higher
    capacity never leaves them weaker (common random numbers)."""
    heavy = {"combat__intensity": 5.0, "regime__response__mode": "static"}
    runs = {
        cap: simulate(scenario(**heavy, combat__replacement_capacity_share_per_day=cap), **SMALL)
        for cap in (0.0005, 0.002, 0.0)
    }
    for cap in (0.0005, 0.002):
        daily = runs[cap].daily  # "replaced": the day's replacements, in represented soldiers
        replaced_share = daily.groupby("replicate")["replaced"].mean() / runs[cap].represented
        assert (replaced_share > 0.5 * cap).all()  # the cap binds: losses outrun it
        assert (replaced_share <= cap * 1.05).all(), (cap, replaced_share.tolist())
    strength = {cap: float(r.per_replicate["strength_remaining_share"].median()) for cap, r in runs.items()}
    assert strength[0.0005] < strength[0.002] <= strength[0.0]
