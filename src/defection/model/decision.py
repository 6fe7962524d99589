"""The soldier's decision: random-utility net gain of attempting to defect, and squad coordination.

The equations are small scalar functions (eq. numbers refer to docs/model.md) so that the CPU kernels
and a CUDA path can share them. All payoffs are money-equivalents in USD; mortality is priced at the
soldier's own value of a statistical life (VSL).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from defection.model import rng
from defection.model.outputs import (
    ARRIVED,
    C_ARRIVED,
    C_ARRIVED_TYPE,
    C_ATTEMPTS,
    C_CAUGHT,
    C_CAUGHT_DESERTING,
    C_CONTACTS,
    C_DESERTED,
    C_EXECUTED,
    C_KILLED_SURRENDERING,
    C_KILLED_X,
    C_PAID,
    C_RETURNED,
    C_SURRENDERED,
    CAUGHT,
    DESERTED,
    EXECUTED,
    KILLED_CROSSING,
    QUEUED,
    SERVING,
    SURRENDERED,
)
from defection.model.parameters import EngineParams, RouteParams
from defection.model.population import Companies, SoldierState, Traits

LIFE_YEARS_FOR_VSLY = 40.0  # remaining life used to annuitise VSL into a life-year value (assumption)


# ----------------------------------------------------------------------------- scalar equations
@njit(cache=True, inline="always")
def death_hazard(p0: float, exposure: float, type_multiplier: float, intensity: float) -> float:
    """Eq. 1: daily death hazard p^K = p0 · role_mult · I(t)."""
    return min(1.0, p0 * exposure * type_multiplier * intensity)


@njit(cache=True, inline="always")
def crra_utility(x: float, wealth: float, eta: float) -> float:
    """Eq. 2: money utility U(x) = W^η((W+x)^{1−η} − W^{1−η})/(1−η), ≈ x for small x."""
    if x <= 0.0:
        return 0.0
    if abs(1.0 - eta) < 1e-9:
        return wealth * math.log1p(x / wealth)
    return float(wealth**eta * ((wealth + x) ** (1.0 - eta) - wealth ** (1.0 - eta)) / (1.0 - eta))


@njit(cache=True, inline="always")
def annuity_factor(discount: float, periods: float) -> float:
    """Eq. 3: Σ_{τ=1}^{T} δ^τ = δ(1 − δ^T)/(1 − δ) (T may be fractional)."""
    if periods <= 0.0:
        return 0.0
    if discount >= 1.0:
        return periods
    return float(discount * (1.0 - discount**periods) / (1.0 - discount))


@njit(cache=True, inline="always")
def daily_discount(rate_annual: float) -> float:
    """Eq. 3: daily discount factor δ = (1 + r)^(−1/365)."""
    return float((1.0 + rate_annual) ** (-1.0 / 365.0))


@njit(cache=True, inline="always")
def yearly_discount(rate_annual: float) -> float:
    """Eq. 3: yearly discount factor δ_y = 1/(1 + r)."""
    return 1.0 / (1.0 + rate_annual)


@njit(cache=True)
def cash_value(
    cash: float,
    share_now: float,
    delay_years: float,
    instalments: int,
    wealth: float,
    eta: float,
    present_bias: float,
    rate: float,
) -> float:
    """Eq. 4: R = U(φ·B) + β Σ_{τ<T_pay} δ^{T_post+τ} U((1−φ)·B/T_pay), δ = 1/(1+r) per year."""
    d = yearly_discount(rate)
    return discounted_cash_value(
        cash, share_now, delay_years, instalments, wealth, eta, present_bias, d, d**delay_years
    )


@njit(cache=True)
def discounted_cash_value(
    cash: float,
    share_now: float,
    delay_years: float,
    instalments: int,
    wealth: float,
    eta: float,
    present_bias: float,
    discount: float,
    first_discount: float,
) -> float:
    """Eq. 4 given the yearly discount δ and the first instalment's δ^{T_post} (`DayTerms`: once a day)."""
    now = crra_utility(share_now * cash, wealth, eta)
    later_each = crra_utility((1.0 - share_now) * cash / instalments, wealth, eta)
    later = 0.0
    for k in range(instalments):
        later += (first_discount if k == 0 else discount ** (delay_years + k)) * later_each
    return now + present_bias * later


@njit(cache=True, inline="always")
def asylum_value(
    income_west: float, income_home: float, present_bias: float, rate: float, working_years: float, exile_cost: float
) -> float:
    """Eq. 6: A = β Σ_{τ=1}^{T_life} δ^τ (Y_West − Y_RU) − E."""
    return annuitised_asylum_value(
        asylum_annuity(present_bias, rate, working_years), income_west, income_home, exile_cost
    )


@njit(cache=True, inline="always")
def asylum_annuity(present_bias: float, rate: float, working_years: float) -> float:
    """Eq. 6: β Σ_{τ=1}^{T_life} δ^τ, the weight of a yearly income gain abroad."""
    return present_bias * annuity_factor(yearly_discount(rate), working_years)


@njit(cache=True, inline="always")
def annuitised_asylum_value(annuity: float, income_west: float, income_home: float, exile_cost: float) -> float:
    """Eq. 6: A = [β Σ δ^τ]·(Y_West − Y_RU) − E, given the annuity (`asylum_annuity`)."""
    return annuity * (income_west - income_home) - exile_cost


@njit(cache=True, inline="always")
def offer_value(
    credibility: float, cash_val: float, asylum_probability: float, asylum_val: float, trip_utility: float
) -> float:
    """Eq. 5: value of the package if it is believed, c·(R + π_asy·A + U(trip))."""
    return credibility * (cash_val + asylum_probability * asylum_val + trip_utility)


@njit(cache=True, inline="always")
def value_of_life_year(vsl: float, rate: float) -> float:
    """Eq. 8b: VSLY = VSL / Σ_{τ=1}^{40} δ^τ, the VSL spread over remaining life."""
    return vsl / life_annuity(rate)


@njit(cache=True, inline="always")
def life_annuity(rate: float) -> float:
    """Eq. 8b: Σ_{τ=1}^{40} δ^τ, the remaining life the VSL is spread over."""
    return annuity_factor(yearly_discount(rate), LIFE_YEARS_FOR_VSLY)


@njit(cache=True, inline="always")
def prison_cost(years: float, vsly: float, year_cost_share: float, present_bias: float, rate: float) -> float:
    """Eq. 13b: cost(J) = β Σ_{τ=1}^{J} δ^τ · κ · VSLY — concave in J, so certainty beats severity."""
    return prison_cost_per_vsly(years, year_cost_share, present_bias, rate) * vsly


@njit(cache=True, inline="always")
def prison_cost_per_vsly(years: float, year_cost_share: float, present_bias: float, rate: float) -> float:
    """Eq. 13b: cost(J)/VSLY = β Σ_{τ=1}^{J} δ^τ · κ."""
    return present_bias * annuity_factor(yearly_discount(rate), years) * year_cost_share


@njit(cache=True, inline="always")
def stay_value(
    hazard: float,
    vsl: float,
    pay_day: float,
    death_benefit: float,
    family_weight: float,
    days: float,
    present_bias: float,
    rate: float,
    threat_cost: float,
) -> float:
    """Eq. 7: V_stay = β Σ_{τ=1}^{T} [δ(1−p^K)]^τ [w − p^K (VSL − ω D_death)] − C_w (survival-weighted)."""
    return discounted_stay_value(
        hazard, vsl, pay_day, death_benefit, family_weight, days, present_bias, daily_discount(rate), threat_cost
    )


@njit(cache=True, inline="always")
def discounted_stay_value(
    hazard: float,
    vsl: float,
    pay_day: float,
    death_benefit: float,
    family_weight: float,
    days: float,
    present_bias: float,
    discount_day: float,
    threat_cost: float,
) -> float:
    """Eq. 7 given the daily discount factor δ_d (`DayTerms`: once a day)."""
    flow = pay_day - hazard * (vsl - family_weight * death_benefit)
    survive = discount_day * (1.0 - hazard)
    return present_bias * annuity_factor(survive, days) * flow - threat_cost


@njit(cache=True, inline="always")
def stayer_threat_cost(threat_probability: float, threat_prison: float) -> float:
    """Eq. 7: C_w = π_wc·cost(J_wc), the war-crimes threat to stayers."""
    return threat_probability * threat_prison


@njit(cache=True, inline="always")
def perceived_offer(offer: float, noise_sd: float, z: float) -> float:
    """Eq. 25: B̂_i = B(t)·exp(σ_B·z_i − σ_B²/2), a mean-preserving lognormal misperception."""
    return offer * math.exp(noise_sd * z - 0.5 * noise_sd**2)


@njit(cache=True, inline="always")
def catch_probability(catch_base: float, arrest_k: float, monitors: float, vision: float, co_defectors: float) -> float:
    """Eq. 9: p^c = p^c_0 + (1 − p^c_0)(1 − exp(−k · M·V / (1 + D)))."""
    return catch_base + (1.0 - catch_base) * (1.0 - math.exp(-arrest_k * monitors * vision / (1.0 + co_defectors)))


@njit(cache=True)
def crossing_death_probability(base: float, intensity: float, depth_ratio: float) -> float:
    """Eq. 10, 48: p^x = min(1, p^x(L)·I), p^x(L) = 1 − (1 − p^x_0)^{L/L_ref}: a constant hazard per km crossed,
    p^x_0 at the reference depth (exactly: 1 − (1 − p) would round)."""
    at_depth = base if depth_ratio == 1.0 else 1.0 - (1.0 - base) ** depth_ratio
    return min(1.0, at_depth * intensity)


@njit(cache=True, inline="always")
def home_catch_probability(own: float, enemy: float, enemy_control: float) -> float:
    """Eq. 49: p^c_H = (1 − e)·p^c_own + e·p^c_enemy, the deserter's chance of being caught at home."""
    return (1.0 - enemy_control) * own + enemy_control * enemy


@njit(cache=True, inline="always")
def caught_value(vsl: float, execution: float, served_share: float, prison: float, penal_death: float) -> float:
    """Eq. 13: V_caught = −[π_exec·VSL + (1 − π_exec)(s·cost(J) + Δp_penal·VSL)]."""
    return -(execution * vsl + (1.0 - execution) * (served_share * prison + penal_death * vsl))


@njit(cache=True, inline="always")
def moral_cost(m0: float, cohesion_cost: float, cohesion: float, share_defected: float) -> float:
    """Eq. 12a: m_i = m0_i + μ·κ_u·(1 − share_def_u)."""
    return m0 + cohesion_cost * cohesion * max(0.0, 1.0 - share_defected)


@njit(cache=True, inline="always")
def family_reprisal_cost(reprisal: float, has_family: float, credibility_: float, extraction: float) -> float:
    """Eq. 12: F_i = F_pol·fam_i·(1 − c·π_fx), family reprisals net of the programme's extraction."""
    return reprisal * has_family * (1.0 - credibility_ * extraction)


@njit(cache=True, inline="always")
def exchange_return_cost(
    credibility_: float, asylum_probability: float, exchange: float, prosecution: float, served: float, prison: float
) -> float:
    """Eq. 12: X_i = (1 − c·π_asy)·π_ex·π_pros·s·cost(J), returned in an exchange and prosecuted."""
    return (1.0 - credibility_ * asylum_probability) * exchange * prosecution * served * prison


@njit(cache=True, inline="always")
def defector_threat_cost(amnesty: float, threat: float) -> float:
    """Eq. 12: C_w^def = (1 − amnesty)·C_w, the war-crimes threat applied to defectors too."""
    return (1.0 - amnesty) * threat


@njit(cache=True, inline="always")
def surrender_opportunity(base: float, exposure: float, intensity: float, manoeuvre_factor: float) -> float:
    """Eq. 42, 51: π^S_class = min(1, π^S·e_class·I·(1 + (R_m − 1)·m)), the daily chance of a position where
    surrender is possible."""
    return min(1.0, base * exposure * intensity * manoeuvre_factor)


@njit(cache=True, inline="always")
def overrun_stay_value(
    stay: float, fight_death: float, vsl: float, family_weight: float, death_benefit: float
) -> float:
    """Eq. 53b: V_stay − p_f·(VSL − w_f·B_death), staying in a company that is overrun means fighting on."""
    return stay - fight_death * (vsl - family_weight * death_benefit)


@njit(cache=True, inline="always")
def surrender_death_probability(base: float, intensity: float) -> float:
    """Eq. 43: p^x_S = min(1, p^x_S0·I), killed while surrendering."""
    return min(1.0, base * intensity)


@njit(cache=True, inline="always")
def home_success_value(package: float, moral: float, family_cost: float, hiding_cost: float) -> float:
    """Eq. 44: V_H = P_H − m_i − f_H·F_i − C_hide, hiding at home (P_H the package if the offer rewards it)."""
    return package - moral - family_cost - hiding_cost


@njit(cache=True, inline="always")
def home_caught_value(
    vsl: float,
    execution: float,
    returned: float,
    served_share: float,
    prison: float,
    penal_death: float,
    v_stay: float,
    return_penalty: float,
) -> float:
    """Eq. 44: V_caught,H = −π_exec·VSL + (1 − π_exec)·[ρ·(V_stay − C_ret) − (1 − ρ)·(s·cost(J_H) + Δp·VSL)]."""
    jailed = served_share * prison + penal_death * vsl
    return -execution * vsl + (1.0 - execution) * (returned * (v_stay - return_penalty) - (1.0 - returned) * jailed)


@njit(cache=True, inline="always")
def route_shares(z: np.ndarray, available: np.ndarray, scale: float, out: np.ndarray) -> None:
    """Eq. 47: P(route r) = e^{z_r/σ} / (1 + Σ_k e^{z_k/σ}) over the available routes (staying has utility 0),
    written to `out`; with one route this is eq. 17b, Λ(z/σ)."""
    top = 0.0
    for r in range(z.size):
        if available[r]:
            top = max(top, z[r] / scale)
    total = math.exp(-top)  # staying
    for r in range(z.size):
        out[r] = math.exp(z[r] / scale - top) if available[r] else 0.0
        total += out[r]
    for r in range(z.size):
        out[r] /= total


@njit(cache=True, inline="always")
def assassination_cost(
    credibility_: float, asylum_probability: float, risk: float, protection: float, vsl: float
) -> float:
    """Eq. 12: C_assn = c·π_asy·p_assn·(1 − protection)·VSL_i, killed abroad by the regime."""
    return credibility_ * asylum_probability * risk * (1.0 - protection) * vsl


@njit(cache=True, inline="always")
def success_value(
    package: float, moral: float, family_cost: float, return_cost: float, threat_cost: float, assassination_cost: float
) -> float:
    """Eq. 12: V_succ = c·(R + π_asy A + U(trip)) − m_i − F_i − X_i − C_w^def − C_assn."""
    return package - moral - family_cost - return_cost - threat_cost - assassination_cost


@njit(cache=True, inline="always")
def success_probability(p_catch: float, p_cross_death: float) -> float:
    """Eq. 11: q = (1 − p^c)(1 − p^x), the chance of reaching the other side."""
    return (1.0 - p_catch) * (1.0 - p_cross_death)


@njit(cache=True, inline="always")
def net_gain(
    p_catch: float, p_cross_death: float, v_success: float, v_caught: float, v_killed: float, v_stay: float
) -> float:
    """Eq. 14: Δ = q·V_succ + p^c·V_caught + (1 − p^c)·p^x·V_killed − V_stay, q = (1−p^c)(1−p^x)."""
    q = success_probability(p_catch, p_cross_death)
    return q * v_success + p_catch * v_caught + (1.0 - p_catch) * p_cross_death * v_killed - v_stay


@njit(cache=True, inline="always")
def option_value(delta_now: float, delta_later: float, discount_k: float) -> float:
    """Eq. 19: OV = max(0, δ_k·Δ_k − max(Δ_now, 0)); acting now is compared with waiting k days."""
    return max(0.0, discount_k * delta_later - max(delta_now, 0.0))


@njit(cache=True, inline="always")
def squad_peer_share(revealed: int, squad_size: int, contacts: int) -> float:
    """Eq. 17: peer_sq = D/n_squad if D ≥ k_cc else 0 (complex contagion inside the squad)."""
    return revealed / squad_size if revealed >= contacts else 0.0


@njit(cache=True, inline="always")
def reveal_probability(r0: float, sensitivity: float, monitors: float) -> float:
    """Eq. 16: r = r0 · exp(−ζ·M): monitoring suppresses revealing one's willingness."""
    return r0 * math.exp(-sensitivity * monitors)


@njit(cache=True, inline="always")
def attempt_propensity(
    delta: float,
    option: float,
    scale_usd: float,
    threshold: float,
    peer: float,
    precedent: float,
    peer_weight: float,
    precedent_weight: float,
) -> float:
    """Eq. 17: z = (Δ − OV)/V0 − τ_i + φ·peer + ψ·prec_u; attempt iff z + ε > 0, ε ~ Logistic(σ)."""
    return (delta - option) / scale_usd - threshold + peer_weight * peer + precedent_weight * precedent


@njit(cache=True, inline="always")
def logit_probability(z: float, scale: float) -> float:
    """Eq. 17b: P(attempt) = Λ(z/σ) = 1/(1 + e^{−z/σ})."""
    return 1.0 / (1.0 + math.exp(-z / scale))


@njit(cache=True, inline="always")
def credibility(prior_alpha: float, prior_beta: float, positive: float, negative: float) -> float:
    """Eq. 26b: c = α/(α + β) with α = α0 + E⁺, β = β0 + E⁻."""
    a = prior_alpha + positive
    return a / (a + prior_beta + negative)


# ----------------------------------------------------------------------------- resolution of an attempt
@njit(cache=True, inline="always")
def captured_status(k_exec: np.uint64, i: int, execution: float) -> int:
    """§7.6 resolution of a caught soldier: summarily executed with probability π_exec (EXECUTED), else CAUGHT."""
    return EXECUTED if rng.uniform(k_exec, i) < execution else CAUGHT


@njit(cache=True, inline="always")
def crossing_outcome(
    i: int, p_catch: float, p_cross: float, execution: float, k_catch: np.uint64, k_cross: np.uint64, k_exec: np.uint64
) -> int:
    """§7.6 resolution of soldier i's crossing: caught with p^c (then executed or held), else killed crossing
    with p^x, else ARRIVED. Returns the soldier's new status."""
    if rng.uniform(k_catch, i) < p_catch:
        return captured_status(k_exec, i, execution)
    if rng.uniform(k_cross, i) < p_cross:
        return KILLED_CROSSING
    return ARRIVED


@njit(cache=True, inline="always")
def count_outcome(counts: np.ndarray, c: int, outcome: int, type_index: int) -> None:
    """Add one resolved attempt of company c to its counters (an execution also counts as caught)."""
    if outcome == EXECUTED:
        counts[c, C_EXECUTED] += 1
        counts[c, C_CAUGHT] += 1
    elif outcome == CAUGHT:
        counts[c, C_CAUGHT] += 1
    elif outcome == KILLED_CROSSING:
        counts[c, C_KILLED_X] += 1
    elif outcome == ARRIVED:
        counts[c, C_ARRIVED] += 1
        counts[c, C_ARRIVED_TYPE + type_index] += 1


# ----------------------------------------------------------------------------- the decision phase
HORIZONS = np.array([1, 7, 30, 90], dtype=np.int64)  # delays k compared with acting now (eq. 19)


@njit(cache=True, inline="always")
def waiting_discount(present_bias: float, rate: float, hazard: float, persistence: float, k: int) -> float:
    """Eq. 19b: δ_k = β·[δ_d·(1 − p^K)·π_opp]^k, the value of a payoff k days away."""
    return discounted_waiting_discount(present_bias, daily_discount(rate), hazard, persistence, k)


@njit(cache=True, inline="always")
def discounted_waiting_discount(
    present_bias: float, discount_day: float, hazard: float, persistence: float, k: int
) -> float:
    """Eq. 19b given the daily discount factor δ_d (`DayTerms`: once a day)."""
    return present_bias * (discount_day * (1.0 - hazard) * persistence) ** k


class DayTerms(NamedTuple):
    """The terms of a member's evaluation that depend only on the day's parameters (eq. 3, 4, 6, 8b, 13b, 44),
    computed once a day (`day_terms`) by the same expressions the member's evaluation used to compute each time:
    the same numbers, without a dozen `pow` per member."""

    discount_day: float  # δ_d (eq. 3)
    discount_year: float  # δ_y (eq. 3)
    first_instalment_discount: float  # δ_y^{T_post} (eq. 4)
    asylum_annuity: float  # β Σ_{τ=1}^{T_life} δ_y^τ (eq. 6)
    life_annuity: float  # Σ_{τ=1}^{40} δ_y^τ (eq. 8b)
    prison_per_vsly: float  # cost(J)/VSLY (eq. 13b)
    threat_prison_per_vsly: float  # cost(J_wc)/VSLY (eq. 7)
    home_prison_per_vsly: float  # cost(J_H)/VSLY (eq. 44)


@njit(cache=True, inline="always")
def day_terms(p: EngineParams, rp: RouteParams) -> DayTerms:
    """The day's `DayTerms`. Inlined: a NamedTuple that a parallel loop reads must be built in the kernel by a call
    to its class (Numba's parfor lowering looks the class up)."""
    r, beta = p.discount_rate, p.present_bias
    d_year = yearly_discount(r)
    return DayTerms(
        daily_discount(r),
        d_year,
        d_year**p.deferred_delay_years,
        asylum_annuity(beta, r, p.working_life_years),
        life_annuity(r),
        prison_cost_per_vsly(p.sentence_years, p.prison_year_cost_vsly, beta, r),
        prison_cost_per_vsly(p.threat_sentence_years, p.prison_year_cost_vsly, beta, r),
        prison_cost_per_vsly(rp.home_sentence_years, p.prison_year_cost_vsly, beta, r),
    )


@njit(cache=True, inline="always")
def wait_detection(queue_detection: float, wait_days: float) -> float:
    """Eq. 34b: chance of detection while waiting W days for extraction, 1 − (1 − h_q)^W."""
    return float(1.0 - (1.0 - queue_detection) ** wait_days)


@njit(cache=True, inline="always")
def guided_catch_probability(p_catch: float, p_wait: float) -> float:
    """Eq. 34b: p^c_g = 1 − (1 − p^c(D))·(1 − p_wait), caught in the attempt or while waiting."""
    return 1.0 - (1.0 - p_catch) * (1.0 - p_wait)


@njit(cache=True, inline="always")
def guided_crossing_death_probability(p_cross_death: float, extraction_risk: float) -> float:
    """Eq. 34b: p^x_g = r_ext·p^x, the crossing risk of a guided extraction."""
    return p_cross_death * extraction_risk


@njit(cache=True, inline="always")
def gain_if_waiting(
    delta_now: float, q_guided: float, credibility_: float, cash_later: float, cash_now: float
) -> float:
    """Eq. 19b: Δ_k = Δ_now + q_g·c·(R(B̂_k) − R(B̂)), the gain of acting k days later with the offer then."""
    return delta_now + q_guided * credibility_ * (cash_later - cash_now)


@njit(cache=True, inline="always")
def expected_offer(perceived: float, credibility_: float, ratio: float) -> float:
    """Eq. 25b: B̂_k = B̂·(1 + c·(B(t+k)/B(t) − 1)), the offer expected k days ahead, discounted by belief."""
    return perceived * (1.0 + credibility_ * (ratio - 1.0))


@njit(cache=True, inline="always")
def _soldier_terms(
    i: int,
    aware: bool,
    offer: float,
    cred: float,
    share_def: float,
    cohesion: float,
    exposure: float,
    p: EngineParams,
    dt: DayTerms,
    tr: Traits,
    success: bool = True,
) -> tuple[float, float, float, float, float, float, float, float]:
    """(V_succ, V_caught, V_killed, V_stay, perceived offer B̂, cash value R, hazard p^K, package P_i) of soldier i
    today. With `success` False, V_succ, B̂, R and P_i are not evaluated (returned as 0): the caller reads only
    V_caught, V_killed and V_stay (a squad whose only routes today are deserting home or surrendering). The day's
    constants come from `dt` (`day_terms`)."""
    vsl, income, moral, family, offer_noise = tr.vsl, tr.income, tr.moral, tr.family, tr.offer_noise
    soldier_type = tr.soldier_type
    v = vsl[i]
    beta = p.present_bias
    hz = death_hazard(p.death_hazard, exposure, p.type_hazard_multiplier[soldier_type[i]], p.intensity)
    vsly = v / dt.life_annuity  # eq. 8b
    prison = dt.prison_per_vsly * vsly  # eq. 13b
    threat = 0.0
    package = 0.0
    asylum_p = 0.0
    extraction = 0.0
    c = 0.0
    perceived = 0.0
    cash = 0.0
    if aware:
        c = cred
        threat = stayer_threat_cost(p.prosecution_probability, dt.threat_prison_per_vsly * vsly)
    if aware and success:
        perceived = perceived_offer(offer, p.offer_noise_log_sd, offer_noise[i])
        cash = discounted_cash_value(
            perceived,
            p.share_on_arrival,
            p.deferred_delay_years,
            p.deferred_instalments,
            income[i],
            p.crra,
            beta,
            dt.discount_year,
            dt.first_instalment_discount,
        )
        asylum = annuitised_asylum_value(
            dt.asylum_annuity,
            p.resettled_income_usd_year + p.education_premium_usd_year,
            income[i],
            p.exile_cost_usd,
        )
        trip = crra_utility(p.trip_value_usd, income[i], p.crra)
        asylum_p = p.asylum_probability
        extraction = p.family_extraction_probability
        package = offer_value(c, cash, asylum_p, asylum, trip)
    v_succ = 0.0
    if success:
        m = moral_cost(moral[i], p.cohesion_cost_usd, cohesion, share_def)
        fam = family_reprisal_cost(p.family_reprisal_usd, family[i], c, extraction)
        ret = exchange_return_cost(
            c, asylum_p, p.exchange_return_probability, p.prosecution_if_returned, p.sentence_served_share, prison
        )
        def_threat = defector_threat_cost(p.amnesty_for_defectors, threat)
        assn = assassination_cost(c, asylum_p, p.assassination_risk, p.protection, v)
        v_succ = success_value(package, m, fam, ret, def_threat, assn)
    v_caught = caught_value(v, p.execution_probability, p.sentence_served_share, prison, p.penal_death_risk)
    v_stay = discounted_stay_value(
        hz,
        v,
        p.pay_usd_day,
        p.death_benefit_usd,
        p.family_benefit_weight,
        p.remaining_exposure_days,
        beta,
        dt.discount_day,
        threat,
    )
    return v_succ, v_caught, -v, v_stay, perceived, cash, hz, package


@njit(cache=True, inline="always")
def _option_value(
    i: int,
    delta_now: float,
    q_now: float,
    cred: float,
    perceived: float,
    cash_now: float,
    hazard: float,
    share_def: float,
    cohesion: float,
    exposure: float,
    p: EngineParams,
    dt: DayTerms,
    horizon_ratio: np.ndarray,
    horizon_open: np.ndarray,
    p_catch_plain: float,
    p_cross: float,
    tr: Traits,
) -> float:
    """Eq. 19: the best gain from waiting k ∈ {1, 7, 30, 90} days instead of acting now."""
    income = tr.income
    ov = 0.0
    delta_closed = 1e300
    for h in range(HORIZONS.size):
        k = HORIZONS[h]
        if horizon_open[h]:
            if horizon_ratio[h] == 1.0:
                continue  # same offer later: waiting only loses (δ_k < 1)
            b_k = expected_offer(perceived, cred, horizon_ratio[h])
            cash_k = discounted_cash_value(
                b_k,
                p.share_on_arrival,
                p.deferred_delay_years,
                p.deferred_instalments,
                income[i],
                p.crra,
                p.present_bias,
                dt.discount_year,
                dt.first_instalment_discount,
            )
            delta_k = gain_if_waiting(delta_now, q_now, cred, cash_k, cash_now)
        else:  # the programme will be closed by then: only plain surrender remains
            if delta_closed == 1e300:
                vs, vc, vk, vst, _, _, _, _ = _soldier_terms(
                    i,
                    False,
                    0.0,
                    0.0,
                    share_def,
                    cohesion,
                    exposure,
                    p,
                    dt,
                    tr,
                    True,
                )
                delta_closed = net_gain(p_catch_plain, p_cross, vs, vc, vk, vst)
            delta_k = delta_closed
        disc = discounted_waiting_discount(p.present_bias, dt.discount_day, hazard, p.opportunity_persistence, k)
        ov = max(ov, option_value(delta_now, delta_k, disc))
    return ov


class OfferToday(NamedTuple):
    """What the decision reads of the programme today (eq. 25b, 26c, 34b)."""

    offer: float  # B(t)
    open: bool  # the programme takes defectors today
    public_pos: float  # E⁺_pub
    public_neg: float  # E⁻_pub
    horizon_ratio: np.ndarray  # expected B(t+k)/B(t) for k in HORIZONS
    horizon_open: np.ndarray  # whether the programme is expected to be open at t+k
    topup: bool  # ratchet rule: earlier defectors are topped up, so waiting never pays (OV = 0)
    wait_days: float  # W, the expected wait in the queue


@njit(cache=True, inline="always")
def _route_values(
    i: int,
    aware: bool,
    offer: float,
    cred: float,
    package: float,
    v_stay: float,
    share_def: float,
    cohesion: float,
    exposure: float,
    p: EngineParams,
    dt: DayTerms,
    rp: RouteParams,
    tr: Traits,
    record: np.ndarray,
    home: bool,
    surrender: bool,
) -> tuple[float, float, float]:
    """(V_succ,H, V_caught,H, V_succ,S) of soldier i today (eq. 44): deserting home and surrendering in combat.

    `aware` is whether he knows an offer that is open today; the offer's package counts on a route only if the
    offer rewards it (`route_rewarded`). A surrender the offer does not reward is plain surrender (eq. 12 with
    c = 0, the terms of a soldier who knows no offer). `home` and `surrender` are whether his squad has an
    opportunity for that route today: the values of a route it has none for are never read, and are 0."""
    rewards_home = aware and rp.route_rewarded[1] > 0.0
    rewards_surrender = aware and rp.route_rewarded[2] > 0.0
    v_surrender = 0.0
    if surrender:
        terms = _soldier_terms(i, rewards_surrender, offer, cred, share_def, cohesion, exposure, p, dt, tr, True)
        v_surrender = terms[0]
    v_home = v_home_caught = 0.0
    if home:  # no early return: the function is inlined (docs/performance.md, "Exit routes")
        v = tr.vsl[i]
        c = cred if rewards_home else 0.0
        extraction = p.family_extraction_probability if rewards_home else 0.0
        m = moral_cost(tr.moral[i], p.cohesion_cost_usd, cohesion, share_def)
        exposure_home = rp.home_family_exposure * (1.0 - rp.home_enemy_control)  # f_H·(1 − e): out of reach (eq. 49)
        fam = family_reprisal_cost(exposure_home * p.family_reprisal_usd, tr.family[i], c, extraction)
        v_home = home_success_value(package if rewards_home else 0.0, m, fam, rp.home_hiding_cost_usd)
        prison_home = dt.home_prison_per_vsly * (v / dt.life_annuity)  # eq. 13b, 8b
        returned = rp.home_returned if record[i] == 0 else 0.0  # a second offence is not suspended
        v_home_caught = home_caught_value(
            v,
            p.execution_probability,
            returned,
            p.sentence_served_share,
            prison_home,
            p.penal_death_risk,
            v_stay,
            rp.home_return_penalty_usd,
        )
    return v_home, v_home_caught, v_surrender


class Squad(NamedTuple):
    """One squad's members on a day with an opportunity: the terms of each member's choice (scratch arrays)."""

    active: np.ndarray  # serving today
    willing: np.ndarray  # willing to go by some route (the cascade's result)
    reveals: np.ndarray  # would let his squad-mates know he is willing (eq. 16)
    guided: np.ndarray  # knows the offer and it rewards crossing, so he crosses through the programme's queue
    eps: np.ndarray  # (members, 3): ε_r − ε_0 by route, his random-utility shocks (eq. 17, 47); −∞ if unavailable
    v_s: np.ndarray  # the four values of eq. 12 for crossing: success, caught, killed, staying
    v_c: np.ndarray
    v_k: np.ndarray
    v_st: np.ndarray
    ov: np.ndarray  # OV, the option value of waiting (eq. 19)
    thr: np.ndarray  # τ_i, his threshold
    peer_net: np.ndarray  # share of his network contacts who left by some route before today
    v_home: np.ndarray  # V_succ,H and V_caught,H of deserting home (eq. 44)
    v_home_caught: np.ndarray
    v_surrender: np.ndarray  # V_succ,S of surrendering in combat (eq. 44)
    available: np.ndarray  # (3,) the routes the squad has an opportunity for today (eq. 42)
    route: np.ndarray  # the route each willing member takes (eq. 47)
    z: np.ndarray  # (3,) scratch: one member's propensity by route
    shares: np.ndarray  # (3,) scratch: one member's route probabilities (eq. 47)


class SquadRisks(NamedTuple):
    """What a squad's members face together today."""

    precedent: float  # prec_u, the company's precedent
    monitors: float  # M, monitors per soldier in the company's class
    p_wait: float  # detection while waiting in the programme's queue (eq. 34a)
    p_cross: float  # death crossing alone
    p_cross_guided: float  # death crossing with the programme's help
    p_surrender_death: float  # death while surrendering (eq. 43)
    p_home_catch: float  # a deserter caught, by his own side's reach into his home area (eq. 43, 49)
    p_home_cross: float  # a deserter killed crossing the enemy's lines on his way home (eq. 49)
    surrender_monitors: float  # M_class × monitor_factor, the monitoring of a surrender (eq. 43)


class SquadParams(NamedTuple):
    """The parameters the squad's cascade and its expected departures read (eq. 9, 17, 47): scalars only, taken
    from `EngineParams` once a day (`squad_params`), so that a call passing them updates no reference count."""

    catch_base: float  # p^c_0
    arrest_constant: float  # k, eq. 9
    monitor_vision: float  # v, eq. 9
    squad_size: int  # n_squad
    complex_contagion_contacts: int  # k_cc, eq. 17
    utility_scale_usd: float  # V0
    peer_weight: float  # φ
    precedent_weight: float  # ψ
    logit_scale: float  # σ


@njit(cache=True, inline="always")
def squad_params(p: EngineParams) -> SquadParams:
    """The scalars of `p` that the squad's cascade reads (`SquadParams`). Inlined: a NamedTuple that a parallel
    loop reads must be built in the kernel by a call to its class (Numba's parfor lowering looks the class up)."""
    return SquadParams(
        p.catch_base,
        p.arrest_constant,
        p.monitor_vision,
        p.squad_size,
        p.complex_contagion_contacts,
        p.utility_scale_usd,
        p.peer_weight,
        p.precedent_weight,
        p.logit_scale,
    )


NO_ROUTE = -1e300
"""The shock of a route a squad has no opportunity for today: it is never chosen."""


@njit(cache=True, inline="always")
def squad_propensity(j: int, d_known: int, sq: Squad, rk: SquadRisks, sp: SquadParams) -> float:
    """Eq. 17: squad member j's propensity z to cross when he knows of `d_known` revealed willing squad-mates."""
    pc = catch_probability(sp.catch_base, sp.arrest_constant, rk.monitors, sp.monitor_vision, d_known)
    px = rk.p_cross
    if sq.guided[j]:
        pc = guided_catch_probability(pc, rk.p_wait)
        px = rk.p_cross_guided
    delta = net_gain(pc, px, sq.v_s[j], sq.v_c[j], sq.v_k[j], sq.v_st[j])
    return _propensity(j, delta, sq.ov[j], d_known, sq, rk, sp)


@njit(cache=True, inline="always")
def _propensity(j: int, delta: float, option: float, d_known: int, sq: Squad, rk: SquadRisks, sp: SquadParams) -> float:
    """Eq. 17 for member j given his net gain Δ on a route and that route's option value of waiting."""
    peer = sq.peer_net[j] + squad_peer_share(d_known, sp.squad_size, sp.complex_contagion_contacts)
    return attempt_propensity(
        delta, option, sp.utility_scale_usd, sq.thr[j], peer, rk.precedent, sp.peer_weight, sp.precedent_weight
    )


@njit(cache=True, inline="always")
def surrender_catch_probability(d: int, rk: SquadRisks, sp: SquadParams) -> float:
    """Eq. 43: p^c_S, eq. 9 with the monitoring of a surrender (monitors × `monitor_factor`) and D co-surrenderers."""
    return catch_probability(sp.catch_base, sp.arrest_constant, rk.surrender_monitors, sp.monitor_vision, d)


@njit(cache=True, inline="always")
def route_propensity(r: int, j: int, d_known: int, sq: Squad, rk: SquadRisks, sp: SquadParams) -> float:
    """Eq. 45–46: member j's propensity z_r for route r (0 cross, 1 home, 2 surrender) given `d_known` revealed
    willing squad-mates. Only crossing has an option value of waiting (eq. 19). Inlined (it only reads): the
    cascade calls it for every member and route (docs/performance.md, "Exit routes")."""
    if r == 0:
        z = squad_propensity(j, d_known, sq, rk, sp)
    else:
        if r == 1:
            delta = net_gain(rk.p_home_catch, rk.p_home_cross, sq.v_home[j], sq.v_home_caught[j], sq.v_k[j], sq.v_st[j])
        else:
            pc = surrender_catch_probability(d_known, rk, sp)
            delta = net_gain(pc, rk.p_surrender_death, sq.v_surrender[j], sq.v_c[j], sq.v_k[j], sq.v_st[j])
        z = _propensity(j, delta, 0.0, d_known, sq, rk, sp)
    return z


@njit(cache=True, inline="always")
def best_route(j: int, d_known: int, sq: Squad, rk: SquadRisks, sp: SquadParams) -> tuple[int, float]:
    """Eq. 47: member j's best available route and its utility z_r + ε_r − ε_0 (he goes iff it is > 0)."""
    best, best_u = -1, NO_ROUTE
    for r in range(3):
        if sq.available[r]:
            u = route_propensity(r, j, d_known, sq, rk, sp) + sq.eps[j, r]
            if u > best_u:
                best, best_u = r, u
    return best, best_u


@njit(cache=True, inline="always")
def squad_cascade(excluded: int, willing: np.ndarray, sq: Squad, rk: SquadRisks, sp: SquadParams) -> int:
    """Eq. 18: the best-response cascade inside a squad, from nobody willing (A_0, D = 0): a member becomes
    willing once his best route's utility is positive (eq. 47; with one route, z + ε > 0) given the willing
    squad-mates who revealed themselves. Fills `willing` and returns D, the revealed willing at the end. Member
    `excluded` (−1: none) never becomes willing. Inlined: it writes only `willing`, an array passed on its own
    (not through a tuple), and reads scalars (`SquadParams`) rather than `EngineParams`."""
    ss = sq.active.size
    willing[:] = False
    changed = True
    rounds = 0
    while changed and rounds <= ss:
        changed = False
        rounds += 1
        n_rev = revealed_willing(willing, sq)
        for j in range(ss):
            if not sq.active[j] or willing[j] or j == excluded:
                continue
            # j is not yet willing, so he is not among the revealed willing: he knows of n_rev
            if best_route(j, n_rev, sq, rk, sp)[1] > 0.0:
                willing[j] = True
                changed = True
    return revealed_willing(willing, sq)


@njit(cache=True, inline="always")
def revealed_willing(willing: np.ndarray, sq: Squad) -> int:
    """Eq. 18: D, the squad's willing members who revealed themselves."""
    n = 0
    for j in range(willing.size):
        if sq.active[j] and willing[j] and sq.reveals[j]:
            n += 1
    return n


@njit(cache=True)
def squad_expected_departures(
    n_rev: int, n_go: int, sq: Squad, rk: SquadRisks, sp: SquadParams, out: np.ndarray
) -> None:
    """Eq. 28b: the squad's expected departures today, Σ_j P_r(z_j(D_−j)) by route (eq. 47; with one route
    Λ(z/σ)), each weighted by his chance of getting through, added to `out`: [direct crossers arriving, programme
    contacts, contacts' q, deserters not caught, surrenderers reaching captivity].

    Each member's chance of going is taken given his squad-mates' shocks, his own integrated out. D_−j, the
    revealed willing when j never goes, is the realised D for a member who did not go; for one who went the
    cascade is re-run without him. The sum's expectation is the expected number of departures, without the
    noise of the members' own draws: how the regime and the programme see the flow, whatever the agent count.
    """
    ss = sq.active.size
    scratch = np.zeros(ss, np.bool_)
    n_routes, only = available_routes(sq.available)
    for j in range(ss):
        if not sq.active[j]:
            continue
        d_without = n_rev
        co_defectors = n_go  # if he went, his squad-mates going with him
        if sq.willing[j]:
            d_without = squad_cascade(j, scratch, sq, rk, sp)
            co_defectors = n_go - 1
        if n_routes == 1:
            sq.shares[:] = 0.0
            sq.shares[only] = logit_probability(route_propensity(only, j, d_without, sq, rk, sp), sp.logit_scale)
        else:
            for r in range(3):
                sq.z[r] = route_propensity(r, j, d_without, sq, rk, sp) if sq.available[r] else 0.0
            route_shares(sq.z, sq.available, sp.logit_scale, sq.shares)
        go = sq.shares[0]
        if go > 0.0:
            pc = catch_probability(sp.catch_base, sp.arrest_constant, rk.monitors, sp.monitor_vision, co_defectors)
            if sq.guided[j]:  # the queue's own detection is carried by the programme's expected queue (eq. 34c)
                out[1] += go
                out[2] += go * success_probability(pc, rk.p_cross_guided)
            else:
                out[0] += go * success_probability(pc, rk.p_cross)
        if sq.shares[1] > 0.0:
            out[3] += sq.shares[1] * success_probability(rk.p_home_catch, rk.p_home_cross)
        if sq.shares[2] > 0.0:
            pc_s = surrender_catch_probability(co_defectors, rk, sp)
            out[4] += sq.shares[2] * success_probability(pc_s, rk.p_surrender_death)


@njit(cache=True)
def route_shocks(
    i: int,
    j: int,
    n_routes: int,
    only: int,
    k_shock: np.uint64,
    k_route: np.uint64,
    scale: float,
    eps: np.ndarray,
    available: np.ndarray,
) -> None:
    """Eq. 47: member j's (slot i's) shocks ε_r − ε_0 for the squad's available routes. With one route, the
    logistic shock of eq. 17 (the difference of two Gumbels), so that a war with one route is the binary choice.
    Takes the two arrays it needs rather than the squad's tuple: a call passing the tuple costs a reference-count
    update for each of its arrays. Not inlined: inlined, it changed results (docs/performance.md)."""
    for r in range(3):
        eps[j, r] = NO_ROUTE
    if n_routes == 1:
        eps[j, only] = rng.logistic(k_shock, i, scale)
    else:
        stay = rng.gumbel(k_route, 4 * i, scale)
        for r in range(3):
            if available[r]:
                eps[j, r] = rng.gumbel(k_route, 4 * i + 1 + r, scale) - stay


@njit(cache=True)
def desertion_outcome(
    i: int,
    p: EngineParams,
    rp: RouteParams,
    rk: SquadRisks,
    record: np.ndarray,
    k_catch: np.uint64,
    k_cross: np.uint64,
    k_exec: np.uint64,
    k_return: np.uint64,
) -> int:
    """§7.6b resolution of soldier i's desertion home: caught with p^c_H (then executed with π_exec, else returned
    to his unit with ρ_ret if he has no record, else CAUGHT), else killed crossing the enemy's lines on the way
    home with p^x_H (KILLED_CROSSING), else DESERTED. A returned soldier is SERVING again."""
    if rng.uniform(k_catch, i) < rk.p_home_catch:
        if rng.uniform(k_exec, i) < p.execution_probability:
            return EXECUTED
        if record[i] == 0 and rng.uniform(k_return, i) < rp.home_returned:
            return SERVING
        return CAUGHT
    if rng.uniform(k_cross, i) < rk.p_home_cross:
        return KILLED_CROSSING
    return DESERTED


@njit(cache=True)
def surrender_outcome(
    i: int, pc: float, p_death: float, execution: float, k_catch: np.uint64, k_cross: np.uint64, k_exec: np.uint64
) -> int:
    """§7.5b resolution of soldier i's surrender: caught by his own side with p^c_S (then executed or held), else
    killed while surrendering with p^x_S (KILLED_CROSSING), else SURRENDERED."""
    if rng.uniform(k_catch, i) < pc:
        return captured_status(k_exec, i, execution)
    if rng.uniform(k_cross, i) < p_death:
        return KILLED_CROSSING
    return SURRENDERED


@njit(cache=True)
def _count_route_exit(
    counts: np.ndarray, c: int, route: int, outcome: int, paid: bool, i: int, t: int, st: SoldierState
) -> None:
    """Counters and slot of a resolved desertion (route 1) or surrender (route 2)."""
    if outcome == SERVING:  # caught deserter sent back with a suspended sentence: keeps his record
        st.record[i] = 1
        counts[c, C_CAUGHT] += 1
        counts[c, C_CAUGHT_DESERTING] += 1
        counts[c, C_RETURNED] += 1
        return
    st.status[i] = outcome
    st.left_day[i] = t
    if outcome in (EXECUTED, CAUGHT):
        counts[c, C_CAUGHT] += 1
        if outcome == EXECUTED:
            counts[c, C_EXECUTED] += 1
        if route == 1:
            counts[c, C_CAUGHT_DESERTING] += 1
    elif outcome == KILLED_CROSSING:  # surrendering, or crossing the enemy's lines on the way home
        counts[c, C_KILLED_SURRENDERING if route == 2 else C_KILLED_X] += 1
    elif outcome in (DESERTED, SURRENDERED):
        counts[c, C_DESERTED if outcome == DESERTED else C_SURRENDERED] += 1
        if paid:
            counts[c, C_PAID] += 1


@njit(cache=True, inline="always")
def available_routes(available: np.ndarray) -> tuple[int, int]:
    """How many routes a squad has an opportunity for today, and the last of them (the only one when there is one)."""
    n, last = 0, 0
    for r in range(available.size):
        if available[r]:
            n += 1
            last = r
    return n, last


@njit(cache=True, inline="always")
def opportunity(s: int, p_opp: float, key: np.uint64) -> bool:
    """Eq. 15, 42: whether squad s has an opportunity today for a route whose daily chance is `p_opp`."""
    return p_opp > 0.0 and rng.uniform(key, s) < p_opp


@njit(cache=True)
def any_opportunity(
    squads: range,
    p_cross: float,
    p_home: float,
    p_surrender: float,
    k_cross: np.uint64,
    k_home: np.uint64,
    k_surr: np.uint64,
) -> bool:
    """Whether any squad of a company has an opportunity for any route today (the same draws as `opportunity`)."""
    for s in squads:
        if opportunity(s, p_cross, k_cross) or opportunity(s, p_home, k_home) or opportunity(s, p_surrender, k_surr):
            return True
    return False


SCRATCH_BLOCKS = 8
"""The decision visits the companies in up to this many contiguous runs, each with its own squad scratch."""


@njit(cache=True)
def squad_scratch(ss: int) -> Squad:
    """Scratch arrays for one squad of `ss` members, allocated once per run of companies and reused by each of its
    squads with an opportunity: every field a member's choice reads is written for that member before it is read.
    Each run allocates its own (inside the parallel loop), so that the reference counts that calls passing the
    squad update are not shared between threads."""
    return Squad(
        np.zeros(ss, np.bool_),
        np.zeros(ss, np.bool_),
        np.zeros(ss, np.bool_),
        np.zeros(ss, np.bool_),
        np.zeros((ss, 3)),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(ss),
        np.zeros(3, np.bool_),
        np.zeros(ss, np.int8),
        np.zeros(3),
        np.zeros(3),
    )


@njit(cache=True, inline="always")
def left_by_a_route(status: int) -> bool:
    """The slot's soldier left the army by an exit route and got through: crossed, deserted or surrendered."""
    return status in (ARRIVED, DESERTED, SURRENDERED)


@njit(cache=True, parallel=True)
def decide(
    t: int,
    seed: int,
    rep: int,
    p: EngineParams,
    rp: RouteParams,
    today: OfferToday,
    overrun: float,
    st: SoldierState,
    tr: Traits,
    co: Companies,
    counts: np.ndarray,
    expected: np.ndarray,
) -> None:
    """Phases 6–9: opportunity (eq. 15, 42), evaluation (eq. 14, 19, 44–46), squad cascade (eq. 18, 47), and for
    each willing member his route: a direct crossing (soldiers the offer does not guide), joining the programme's
    queue (those it does), deserting home or surrendering in combat. Each company's expected departures (eq. 28b)
    are added to its row of `expected` (companies × 5). `overrun` is today's chance that a company is overrun
    (eq. 53a; 0 while the front holds): every squad of an overrun company can surrender or walk away, and staying
    means fighting on (eq. 53b).
    """
    offer, offer_open, public_pos, public_neg, horizon_ratio, horizon_open, topup, wait_days = today
    status, left_day, aware_day, neighbours = st.status, st.left_day, st.aware_day, st.neighbours
    queue_day, attempt_catch = st.queue_day, st.attempt_catch
    soldier_type, threshold = tr.soldier_type, tr.threshold
    company_class, cohesion, precedent = co.company_class, co.cohesion, co.precedent
    evidence_pos, evidence_neg, defected = co.evidence_pos, co.evidence_neg, co.defected
    cs = p.company_size
    ss = p.squad_size
    n_comp = company_class.size
    k_opp = rng.stream_key(seed, rep, t, rng.OPPORTUNITY)
    k_opp_home = rng.stream_key(seed, rep, t, rng.OPPORTUNITY_HOME)
    k_opp_surrender = rng.stream_key(seed, rep, t, rng.OPPORTUNITY_SURRENDER)
    k_shock = rng.stream_key(seed, rep, t, rng.SHOCK)
    k_route = rng.stream_key(seed, rep, t, rng.ROUTE_SHOCK)
    k_rev = rng.stream_key(seed, rep, t, rng.REVEAL)
    k_catch = rng.stream_key(seed, rep, t, rng.CATCH)
    k_cross = rng.stream_key(seed, rep, t, rng.CROSSING)
    k_exec = rng.stream_key(seed, rep, t, rng.EXECUTION)
    k_return = rng.stream_key(seed, rep, t, rng.RETURN_TO_UNIT)
    k_overrun = rng.stream_key(seed, rep, t, rng.OVERRUN)
    p_cross = crossing_death_probability(p.killed_crossing_base, p.intensity, p.depth_ratio)
    p_cross_guided = guided_crossing_death_probability(p_cross, p.extraction_crossing_risk)
    p_wait = wait_detection(p.queue_detection_per_day, wait_days)
    p_surrender_death = surrender_death_probability(rp.surrender_death, p.intensity)
    p_home_catch = home_catch_probability(rp.home_catch, rp.home_enemy_catch, rp.home_enemy_control)
    p_home_cross = rp.home_enemy_control * p_cross  # the way home runs through the enemy's lines (eq. 49)
    guided_cross = rp.route_rewarded[0] > 0.0  # the offer rewards crossing: aware soldiers go through its queue
    sp = squad_params(p)  # the cascade's parameters, as scalars (no reference counts to update)
    dt = day_terms(p, rp)  # the members' evaluation's day constants
    n_blocks = min(n_comp, SCRATCH_BLOCKS)
    for b in prange(n_blocks):
        sq = squad_scratch(ss)
        active, willing, reveals, guided, eps = sq.active, sq.willing, sq.reveals, sq.guided, sq.eps
        v_s, v_c, v_k, v_st, ov, thr, peer_net = sq.v_s, sq.v_c, sq.v_k, sq.v_st, sq.ov, sq.thr, sq.peer_net
        v_home, v_home_caught, v_surrender = sq.v_home, sq.v_home_caught, sq.v_surrender
        available, route = sq.available, sq.route
        for c in range(b * n_comp // n_blocks, (b + 1) * n_comp // n_blocks):
            cls = company_class[c]
            p_opp = p.class_opportunity[cls]
            exposure = p.class_exposure[cls]
            p_opp_home = rp.home_class_opportunity[cls] if rp.route_open[1] > 0.0 else 0.0
            p_opp_surrender = 0.0
            if rp.route_open[2] > 0.0:
                p_opp_surrender = surrender_opportunity(
                    rp.surrender_opportunity, exposure, p.intensity, rp.surrender_manoeuvre_factor
                )
            squads = range(c * cs // ss, (c + 1) * cs // ss)
            overrun_c = overrun > 0.0 and rng.uniform(k_overrun, c) < overrun  # eq. 53a
            if not overrun_c and not any_opportunity(
                squads, p_opp, p_opp_home, p_opp_surrender, k_opp, k_opp_home, k_opp_surrender
            ):
                continue  # most companies on most days
            monitors = p.class_monitors[cls]
            p_reveal = reveal_probability(p.reveal_probability, p.reveal_monitor_sensitivity, monitors)
            cred = credibility(p.prior_alpha, p.prior_beta, evidence_pos[c] + public_pos, evidence_neg[c] + public_neg)
            share_def = defected[c] / cs
            for s in squads:
                # eq. 15, 42: which routes the squad has an opportunity for today
                available[0] = opportunity(s, p_opp, k_opp)
                # an overrun company's squads can all surrender, and walk away where that route is open (eq. 53)
                available[1] = (overrun_c and rp.route_open[1] > 0.0) or opportunity(s, p_opp_home, k_opp_home)
                available[2] = overrun_c or opportunity(s, p_opp_surrender, k_opp_surrender)
                n_routes, only = available_routes(available)
                if n_routes == 0:
                    continue
                # V_succ of crossing (and the package) is read only by crossing, and by desertion if the offer pays it
                success_read = available[0] or (available[1] and rp.route_rewarded[1] > 0.0)
                first = s * ss
                n_here = 0
                for j in range(ss):
                    i = first + j
                    active[j] = status[i] == SERVING
                    willing[j] = False
                    ov[j] = 0.0
                    if not active[j]:
                        continue
                    n_here += 1
                    knows = offer_open and aware_day[i] <= t  # knows an offer that is open today
                    aware = knows and guided_cross
                    guided[j] = aware
                    v_s[j], v_c[j], v_k[j], v_st[j], perceived, cash_now, hz, package = _soldier_terms(
                        i,
                        aware,
                        offer,
                        cred,
                        share_def,
                        cohesion[c],
                        exposure,
                        p,
                        dt,
                        tr,
                        success_read,
                    )
                    if overrun_c:
                        v_st[j] = overrun_stay_value(
                            v_st[j], rp.fight_on_death, tr.vsl[i], p.family_benefit_weight, p.death_benefit_usd
                        )
                    if available[0] and aware and not topup:
                        pc0 = catch_probability(p.catch_base, p.arrest_constant, monitors, p.monitor_vision, 0.0)
                        pc0 = guided_catch_probability(pc0, p_wait)
                        delta_now = net_gain(pc0, p_cross_guided, v_s[j], v_c[j], v_k[j], v_st[j])
                        q_now = success_probability(pc0, p_cross_guided)
                        pc_plain = catch_probability(p.catch_base, p.arrest_constant, monitors, p.monitor_vision, 0.0)
                        ov[j] = _option_value(
                            i,
                            delta_now,
                            q_now,
                            cred,
                            perceived,
                            cash_now,
                            hz,
                            share_def,
                            cohesion[c],
                            exposure,
                            p,
                            dt,
                            horizon_ratio,
                            horizon_open,
                            pc_plain,
                            p_cross,
                            tr,
                        )
                    if available[1] or available[2]:
                        if knows and not aware:  # the offer rewards other routes only: value its package for them
                            package = _soldier_terms(
                                i, True, offer, cred, share_def, cohesion[c], exposure, p, dt, tr, True
                            )[7]
                        v_home[j], v_home_caught[j], v_surrender[j] = _route_values(
                            i,
                            knows,
                            offer,
                            cred,
                            package,
                            v_st[j],
                            share_def,
                            cohesion[c],
                            exposure,
                            p,
                            dt,
                            rp,
                            tr,
                            st.record,
                            available[1],
                            available[2],
                        )
                    n_def = 0
                    for d in range(neighbours.shape[1]):
                        nb = neighbours[i, d]
                        if left_by_a_route(status[nb]) and left_day[nb] < t:  # left before today
                            n_def += 1
                    peer_net[j] = n_def / neighbours.shape[1]
                    thr[j] = threshold[i]
                    route_shocks(i, j, n_routes, only, k_shock, k_route, p.logit_scale, eps, available)
                    reveals[j] = rng.uniform(k_rev, i) < p_reveal
                if n_here == 0:
                    continue
                # eq. 18: best-response cascade on action inside the squad, A_0 with D = 0
                rk = SquadRisks(
                    precedent[c],
                    monitors,
                    p_wait,
                    p_cross,
                    p_cross_guided,
                    p_surrender_death,
                    p_home_catch,
                    p_home_cross,
                    monitors * rp.surrender_monitor_factor,
                )
                n_rev = squad_cascade(-1, willing, sq, rk, sp)
                n_go = 0
                for j in range(ss):
                    if active[j] and willing[j]:
                        n_go += 1
                squad_expected_departures(n_rev, n_go, sq, rk, sp, expected[c])
                if n_go == 0:
                    continue
                # eq. 47: each willing member's route, given the others who revealed themselves
                n_route = np.zeros(3, np.int64)
                for j in range(ss):
                    if active[j] and willing[j]:
                        route[j] = only if n_routes == 1 else best_route(j, n_rev - int(reveals[j]), sq, rk, sp)[0]
                        n_route[route[j]] += 1
                # the group's catch probability: D = the others going by the same route (eq. 9, 43)
                pc_real = catch_probability(
                    p.catch_base, p.arrest_constant, monitors, p.monitor_vision, max(n_route[0] - 1, 0)
                )
                pc_surrender = surrender_catch_probability(max(n_route[2] - 1, 0), rk, sp)
                for j in range(ss):
                    if not (active[j] and willing[j]):
                        continue
                    i = first + j
                    if route[j] == 1:
                        paid = offer_open and aware_day[i] <= t and rp.route_rewarded[1] > 0.0
                        outcome = desertion_outcome(i, p, rp, rk, st.record, k_catch, k_cross, k_exec, k_return)
                        _count_route_exit(counts, c, 1, outcome, paid, i, t, st)
                        continue
                    if route[j] == 2:
                        paid = offer_open and aware_day[i] <= t and rp.route_rewarded[2] > 0.0
                        outcome = surrender_outcome(
                            i, pc_surrender, p_surrender_death, p.execution_probability, k_catch, k_cross, k_exec
                        )
                        _count_route_exit(counts, c, 2, outcome, paid, i, t, st)
                        continue
                    if guided[j]:  # contacts the programme and waits for extraction (eq. 34)
                        status[i] = QUEUED
                        queue_day[i] = t
                        attempt_catch[i] = pc_real
                        counts[c, C_CONTACTS] += 1
                        continue
                    counts[c, C_ATTEMPTS] += 1
                    left_day[i] = t
                    outcome = crossing_outcome(i, pc_real, p_cross, p.execution_probability, k_catch, k_cross, k_exec)
                    status[i] = outcome
                    count_outcome(counts, c, outcome, soldier_type[i])


@njit(cache=True, parallel=True)
def decide_threshold(
    t: int,
    share_prev: float,
    status: np.ndarray,
    left_day: np.ndarray,
    threshold: np.ndarray,
    soldier_type: np.ndarray,
    company_size: int,
    counts: np.ndarray,
) -> None:
    """Eq. 20, threshold-only mode (Granovetter 1978): act iff the share already acting ≥ τ_i.

    Everyone has an opportunity every day and every attempt succeeds, so the daily map is
    r(t+1) = F(r(t)) with F the threshold CDF, Granovetter's own dynamics.
    """
    n_comp = counts.shape[0]
    for c in prange(n_comp):
        for i in range(c * company_size, (c + 1) * company_size):
            if status[i] == SERVING and threshold[i] <= share_prev:
                status[i] = ARRIVED
                left_day[i] = t
                counts[c, C_ATTEMPTS] += 1
                counts[c, C_ARRIVED] += 1
                counts[c, C_ARRIVED_TYPE + soldier_type[i]] += 1
