"""The flat, numeric view of a scenario that the Numba kernels read.

Kernels cannot take pydantic objects, so :func:`engine_params` turns a validated
:class:`~defection.scenario.Scenario` into an immutable ``EngineParams`` named tuple of floats, ints and
small arrays. Nothing else converts units: money is USD, time is days unless a name says otherwise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from defection.scenario import ROUTE_NAMES, Scenario

MODE_FULL, MODE_THRESHOLD = 0, 1


DERIVED = {
    "company_size": "n_u = force.squad_size × force.squads_per_company",
    "type_share": "force.types.*.share, by type (eq. 8 draw)",
    "type_hazard_multiplier": "force.types.*.hazard_multiplier, by type (eq. 1)",
    "type_vsl_median_usd": "force.types.*.vsl_median_usd, by type (eq. 8)",
    "type_moral_cost_multiplier": "force.types.*.moral_cost_multiplier, by type (eq. 12a)",
    "class_share": "force.{rear,line,assault}_share, by class",
    "type_class_weight": "force.types.*.{rear,assault}_affinity, by type and class",
    "class_monitors": "M_class = M × (rear_monitor_multiplier, 1, assault_monitor_multiplier) (eq. 9, 16)",
    "class_exposure": "force.{rear,line,assault}_exposure, by class (eq. 1)",
    "class_opportunity": "combat.opportunity_{rear,line,assault}, by class (eq. 15)",
    "precedent_decay": "d = 2^(−1/precedent_half_life_days) (eq. 24)",
    "pay_usd_day": "w_d = combat.pay_usd_month × 12/365 (eq. 7)",
    "threat_sentence_years": "offer.threat.sentence_years, J_wc (eq. 7)",
    "channel_effective": "min(1, m·ρ_k)·(1 − b_k)·x_k per channel (eq. 23b)",
    "external_reach": "p_ext (eq. 23b)",
    "depth_ratio": "L/L_ref = war.front_depth_km / crossing.reference_depth_km (eq. 48)",
}
"""EngineParams fields that are not a scenario leaf of the same name, and what they are computed from."""
ROUTE_DERIVED = {
    "route_open": "(1, routes.home.open, routes.surrender.open) as 0/1, by route (eq. 42)",
    "route_rewarded": "1 where the route is in offer.rewards, by route (eq. 44)",
    "home_catch": "routes.home.catch_probability, p^c_H (eq. 43)",
    "home_returned": "routes.home.returned_to_unit_probability, ρ_ret (eq. 44)",
    "home_sentence_years": "routes.home.sentence_years, J_H (eq. 44)",
    "home_return_penalty_usd": "routes.home.return_penalty_usd, C_ret (eq. 44)",
    "home_hiding_cost_usd": "routes.home.hiding_cost_usd, C_hide (eq. 44)",
    "home_family_exposure": "routes.home.family_exposure, f_H (eq. 44)",
    "surrender_opportunity": "routes.surrender.daily_opportunity, π^S (eq. 42)",
    "surrender_monitor_factor": "routes.surrender.monitor_factor (eq. 43)",
    "surrender_death": "routes.surrender.death_probability, p^x_S0 (eq. 43)",
    "home_class_opportunity": "π^H_class = π^H·(m_rear, 1, 1)·exp(−(d − d_ref)/d_0), by class (eq. 50)",
    "home_enemy_control": "war.enemy_holds_home_share, e (eq. 49)",
    "home_enemy_catch": "routes.home.enemy_held_catch_probability, p^c_enemy (eq. 49)",
    "surrender_manoeuvre_factor": "1 + (R_m − 1)·m, R_m = routes.surrender.manoeuvre_ratio, m = war.manoeuvre (eq. 51)",
    "fight_on_death": "routes.surrender.fight_on_death_probability, p_f (eq. 53b)",
}
"""RouteParams fields and what they are computed from (every one is derived: the scenario leaves repeat names)."""


class EngineParams(NamedTuple):
    """The scenario's numbers as the kernels read them. A field has the name of its scenario leaf (the last
    component of its path, e.g. ``offer.share_on_arrival`` → ``share_on_arrival``); fields computed from
    scenario values are named after the quantity and listed in ``DERIVED``."""

    mode: int
    # structure
    squad_size: int
    company_size: int  # n_u, computed (force.company_size)
    unit_homogeneity: float
    cohesion_base: float
    type_share: np.ndarray  # (5,) by type, as every type_* field
    type_hazard_multiplier: np.ndarray
    type_vsl_median_usd: np.ndarray
    type_moral_cost_multiplier: np.ndarray
    class_share: np.ndarray  # (3,) rear, line, assault
    type_class_weight: np.ndarray  # (5, 3) affinity of each type for each class
    class_monitors: np.ndarray  # (3,) M_class, monitors per soldier by class (the regime's lever M, eq. 9)
    class_exposure: np.ndarray  # (3,)
    class_opportunity: np.ndarray  # (3,)
    network_degree: int
    network_rewiring: float
    # preferences
    vsl_log_sd: float
    present_bias: float
    discount_rate: float
    crra: float
    income_usd_year: float
    income_log_sd: float
    moral_cost_median_usd: float
    moral_cost_log_sd: float
    cohesion_cost_usd: float
    threshold_mean: float
    threshold_sd: float
    utility_scale_usd: float
    logit_scale: float
    peer_weight: float
    precedent_weight: float
    precedent_decay: float  # d of eq. 24, computed from preferences.precedent_half_life_days
    complex_contagion_contacts: int
    reveal_probability: float
    reveal_monitor_sensitivity: float
    has_family_share: float
    # combat
    death_hazard: float
    wounded_per_killed: float
    intensity: float
    replacement_rate: float
    remaining_exposure_days: float
    pay_usd_day: float  # w_d, computed from combat.pay_usd_month (or the regime's pay lever)
    death_benefit_usd: float
    family_benefit_weight: float
    # crossing
    catch_base: float
    arrest_constant: float
    monitor_vision: float
    killed_crossing_base: float
    # regime
    sentence_years: float
    sentence_served_share: float
    prison_year_cost_vsly: float
    execution_probability: float
    penal_death_risk: float
    family_reprisal_usd: float
    exchange_return_probability: float
    prosecution_if_returned: float
    assassination_risk: float
    # information
    channel_effective: np.ndarray  # (k,) ρ_k·(1 − b_k)·x_k, before the regime's own blocking
    external_reach: float  # p_ext, eq. 23b (with the regime's current blocking)
    peer_imitation: float
    initial_aware_share: float
    offer_noise_log_sd: float
    # credibility
    prior_alpha: float
    prior_beta: float
    memory: float
    weight_arrival: float
    weight_killed: float
    # offer
    share_on_arrival: float
    deferred_delay_years: float
    deferred_instalments: int
    asylum_probability: float
    resettled_income_usd_year: float
    education_premium_usd_year: float  # Y_edu: 0 unless offer.education
    exile_cost_usd: float
    working_life_years: int
    trip_value_usd: float
    family_extraction_probability: float
    protection: float
    prosecution_probability: float
    threat_sentence_years: float  # offer.threat.sentence_years (regime's is sentence_years)
    amnesty_for_defectors: float  # 1.0 or 0.0
    opportunity_persistence: float
    # programme
    queue_detection_per_day: float
    extraction_crossing_risk: float
    weight_caught_waiting: float
    # units
    combat_ineffective_threshold: float
    depth_ratio: float  # L/L_ref (eq. 48)


class RouteParams(NamedTuple):
    """The exit routes' numbers (§7.6b, §7.6c) as the decision kernel reads them: 0 cross, 1 home, 2 surrender
    (scenario.ROUTE_NAMES). A tuple of their own: Numba unpacks a tuple passed into a parallel region only up to
    100 fields, and `EngineParams` is near that."""

    route_open: np.ndarray  # (3,) 1.0 if the route is open in this war
    route_rewarded: np.ndarray  # (3,) 1.0 if the offer pays for the route
    home_catch: float
    home_returned: float
    home_sentence_years: float
    home_return_penalty_usd: float
    home_hiding_cost_usd: float
    home_family_exposure: float
    surrender_opportunity: float
    surrender_monitor_factor: float
    surrender_death: float
    # the kind of war (§7.6c)
    home_class_opportunity: np.ndarray  # (3,) π^H by class, distance included (eq. 50)
    home_enemy_control: float  # e (eq. 49)
    home_enemy_catch: float  # p^c_enemy (eq. 49)
    surrender_manoeuvre_factor: float  # 1 + (R_m − 1)·m (eq. 51)
    fight_on_death: float  # p_f, killed fighting on in an overrun company (eq. 53b)


def per_month_to_per_day(x: float) -> float:
    """Unit conversion: a monthly amount as a daily one, x·12/365 (w_d of eq. 7)."""
    return x * 12.0 / 365.0


def precedent_decay(half_life_days: float) -> float:
    """Eq. 24: d = 2^(−1/half-life), the daily decay of the precedent index."""
    return float(0.5 ** (1.0 / half_life_days))


def class_monitors(monitors_per_soldier: float, sc: Scenario) -> np.ndarray:
    """Eq. 9: M_class = M × (rear_monitor_multiplier, 1, assault_monitor_multiplier), by company class."""
    rg = sc.regime
    return monitors_per_soldier * np.array([rg.rear_monitor_multiplier, 1.0, rg.assault_monitor_multiplier])


def home_class_opportunity(sc: Scenario) -> np.ndarray:
    """Eq. 50: π^H_class = π^H·m_class·exp(−(d − d_ref)/d_0), m = (m_rear, 1, 1), by class (rear, line, assault)."""
    h = sc.routes.home
    distance = math.exp(-(sc.war.home_distance_km - h.reference_distance_km) / h.distance_scale_km)
    return h.daily_opportunity * np.array([h.rear_multiplier, 1.0, 1.0]) * distance


def manoeuvre_factor(ratio: float, manoeuvre: float) -> float:
    """Eq. 51: 1 + (R_m − 1)·m, how much more often surrender is possible in a war of mobility m."""
    return 1.0 + (ratio - 1.0) * manoeuvre


def channel_effective(sc: Scenario) -> np.ndarray:
    """ρ_k·(1 − b_k)·x_k for every channel, ρ_k scaled by the calibrated reach multiplier (capped at 1)."""
    m = sc.information.reach_multiplier
    return np.array(
        [min(1.0, m * ch.daily_reach) * (1.0 - ch.blocked) * ch.coverage for ch in sc.information.channels],
        dtype=np.float64,
    )


def external_reach(sc: Scenario, regime_blocking: float = 0.0) -> float:
    """Eq. 23b: p_ext = 1 − Π_k (1 − ρ_k·(1 − b_k)·(1 − b_R)·x_k), b_R the regime's blocking."""
    return reach_with_blocking(channel_effective(sc), regime_blocking)


def reach_with_blocking(effective: np.ndarray, regime_blocking: float) -> float:
    """Eq. 23b from the per-channel effective reach and the regime's blocking b_R."""
    return float(1.0 - np.prod(1.0 - effective * (1.0 - regime_blocking)))


def engine_params(sc: Scenario) -> EngineParams:
    f, p, cb, cr = sc.force, sc.preferences, sc.combat, sc.crossing
    rg, inf, cd, of = sc.regime, sc.information, sc.credibility, sc.offer
    types = [t for _, t in f.types.ordered()]
    return EngineParams(
        mode=MODE_FULL if sc.simulation.mode == "full" else MODE_THRESHOLD,
        squad_size=f.squad_size,
        company_size=f.company_size,
        unit_homogeneity=f.unit_homogeneity,
        cohesion_base=f.cohesion_base,
        type_share=np.array([t.share for t in types]),
        type_hazard_multiplier=np.array([t.hazard_multiplier for t in types]),
        type_vsl_median_usd=np.array([t.vsl_median_usd for t in types]),
        type_moral_cost_multiplier=np.array([t.moral_cost_multiplier for t in types]),
        class_share=np.array([f.rear_share, f.line_share, f.assault_share]),
        type_class_weight=np.array([[t.rear_affinity, 1.0, t.assault_affinity] for t in types]),
        class_monitors=class_monitors(rg.monitors_per_soldier, sc),
        class_exposure=np.array([f.rear_exposure, f.line_exposure, f.assault_exposure]),
        class_opportunity=np.array([cb.opportunity_rear, cb.opportunity_line, cb.opportunity_assault]),
        network_degree=inf.network_degree,
        network_rewiring=inf.network_rewiring,
        vsl_log_sd=p.vsl_log_sd,
        present_bias=p.present_bias,
        discount_rate=p.discount_rate,
        crra=p.crra,
        income_usd_year=p.income_usd_year,
        income_log_sd=p.income_log_sd,
        moral_cost_median_usd=p.moral_cost_median_usd,
        moral_cost_log_sd=p.moral_cost_log_sd,
        cohesion_cost_usd=p.cohesion_cost_usd,
        threshold_mean=p.threshold_mean,
        threshold_sd=p.threshold_sd,
        utility_scale_usd=p.utility_scale_usd,
        logit_scale=p.logit_scale,
        peer_weight=p.peer_weight,
        precedent_weight=p.precedent_weight,
        precedent_decay=precedent_decay(p.precedent_half_life_days),
        complex_contagion_contacts=p.complex_contagion_contacts,
        reveal_probability=p.reveal_probability,
        reveal_monitor_sensitivity=p.reveal_monitor_sensitivity,
        has_family_share=p.has_family_share,
        death_hazard=cb.death_hazard,
        wounded_per_killed=cb.wounded_per_killed,
        intensity=cb.intensity,
        replacement_rate=cb.replacement_rate,
        remaining_exposure_days=cb.remaining_exposure_days,
        pay_usd_day=per_month_to_per_day(cb.pay_usd_month),
        death_benefit_usd=cb.death_benefit_usd,
        family_benefit_weight=cb.family_benefit_weight,
        catch_base=cr.catch_base,
        arrest_constant=cr.arrest_constant,
        monitor_vision=cr.monitor_vision,
        killed_crossing_base=cr.killed_crossing_base,
        sentence_years=rg.sentence_years,
        sentence_served_share=rg.sentence_served_share,
        prison_year_cost_vsly=rg.prison_year_cost_vsly,
        execution_probability=rg.execution_probability,
        penal_death_risk=rg.penal_death_risk,
        family_reprisal_usd=rg.family_reprisal_usd,
        exchange_return_probability=rg.exchange_return_probability,
        prosecution_if_returned=rg.prosecution_if_returned,
        assassination_risk=rg.assassination_risk,
        channel_effective=channel_effective(sc),
        external_reach=external_reach(sc),
        peer_imitation=inf.peer_imitation,
        initial_aware_share=inf.initial_aware_share,
        offer_noise_log_sd=inf.offer_noise_log_sd,
        prior_alpha=cd.prior_alpha,
        prior_beta=cd.prior_beta,
        memory=cd.memory,
        weight_arrival=cd.weight_arrival,
        weight_killed=cd.weight_killed,
        share_on_arrival=of.share_on_arrival,
        deferred_delay_years=of.deferred_delay_years,
        deferred_instalments=of.deferred_instalments,
        asylum_probability=of.asylum_probability,
        resettled_income_usd_year=of.resettled_income_usd_year,
        education_premium_usd_year=of.education_premium_usd_year if of.education else 0.0,
        exile_cost_usd=of.exile_cost_usd,
        working_life_years=of.working_life_years,
        trip_value_usd=of.trip_value_usd,
        family_extraction_probability=of.family_extraction_probability,
        protection=of.protection,
        prosecution_probability=of.threat.prosecution_probability,
        threat_sentence_years=of.threat.sentence_years,
        amnesty_for_defectors=1.0 if of.threat.amnesty_for_defectors else 0.0,
        opportunity_persistence=of.schedule.opportunity_persistence,
        queue_detection_per_day=sc.programme.queue_detection_per_day,
        extraction_crossing_risk=sc.programme.extraction_crossing_risk,
        weight_caught_waiting=sc.programme.weight_caught_waiting,
        combat_ineffective_threshold=sc.units.combat_ineffective_threshold,
        depth_ratio=sc.war.front_depth_km / cr.reference_depth_km,
    )


def route_params(sc: Scenario) -> RouteParams:
    """The scenario's exit-route and war numbers for the decision kernel (`RouteParams`)."""
    of, rt = sc.offer, sc.routes
    return RouteParams(
        route_open=np.array([1.0, float(rt.home.open), float(rt.surrender.open)]),
        route_rewarded=np.array([float(r in of.rewards) for r in ROUTE_NAMES]),
        home_catch=rt.home.catch_probability,
        home_returned=rt.home.returned_to_unit_probability,
        home_sentence_years=rt.home.sentence_years,
        home_return_penalty_usd=rt.home.return_penalty_usd,
        home_hiding_cost_usd=rt.home.hiding_cost_usd,
        home_family_exposure=rt.home.family_exposure,
        surrender_opportunity=rt.surrender.daily_opportunity,
        surrender_monitor_factor=rt.surrender.monitor_factor,
        surrender_death=rt.surrender.death_probability,
        home_class_opportunity=home_class_opportunity(sc),
        home_enemy_control=sc.war.enemy_holds_home_share,
        home_enemy_catch=rt.home.enemy_held_catch_probability,
        surrender_manoeuvre_factor=manoeuvre_factor(rt.surrender.manoeuvre_ratio, sc.war.manoeuvre),
        fight_on_death=rt.surrender.fight_on_death_probability,
    )


def front_broken(t: int, start: int, days: int) -> bool:
    """Eq. 53: whether day t falls in the front's collapse, t_c ≤ t < t_c + D_c."""
    return start <= t < start + days


def overrun_probability(sc: Scenario, t: int) -> float:
    """Eq. 53a: ε(t) = min(1, ε_0·I) on the days the front is broken (and surrender is open), else 0."""
    w, s = sc.war, sc.routes.surrender
    if not (s.open and front_broken(t, w.collapse_start_day, w.collapse_days)):
        return 0.0
    return min(1.0, s.overrun_probability * sc.combat.intensity)
