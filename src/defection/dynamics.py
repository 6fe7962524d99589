"""The daily loop: named phases in a fixed order, plus attrition, replacement and unit state.

One replicate is ``run_replicate``: synthesise the population, then for each day run

    exogenous → programme → regime → information → decision → attrition → units → record

(docs/model.md §3 gives the mapping to the ODD process overview). Each phase is one Numba kernel call,
so the loop is inspectable and ``phase_seconds`` profiles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from defection import rng
from defection.decision import credibility, death_hazard, decide, decide_threshold
from defection.information import spread_awareness, update_company_signals
from defection.parameters import MODE_THRESHOLD, EngineParams
from defection.population import (
    KILLED,
    NEVER,
    SERVING,
    WOUNDED,
    Population,
    draw_soldier,
    soldier_keys,
    synthesise,
)

PHASES = ("exogenous", "programme", "regime", "information", "decision", "attrition", "units", "record")
SERIES = (
    "offer_usd", "serving", "aware", "attempts", "arrived", "caught", "executed", "killed_crossing",
    "killed_in_action", "wounded", "replaced", "credibility", "strength_share", "units_ineffective_share",
)
COL = {name: k for k, name in enumerate(SERIES)}
# per-company daily counters
C_ATTEMPTS, C_ARRIVED, C_CAUGHT, C_EXECUTED, C_KILLED_X, C_KILLED, C_WOUNDED, C_REPLACED = range(8)


@njit(cache=True, parallel=True)
def attrition_and_replacement(t: int, seed: int, rep: int, p: EngineParams, status: np.ndarray,
                              left_day: np.ndarray, soldier_type: np.ndarray, vsl: np.ndarray,
                              income: np.ndarray, moral: np.ndarray, threshold: np.ndarray,
                              family: np.ndarray, offer_noise: np.ndarray, aware_day: np.ndarray,
                              company_type: np.ndarray, company_class: np.ndarray,
                              counts: np.ndarray) -> None:
    """Phase 10: deaths and wounds at the eq. 1 hazard; vacant slots refilled at rate eq. 21."""
    cs = p.company_size
    k_att = rng.stream_key(seed, rep, t, rng.ATTRITION)
    k_rep = rng.stream_key(seed, rep, t, rng.REPLACEMENT)
    keys = soldier_keys(seed, rep, t)
    for c in prange(company_type.size):
        killed = 0
        wounded = 0
        replaced = 0
        exposure = p.class_exposure[company_class[c]]
        for i in range(c * cs, (c + 1) * cs):
            if status[i] == SERVING:
                pk = death_hazard(p.death_hazard, exposure, p.type_hazard[soldier_type[i]], p.intensity)
                u = rng.uniform(k_att, i)
                if u < pk:
                    status[i] = KILLED
                    left_day[i] = t
                    killed += 1
                elif u < pk * (1.0 + p.wounded_per_killed):
                    status[i] = WOUNDED
                    left_day[i] = t
                    wounded += 1
            elif left_day[i] < t and rng.uniform(k_rep, i) < p.replacement_rate:
                draw_soldier(i, company_type[c], keys, p, soldier_type, vsl, income, moral, threshold, family,
                             offer_noise)
                status[i] = SERVING
                left_day[i] = NEVER
                aware_day[i] = NEVER
                replaced += 1
        counts[c, C_KILLED] = killed
        counts[c, C_WOUNDED] = wounded
        counts[c, C_REPLACED] = replaced


@njit(cache=True, parallel=True)
def company_census(t: int, p: EngineParams, status: np.ndarray, aware_day: np.ndarray,
                   serving: np.ndarray, aware: np.ndarray) -> None:
    """Serving and aware soldiers per company (integer counts, so reductions are exact)."""
    cs = p.company_size
    for c in prange(serving.size):
        s = 0
        a = 0
        for i in range(c * cs, (c + 1) * cs):
            if status[i] == SERVING:
                s += 1
                if aware_day[i] <= t:
                    a += 1
        serving[c] = s
        aware[c] = a


@njit(cache=True, inline="always")
def strength_ratio(serving: int, establishment: int) -> float:
    """Eq. 22: S_u(t)/S_u(0), present-for-duty over establishment."""
    return serving / establishment


@njit(cache=True)
def record_day(t: int, p: EngineParams, offer: float, counts: np.ndarray, serving: np.ndarray,
               aware: np.ndarray, evidence_pos: np.ndarray, evidence_neg: np.ndarray, row: np.ndarray) -> None:
    """Phase 13: one row of the daily series (serial sums in company order: deterministic)."""
    cs = p.company_size
    n_comp = serving.size
    tot = np.zeros(8, np.int64)
    n_serv = 0
    n_aware = 0
    n_ineff = 0
    cred_sum = 0.0
    for c in range(n_comp):
        for k in range(8):
            tot[k] += counts[c, k]
        n_serv += serving[c]
        n_aware += aware[c]
        if strength_ratio(serving[c], cs) < p.ineffective_threshold:
            n_ineff += 1
        cred_sum += serving[c] * credibility(p.prior_alpha, p.prior_beta, evidence_pos[c], evidence_neg[c])
    row[0] = offer
    row[1] = n_serv
    row[2] = n_aware
    row[3] = tot[C_ATTEMPTS]
    row[4] = tot[C_ARRIVED]
    row[5] = tot[C_CAUGHT]
    row[6] = tot[C_EXECUTED]
    row[7] = tot[C_KILLED_X]
    row[8] = tot[C_KILLED]
    row[9] = tot[C_WOUNDED]
    row[10] = tot[C_REPLACED]
    row[11] = cred_sum / n_serv if n_serv > 0 else np.nan
    row[12] = n_serv / (n_comp * cs)
    row[13] = n_ineff / n_comp


@dataclass
class ReplicateOutput:
    """The daily series of one replicate and the profile of its phases."""

    daily: np.ndarray  # (days, len(SERIES))
    agents: int
    phase_seconds: dict[str, float] = field(default_factory=dict)


def run_replicate(p: EngineParams, seed: int, rep: int, days: int, n_agents: int, offers: np.ndarray,
                  offer_on: np.ndarray, on_day: Callable[[int], None] | None = None,
                  population: Population | None = None) -> ReplicateOutput:
    """Simulate one replicate for `days` days. `offers[t]` is B(t); `offer_on[t]` if the programme runs."""
    timer: dict[str, float] = dict.fromkeys(PHASES, 0.0)
    clock = time.perf_counter
    t0 = clock()
    pop = population if population is not None else synthesise(n_agents, seed, rep, p)
    timer["exogenous"] += clock() - t0  # population synthesis is booked to the first phase
    n_comp = pop.companies
    counts = np.zeros((n_comp, 8), np.int64)
    serving = np.zeros(n_comp, np.int64)
    aware = np.zeros(n_comp, np.int64)
    daily = np.zeros((days, len(SERIES)))
    threshold_mode = p.mode == MODE_THRESHOLD
    arrived_total = 0
    for t in range(days):
        # 1-3. exogenous intensity, programme offer B(t), regime levers: fixed per scenario in this version
        t1 = clock()
        offer = float(offers[t])
        on = bool(offer_on[t])
        t2 = clock()
        timer["programme"] += t2 - t1
        # 4-5. information and credibility
        if not threshold_mode:
            spread_awareness(t, seed, rep, p, on, pop.status, pop.aware_day, pop.neighbours,
                             n_comp)
        t3 = clock()
        timer["information"] += t3 - t2
        # 6-9. opportunity, decision, squad coordination, attempt resolution
        if threshold_mode:
            decide_threshold(t, arrived_total / pop.n, pop.status, pop.left_day, pop.threshold,
                             p.company_size, counts)
        else:
            decide(t, seed, rep, p, offer, on, pop.status, pop.left_day, pop.soldier_type, pop.vsl, pop.income,
                   pop.moral, pop.threshold, pop.family, pop.offer_noise, pop.aware_day, pop.neighbours,
                   pop.company_class, pop.cohesion, pop.precedent, pop.evidence_pos, pop.evidence_neg,
                   pop.defected, counts)
        t4 = clock()
        timer["decision"] += t4 - t3
        # 10. attrition and replacement
        if not threshold_mode:
            attrition_and_replacement(t, seed, rep, p, pop.status, pop.left_day, pop.soldier_type, pop.vsl,
                                      pop.income, pop.moral, pop.threshold, pop.family, pop.offer_noise,
                                      pop.aware_day, pop.company_type, pop.company_class,
                                      counts)
        t5 = clock()
        timer["attrition"] += t5 - t4
        # 11-12. unit state, precedent and credibility evidence
        update_company_signals(p, counts, pop.precedent, pop.evidence_pos, pop.evidence_neg, pop.defected)
        company_census(t, p, pop.status, pop.aware_day, serving, aware)
        t6 = clock()
        timer["units"] += t6 - t5
        # 13. record
        record_day(t, p, offer, counts, serving, aware, pop.evidence_pos, pop.evidence_neg, daily[t])
        arrived_total += int(daily[t, COL["arrived"]])
        timer["record"] += clock() - t6
        if on_day is not None:
            on_day(t)
    return ReplicateOutput(daily=daily, agents=pop.n, phase_seconds=timer)
