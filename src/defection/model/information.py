"""Information: awareness of the offer (Bass diffusion on the company network) and credibility.

Awareness is a simple contagion (eq. 23): media reach every soldier with the same daily probability,
and each unaware soldier also learns from aware network ties. Credibility (eq. 26) is a Beta belief
whose evidence is held per company: every signal in the model (comrades who got across, comrades
killed while surrendering) is company-local, so per-soldier pseudo-counts would be identical inside a
company. Evidence decays toward the prior, not toward zero (see docs/model.md, deviations).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from defection.model import rng
from defection.model.outputs import (
    C_ARRIVED,
    C_DESERTED,
    C_DETECTED_WAITING,
    C_KILLED_SURRENDERING,
    C_KILLED_X,
    C_SURRENDERED,
    SERVING,
)
from defection.model.parameters import EngineParams


@njit(cache=True, inline="always")
def awareness_hazard(external: float, imitation: float, aware_neighbour_share: float) -> float:
    """Eq. 23: h = 1 − (1 − p_ext)(1 − q·a_nbr)."""
    return 1.0 - (1.0 - external) * (1.0 - imitation * aware_neighbour_share)


@njit(cache=True, inline="always")
def awareness_hazard_bounds(external: float, imitation: float) -> tuple[float, float]:
    """Eq. 23: the least and the greatest hazard over aware-neighbour shares in [0, 1]. The hazard is monotone in
    the share in floating point too (each operation rounds monotonically), so these bound it exactly."""
    h0 = awareness_hazard(external, imitation, 0.0)
    h1 = awareness_hazard(external, imitation, 1.0)
    return min(h0, h1), max(h0, h1)


@njit(cache=True, inline="always")
def awareness_candidate(status: int, aware_day: int, t: int) -> bool:
    """Eq. 23 applies to soldier i today: he is unaware (he did not learn before today) and serving. The awareness
    day is tested first: once the offer has spread, most serving soldiers are aware and are skipped on one read."""
    return aware_day >= t and status == SERVING


@njit(cache=True, inline="always")
def decayed_evidence(evidence: float, memory: float, new: float) -> float:
    """Eq. 26: E_{t+1} = λ_c·E_t + Σ w_e (evidence above the prior decays with memory λ_c)."""
    return memory * evidence + new


@njit(cache=True, inline="always")
def decayed_precedent(precedent: float, decay: float, new_share: float) -> float:
    """Eq. 24: prec_{t+1} = d·prec_t + (defections today)/(company size), d = 2^(−1/half-life)."""
    return decay * precedent + new_share


@njit(cache=True, parallel=True)
def spread_awareness(
    t: int,
    seed: int,
    rep: int,
    p: EngineParams,
    offer_on: bool,
    status: np.ndarray,
    aware_day: np.ndarray,
    neighbours: np.ndarray,
    n_comp: int,
) -> None:
    """Phase 4: unaware serving soldiers learn of the offer with the hazard of eq. 23. A soldier's network ties are
    scanned only when his draw falls between the hazard's bounds (about a fifth of them at the defaults): below the
    least hazard he learns whatever his ties know, above the greatest he does not. Candidates are found by
    `awareness_candidate`; the parameters are read from `p` once, before the parallel loop."""
    if not offer_on:
        return
    cs = p.company_size
    deg = neighbours.shape[1]
    external, imitation = p.external_reach, p.peer_imitation
    k_aw = rng.stream_key(seed, rep, t, rng.AWARENESS)
    h_lo, h_hi = awareness_hazard_bounds(external, imitation)
    for c in prange(n_comp):
        for i in range(c * cs, (c + 1) * cs):
            if not awareness_candidate(status[i], aware_day[i], t):
                continue
            u = rng.uniform(k_aw, i)
            if u >= h_hi:
                continue
            if u >= h_lo:
                n_aware = 0
                for d in range(deg):
                    if aware_day[neighbours[i, d]] < t:
                        n_aware += 1
                if u >= awareness_hazard(external, imitation, n_aware / deg):
                    continue
            aware_day[i] = t


@njit(cache=True)
def update_company_signals(
    p: EngineParams,
    counts: np.ndarray,
    precedent: np.ndarray,
    evidence_pos: np.ndarray,
    evidence_neg: np.ndarray,
    defected: np.ndarray,
) -> None:
    """Phase 12: precedent (eq. 24) and credibility evidence (eq. 26) from today's outcomes. Comrades who left by
    any route (crossed, deserted, surrendered) set a precedent; comrades who got across are positive evidence;
    comrades killed crossing or surrendering, or detected while waiting for the programme, are negative evidence."""
    cs = p.company_size
    for c in range(precedent.size):
        arrived = counts[c, C_ARRIVED]
        left = arrived + counts[c, C_DESERTED] + counts[c, C_SURRENDERED]
        killed = counts[c, C_KILLED_X] + counts[c, C_KILLED_SURRENDERING]
        bad = p.weight_killed * killed + p.weight_caught_waiting * counts[c, C_DETECTED_WAITING]
        defected[c] += left
        precedent[c] = decayed_precedent(precedent[c], p.precedent_decay, left / cs)
        evidence_pos[c] = decayed_evidence(evidence_pos[c], p.memory, p.weight_arrival * arrived)
        evidence_neg[c] = decayed_evidence(evidence_neg[c], p.memory, bad)
