"""Exit routes (docs/model.md §7.5b, eq. 42–47): the multinomial choice among staying, crossing, deserting home and
surrendering in combat; hand-computed route probabilities, conservation, monotonicity, rewards and records.

That the choice reduces to the binary one when only crossing is open is the golden test (tests/test_bit_identity.py
and tests/test_golden.py: the stored results of the code before the routes are reproduced to the last bit).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from defection import simulate
from defection.model import decision as d
from defection.model import parameters as mp
from defection.model.parameters import engine_params
from defection.scenario import ScenarioError

from .conftest import SALIENT, no_offer, scenario

OPEN = {"routes__home__open": True, "routes__surrender__open": True}
SMALL = {"replicates": 3, "days": 120, "agents": 4_950, "seed": 11}


def test_route_shares_by_hand() -> None:
    """Eq. 47: P(r) = e^{z_r/σ} / (1 + Σ e^{z_k/σ}); an unavailable route gets nothing; one route is eq. 17b."""
    z = np.array([1.0, 0.5, 9.0])
    available = np.array([True, True, False])
    out = np.zeros(3)
    d.route_shares(z, available, 0.5, out)
    denominator = 1.0 + math.exp(2.0) + math.exp(1.0)
    assert out[0] == pytest.approx(math.exp(2.0) / denominator, rel=1e-12)
    assert out[1] == pytest.approx(math.exp(1.0) / denominator, rel=1e-12)
    assert out[2] == 0.0
    d.route_shares(np.array([0.3, 0.0, 0.0]), np.array([True, False, False]), 0.7, out)
    assert out[0] == pytest.approx(d.logit_probability(0.3, 0.7), rel=1e-12)
    # a very attractive route does not overflow
    d.route_shares(np.array([5e3, -5e3, 0.0]), np.array([True, True, True]), 0.1, out)
    assert out[0] == pytest.approx(1.0) and out[1] == 0.0 and np.isfinite(out).all()


def test_route_equations_by_hand() -> None:
    """Eq. 42–44 with round numbers."""
    # −π_exec·VSL + (1 − π_exec)·[ρ·(V_stay − C_ret) − (1 − ρ)·(s·cost(J) + Δp·VSL)]
    # = −100,000 + 0.9·[0.7·(−5,000 − 20,000) − 0.3·(0.3·100,000 + 0.01·1,000,000)] = −126,550
    assert d.home_caught_value(1e6, 0.1, 0.7, 0.3, 100_000.0, 0.01, -5_000.0, 20_000.0) == pytest.approx(-126_550.0)
    # returned for sure, never executed: back to staying, less the penalty
    assert d.home_caught_value(1e6, 0.0, 1.0, 0.3, 1e5, 0.01, -5_000.0, 20_000.0) == pytest.approx(-25_000.0)
    assert d.home_success_value(50_000.0, 70_000.0, 10_000.0, 30_000.0) == pytest.approx(-60_000.0)
    assert d.surrender_opportunity(0.002, 3.0, 2.0, 1.0) == pytest.approx(0.012)
    assert d.surrender_opportunity(0.5, 3.0, 2.0, 1.0) == 1.0
    assert d.surrender_death_probability(0.1, 2.5) == pytest.approx(0.25)


def test_the_kind_of_war_by_hand() -> None:
    """Eq. 48–51 with round numbers; the reference war (the defaults) leaves every route term as it is."""
    # a constant hazard per km: 10% over the reference 10 km is 1 − 0.9² = 19% over 20 km, 1 − 0.9^0.05 over 0.5 km
    assert d.crossing_death_probability(0.1, 1.0, 2.0) == pytest.approx(0.19)
    assert d.crossing_death_probability(0.1, 1.0, 0.05) == pytest.approx(1 - 0.9**0.05)
    assert d.crossing_death_probability(0.1, 1.5, 1.0) == 0.1 * 1.5  # the reference depth: p^x_0 exactly
    # a home area half held by the enemy: halfway between his own side's reach and the enemy's
    assert d.home_catch_probability(0.3, 0.05, 0.5) == pytest.approx(0.175)
    assert d.home_catch_probability(0.3, 0.05, 0.0) == 0.3
    assert d.surrender_opportunity(0.002, 1.0, 1.0, mp.manoeuvre_factor(10.0, 0.5)) == pytest.approx(0.011)
    sc = scenario(**OPEN, war__home_distance_km=1_300.0, routes__home__daily_opportunity=0.01)
    # e^{−300/300} of the reference distance's opportunity; rear squads m_rear = 10 times more
    assert mp.home_class_opportunity(sc) == pytest.approx(0.01 * math.exp(-1.0) * np.array([10.0, 1.0, 1.0]))
    p, rp = engine_params(scenario()), mp.route_params(scenario())
    assert (p.depth_ratio, rp.home_enemy_control, rp.surrender_manoeuvre_factor) == (1.0, 0.0, 1.0)


def test_a_war_that_holds_deserters_homes_moves_desertion_and_catches() -> None:
    """An enemy holding the deserters' home areas: fewer deserters caught, more get away; a deep front kills more
    crossers; a mobile war brings more surrenders (same seeds)."""
    base = {**OPEN, "routes__home__daily_opportunity": 0.02, "routes__surrender__daily_opportunity": 0.005}
    ref = simulate(scenario(**base), **SMALL).daily
    held = simulate(scenario(**base, war__enemy_holds_home_share=1.0), **SMALL).daily
    assert held["caught_deserting"].sum() < ref["caught_deserting"].sum()
    assert held["deserted"].sum() > ref["deserted"].sum()
    deep = simulate(scenario(**base, war__front_depth_km=40.0), **SMALL).daily
    assert deep["killed_crossing"].sum() / deep["attempts"].sum() > ref["killed_crossing"].sum() / ref["attempts"].sum()
    mobile = simulate(scenario(**base, war__manoeuvre=1.0), **SMALL).daily
    assert mobile["surrendered"].sum() > ref["surrendered"].sum()


def _homogeneous(**overrides: object):
    """Every soldier alike (one type, no spread in any trait, all line companies, exposure 1), nobody knows of any
    offer, nobody reveals himself, and every squad can take every route on day 0."""
    types = {f"force__types__{t}__share": 0.0 for t in ("mobilised", "convict", "conscript", "officer")}
    settings: dict[str, object] = dict(
        **types,
        force__types__contract__share=1.0,
        force__rear_share=0.0,
        force__line_share=1.0,
        force__assault_share=0.0,
        force__line_exposure=1.0,
        preferences__vsl_log_sd=0.0,
        preferences__income_log_sd=0.0,
        preferences__moral_cost_log_sd=0.0,
        preferences__threshold_sd=0.0,
        preferences__threshold_mean=-1.0,
        preferences__logit_scale=1.0,
        preferences__has_family_share=1.0,
        preferences__reveal_probability=0.0,
        information__initial_aware_share=0.0,
        regime__response__mode="static",
        combat__opportunity_line=1.0,
        routes__home__open=True,
        routes__home__daily_opportunity=1.0,
        routes__surrender__open=True,
        routes__surrender__daily_opportunity=1.0,
    )
    return no_offer(**{**settings, **overrides})


def _route_probabilities_by_hand(sc, overrun: bool = False) -> np.ndarray:
    """P(cross), P(home), P(surrender) of one soldier of `_homogeneous`, from the equations (eq. 1–17, 42–47); with
    `overrun`, of a soldier whose company is overrun, for whom staying means fighting on (eq. 53b)."""
    p, rp = engine_params(sc), mp.route_params(sc)
    ty = 0  # contract
    vsl = p.type_vsl_median_usd[ty]
    r, beta = p.discount_rate, p.present_bias
    hazard = d.death_hazard(p.death_hazard, 1.0, p.type_hazard_multiplier[ty], p.intensity)
    vsly = d.value_of_life_year(vsl, r)
    prison = d.prison_cost(p.sentence_years, vsly, p.prison_year_cost_vsly, beta, r)
    v_stay = d.stay_value(
        hazard,
        vsl,
        p.pay_usd_day,
        p.death_benefit_usd,
        p.family_benefit_weight,
        p.remaining_exposure_days,
        beta,
        r,
        0.0,
    )
    if overrun:
        v_stay = d.overrun_stay_value(v_stay, rp.fight_on_death, vsl, p.family_benefit_weight, p.death_benefit_usd)
    moral = d.moral_cost(
        p.moral_cost_median_usd * p.type_moral_cost_multiplier[ty], p.cohesion_cost_usd, p.cohesion_base, 0.0
    )
    v_caught = d.caught_value(vsl, p.execution_probability, p.sentence_served_share, prison, p.penal_death_risk)
    # crossing and surrender both end in enemy hands with no package (eq. 12 with c = 0)
    plain = d.success_value(
        0.0,
        moral,
        d.family_reprisal_cost(p.family_reprisal_usd, 1.0, 0.0, 0.0),
        d.exchange_return_cost(
            0.0, 0.0, p.exchange_return_probability, p.prosecution_if_returned, p.sentence_served_share, prison
        ),
        0.0,
        0.0,
    )
    monitors = p.class_monitors[1]
    pc = d.catch_probability(p.catch_base, p.arrest_constant, monitors, p.monitor_vision, 0.0)
    delta_cross = d.net_gain(
        pc,
        d.crossing_death_probability(p.killed_crossing_base, p.intensity, p.depth_ratio),
        plain,
        v_caught,
        -vsl,
        v_stay,
    )
    prison_home = d.prison_cost(rp.home_sentence_years, vsly, p.prison_year_cost_vsly, beta, r)
    v_home = d.home_success_value(0.0, moral, rp.home_family_exposure * p.family_reprisal_usd, rp.home_hiding_cost_usd)
    v_home_caught = d.home_caught_value(
        vsl,
        p.execution_probability,
        rp.home_returned,
        p.sentence_served_share,
        prison_home,
        p.penal_death_risk,
        v_stay,
        rp.home_return_penalty_usd,
    )
    delta_home = d.net_gain(rp.home_catch, 0.0, v_home, v_home_caught, -vsl, v_stay)
    pc_s = d.catch_probability(
        p.catch_base, p.arrest_constant, monitors * rp.surrender_monitor_factor, p.monitor_vision, 0.0
    )
    delta_surrender = d.net_gain(
        pc_s, d.surrender_death_probability(rp.surrender_death, p.intensity), plain, v_caught, -vsl, v_stay
    )
    z = np.array([delta_cross, delta_home, delta_surrender]) / p.utility_scale_usd - p.threshold_mean
    out = np.zeros(3)
    d.route_shares(z, np.ones(3, np.bool_), p.logit_scale, out)
    return out


# Day 0 of a broken front where every company is overrun: no squad has a daily chance to walk away or surrender, so
# both routes are open only through the overrun (eq. 53), and staying means fighting on.
OVERRUN_ON_DAY_0 = {
    "routes__home__daily_opportunity": 0.0,
    "routes__surrender__daily_opportunity": 0.0,
    "routes__surrender__overrun_probability": 1.0,
    "routes__surrender__fight_on_death_probability": 0.2,
    "war__collapse_days": 1,
}


@pytest.mark.parametrize("overrun", [False, True], ids=["every-route-open", "overrun"])
def test_route_choice_of_a_homogeneous_population_matches_the_hand_computed_probabilities(overrun: bool) -> None:
    """Day 0, every squad with every route: the share choosing each route is eq. 47's, within Monte Carlo error; in
    an overrun company (eq. 53) the routes are open through the overrun and staying is valued as fighting on."""
    sc = _homogeneous(**OVERRUN_ON_DAY_0) if overrun else _homogeneous()
    expected = _route_probabilities_by_hand(sc, overrun)
    assert (expected > 0.01).all() and expected.sum() < 0.9, expected  # every route is in play
    if overrun:  # fighting on makes leaving more attractive than the same day on a front that holds
        assert expected.sum() > _route_probabilities_by_hand(sc).sum() + 0.1
    res = simulate(sc, replicates=1, days=1, agents=99_000, seed=7)
    day = res.daily.iloc[0]
    w = res.represented / res.agents
    n = res.agents
    # nobody knows an offer, so nobody waits in a queue: a crossing ends at once, arrived, caught or killed
    caught_crossing = day["attempts"] - day["arrived"] - day["killed_crossing"]
    caught_surrendering = day["caught"] - day["caught_deserting"] - caught_crossing
    chose = {
        "cross": day["attempts"],
        "home": day["deserted"] + day["caught_deserting"],
        "surrender": day["surrendered"] + day["killed_surrendering"] + caught_surrendering,
    }
    for k, route in enumerate(chose):
        share = chose[route] / w / n
        se = math.sqrt(expected[k] * (1 - expected[k]) / n)
        assert abs(share - expected[k]) < 4.5 * se, (route, share, expected[k], se)


def test_soldiers_are_conserved_across_all_routes() -> None:
    """Establishment = present + everyone who left by any route or casualty − replacements; a deserter returned to
    his unit has not left; every route's choices end in one of its outcomes."""
    sc = scenario(
        **SALIENT,
        **OPEN,
        offer__rewards=["cross", "surrender"],
        routes__home__daily_opportunity=0.02,
        routes__surrender__daily_opportunity=0.02,
        combat__death_hazard=2e-3,
        combat__replacement_rate=0.05,
    )
    res = simulate(sc, **SMALL)
    daily = res.daily
    for col in ("arrived", "deserted", "surrendered", "caught_deserting", "returned_to_unit", "killed_surrendering"):
        assert daily[col].sum() > 0, col
    w = res.represented / res.agents
    for _, rep in daily.groupby("replicate"):
        gone = rep[["arrived", "deserted", "surrendered", "killed_crossing", "killed_surrendering"]].sum(axis=1)
        gone += rep["caught"] - rep["returned_to_unit"] + rep["killed_in_action"] + rep["wounded"]
        balance = (rep["serving"] + gone.cumsum() - rep["replaced"].cumsum()).to_numpy() / w
        assert np.allclose(balance, res.agents, rtol=0, atol=1e-6)
        assert (rep["returned_to_unit"] <= rep["caught_deserting"]).all()
        assert (rep["caught_deserting"] <= rep["caught"]).all()
    per = res.per_replicate
    lost = per["defected"] + per["deserted"] + per["surrendered_in_combat"]
    assert np.allclose(per["lost_share"], lost / sc.force.soldiers)


def _route_total(column: str, **overrides: object) -> float:
    res = simulate(scenario(**OPEN, **overrides), replicates=4, days=120, agents=4_950, seed=5)
    return float(res.daily[column].sum())


@pytest.mark.parametrize(
    ("column", "field", "levels"),
    [
        ("deserted", "routes__home__hiding_cost_usd", [0.0, 3e4, 1e5, 1e6]),
        ("caught_deserting", "routes__home__sentence_years", [0.0, 5.0, 15.0]),
        ("surrendered", "routes__surrender__death_probability", [0.0, 0.1, 0.4, 0.9]),
    ],
)
def test_a_higher_penalty_on_a_route_never_raises_its_use(column: str, field: str, levels: list[float]) -> None:
    """Monotonicity: a costlier or riskier route is chosen no more often (same seeds: common random numbers)."""
    base = {"routes__home__daily_opportunity": 0.02, "routes__surrender__daily_opportunity": 0.02}
    use = [_route_total(column, **base, **{field: level}) for level in levels]
    assert all(b <= a for a, b in itertools.pairwise(use)), use
    assert use[-1] < use[0], use


def test_an_offer_pays_only_for_the_routes_it_rewards() -> None:
    """A hotline that rewards surrender draws more surrenders than one that rewards only crossing, and pays them;
    an amnesty that rewards going home draws more deserters."""
    common = {**SALIENT, **OPEN, "routes__surrender__daily_opportunity": 0.02, "routes__home__daily_opportunity": 0.02}
    cross_only = simulate(scenario(**common), **SMALL).daily
    hotline = simulate(scenario(**common, offer__rewards=["cross", "surrender"]), **SMALL).daily
    amnesty = simulate(scenario(**common, offer__rewards=["cross", "home"]), **SMALL).daily
    assert hotline["surrendered"].sum() > cross_only["surrendered"].sum()
    paid_routes = hotline["paid"].sum() - cross_only["paid"].sum()
    assert paid_routes > 0
    assert amnesty["deserted"].sum() > cross_only["deserted"].sum()


def test_a_caught_deserter_is_returned_once_then_jailed() -> None:
    """With every deserter caught and every first offender returned, nobody gets away, the returned come back to
    serve, and a second desertion is not suspended (the record)."""
    sc = scenario(
        **OPEN,
        routes__home__daily_opportunity=0.05,
        routes__home__catch_probability=1.0,
        routes__home__returned_to_unit_probability=1.0,
        routes__home__hiding_cost_usd=0.0,
        routes__home__return_penalty_usd=0.0,
        regime__execution_probability=0.0,
        regime__response__mode="static",
    )
    daily = simulate(sc, **SMALL).daily
    assert daily["deserted"].sum() == 0
    returned, caught = daily["returned_to_unit"].sum(), daily["caught_deserting"].sum()
    assert returned > 0
    assert caught > returned  # second offences: jailed
    never = simulate(scenario(**OPEN, routes__home__returned_to_unit_probability=0.0), **SMALL).daily
    assert never["returned_to_unit"].sum() == 0


def test_rewarding_a_closed_route_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"offer.rewards .* routes.home.open = false"):
        scenario(routes__home__open=False, offer__rewards=["cross", "home"])
    with pytest.raises(ScenarioError, match="names a route twice"):
        scenario(**OPEN, offer__rewards=["cross", "cross"])


def test_the_default_war_opens_all_three_routes() -> None:
    """Russian soldiers in Ukraine cross, go home and surrender in combat (issue 12): the default opens all three."""
    assert scenario().routes.open_routes() == ("cross", "home", "surrender")


def test_the_front_collapse_by_hand() -> None:
    """Eq. 53: the collapse's days, a company's chance to be overrun (times intensity, capped at 1, none while
    surrender is closed) and the value of fighting on."""
    assert [mp.front_broken(t, 38, 4) for t in (37, 38, 41, 42)] == [False, True, True, False]
    assert not mp.front_broken(0, 0, 0)
    sc = scenario(**OPEN, war__collapse_start_day=5, war__collapse_days=3, routes__surrender__overrun_probability=0.1)
    assert [mp.overrun_probability(sc, t) for t in (4, 5, 7, 8)] == [0.0, 0.1, 0.1, 0.0]
    hot = scenario(**OPEN, war__collapse_days=3, routes__surrender__overrun_probability=0.4, combat__intensity=3.0)
    assert mp.overrun_probability(hot, 0) == 1.0
    closed = scenario(war__collapse_days=3, routes__surrender__open=False)
    assert mp.overrun_probability(closed, 0) == 0.0
    # V_stay − p_f·(VSL − w_f·B): −10,000 − 0.3·(1,000,000 − 0.5·200,000) = −280,000
    assert d.overrun_stay_value(-10_000.0, 0.3, 1e6, 0.5, 200_000.0) == pytest.approx(-280_000.0)
    assert d.overrun_stay_value(-10_000.0, 0.0, 1e6, 0.5, 200_000.0) == -10_000.0


COLLAPSE = {**OPEN, "war__collapse_start_day": 40, "war__collapse_days": 20}


def test_a_front_that_holds_draws_nothing() -> None:
    """No collapse, or a collapse that overruns nobody, is the same run to the last bit (no draw is made)."""
    ref = simulate(scenario(**OPEN), **SMALL).daily
    for overrides in (
        {**COLLAPSE, "routes__surrender__overrun_probability": 0.0},
        {**OPEN, "routes__surrender__overrun_probability": 0.5},
    ):
        other = simulate(scenario(**overrides), **SMALL).daily
        assert other.equals(ref), overrides


def test_a_broken_front_brings_surrenders_and_stragglers_on_its_days() -> None:
    """Overrun companies surrender and straggle (eq. 53): both rise, on the collapse's days only; a likelier overrun
    and a deadlier fight on never lower surrenders (same seeds: common random numbers)."""
    ref = simulate(scenario(**OPEN), **SMALL).daily
    broken = simulate(scenario(**COLLAPSE, routes__surrender__overrun_probability=0.05), **SMALL).daily
    days = broken["day"].between(40, 59)
    assert broken["surrendered"].sum() > 3 * ref["surrendered"].sum()
    assert broken.loc[days, "surrendered"].sum() > 5 * ref.loc[days, "surrendered"].sum()
    assert (
        broken["caught_deserting"].sum() + broken["deserted"].sum()
        > ref["caught_deserting"].sum() + ref["deserted"].sum()
    )
    before = broken["day"] < 40
    assert broken.loc[before].equals(ref.loc[before])  # the same run until the front breaks
    use = [
        simulate(scenario(**COLLAPSE, routes__surrender__overrun_probability=eps), **SMALL).daily["surrendered"].sum()
        for eps in (0.0, 0.01, 0.05, 0.3)
    ]
    assert all(b >= a for a, b in itertools.pairwise(use)) and use[-1] > use[0], use
    use = [
        simulate(
            scenario(
                **COLLAPSE,
                routes__surrender__overrun_probability=0.05,
                **{"routes__surrender__fight_on_death_probability": pf},
            ),
            **SMALL,
        )
        .daily["surrendered"]
        .sum()
        for pf in (0.0, 0.2, 0.6)
    ]
    assert all(b >= a for a, b in itertools.pairwise(use)) and use[-1] > use[0], use
