"""Hand-computed checks of the decision equations (docs/model.md eq. 1–19)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from defection.model import decision as d
from defection.model.information import awareness_hazard
from defection.model.parameters import engine_params, external_reach, route_params
from defection.model.population import Traits

from .conftest import scenario


def test_crra_utility_hand_computed() -> None:
    # W = 9,700, η = 0.5, x = 100,000: √9700 · 2 · (√109700 − √9700) = 45,840.78
    assert d.crra_utility(100_000.0, 9_700.0, 0.5) == pytest.approx(45_840.78, abs=0.01)
    # linear for η = 0 and ≈ x for small x
    assert d.crra_utility(5_000.0, 9_700.0, 0.0) == pytest.approx(5_000.0)
    assert d.crra_utility(1.0, 9_700.0, 0.5) == pytest.approx(1.0, rel=1e-4)
    # η → 1 is W·log(1 + x/W)
    assert d.crra_utility(10_000.0, 10_000.0, 1.0) == pytest.approx(10_000.0 * math.log(2.0))
    assert d.crra_utility(-5.0, 9_700.0, 0.5) == 0.0


def test_catch_probability_epstein_form() -> None:
    # Epstein's k = 2.3 gives P ≈ 0.9 at a monitor ratio of 1 (eq. 9, docs/model.md §7.3; [C2])
    assert d.catch_probability(0.0, 2.3, 1.0, 1.0, 0.0) == pytest.approx(0.8997, abs=1e-4)
    # defaults: p0 = 0.05, M = 0.05, V = 6 → 0.05 + 0.95·(1 − e^{−0.69}) = 0.523503
    assert d.catch_probability(0.05, 2.3, 0.05, 6.0, 0.0) == pytest.approx(0.523503, abs=1e-6)
    # two co-defectors divide the effective vision by 3: 0.05 + 0.95·(1 − e^{−0.23}) = 0.245193
    assert d.catch_probability(0.05, 2.3, 0.05, 6.0, 2.0) == pytest.approx(0.245193, abs=1e-6)
    # safety in numbers: strictly decreasing in D
    probs = [d.catch_probability(0.05, 2.3, 0.05, 6.0, k) for k in range(10)]
    assert all(a > b for a, b in itertools.pairwise(probs))


def test_annuity_and_discounting() -> None:
    assert d.annuity_factor(0.5, 3.0) == pytest.approx(0.875)
    assert d.annuity_factor(1.0, 7.0) == 7.0
    assert d.annuity_factor(0.9, 0.0) == 0.0
    assert d.daily_discount(0.2) ** 365 == pytest.approx(1 / 1.2)


def test_cash_value_present_bias_and_deferral() -> None:
    u = d.crra_utility(100_000.0, 9_700.0, 0.5)
    assert d.cash_value(100_000.0, 1.0, 2.0, 1, 9_700.0, 0.5, 0.85, 0.2) == pytest.approx(u)
    # all deferred two years: β·δ²·U(B) = 0.85 / 1.44 · U
    assert d.cash_value(100_000.0, 0.0, 2.0, 1, 9_700.0, 0.5, 0.85, 0.2) == pytest.approx(0.85 / 1.44 * u)
    # deferral never adds value
    assert d.cash_value(1e5, 0.2, 2.0, 3, 9_700.0, 0.5, 0.85, 0.2) < d.cash_value(
        1e5, 0.8, 2.0, 3, 9_700.0, 0.5, 0.85, 0.2
    )


def test_asylum_value_undiscounted() -> None:
    # 30 years × (25,000 − 10,000) − 40,000 exile cost
    assert d.asylum_value(25_000.0, 10_000.0, 1.0, 0.0, 30, 40_000.0) == pytest.approx(410_000.0)


def test_prison_cost_certainty_beats_severity() -> None:
    vsly = d.value_of_life_year(1.5e6, 0.2)
    base = 0.01 * d.prison_cost(10.0, vsly, 0.5, 0.85, 0.2)
    doubled_certainty = 0.02 * d.prison_cost(10.0, vsly, 0.5, 0.85, 0.2)
    doubled_severity = 0.01 * d.prison_cost(20.0, vsly, 0.5, 0.85, 0.2)
    assert doubled_certainty == pytest.approx(2 * base)
    assert base < doubled_severity < doubled_certainty


def test_net_gain_hand_computed() -> None:
    # q = 0.5·0.9 = 0.45: 0.45·100 + 0.5·(−200) + 0.5·0.1·(−1000) − (−50) = −55
    assert d.net_gain(0.5, 0.1, 100.0, -200.0, -1000.0, -50.0) == pytest.approx(-55.0)


def test_option_value_cases() -> None:
    assert d.option_value(-10.0, -5.0, 0.9) == 0.0  # waiting to lose less is not an option value
    assert d.option_value(10.0, 10.0, 0.9) == 0.0  # no expected rise: act now
    assert d.option_value(10.0, 30.0, 0.9) == pytest.approx(17.0)  # 0.9·30 − 10
    assert d.option_value(-10.0, 30.0, 0.9) == pytest.approx(27.0)  # an offer worth waiting for


def test_logit_and_credibility() -> None:
    assert d.logit_probability(0.0, 0.3) == 0.5
    assert d.logit_probability(0.3 * math.log(9.0), 0.3) == pytest.approx(0.9)
    assert d.credibility(2.0, 2.0, 0.0, 0.0) == 0.5
    assert d.credibility(2.0, 2.0, 2.0, 0.0) == pytest.approx(4.0 / 6.0)
    assert d.reveal_probability(0.3, 10.0, 0.05) == pytest.approx(0.3 * math.exp(-0.5))


def test_awareness_hazard_and_reach() -> None:
    assert awareness_hazard(0.01, 0.2, 0.0) == pytest.approx(0.01)
    assert awareness_hazard(0.0, 0.2, 0.5) == pytest.approx(0.1)
    assert awareness_hazard(0.01, 0.2, 0.5) == pytest.approx(1 - 0.99 * 0.9)
    sc = scenario(
        information__channels=[
            {"name": "a", "daily_reach": 0.1, "coverage": 0.5, "blocked": 0.2},
            {"name": "b", "daily_reach": 0.05},
        ]
    )
    assert external_reach(sc) == pytest.approx(1 - (1 - 0.04) * (1 - 0.05))


def test_one_soldier_hand_computed() -> None:
    """All the terms of eq. 12–14 for one soldier, with r = 0 and η = 0 so they can be done by hand."""
    sc = scenario(
        preferences__discount_rate=0.0,
        preferences__present_bias=1.0,
        preferences__crra=0.0,
        preferences__cohesion_cost_usd=20_000.0,
        preferences__utility_scale_usd=100_000.0,
        combat__death_hazard=1e-4,
        combat__intensity=1.0,
        combat__pay_usd_month=0.0,
        combat__death_benefit_usd=100_000.0,
        combat__family_benefit_weight=0.5,
        combat__remaining_exposure_days=365.0,
        regime__sentence_years=5.0,
        regime__prison_year_cost_vsly=0.5,
        regime__execution_probability=0.1,
        regime__sentence_served_share=0.3,
        regime__penal_death_risk=0.2,
        regime__family_reprisal_usd=10_000.0,
        regime__exchange_return_probability=0.3,
        regime__prosecution_if_returned=0.5,
        regime__assassination_risk=0.002,
        offer__cash_usd=100_000.0,
        offer__share_on_arrival=0.5,
        offer__deferred_delay_years=2.0,
        offer__deferred_instalments=1,
        offer__asylum_probability=0.4,
        offer__resettled_income_usd_year=25_000.0,
        offer__education=True,
        offer__education_premium_usd_year=5_000.0,
        offer__exile_cost_usd=50_000.0,
        offer__working_life_years=10,
        offer__trip_value_usd=5_000.0,
        offer__family_extraction_probability=0.0,
        offer__protection=0.5,
        offer__threat__prosecution_probability=0.01,
        offer__threat__sentence_years=10.0,
        offer__threat__amnesty_for_defectors=True,
        information__offer_noise_log_sd=0.0,
    )
    p = engine_params(sc)
    one = np.array
    traits = Traits(
        soldier_type=one([0], np.int8),
        vsl=one([1e6]),
        income=one([10_000.0]),
        moral=one([50_000.0]),
        threshold=one([0.0]),
        family=one([1], np.int8),
        offer_noise=one([0.0]),
    )
    v_succ, v_caught, v_killed, v_stay, perceived, cash, hazard, package = d._soldier_terms(
        0,
        True,
        100_000.0,
        0.5,
        0.0,
        1.0,
        1.0,
        p,
        d.day_terms(p, route_params(sc)),
        traits,
    )
    # VSLY = 1e6/40 = 25,000; cost(5 y) = 5·0.5·25,000 = 62,500; cost(10 y) = 125,000
    # package = 0.5·(100,000 + 0.4·(10·20,000 − 50,000) + 5,000) = 82,500
    # moral = 50,000 + 20,000·1·1 = 70,000; family = 10,000; return = 0.8·0.3·0.5·0.3·62,500 = 2,250
    # assassination = 0.5·0.4·0.002·0.5·1e6 = 200; amnesty → no threat to defectors
    assert package == pytest.approx(82_500)
    assert v_succ == pytest.approx(82_500 - 70_000 - 10_000 - 2_250 - 200)
    # caught = −(0.1·1e6 + 0.9·(0.3·62,500 + 0.2·1e6)) = −296,875
    assert v_caught == pytest.approx(-296_875.0)
    assert v_killed == -1e6
    assert perceived == 100_000.0 and cash == pytest.approx(100_000.0) and hazard == pytest.approx(1e-4)
    # stay = Σ_{τ=1}^{365} 0.9999^τ · (0 − 1e-4·(1e6 − 0.5·1e5)) − 0.01·125,000
    annuity = sum(0.9999**k for k in range(1, 366))
    assert v_stay == pytest.approx(annuity * (-95.0) - 1_250.0)
    # the same soldier unaware of the offer: no package, no threat, no asylum shield against return
    u_succ, _, _, u_stay, _, _, _, u_package = d._soldier_terms(
        0,
        False,
        100_000.0,
        0.5,
        0.0,
        1.0,
        1.0,
        p,
        d.day_terms(p, route_params(sc)),
        traits,
    )
    assert u_succ == pytest.approx(-70_000 - 10_000 - 0.3 * 0.5 * 0.3 * 62_500)
    assert u_stay == pytest.approx(annuity * (-95.0))
    assert u_package == 0.0


def test_strength_percentile_matches_numpy_and_a_hand_computed_case() -> None:
    from defection.model.dynamics import strength_percentile

    # companies of 10 with 4, 6, 8 and 10 present: strengths .4 .6 .8 1; the median is halfway between .6 and .8
    present = np.array([10, 4, 8, 6], dtype=np.int32)
    assert strength_percentile(present, 10, 50.0) == pytest.approx(0.7)
    assert strength_percentile(present, 10, 0.0) == pytest.approx(0.4)
    assert strength_percentile(present, 10, 100.0) == pytest.approx(1.0)
    rng = np.random.default_rng(7)
    for _ in range(100):
        cs = int(rng.integers(1, 120))
        x = rng.integers(0, cs + 1, size=int(rng.integers(1, 60))).astype(np.int32)
        for q in (10.0, 25.0, 50.0, 75.0, 90.0):
            assert strength_percentile(x, cs, q) == pytest.approx(float(np.percentile(x / cs, q)), abs=1e-12)


# ----------------------------------------------------------------------------- every equation, one hand-computed case
def test_death_hazard_and_crossing_death_are_capped_products() -> None:
    assert d.death_hazard(0.001, 2.0, 1.5, 0.5) == pytest.approx(0.001 * 2.0 * 1.5 * 0.5)  # eq. 1
    assert d.death_hazard(0.5, 2.0, 2.0, 1.0) == 1.0
    assert d.crossing_death_probability(0.05, 1.5, 1.0) == pytest.approx(0.075)  # eq. 10
    assert d.crossing_death_probability(0.6, 2.0, 1.0) == 1.0


def test_discounts_and_unit_conversion() -> None:
    from defection.model.parameters import per_month_to_per_day, precedent_decay

    assert d.yearly_discount(0.25) == pytest.approx(0.8)  # eq. 3, δ_y = 1/(1 + r)
    assert per_month_to_per_day(365.0) == pytest.approx(12.0)
    assert per_month_to_per_day(1_000.0) == pytest.approx(32.876712328767)
    assert precedent_decay(1.0) == 0.5 and precedent_decay(2.0) == pytest.approx(math.sqrt(0.5))  # eq. 24
    assert d.value_of_life_year(4e6, 0.0) == pytest.approx(1e5)  # eq. 8b with r = 0: VSL/40


def test_offer_perception_and_package() -> None:
    assert d.perceived_offer(100.0, 0.0, 1.7) == 100.0  # eq. 25: no noise, no misperception
    assert d.perceived_offer(100.0, 0.2, 1.0) == pytest.approx(100.0 * math.exp(0.2 - 0.02))
    assert d.offer_value(0.5, 10.0, 0.4, 20.0, 2.0) == pytest.approx(0.5 * (10.0 + 8.0 + 2.0))  # eq. 5
    assert d.expected_offer(100.0, 0.5, 1.2) == pytest.approx(110.0)  # eq. 25b
    assert d.expected_offer(100.0, 0.0, 3.0) == 100.0  # no belief, no expected rise


def test_eq12_terms_hand_computed() -> None:
    assert d.moral_cost(50.0, 20.0, 0.5, 0.25) == pytest.approx(50.0 + 20.0 * 0.5 * 0.75)  # eq. 12a
    assert d.moral_cost(50.0, 20.0, 0.5, 1.5) == 50.0  # share above 1 cannot make it negative
    assert d.family_reprisal_cost(10_000.0, 1.0, 0.5, 0.4) == pytest.approx(8_000.0)  # 10,000·(1 − 0.2)
    assert d.family_reprisal_cost(10_000.0, 0.0, 0.5, 0.4) == 0.0
    # X = (1 − 0.5·0.4)·0.3·0.5·0.3·62,500 = 0.8·0.045·62,500 = 2,250
    assert d.exchange_return_cost(0.5, 0.4, 0.3, 0.5, 0.3, 62_500.0) == pytest.approx(2_250.0)
    assert d.defector_threat_cost(1.0, 1_250.0) == 0.0 and d.defector_threat_cost(0.0, 1_250.0) == 1_250.0
    assert d.assassination_cost(0.5, 0.4, 0.002, 0.5, 1e6) == pytest.approx(200.0)
    assert d.stayer_threat_cost(0.01, 125_000.0) == pytest.approx(1_250.0)  # eq. 7
    assert d.success_value(82_500.0, 70_000.0, 10_000.0, 2_250.0, 0.0, 200.0) == pytest.approx(50.0)


def test_caught_and_stay_values() -> None:
    # eq. 13: −(0.1·1e6 + 0.9·(0.3·62,500 + 0.2·1e6))
    assert d.caught_value(1e6, 0.1, 0.3, 62_500.0, 0.2) == pytest.approx(-296_875.0)
    # eq. 7 with r = 0, β = 1, no hazard: 10 days of pay 5, minus the threat 3
    assert d.stay_value(0.0, 1e6, 5.0, 0.0, 0.0, 10.0, 1.0, 0.0, 3.0) == pytest.approx(47.0)
    # one day, hazard 0.1: β·δ(1 − p)·(w − p·(VSL − ωD)) = 0.5·0.9·(5 − 0.1·(100 − 0.5·20))
    assert d.stay_value(0.1, 100.0, 5.0, 20.0, 0.5, 1.0, 0.5, 0.0, 0.0) == pytest.approx(0.5 * 0.9 * (5.0 - 9.0))


def test_propensity_reveal_and_squad_peers() -> None:
    # eq. 17: (Δ − OV)/V0 − τ + φ·peer + ψ·prec = (300 − 100)/100 − 1 + 0.5·0.4 + 2·0.1
    assert d.attempt_propensity(300.0, 100.0, 100.0, 1.0, 0.4, 0.1, 0.5, 2.0) == pytest.approx(1.4)
    assert d.reveal_probability(0.5, 2.0, 0.0) == 0.5  # eq. 16
    assert d.reveal_probability(0.5, 2.0, 0.5) == pytest.approx(0.5 / math.e)
    assert d.squad_peer_share(2, 8, 2) == 0.25 and d.squad_peer_share(1, 8, 2) == 0.0  # eq. 17, gated at k_cc
    assert d.success_probability(0.2, 0.1) == pytest.approx(0.72)  # eq. 11


def test_waiting_terms_eq19b() -> None:
    # δ_k = β·[δ_d·(1 − p^K)·π_opp]^k with r = 0: 0.9·(0.5·0.8)^2
    assert d.waiting_discount(0.9, 0.0, 0.5, 0.8, 2) == pytest.approx(0.9 * 0.16)
    assert d.gain_if_waiting(10.0, 0.5, 0.8, 300.0, 200.0) == pytest.approx(10.0 + 0.5 * 0.8 * 100.0)


def test_guided_risks_eq34b() -> None:
    assert d.wait_detection(0.1, 2.0) == pytest.approx(0.19)  # 1 − 0.9²
    assert d.wait_detection(0.1, 0.0) == 0.0
    assert d.guided_catch_probability(0.5, 0.2) == pytest.approx(0.6)  # 1 − 0.5·0.8
    assert d.guided_crossing_death_probability(0.04, 0.25) == pytest.approx(0.01)
    from defection.model.programme import expected_wait_days

    assert expected_wait_days(30.0, 10.0) == 3.0
    assert expected_wait_days(5.0, 0.0) == pytest.approx(5e9)  # no capacity: an effectively endless wait


def test_crossing_resolution_matches_its_draws() -> None:
    """§7.6: caught iff u_catch < p^c (executed iff u_exec < π_exec), else killed iff u_cross < p^x, else arrived."""
    from defection.model import rng
    from defection.model.outputs import ARRIVED, CAUGHT, EXECUTED, KILLED_CROSSING

    k_catch, k_cross, k_exec = (np.uint64(rng.stream_key(1, 0, 3, s)) for s in (rng.CATCH, rng.CROSSING, rng.EXECUTION))
    seen = set()
    for i in range(200):
        u_c, u_x, u_e = rng.uniform(k_catch, i), rng.uniform(k_cross, i), rng.uniform(k_exec, i)
        out = d.crossing_outcome(i, 0.4, 0.3, 0.5, k_catch, k_cross, k_exec)
        expected = (EXECUTED if u_e < 0.5 else CAUGHT) if u_c < 0.4 else (KILLED_CROSSING if u_x < 0.3 else ARRIVED)
        assert out == expected
        seen.add(out)
    assert seen == {ARRIVED, CAUGHT, EXECUTED, KILLED_CROSSING}
    assert d.crossing_outcome(7, 0.0, 0.0, 1.0, k_catch, k_cross, k_exec) == ARRIVED
    assert d.crossing_outcome(7, 1.0, 0.0, 1.0, k_catch, k_cross, k_exec) == EXECUTED


def test_count_outcome_counters() -> None:
    from defection.model import outputs as pop

    counts = np.zeros((2, pop.N_COUNTERS), np.int64)
    for outcome in (pop.EXECUTED, pop.CAUGHT, pop.KILLED_CROSSING, pop.ARRIVED):
        d.count_outcome(counts, 1, outcome, 2)
    assert counts[0].sum() == 0
    assert counts[1, pop.C_CAUGHT] == 2 and counts[1, pop.C_EXECUTED] == 1  # an execution is also a catch
    assert counts[1, pop.C_KILLED_X] == 1 and counts[1, pop.C_ARRIVED] == 1 and counts[1, pop.C_ARRIVED_TYPE + 2] == 1


def test_programme_and_information_equations() -> None:
    from defection.model.information import decayed_evidence, decayed_precedent
    from defection.model.programme import (
        adaptive_expectation,
        adaptive_raise,
        fraudulent_claimants,
        impersonators,
        undetected,
    )

    assert adaptive_raise(100.0, 0.5, 200.0, 0.01, 0.02, False) == 150.0  # eq. 27b: below target → raise
    assert adaptive_raise(150.0, 0.5, 200.0, 0.01, 0.02, False) == 200.0  # … up to the ceiling
    assert adaptive_raise(100.0, 0.5, 200.0, 0.03, 0.02, False) == 100.0  # at or above target → hold
    assert adaptive_expectation(0.01, 0.03, 0.25) == pytest.approx(0.015)  # eq. 25c
    assert impersonators(10.0, 200_000.0, 0.1, 1.0) == pytest.approx(2.0)  # eq. 35b: 10·0.1·2^1
    assert impersonators(10.0, 0.0, 0.1, 1.0) == 0.0
    # Fr = 2 + 10·0.05 + 10·(1 − 0.6)·0.5·0.2 = 2 + 0.5 + 0.4
    assert fraudulent_claimants(2.0, 10.0, 0.05, 0.6, 0.5, 0.2) == pytest.approx(2.9)
    assert undetected(2.9, 0.9) == pytest.approx(0.29)  # eq. 35c
    assert decayed_evidence(4.0, 0.5, 1.0) == 3.0  # eq. 26
    assert decayed_precedent(0.2, 0.5, 0.05) == pytest.approx(0.15)  # eq. 24


def test_regime_and_cost_equations() -> None:
    from defection.model.economics import annuity, discount_factor, regime_loss
    from defection.model.regime import exit_ratio

    # eq. 28a: 30 exits of 1,000 over 15 days is 6 % a month; tolerated 2 % → 3
    assert exit_ratio(30.0, 1_000.0, 15, 0.02) == pytest.approx(3.0)
    assert exit_ratio(30.0, 0.0, 15, 0.02) == 0.0
    assert regime_loss(10.0, 1_000.0, 500.0) == 10_500.0  # eq. 32
    assert discount_factor(0.25, 2.0) == pytest.approx(0.64)  # eq. 36
    assert annuity(0.25, 2, 1.0) == pytest.approx(0.8 + 0.64)  # eq. 36b


def test_engine_fields_are_named_after_the_scenario() -> None:
    """Every EngineParams field is a scenario leaf name, or a derived quantity listed (with its source) in DERIVED."""
    from defection.model.parameters import DERIVED, EngineParams
    from defection.scenario import iter_params

    leaves = {info.path.rsplit(".", 1)[-1] for info in iter_params()}
    unnamed = [f for f in EngineParams._fields if f not in leaves and f not in DERIVED]
    assert unnamed == []
    assert sorted(set(DERIVED) - set(EngineParams._fields)) == []  # no stale entries
    assert sorted(set(DERIVED) & leaves) == []  # a leaf name is never 'derived'
    p = engine_params(scenario())
    assert p.share_on_arrival == scenario().offer.share_on_arrival
    assert p.pay_usd_day == pytest.approx(scenario().combat.pay_usd_month * 12.0 / 365.0)


def test_programme_cost_components_by_hand() -> None:
    """Eqs. 36a–l, each computed by hand from its line in docs/model.md §7.12."""
    from defection.model import economics as ec

    assert ec.cash_on_arrival_cost(0.5, 100_000.0, 3.0) == 150_000.0  # φ·B·n
    nominal, pv = ec.deferred_cash_cost(0.5, 100_000.0, 3.0, instalments=2, delay_years=1.0, rate=0.1, now=0.0)
    assert nominal == 150_000.0  # (1 − φ)·B·n
    assert pv == pytest.approx(75_000.0 / 1.1 + 75_000.0 / 1.1**2)  # two instalments, 1 and 2 years out
    assert ec.topup_cost(20_000.0, 50.0) == 1_000_000.0  # ΔB · earlier defectors
    assert ec.per_person_cost(2_000.0, 7.0) == 14_000.0  # trip, screening, extraction
    nominal, pv = ec.yearly_support_cost(10_000.0, 2.0, 3, rate=0.1, now=0.0)
    assert nominal == 60_000.0 and pv == pytest.approx(20_000.0 * (1 + 1 / 1.1 + 1 / 1.1**2))
    nominal, pv = ec.pow_upkeep_cost(300.0, 30.0, 4.0, rate=0.1, now=0.0)  # 30 months → spread over 2 years
    assert nominal == 36_000.0 and pv == pytest.approx(36_000.0 * (1 + 1 / 1.1) / 2)
    assert ec.pow_upkeep_cost(300.0, 3.0, 4.0, rate=0.1, now=0.0) == (3_600.0, 3_600.0)  # under a year: one year
    assert ec.communications_cost(1_000.0, [0.5, 0.25], is_open=True) == 750.0
    assert ec.communications_cost(1_000.0, [0.5, 0.25], is_open=False) == 0.0
    assert ec.fraud_cost(10.0, 0.5, 100_000.0, 2_000.0) == 520_000.0  # Fr·(φ·B + c_trip)


def test_every_equation_of_the_model_doc_is_a_named_function() -> None:
    """Each equation number of docs/model.md is cited by the docstring of a function or class in the package
    ("Eq. 12: …", "Eqs. 28–31: …"), so a reader can go from the equation to its code."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    defined = set(re.findall(r"\beq\. ?(\d+[a-z]?)\b", (root / "docs" / "model.md").read_text(), flags=re.I))
    cited: set[str] = set()
    for path in (root / "src" / "defection").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node) or ""
                for m in re.finditer(r"\beqs?\. ?(\d+[a-z]?(?:\s*(?:[–-]|,|and)\s*\d+[a-z]?)*)", doc, flags=re.I):
                    for part in re.split(r"\s*(?:,|and)\s*", m.group(1)):
                        span = re.fullmatch(r"(\d+)\s*[–-]\s*(\d+)", part)
                        if span:
                            cited |= {str(k) for k in range(int(span.group(1)), int(span.group(2)) + 1)}
                        else:
                            cited |= set(re.split(r"\s*[–-]\s*", part))
    assert len(defined) > 50
    assert sorted(defined - cited) == []


def test_replacement_probability_by_hand() -> None:
    """Eq. 21b: the day's refill chance is ρ_rep while the expected refills ρ_rep·v stay within the capacity ρ_max,
    else ρ_max / v, so that ρ·v = ρ_max; ρ_max = 0 switches the cap off."""
    from defection.model.dynamics import replacement_probability

    assert replacement_probability(0.02, 0.00167, 0.05) == 0.02  # 0.02 × 5% = 0.1% ≤ 0.167%
    assert replacement_probability(0.02, 0.00167, 0.10) == pytest.approx(0.0167)  # 0.02 × 10% = 0.2% > 0.167%
    assert replacement_probability(0.02, 0.00167, 0.10) * 0.10 == pytest.approx(0.00167)
    assert replacement_probability(0.02, 0.0, 0.5) == 0.02
    assert replacement_probability(0.0, 0.00167, 0.5) == 0.0
    assert replacement_probability(0.02, 0.00167, 0.0) == 0.02
