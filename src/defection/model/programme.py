"""The offering programme: the offer schedule B(t), soldiers' expectations of it, the extraction queue,
screening of claimants and credibility events (docs/model.md §7.2 and §7.10).

Everything here runs once a day at Python level except the two queue kernels, which are serial so that
the first-in, first-out order is exact and independent of thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from defection.model import rng
from defection.model.decision import (
    HORIZONS,
    captured_status,
    count_outcome,
    crossing_death_probability,
    crossing_outcome,
    guided_crossing_death_probability,
)
from defection.model.outputs import (
    ARRIVED,
    C_ARRIVED_PROGRAMME,
    C_ATTEMPTS,
    C_DETECTED_WAITING,
    C_EXTRACTED,
    C_PAID,
    C_REJECTED,
    QUEUED,
)
from defection.model.parameters import EngineParams
from defection.model.population import SoldierState
from defection.scenario import Scenario


# ----------------------------------------------------------------------------- the offer schedule
def scheduled_offer(sc: Scenario, t: int) -> float:
    """Eq. 27: B(t) for the rules whose path is fixed in advance (all but 'adaptive')."""
    of, sch = sc.offer, sc.offer.schedule
    if t < of.start_day:
        return 0.0
    if sch.rule == "deadline" and t > sch.deadline_day:
        return 0.0
    if sch.rule in ("announced_escalation", "unannounced_escalation", "ratchet_topup"):
        steps = (t - of.start_day) // sch.step_days
        return float(min(sch.max_cash_usd, of.cash_usd * (1.0 + sch.growth_per_step) ** steps))
    return float(of.cash_usd)


def window_open(sc: Scenario, t: int) -> bool:
    """Eq. 27: the programme takes defectors from offer.start_day until a deadline (rule 'deadline'), whatever the
    cash: a zero cash offer is a programme that offers only its non-cash package (safety, asylum, education)."""
    sch = sc.offer.schedule
    return t >= sc.offer.start_day and not (sch.rule == "deadline" and t > sch.deadline_day)


def adaptive_raise(
    offer: float, growth: float, ceiling: float, recent_share_per_month: float, target: float, capped: bool
) -> float:
    """Eq. 27b: 'sweeten until target': raise by g each step while defections are below target."""
    if capped or recent_share_per_month >= target:
        return offer
    return min(ceiling, offer * (1.0 + growth))


def adaptive_expectation(expected: float, observed: float, weight: float) -> float:
    """Eq. 25c: ĝ_t = (1 − λ_g)·ĝ_{t−1} + λ_g·g_obs,t (adaptive expectations of daily growth)."""
    return (1.0 - weight) * expected + weight * observed


@dataclass
class ProgrammeState:
    """The programme's day-to-day state for one replicate."""

    offer: float = 0.0
    open: bool = False
    last_offer: float = 0.0  # the offer when last open: what soldiers still in the queue are paid
    closed_by_budget: bool = False
    expected_growth: float = 0.0  # ĝ, per day, for unannounced raises
    paid_offer: float = 0.0  # highest offer already paid out (for the ratchet top-up)
    paid_total: float = 0.0  # represented defectors paid so far
    committed_cost: float = 0.0  # nominal cost committed so far (budget cap)
    capacity_carry: float = 0.0
    history: list[float] = field(default_factory=list)  # B(t) so far
    public_pos: float = 0.0  # public credibility evidence (eq. 26c)
    public_neg: float = 0.0
    raises: int = 0


def update_offer(sc: Scenario, st: ProgrammeState, t: int, recent_share_per_month: float) -> float:
    """Phase 2: today's offer B(t); returns the rise since yesterday (for top-ups and credibility)."""
    of, sch = sc.offer, sc.offer.schedule
    before = st.offer
    if sch.rule == "adaptive":
        if t < of.start_day:
            new = 0.0
        elif t == of.start_day or st.offer == 0.0:
            new = of.cash_usd
        elif (t - of.start_day) % sch.step_days == 0:
            new = adaptive_raise(
                st.offer,
                sch.growth_per_step,
                sch.max_cash_usd,
                recent_share_per_month,
                sch.target_share_per_month,
                st.closed_by_budget,
            )
        else:
            new = st.offer
    else:
        new = scheduled_offer(sc, t)
    if st.closed_by_budget:
        new = 0.0
    st.offer = new
    st.open = window_open(sc, t) and not st.closed_by_budget
    if st.open:
        st.last_offer = new
    st.history.append(new)
    rise = new - before if before > 0 and new > before else 0.0
    if rise > 0:
        st.raises += 1
    # eq. 25c: adaptive expectations of growth from the offer's path over the last 30 days
    if len(st.history) > 30 and st.history[-31] > 0 and new > 0:
        observed = (new / st.history[-31]) ** (1.0 / 30.0) - 1.0
    else:
        observed = 0.0
    st.expected_growth = adaptive_expectation(st.expected_growth, observed, sch.expectation_update)
    return rise


_EXPECTING_RULES = frozenset({"deadline", "announced_escalation", "unannounced_escalation", "adaptive"})
"""The offer rules under which soldiers expect the offer to change or end (eq. 25b); under the others both
expectations stay 1."""


def horizon_expectations(sc: Scenario, st: ProgrammeState, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected B(t+k)/B(t) and whether the offer is still open at t+k, for k in HORIZONS (eq. 25b)."""
    sch = sc.offer.schedule
    ratio = np.ones(HORIZONS.size)
    open_ = np.ones(HORIZONS.size, dtype=np.bool_)
    if not st.open or sch.rule not in _EXPECTING_RULES or (sch.rule != "deadline" and st.offer <= 0.0):
        return ratio, open_  # nothing to expect: the loop below would leave both as they are
    for h, k in enumerate(HORIZONS):
        k = int(k)
        if sch.rule == "deadline":
            open_[h] = t + k <= sch.deadline_day
        elif st.offer <= 0.0:  # a non-cash programme: nothing to wait for
            continue
        elif sch.rule == "announced_escalation":
            ratio[h] = scheduled_offer(sc, t + k) / st.offer
        elif sch.rule == "unannounced_escalation":
            ratio[h] = (1.0 + st.expected_growth) ** k
        elif sch.rule == "adaptive":
            ratio[h] = min(sch.max_cash_usd / st.offer, (1.0 + sch.growth_per_step) ** (k / sch.step_days))
    return ratio, open_


def apply_events(
    sc: Scenario, st: ProgrammeState, t: int, seed: int, rep: int, memory: float, unannounced_raise: bool
) -> None:
    """Eq. 26c: public evidence decays with λ_c; scheduled/random events and unannounced raises add to it."""
    st.public_pos *= memory
    st.public_neg *= memory
    key = rng.stream_key(seed, rep, t, rng.EVENTS)
    for k, ev in enumerate(sc.programme.events):
        happens = ev.day == t if ev.day >= 0 else float(rng.uniform(key, k)) < ev.rate_per_day
        if happens:
            if ev.weight >= 0:
                st.public_pos += ev.weight
            else:
                st.public_neg -= ev.weight
    if unannounced_raise:
        st.public_neg += sc.offer.schedule.raise_credibility_cost


def expected_wait_days(queued_agents: float, capacity_agents_per_day: float) -> float:
    """Eq. 34b: W = Q_{t−1}/(K_ext/w), the expected wait in the queue (capacity floored at 1e-9 agents a day)."""
    return queued_agents / max(capacity_agents_per_day, 1e-9)


def extraction_slots(st: ProgrammeState, capacity_per_day: float, weight: float) -> int:
    """Eq. 34: agents the programme can extract today (capacity in soldiers, fractional days carried over)."""
    st.capacity_carry += capacity_per_day / weight
    slots = math.floor(st.capacity_carry)
    st.capacity_carry -= slots
    return slots


def expected_queue_step(
    waiting: float, success: float, joined: float, joined_success: float, detection: float, capacity: float
) -> tuple[float, float, float]:
    """Eq. 34c: the programme's queue in expectation, in represented soldiers. Those who joined before today are
    detected at rate d or, up to the capacity K_ext, extracted, each arriving with his chance q (the queue's
    summed q is `success`); today's contacts join. Returns the new (waiting, success) and today's expected
    arrivals."""
    waiting, success = waiting * (1.0 - detection), success * (1.0 - detection)
    served = min(capacity, waiting) / waiting if waiting > 0 else 0.0
    return waiting * (1.0 - served) + joined, success * (1.0 - served) + joined_success, success * served


# ----------------------------------------------------------------------------- the queue
@njit(cache=True)
def enqueue(
    t: int,
    company_size: int,
    counts: np.ndarray,
    contacts_col: int,
    queue_day: np.ndarray,
    status: np.ndarray,
    queue: np.ndarray,
    queue_entry: np.ndarray,
    tail: int,
) -> int:
    """Append today's new contacts to the FIFO ring buffer in slot order; returns the new tail."""
    size = queue.size
    for c in range(counts.shape[0]):
        if counts[c, contacts_col] == 0:
            continue
        for i in range(c * company_size, (c + 1) * company_size):
            if status[i] == QUEUED and queue_day[i] == t:
                queue[tail % size] = i
                queue_entry[tail % size] = t
                tail += 1
    return tail


@njit(cache=True)
def serve_queue(
    t: int,
    seed: int,
    rep: int,
    p: EngineParams,
    slots: int,
    specificity: float,
    head: int,
    tail: int,
    queue: np.ndarray,
    queue_entry: np.ndarray,
    st: SoldierState,
    soldier_type: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Eq. 34–35: detection while waiting, then first-in-first-out extraction of up to `slots` soldiers,
    crossing and screening. Returns the new head of the queue."""
    status, left_day, queue_day, attempt_catch = st.status, st.left_day, st.queue_day, st.attempt_catch
    cs = p.company_size
    size = queue.size
    k_det = rng.stream_key(seed, rep, t, rng.QUEUE_DETECTION)
    k_catch = rng.stream_key(seed, rep, t, rng.CATCH)
    k_cross = rng.stream_key(seed, rep, t, rng.CROSSING)
    k_exec = rng.stream_key(seed, rep, t, rng.EXECUTION)
    k_screen = rng.stream_key(seed, rep, t, rng.SCREENING)
    p_cross = guided_crossing_death_probability(
        crossing_death_probability(p.killed_crossing_base, p.intensity, p.depth_ratio), p.extraction_crossing_risk
    )
    served = 0
    pos = head
    while pos < tail:
        i = queue[pos % size]
        entry = queue_entry[pos % size]
        pos += 1
        if status[i] != QUEUED or queue_day[i] != entry or entry >= t:
            continue  # stale (killed, wounded, refilled) or joined today: extraction starts tomorrow
        c = i // cs
        if rng.uniform(k_det, i) < p.queue_detection_per_day:  # detected while waiting
            left_day[i] = t
            outcome = captured_status(k_exec, i, p.execution_probability)
            status[i] = outcome
            count_outcome(counts, c, outcome, soldier_type[i])
            counts[c, C_DETECTED_WAITING] += 1
        elif served < slots:
            served += 1
            left_day[i] = t
            counts[c, C_ATTEMPTS] += 1
            counts[c, C_EXTRACTED] += 1
            outcome = crossing_outcome(i, attempt_catch[i], p_cross, p.execution_probability, k_catch, k_cross, k_exec)
            status[i] = outcome
            count_outcome(counts, c, outcome, soldier_type[i])
            if outcome == ARRIVED:
                counts[c, C_ARRIVED_PROGRAMME] += 1
                if rng.uniform(k_screen, i) < specificity:
                    counts[c, C_PAID] += 1
                else:
                    counts[c, C_REJECTED] += 1
    return live_head(head, tail, queue, queue_entry, status, queue_day)


@njit(cache=True)
def live_head(
    head: int, tail: int, queue: np.ndarray, queue_entry: np.ndarray, status: np.ndarray, queue_day: np.ndarray
) -> int:
    """Advance the head past entries that are no longer waiting."""
    size = queue.size
    while head < tail:
        i = queue[head % size]
        if status[i] == QUEUED and queue_day[i] == queue_entry[head % size]:
            break
        head += 1
    return head


@njit(cache=True)
def compact(
    head: int, tail: int, queue: np.ndarray, queue_entry: np.ndarray, status: np.ndarray, queue_day: np.ndarray
) -> tuple[int, int]:
    """Drop stale entries so the ring buffer never overflows; keeps the order. Returns (head, tail)."""
    size = queue.size
    keep = 0
    ids = np.empty(tail - head, np.int32)
    days = np.empty(tail - head, np.int32)
    for pos in range(head, tail):
        i = queue[pos % size]
        if status[i] == QUEUED and queue_day[i] == queue_entry[pos % size]:
            ids[keep] = i
            days[keep] = queue_entry[pos % size]
            keep += 1
    for k in range(keep):
        queue[k] = ids[k]
        queue_entry[k] = days[k]
    return 0, keep


# ----------------------------------------------------------------------------- fraud (aggregate)
def impersonators(genuine: float, cash: float, ratio: float, elasticity: float) -> float:
    """Eq. 35b: impersonators claiming the bounty, ∝ genuine claimants × (B/$100k)^ε (cobra effect)."""
    if cash <= 0:
        return 0.0
    return float(genuine * ratio * (cash / 100_000.0) ** elasticity)


def fraudulent_claimants(
    impersonating: float, genuine: float, infiltration: float, asylum: float, exchange: float, recycled: float
) -> float:
    """Eq. 35b: Fr_t = Imp_t + G_t·I_inf + G_t·(1 − π_asy)·π_ex·r_rec, all fraudulent claimants."""
    return impersonating + genuine * infiltration + genuine * (1.0 - asylum) * exchange * recycled


def undetected(claimants: float, sensitivity: float) -> float:
    """Eq. 35c: fraudulent claimants who pass screening, (1 − s_scr)·claimants."""
    return claimants * (1.0 - sensitivity)
