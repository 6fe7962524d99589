"""Offer schedules and strategic waiting, the programme's queue, costs and fraud, and the regime's response."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defection import simulate
from defection.engine import RunResult
from defection.model.outputs import PROGRAMME_COMPONENTS
from defection.scenario import ScenarioError, load_scenario

from .conftest import SALIENT, cli_in_process, scenario

RUN = {"replicates": 6, "days": 90, "agents": 19_800, "seed": 4}


def cumulative_arrivals(res, day: int) -> np.ndarray:
    table = res.daily.pivot(index="day", columns="replicate", values="arrived").cumsum()
    return table.iloc[day].to_numpy()


@pytest.fixture(scope="module")
def salient() -> RunResult:
    """`simulate(scenario(**SALIENT), **RUN)`: the static world with a flat offer, which the schedules and five
    other tests compare against, simulated once for the module (the tests only read it)."""
    return simulate(scenario(**SALIENT), **RUN)


@pytest.fixture(scope="module")
def schedules(salient: RunResult) -> dict:
    out = {"flat": salient}
    for name, extra in {
        "announced": {"offer__schedule__rule": "announced_escalation", "offer__schedule__growth_per_step": 1.0},
        "ratchet": {"offer__schedule__rule": "ratchet_topup", "offer__schedule__growth_per_step": 1.0},
        "deadline": {"offer__schedule__rule": "deadline", "offer__schedule__deadline_day": 60},
    }.items():
        out[name] = simulate(scenario(**SALIENT, **extra), **RUN)
    return out


def test_announced_escalation_delays_defection(schedules: dict) -> None:
    """Soldiers who expect the offer to double next month wait: fewer cross before the first raise."""
    announced = cumulative_arrivals(schedules["announced"], 29)
    flat = cumulative_arrivals(schedules["flat"], 29)
    assert np.median(announced) < 0.9 * np.median(flat)
    assert (announced <= flat).all()


def test_retroactive_topup_removes_the_delay(schedules: dict) -> None:
    """Same path of offers, but early defectors are topped up: nobody gains by waiting (eq. 19 → OV = 0)."""
    ratchet, flat = schedules["ratchet"], schedules["flat"]
    early = ratchet.daily["day"] < 30
    cols = ["arrived", "contacts", "caught"]
    pd.testing.assert_frame_equal(ratchet.daily.loc[early, cols], flat.daily.loc[early, cols])
    assert np.median(cumulative_arrivals(ratchet, 89)) > np.median(cumulative_arrivals(schedules["announced"], 89))


def test_deadline_removes_the_delay_and_closes(schedules: dict) -> None:
    deadline, flat, announced = schedules["deadline"], schedules["flat"], schedules["announced"]
    before = cumulative_arrivals(deadline, 59)
    assert np.median(before) >= np.median(cumulative_arrivals(announced, 59))
    assert np.median(before) == pytest.approx(np.median(cumulative_arrivals(flat, 59)), rel=0.02)
    after = deadline.daily[deadline.daily["day"] > 60]
    assert (after["offer_usd"] == 0).all() and (after["contacts"] == 0).all()
    assert after["arrived_programme"].sum() < flat.daily[flat.daily["day"] > 60]["arrived_programme"].sum()


def test_topup_is_paid_to_earlier_defectors(schedules: dict) -> None:
    ratchet = schedules["ratchet"].daily
    raise_days = ratchet[(ratchet["day"] == 30) | (ratchet["day"] == 60)]
    assert (raise_days["cost_topup_pv"] > 0).all()
    assert schedules["announced"].daily["cost_topup_pv"].sum() == 0


def test_cost_identities(salient: RunResult) -> None:
    res = salient
    d = res.daily
    parts = d[[f"cost_{c}_pv" for c in PROGRAMME_COMPONENTS]].sum(axis=1)
    assert np.allclose(parts, d["programme_cost_pv"])
    assert (d["programme_cost_pv"] <= d["programme_cost"] + 1e-6).all()
    assert d["programme_cost_pv"].sum() < d["programme_cost"].sum()
    per = res.per_replicate
    assert np.allclose(per["cost_per_genuine_defector_usd"], per["programme_cost_usd"] / per["paid_defectors"])
    # with no discounting the present value is the nominal cost, and per-defector items are exact multiples
    flat = simulate(scenario(**SALIENT, programme__discount_rate=0.0), **RUN).daily
    assert np.allclose(flat["programme_cost_pv"], flat["programme_cost"])
    assert flat["cost_trip_pv"].sum() == pytest.approx(7_000.0 * flat["paid"].sum())
    assert flat["cost_cash_now_pv"].sum() == pytest.approx(0.5 * 200_000.0 * flat["paid"].sum())


def test_regime_pay_rise_scales_with_force_programme_cost_with_defectors() -> None:
    kw = dict(SALIENT, regime__response__mode="adaptive", regime__response__strength_floor=1.0)
    small = simulate(scenario(**kw), **RUN)
    big = simulate(
        scenario(**dict(kw, force__soldiers=1_400_000, programme__extraction_capacity_per_day=10_000.0)), **RUN
    )
    # identical simulation, each agent standing for twice as many soldiers
    assert np.allclose(big.per_replicate["defected_share"], small.per_replicate["defected_share"])
    d = small.daily
    rise_per_day = (d["pay_usd_month"] - 2_333.0) * 12 / 365
    assert (rise_per_day > 0).any()
    assert np.allclose(d["regime_pay_rise"], d["serving"] * rise_per_day)  # paid to every soldier present
    assert big.daily["regime_pay_rise"].sum() == pytest.approx(2 * d["regime_pay_rise"].sum())

    # the programme pays per defector: apart from running its channels (a cost per day), its cost per genuine
    # defector does not depend on the size of the force
    def per_defector(res) -> np.ndarray:
        g = res.daily.groupby("replicate")
        return ((g["programme_cost_pv"].sum() - g["cost_communications_pv"].sum()) / g["paid"].sum()).to_numpy()

    np.testing.assert_allclose(per_defector(big), per_defector(small), rtol=1e-9)


def test_best_response_never_worse_for_the_regime_than_adaptive() -> None:
    kw = dict(SALIENT, regime__response__best_response_trials=4)
    run = {"replicates": 3, "days": 60, "agents": 9_900, "seed": 8}
    adaptive = simulate(scenario(**dict(kw, regime__response__mode="adaptive")), **run)
    best = simulate(scenario(**dict(kw, regime__response__mode="best_response")), **run)
    assert best.regime_choice is not None and len(best.regime_choice["candidate_losses_usd"]) == 5
    assert best.regime_choice["candidate_losses_usd"][0] == pytest.approx(
        adaptive.per_replicate["regime_loss_usd"].mean()
    )
    assert best.per_replicate["regime_loss_usd"].mean() <= adaptive.per_replicate["regime_loss_usd"].mean()
    assert "regime_best_response" in best.to_dict()


def test_adaptive_regime_tightens_when_exits_exceed_its_target(salient: RunResult) -> None:
    res = simulate(scenario(**dict(SALIENT, regime__response__mode="adaptive")), **RUN)
    last = res.daily[res.daily["day"] == 89]
    assert (last["monitors"] > 0.05).all() and (last["blocking"] > 0).all()
    static = salient
    assert res.per_replicate["defected"].median() < static.per_replicate["defected"].median()


def test_extraction_capacity_is_a_bottleneck(salient: RunResult) -> None:
    low = simulate(scenario(**dict(SALIENT, programme__extraction_capacity_per_day=50.0)), **RUN)
    high = salient
    assert low.per_replicate["detected_waiting"].median() > high.per_replicate["detected_waiting"].median()
    assert low.per_replicate["paid_defectors"].median() < high.per_replicate["paid_defectors"].median()
    assert low.per_replicate["queued_final"].median() > high.per_replicate["queued_final"].median()


def test_budget_cap_closes_the_programme() -> None:
    cap = 50_000_000.0
    res = simulate(scenario(**dict(SALIENT, offer__schedule__budget_cap_usd=cap)), **RUN)
    for _, rep in res.daily.groupby("replicate"):
        spent = rep["programme_cost"].cumsum()
        closed = rep["offer_usd"] == 0
        assert closed.any()
        first_closed = int(rep.loc[closed, "day"].iloc[0])
        assert spent.iloc[first_closed - 1] >= cap > spent.iloc[first_closed - 2]
        after = rep["day"] >= first_closed
        assert (rep.loc[after, "contacts"] == 0).all()  # no new contacts once closed
        # soldiers already waiting are still extracted and paid the last offer, and no more than them
        assert rep.loc[after, "paid"].sum() <= rep.loc[rep["day"] == first_closed - 1, "queued"].iloc[0] + 1e-6


def test_adaptive_offer_sweetens_until_target() -> None:
    kw = dict(
        SALIENT, offer__schedule__rule="adaptive", offer__schedule__growth_per_step=0.5, offer__schedule__step_days=15
    )
    unreachable = simulate(scenario(**kw, offer__schedule__target_share_per_month=0.9), **RUN)
    reached = simulate(scenario(**kw, offer__schedule__target_share_per_month=1e-6), **RUN)
    assert unreachable.per_replicate["offer_final_usd"].min() == pytest.approx(200_000.0 * 1.5**5)
    assert (reached.daily["offer_usd"] == 200_000.0).all()


def test_credibility_event_hurts_after_it_happens(salient: RunResult) -> None:
    event = [{"name": "paid defector assassinated abroad", "day": 30, "weight": -40.0}]
    hit = simulate(scenario(**SALIENT, programme__events=event), **RUN)
    calm = salient
    before = hit.daily["day"] < 30
    pd.testing.assert_frame_equal(
        hit.daily.loc[before, ["arrived", "credibility"]], calm.daily.loc[before, ["arrived", "credibility"]]
    )
    day31 = hit.daily["day"] == 31
    assert (hit.daily.loc[day31, "credibility"].to_numpy() < calm.daily.loc[day31, "credibility"].to_numpy()).all()
    assert hit.per_replicate["defected"].median() < calm.per_replicate["defected"].median()


def test_fraud_grows_with_the_bounty(salient: RunResult) -> None:
    small = salient
    big = simulate(scenario(**dict(SALIENT, offer__cash_usd=800_000.0)), **RUN)
    per_defector = [
        r.per_replicate["fraud_claimants"].sum() / r.per_replicate["paid_defectors"].sum() for r in (small, big)
    ]
    assert per_defector[1] > 1.9 * per_defector[0]  # ∝ (cash / $100k)^0.5: ×2 for 4× the cash
    assert (small.per_replicate["fraud_losses_usd"] > 0).all()


BAD = [
    (
        "negative growth with a target",
        "[offer.schedule]\nrule = 'adaptive'\ngrowth_per_step = -0.1\n",
        ["offer", "growth_per_step = -0.1", "positive growth"],
    ),
    (
        "deadline before start",
        "[offer]\nstart_day = 30\n[offer.schedule]\nrule = 'deadline'\ndeadline_day = 10\n",
        ["deadline_day = 10", "start_day = 30"],
    ),
    (
        "budget cap below first payment",
        "[offer.schedule]\nbudget_cap_usd = 5000.0\n",
        ["budget_cap_usd = 5000", "below the first payment", "cash_usd = 100000"],
    ),
    ("unknown rule", "[offer.schedule]\nrule = 'sometimes'\n", ["offer.schedule.rule", "'sometimes'", "flat"]),
    (
        "regime lever out of range",
        "[regime.response]\nmax_blocking = 1.5\n",
        ["regime.response.max_blocking", "1.5", "[0.0, 1.0]"],
    ),
    (
        "regime response negative",
        "[regime.response]\nmonitor_response = -1\n",
        ["regime.response.monitor_response", "[0.0, 10.0]"],
    ),
    ("regime mode", "[regime.response]\nmode = 'nice'\n", ["regime.response.mode", "'nice'", "best_response"]),
]


@pytest.mark.parametrize(("label", "text", "needles"), BAD, ids=[b[0] for b in BAD])
def test_inconsistent_schedules_and_levers_are_rejected(
    tmp_path: Path, label: str, text: str, needles: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    for needle in needles:
        assert needle in str(info.value), (label, str(info.value))
    r = cli_in_process("check", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
