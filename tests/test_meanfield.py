"""Mean-field docking: in a homogeneous world with every network effect switched off, the simulated daily hazard
of deciding to leave equals the closed form P(opp)·Λ(z/σ) (docs/model.md eq. 15, 17, 17b).

The closed form is re-derived here in plain Python from the equations (eq. 1–14, 25–26b, 34b), not by calling the
engine's scalar functions, so a change in any payoff term, in how `decide` composes them, or in how
`engine_params` maps the scenario onto the kernels' inputs moves the simulation away from the prediction.

What makes the world mean-field (every soldier has the same z every day):

- one soldier type, one exposure class (line), no spread in VSL, income, moral cost or threshold; every soldier
  has a family exposed to reprisals (so F_i is the same for all) and perceives the offer without noise (eq. 25);
- no peer, precedent or squad-cascade terms: φ = ψ = 0, no one reveals willingness (r0 = 0, so D = 0 in eq. 9 and
  eq. 18 reduces to independent individual decisions), cohesion cost μ = 0 (so eq. 12a does not move as comrades
  leave);
- credibility fixed at the prior mean α0/(α0 + β0) (all evidence weights zero, no events, static regime: no
  propaganda, levers constant);
- a flat offer, so the option value of waiting (eq. 19) is zero; no detection while waiting for extraction
  (h_q = 0 in eq. 34b), so the guided catch probability does not depend on the queue's length;
- everyone aware from day 0 and no replacements (a replacement arrives unaware).

The opportunity is one draw per squad per day (eq. 15), so the per-soldier hazard is P(opp)·Λ(z/σ) but attempts are
correlated within a squad; the standard error below includes that design effect.

An aware soldier who decides to go contacts the programme and joins its queue (counter ``contacts``); ``attempts``
counts him only when he is extracted, a day or more later. An unaware soldier (here: a world with no programme)
crosses on his own the same day (counter ``attempts``). Either way the counter is today's decisions, and the
soldiers able to decide today are those still SERVING: present yesterday and not waiting in the queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from defection import simulate
from defection.scenario import Scenario

from .conftest import scenario

AGENTS = 396_000  # 4,000 companies of 99; force.soldiers = AGENTS, so each agent is one soldier
DAYS = 50
SEED = 11
SIGMAS = 4.5  # tolerance in standard errors
REL_TOL = 0.05  # and in relative error

TYPE = "mobilised"
HOMOGENEOUS = {
    # one type, one exposure class
    **{
        f"force__types__{name}__share": float(name == TYPE)
        for name in ("contract", "mobilised", "convict", "conscript", "officer")
    },
    "force__rear_share": 0.0,
    "force__line_share": 1.0,
    "force__assault_share": 0.0,
    "force__soldiers": AGENTS,
    # no heterogeneity
    "preferences__vsl_log_sd": 0.0,
    "preferences__income_log_sd": 0.0,
    "preferences__moral_cost_log_sd": 0.0,
    "preferences__threshold_sd": 0.0,
    "preferences__has_family_share": 1.0,
    "information__offer_noise_log_sd": 0.0,
    # no social terms
    "preferences__peer_weight": 0.0,
    "preferences__precedent_weight": 0.0,
    "preferences__cohesion_cost_usd": 0.0,
    "preferences__reveal_probability": 0.0,
    # fixed credibility, static regime, no replacements, everyone aware on day 0
    "credibility__prior_alpha": 3.0,
    "credibility__prior_beta": 1.0,
    "credibility__weight_arrival": 0.0,
    "credibility__weight_killed": 0.0,
    "programme__weight_caught_waiting": 0.0,
    "programme__events": [],
    "regime__response__mode": "static",
    "combat__replacement_rate": 0.0,
    "information__initial_aware_share": 1.0,
    # the queue: no detection while waiting, and room to extract everyone the next day
    "programme__queue_detection_per_day": 0.0,
    "programme__extraction_capacity_per_day": 1e5,
    # a moderate hazard: z/σ ≈ −4, a squad opportunity on a quarter of days
    "combat__opportunity_line": 0.25,
    "regime__monitors_per_soldier": 0.02,
    "preferences__moral_cost_median_usd": 50_000.0,
    "preferences__threshold_mean": -0.4,
    "offer__cash_usd": 100_000.0,
}
# no programme (it opens after the horizon): plain surrender (eq. 12 with c = 0, unguided crossing),
# shifted back to a moderate hazard
NO_PROGRAMME = {
    "offer__cash_usd": 0.0,
    "offer__start_day": 3650,
    "preferences__threshold_mean": -1.0,
    "preferences__logit_scale": 0.25,
}


def world(**overrides: object) -> Scenario:
    return scenario(**{**HOMOGENEOUS, **overrides})


# ----------------------------------------------------------------------------- the closed form
def utility(x: float, wealth: float, eta: float) -> float:
    """Eq. 2 (η < 1)."""
    return wealth**eta * ((wealth + x) ** (1 - eta) - wealth ** (1 - eta)) / (1 - eta) if x > 0 else 0.0


def annuity(discount: float, periods: float) -> float:
    """Eq. 3: Σ_{τ=1}^{T} δ^τ."""
    return discount * (1 - discount**periods) / (1 - discount)


@dataclass(frozen=True)
class Prediction:
    delta: float  # Δ, eq. 14 (USD)
    z: float  # eq. 17
    willing: float  # Λ(z/σ), eq. 17b
    hazard: float  # P(opp)·Λ(z/σ)
    p_opp: float


def closed_form(sc: Scenario) -> Prediction:
    """The daily probability that a serving soldier of the homogeneous world decides to leave."""
    f, pr, cb, cr, rg, of, cd = sc.force, sc.preferences, sc.combat, sc.crossing, sc.regime, sc.offer, sc.credibility
    ty = getattr(f.types, TYPE)
    aware = of.start_day == 0 and sc.information.initial_aware_share == 1.0  # the programme is open from day 0
    beta, r, eta = pr.present_bias, pr.discount_rate, pr.crra
    d_year, d_day = 1 / (1 + r), (1 + r) ** (-1 / 365)
    wealth, vsl = pr.income_usd_year, ty.vsl_median_usd
    p_kill = cb.death_hazard * f.line_exposure * ty.hazard_multiplier * cb.intensity  # eq. 1
    vsly = vsl / annuity(d_year, 40)  # eq. 8b

    def prison(years: float) -> float:  # eq. 13b
        return beta * annuity(d_year, years) * rg.prison_year_cost_vsly * vsly

    c = cd.prior_alpha / (cd.prior_alpha + cd.prior_beta) if aware else 0.0  # eq. 26b, no evidence
    threat = of.threat.prosecution_probability * prison(of.threat.sentence_years) if aware else 0.0  # C_w
    package = 0.0
    if aware:
        cash, now, n_pay = of.cash_usd, of.share_on_arrival, of.deferred_instalments  # eq. 25: no noise
        value_cash = utility(now * cash, wealth, eta) + beta * sum(  # eq. 4
            d_year ** (of.deferred_delay_years + k) * utility((1 - now) * cash / n_pay, wealth, eta)
            for k in range(n_pay)
        )
        education = of.education_premium_usd_year if of.education else 0.0
        value_asylum = (
            beta
            * annuity(d_year, of.working_life_years)
            * (  # eq. 6
                of.resettled_income_usd_year + education - wealth
            )
            - of.exile_cost_usd
        )
        package = c * (
            value_cash
            + of.asylum_probability * value_asylum  # eq. 5
            + utility(of.trip_value_usd, wealth, eta)
        )
    asylum_p = of.asylum_probability if aware else 0.0
    moral = pr.moral_cost_median_usd * ty.moral_cost_multiplier  # eq. 12a with μ = 0
    family = rg.family_reprisal_usd * (1 - c * (of.family_extraction_probability if aware else 0.0))
    returned = (
        (1 - c * asylum_p)
        * rg.exchange_return_probability
        * rg.prosecution_if_returned
        * rg.sentence_served_share
        * prison(rg.sentence_years)
    )
    threat_defector = (0.0 if of.threat.amnesty_for_defectors else 1.0) * threat
    assassination = c * asylum_p * rg.assassination_risk * (1 - of.protection) * vsl
    v_success = package - moral - family - returned - threat_defector - assassination  # eq. 12
    v_caught = -(
        rg.execution_probability * vsl
        + (1 - rg.execution_probability)  # eq. 13
        * (rg.sentence_served_share * prison(rg.sentence_years) + rg.penal_death_risk * vsl)
    )
    v_killed = -vsl
    pay_day = cb.pay_usd_month * 12 / 365
    v_stay = (
        beta
        * annuity(d_day * (1 - p_kill), cb.remaining_exposure_days)
        * (  # eq. 7
            pay_day - p_kill * (vsl - cb.family_benefit_weight * cb.death_benefit_usd)
        )
        - threat
    )
    monitors = rg.monitors_per_soldier  # line class: multiplier 1
    p_catch = cr.catch_base + (1 - cr.catch_base) * (
        1 - math.exp(-cr.arrest_constant * monitors * cr.monitor_vision)
    )  # eq. 9, D = 0
    p_cross = cr.killed_crossing_base * cb.intensity  # eq. 10
    if aware:  # guided extraction (eq. 34): lower crossing risk; detection while waiting is off
        p_cross *= sc.programme.extraction_crossing_risk
    q = (1 - p_catch) * (1 - p_cross)
    delta = q * v_success + p_catch * v_caught + (1 - p_catch) * p_cross * v_killed - v_stay  # eq. 14
    z = delta / pr.utility_scale_usd - pr.threshold_mean  # eq. 17, OV = 0, no social terms
    willing = 1 / (1 + math.exp(-z / pr.logit_scale))  # eq. 17b
    return Prediction(delta, z, willing, cb.opportunity_line * willing, cb.opportunity_line)


# ----------------------------------------------------------------------------- the simulation
@dataclass(frozen=True)
class Measurement:
    hazard: float
    se: float  # standard error of `hazard` under the closed form, squad clustering included
    decisions: float
    soldier_days: float


@cache
def simulated(overrides: tuple[tuple[str, object], ...]) -> Measurement:
    sc = world(**dict(overrides))
    pred = closed_form(sc)
    res = simulate(sc, replicates=1, days=DAYS, agents=AGENTS, seed=SEED)
    daily = res.daily.sort_values("day")
    aware = sc.offer.start_day == 0
    decisions = daily["contacts" if aware else "attempts"].to_numpy()
    if aware:  # aware soldiers never cross on their own: every attempt is an extraction from the queue
        assert (daily["attempts"] == daily["extracted"]).all()
    else:
        assert (daily["contacts"] == 0).all()
    # soldiers SERVING when day t's decisions are taken: present at the end of t − 1 and not queued
    free = (daily["serving"] - daily["queued"]).to_numpy()
    able = np.concatenate([[res.agents], free[:-1]])
    assert (able > 0.5 * res.agents).all()  # depletion stays modest
    # per squad-day: attempts = O·Bin(n, Λ), O ~ Bernoulli(p): Var/n = pΛ(1 − Λ) + p(1 − p)·n·Λ² (n ≤ squad size)
    p, lam, n_sq = pred.p_opp, pred.willing, sc.force.squad_size
    var_per_soldier = p * lam * (1 - lam) + p * (1 - p) * n_sq * lam**2
    total = float(able.sum())
    return Measurement(
        float(decisions.sum()) / total, math.sqrt(var_per_soldier * total) / total, float(decisions.sum()), total
    )


def measure(**overrides: object) -> Measurement:
    """One simulation per distinct world (an override equal to the default world's value is dropped)."""
    return simulated(tuple(sorted((k, v) for k, v in overrides.items() if HOMOGENEOUS.get(k, object()) != v)))


def assert_docks(sim: Measurement, pred: Prediction) -> None:
    error = sim.hazard - pred.hazard
    assert abs(error) < SIGMAS * sim.se, (
        f"simulated hazard {sim.hazard:.6f}/day vs closed form {pred.hazard:.6f}/day: "
        f"{error / sim.se:+.1f} standard errors ({sim.decisions:.0f} decisions in {sim.soldier_days:.0f} soldier-days)"
    )
    assert abs(error) < REL_TOL * pred.hazard


# ----------------------------------------------------------------------------- tests
def test_the_world_is_moderate() -> None:
    """The design premise: hazards of 0.1–1 %/day, so binomial noise is small against the tolerance."""
    for extra in ({}, NO_PROGRAMME, {"offer__cash_usd": 200_000.0}):
        pred = closed_form(world(**extra))
        assert 1e-3 < pred.hazard < 1e-2
        assert -5.0 < pred.z / world(**extra).preferences.logit_scale < -2.5


@pytest.mark.slow
@pytest.mark.parametrize("case", ["offer", "no programme"])
def test_simulated_hazard_matches_closed_form(case: str) -> None:
    extra = {} if case == "offer" else NO_PROGRAMME
    pred = closed_form(world(**extra))
    sim = measure(**extra)
    assert sim.se < 0.01 * pred.hazard  # the test has power: 4.5 SE is well inside the 5 % band
    assert_docks(sim, pred)


@pytest.mark.slow
def test_hazard_rises_with_cash_as_the_closed_form_says() -> None:
    low_cash, high_cash = 100_000.0, 200_000.0
    low_pred = closed_form(world(offer__cash_usd=low_cash))
    high_pred = closed_form(world(offer__cash_usd=high_cash))
    assert high_pred.hazard > 1.5 * low_pred.hazard
    low = measure(offer__cash_usd=low_cash)
    high = measure(offer__cash_usd=high_cash)
    assert_docks(low, low_pred)
    assert_docks(high, high_pred)
    # the simulated rise matches the predicted rise
    ratio, predicted_ratio = high.hazard / low.hazard, high_pred.hazard / low_pred.hazard
    ratio_se = ratio * math.hypot(low.se / low.hazard, high.se / high.hazard)  # conservative: the runs share draws
    assert high.hazard - low.hazard > 10 * math.hypot(low.se, high.se)
    assert abs(ratio - predicted_ratio) < SIGMAS * ratio_se
