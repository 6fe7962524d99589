"""Population synthesis: soldiers as a structure of arrays, sorted by company and squad.

Slot ``i`` belongs to company ``i // company_size`` and squad ``i // squad_size``; companies are
contiguous, so a kernel can run over companies in parallel with no write races. A vacated slot is
refilled by a replacement (eq. 21) who is drawn with the same function as the initial soldiers, keyed by
the day he arrives, so replacements are reproducible and shared across policy variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from defection.model import rng
from defection.model.outputs import QUEUED, SERVING
from defection.model.parameters import EngineParams

NEVER = np.int32(2**31 - 1)


@njit(cache=True, inline="always")
def present(status: int) -> bool:
    """Still in the unit: serving, or waiting in the programme's queue."""
    return status in (SERVING, QUEUED)


class Traits(NamedTuple):
    """What a soldier brings to his slot when he arrives (drawn by `draw_soldier`; read-only in the day's kernels)."""

    soldier_type: np.ndarray  # int8, index into TYPE_NAMES
    vsl: np.ndarray  # float64, USD
    income: np.ndarray  # float64, USD/year
    moral: np.ndarray  # float64, USD (m0_i)
    threshold: np.ndarray  # float64, threshold units (τ_i)
    family: np.ndarray  # int8, 1 = family exposed to reprisals
    offer_noise: np.ndarray  # float64, standard-normal z of the perceived offer


class SoldierState(NamedTuple):
    """What happens to a soldier's slot day by day (the kernels write these in place)."""

    status: np.ndarray  # int8
    left_day: np.ndarray  # int32, day the slot was vacated
    aware_day: np.ndarray  # int32, day the soldier learned of the offer (NEVER if not)
    queue_day: np.ndarray  # int32, day he joined the programme's queue
    attempt_catch: np.ndarray  # float64, p^c of his group when he decided (used at extraction)
    record: np.ndarray  # int8, 1 = convicted of desertion and returned to his unit (eq. 44; no second suspension)
    neighbours: np.ndarray  # int32 (n, degree), slots of his network ties (same company)


class Companies(NamedTuple):
    """Per-company state (index c; company c holds slots c·n_u … (c+1)·n_u − 1)."""

    company_type: np.ndarray  # int8, dominant type
    company_class: np.ndarray  # int8, exposure class (rear/line/assault)
    cohesion: np.ndarray  # float64, κ_u
    precedent: np.ndarray  # float64, prec_u
    evidence_pos: np.ndarray  # float64, positive credibility evidence
    evidence_neg: np.ndarray  # float64, negative credibility evidence
    defected: np.ndarray  # int64, soldiers of the company who left by an exit route so far (eq. 12a, 24)


@dataclass
class Population:
    """Per-soldier and per-company state of one replicate, as the three groups the kernels take. Arrays only."""

    soldiers: SoldierState
    traits: Traits
    companies: Companies

    @property
    def n(self) -> int:
        return int(self.soldiers.status.size)

    @property
    def n_companies(self) -> int:
        return int(self.companies.company_type.size)


@njit(cache=True, inline="always")
def categorical(u: float, shares: np.ndarray) -> int:
    """Index k with probability shares[k] by inversion of the cumulative shares."""
    acc = 0.0
    for k in range(shares.size):
        acc += shares[k]
        if u < acc:
            return k
    return shares.size - 1


@njit(cache=True)
def company_exposure_class(u: float, dominant: int, p: EngineParams) -> int:
    """Exposure class of a company: base class shares weighted by the dominant type's affinities."""
    w = p.class_share * p.type_class_weight[dominant]
    total = w.sum()
    if total <= 0.0:
        return categorical(u, p.class_share)
    return categorical(u, w / total)


@njit(cache=True)
def soldier_keys(seed: int, rep: int, day: int) -> np.ndarray:
    """The stream keys of every soldier attribute for soldiers arriving on `day` (computed once a day)."""
    keys = np.empty(8, np.uint64)
    for k, stream in enumerate(
        (
            rng.POP_TYPE,
            rng.POP_VSL,
            rng.POP_INCOME,
            rng.POP_MORAL,
            rng.POP_THRESHOLD,
            rng.POP_FAMILY,
            rng.POP_NOISE,
            rng.POP_MIXED_TYPE,
        )
    ):
        keys[k] = rng.stream_key(seed, rep, day, stream)
    return keys


@njit(cache=True)
def draw_soldier(
    i: int,
    dominant: int,
    keys: np.ndarray,
    p: EngineParams,
    soldier_type: np.ndarray,
    vsl: np.ndarray,
    income: np.ndarray,
    moral: np.ndarray,
    threshold: np.ndarray,
    family: np.ndarray,
    offer_noise: np.ndarray,
) -> None:
    """Draw the attributes of the soldier in slot i (eq. 8 and §2.1); `keys` from soldier_keys."""
    t = dominant if rng.uniform(keys[0], i) < p.unit_homogeneity else categorical(rng.uniform(keys[7], i), p.type_share)
    soldier_type[i] = t
    vsl[i] = p.type_vsl_median_usd[t] * math.exp(p.vsl_log_sd * rng.normal(keys[1], i))
    income[i] = p.income_usd_year * math.exp(p.income_log_sd * rng.normal(keys[2], i))
    moral[i] = (
        p.moral_cost_median_usd
        * p.type_moral_cost_multiplier[t]
        * math.exp(p.moral_cost_log_sd * rng.normal(keys[3], i))
    )
    threshold[i] = p.threshold_mean + p.threshold_sd * rng.normal(keys[4], i)
    family[i] = 1 if rng.uniform(keys[5], i) < p.has_family_share else 0
    offer_noise[i] = rng.normal(keys[6], i)


@njit(cache=True, parallel=True)
def _synthesise(
    n_comp: int,
    seed: int,
    rep: int,
    p: EngineParams,
    soldier_type: np.ndarray,
    vsl: np.ndarray,
    income: np.ndarray,
    moral: np.ndarray,
    threshold: np.ndarray,
    family: np.ndarray,
    offer_noise: np.ndarray,
    aware_day: np.ndarray,
    neighbours: np.ndarray,
    company_type: np.ndarray,
    company_class: np.ndarray,
    cohesion: np.ndarray,
) -> None:
    cs = p.company_size
    k_ct = rng.stream_key(seed, rep, -1, rng.POP_COMPANY_TYPE)
    k_cc = rng.stream_key(seed, rep, -1, rng.POP_COMPANY_CLASS)
    k_net = rng.stream_key(seed, rep, -1, rng.POP_NETWORK)
    k_rewire = rng.stream_key(seed, rep, -1, rng.POP_REWIRE)
    keys = soldier_keys(seed, rep, -1)
    k_aw = rng.stream_key(seed, rep, -1, rng.AWARENESS)
    half = p.network_degree // 2
    for c in prange(n_comp):
        dom = categorical(rng.uniform(k_ct, c), p.type_share)
        company_type[c] = dom
        company_class[c] = company_exposure_class(rng.uniform(k_cc, c), dom, p)
        counts = np.zeros(5, dtype=np.int64)
        for i in range(c * cs, (c + 1) * cs):
            draw_soldier(i, dom, keys, p, soldier_type, vsl, income, moral, threshold, family, offer_noise)
            counts[soldier_type[i]] += 1
            if rng.uniform(k_aw, i) < p.initial_aware_share:
                aware_day[i] = -1
            # Watts–Strogatz within the company: ring lattice of `degree` ties, each rewired with prob. p.
            local = i - c * cs
            for d in range(p.network_degree):
                offset = d - half if d < half else d - half + 1
                j = (local + offset) % cs
                slot = i * p.network_degree + d
                if rng.uniform(k_net, slot) < p.network_rewiring:
                    j = int(rng.uniform(k_rewire, slot) * cs)
                    if j == local:
                        j = (local + 1) % cs
                neighbours[i, d] = c * cs + j
        cohesion[c] = p.cohesion_base * counts.max() / cs


def synthesise(n_agents: int, seed: int, rep: int, p: EngineParams) -> Population:
    """Build replicate `rep`'s population of whole companies (n_agents rounded down to companies)."""
    cs = p.company_size
    n_comp = max(1, n_agents // cs)
    n = n_comp * cs
    pop = Population(
        soldiers=SoldierState(
            status=np.zeros(n, np.int8),
            left_day=np.full(n, NEVER, np.int32),
            aware_day=np.full(n, NEVER, np.int32),
            queue_day=np.full(n, NEVER, np.int32),
            attempt_catch=np.zeros(n),
            record=np.zeros(n, np.int8),
            neighbours=np.zeros((n, p.network_degree), np.int32),
        ),
        traits=Traits(
            soldier_type=np.zeros(n, np.int8),
            vsl=np.zeros(n),
            income=np.zeros(n),
            moral=np.zeros(n),
            threshold=np.zeros(n),
            family=np.zeros(n, np.int8),
            offer_noise=np.zeros(n),
        ),
        companies=Companies(
            company_type=np.zeros(n_comp, np.int8),
            company_class=np.zeros(n_comp, np.int8),
            cohesion=np.zeros(n_comp),
            precedent=np.zeros(n_comp),
            evidence_pos=np.zeros(n_comp),
            evidence_neg=np.zeros(n_comp),
            defected=np.zeros(n_comp, np.int64),
        ),
    )
    tr, st, co = pop.traits, pop.soldiers, pop.companies
    _synthesise(
        n_comp,
        seed,
        rep,
        p,
        tr.soldier_type,
        tr.vsl,
        tr.income,
        tr.moral,
        tr.threshold,
        tr.family,
        tr.offer_noise,
        st.aware_day,
        st.neighbours,
        co.company_type,
        co.company_class,
        co.cohesion,
    )
    return pop


def simulated_agents(n_agents: int, company_size: int) -> int:
    """The number of agents actually simulated: whole companies only."""
    return max(1, n_agents // company_size) * company_size


MIN_RESOLVED_COMPANIES = 50
"""The fewest simulated companies at which outcomes agree with larger runs within Monte Carlo error.

Measured with a $10M offer under the adaptive regime (docs/performance.md, "Resolution"): the defected share
agrees from 10 companies up; the regime's final monitoring agrees from 50 (within 4% of 1,000 companies) and is
a quarter too high at 10, because the opportunity draws (eq. 15) still make the flow the regime sees noisier
in a small army."""


def min_resolved_agents(company_size: int) -> int:
    """The smallest agent count whose outcomes are resolution-independent: MIN_RESOLVED_COMPANIES companies."""
    return MIN_RESOLVED_COMPANIES * company_size


def resolution_warning(agents: int, company_size: int) -> str | None:
    """A warning for an agent count (as asked; whole companies are simulated) below `min_resolved_agents`, or None."""
    agents = simulated_agents(agents, company_size)
    least = min_resolved_agents(company_size)
    if agents >= least:
        return None
    return (
        f"{agents:,} agents is below {least:,} ({MIN_RESOLVED_COMPANIES} companies), the fewest at which outcomes "
        "were measured to agree with larger runs within Monte Carlo error; the regime's counter-measures may come "
        "out too strong (docs/performance.md, 'Resolution')"
    )
