"""The flat, numeric view of a scenario that the Numba kernels read.

Kernels cannot take pydantic objects, so :func:`engine_params` turns a validated
:class:`~defection.scenario.Scenario` into an immutable ``EngineParams`` named tuple of floats, ints and
small arrays. Nothing else converts units: money is USD, time is days unless a name says otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from defection.scenario import Scenario

MODE_FULL, MODE_THRESHOLD = 0, 1
CLASS_REAR, CLASS_LINE, CLASS_ASSAULT = 0, 1, 2


class EngineParams(NamedTuple):
    mode: int
    # structure
    squad_size: int
    company_size: int
    homogeneity: float
    cohesion_base: float
    type_share: np.ndarray  # (5,)
    type_hazard: np.ndarray  # (5,)
    type_vsl: np.ndarray  # (5,)
    type_moral: np.ndarray  # (5,)
    class_share: np.ndarray  # (3,) rear, line, assault
    type_class_weight: np.ndarray  # (5, 3) affinity of each type for each class
    class_monitors: np.ndarray  # (3,) monitors per soldier by class
    class_exposure: np.ndarray  # (3,)
    class_opportunity: np.ndarray  # (3,)
    degree: int
    rewiring: float
    # preferences
    vsl_log_sd: float
    present_bias: float
    discount_rate: float
    crra: float
    income: float
    income_log_sd: float
    moral_median: float
    moral_log_sd: float
    cohesion_cost: float
    threshold_mean: float
    threshold_sd: float
    utility_scale: float
    logit_scale: float
    peer_weight: float
    precedent_weight: float
    precedent_decay: float
    cc_contacts: int
    reveal_probability: float
    reveal_sensitivity: float
    family_share: float
    # combat
    death_hazard: float
    wounded_per_killed: float
    intensity: float
    replacement_rate: float
    remaining_days: float
    pay_day: float
    death_benefit: float
    family_benefit_weight: float
    # crossing
    catch_base: float
    arrest_constant: float
    monitor_vision: float
    killed_crossing: float
    # regime
    monitors: float
    sentence_years: float
    served_share: float
    prison_year_vsly: float
    execution_probability: float
    penal_death_risk: float
    family_reprisal: float
    exchange_return: float
    prosecution_if_returned: float
    assassination_risk: float
    # information
    channel_effective: np.ndarray  # (k,) ρ_k·(1 − b_k)·x_k, before the regime's own blocking
    external_reach: float  # p_ext, eq. 23b (with the regime's current blocking)
    peer_imitation: float
    initial_aware: float
    offer_noise: float
    # credibility
    prior_alpha: float
    prior_beta: float
    memory: float
    weight_arrival: float
    weight_killed: float
    # offer
    share_now: float
    deferred_delay: float
    deferred_instalments: int
    asylum_probability: float
    resettled_income: float
    education_premium: float
    exile_cost: float
    working_life: int
    trip_value: float
    family_extraction: float
    protection: float
    threat_probability: float
    threat_years: float
    amnesty: float
    opportunity_persistence: float
    # programme
    queue_detection: float
    extraction_risk: float
    weight_caught_waiting: float
    # units
    ineffective_threshold: float


def per_month_to_per_day(x: float) -> float:
    """Unit conversion: a monthly amount as a daily one, x·12/365 (w_d of eq. 7)."""
    return x * 12.0 / 365.0


def precedent_decay(half_life_days: float) -> float:
    """Eq. 24: d = 2^(−1/half-life), the daily decay of the precedent index."""
    return 0.5 ** (1.0 / half_life_days)


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
        homogeneity=f.unit_homogeneity,
        cohesion_base=f.cohesion_base,
        type_share=np.array([t.share for t in types]),
        type_hazard=np.array([t.hazard_multiplier for t in types]),
        type_vsl=np.array([t.vsl_median_usd for t in types]),
        type_moral=np.array([t.moral_cost_multiplier for t in types]),
        class_share=np.array([f.rear_share, f.line_share, f.assault_share]),
        type_class_weight=np.array([[t.rear_affinity, 1.0, t.assault_affinity] for t in types]),
        class_monitors=rg.monitors_per_soldier
        * np.array([rg.rear_monitor_multiplier, 1.0, rg.assault_monitor_multiplier]),
        class_exposure=np.array([f.rear_exposure, f.line_exposure, f.assault_exposure]),
        class_opportunity=np.array([cb.opportunity_rear, cb.opportunity_line, cb.opportunity_assault]),
        degree=inf.network_degree,
        rewiring=inf.network_rewiring,
        vsl_log_sd=p.vsl_log_sd,
        present_bias=p.present_bias,
        discount_rate=p.discount_rate,
        crra=p.crra,
        income=p.income_usd_year,
        income_log_sd=p.income_log_sd,
        moral_median=p.moral_cost_median_usd,
        moral_log_sd=p.moral_cost_log_sd,
        cohesion_cost=p.cohesion_cost_usd,
        threshold_mean=p.threshold_mean,
        threshold_sd=p.threshold_sd,
        utility_scale=p.utility_scale_usd,
        logit_scale=p.logit_scale,
        peer_weight=p.peer_weight,
        precedent_weight=p.precedent_weight,
        precedent_decay=precedent_decay(p.precedent_half_life_days),
        cc_contacts=p.complex_contagion_contacts,
        reveal_probability=p.reveal_probability,
        reveal_sensitivity=p.reveal_monitor_sensitivity,
        family_share=p.has_family_share,
        death_hazard=cb.death_hazard,
        wounded_per_killed=cb.wounded_per_killed,
        intensity=cb.intensity,
        replacement_rate=cb.replacement_rate,
        remaining_days=cb.remaining_exposure_days,
        pay_day=per_month_to_per_day(cb.pay_usd_month),
        death_benefit=cb.death_benefit_usd,
        family_benefit_weight=cb.family_benefit_weight,
        catch_base=cr.catch_base,
        arrest_constant=cr.arrest_constant,
        monitor_vision=cr.monitor_vision,
        killed_crossing=cr.killed_crossing_base,
        monitors=rg.monitors_per_soldier,
        sentence_years=rg.sentence_years,
        served_share=rg.sentence_served_share,
        prison_year_vsly=rg.prison_year_cost_vsly,
        execution_probability=rg.execution_probability,
        penal_death_risk=rg.penal_death_risk,
        family_reprisal=rg.family_reprisal_usd,
        exchange_return=rg.exchange_return_probability,
        prosecution_if_returned=rg.prosecution_if_returned,
        assassination_risk=rg.assassination_risk,
        channel_effective=channel_effective(sc),
        external_reach=external_reach(sc),
        peer_imitation=inf.peer_imitation,
        initial_aware=inf.initial_aware_share,
        offer_noise=inf.offer_noise_log_sd,
        prior_alpha=cd.prior_alpha,
        prior_beta=cd.prior_beta,
        memory=cd.memory,
        weight_arrival=cd.weight_arrival,
        weight_killed=cd.weight_killed,
        share_now=of.share_on_arrival,
        deferred_delay=of.deferred_delay_years,
        deferred_instalments=of.deferred_instalments,
        asylum_probability=of.asylum_probability,
        resettled_income=of.resettled_income_usd_year,
        education_premium=of.education_premium_usd_year if of.education else 0.0,
        exile_cost=of.exile_cost_usd,
        working_life=of.working_life_years,
        trip_value=of.trip_value_usd,
        family_extraction=of.family_extraction_probability,
        protection=of.protection,
        threat_probability=of.threat.prosecution_probability,
        threat_years=of.threat.sentence_years,
        amnesty=1.0 if of.threat.amnesty_for_defectors else 0.0,
        opportunity_persistence=of.schedule.opportunity_persistence,
        queue_detection=sc.programme.queue_detection_per_day,
        extraction_risk=sc.programme.extraction_crossing_risk,
        weight_caught_waiting=sc.programme.weight_caught_waiting,
        ineffective_threshold=sc.units.combat_ineffective_threshold,
    )
