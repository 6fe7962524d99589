"""The daily loop: named phases in a fixed order, plus attrition, replacement and unit state.

One replicate is ``run_replicate``: synthesise the population, then for each day run

    exogenous → programme → regime → information → decision → extraction → attrition → units
    → economics → record

(docs/model.md §3 maps these to the ODD process overview). Each phase is one Numba kernel call or a few
lines of scalar Python, so the loop is inspectable and ``phase_seconds`` profiles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from defection.model import rng
from defection.model.decision import OfferToday, credibility, death_hazard, decide, decide_threshold
from defection.model.economics import CounterMeasureCost, ProgrammeFlows, programme_costs, regime_costs
from defection.model.information import spread_awareness, update_company_signals
from defection.model.outputs import (
    C_ARRIVED,
    C_CONTACTS,
    C_EXTRACTED,
    C_KILLED,
    C_PAID,
    C_REJECTED,
    C_REPLACED,
    C_WOUNDED,
    COL,
    COUNT_SERIES,
    COUNTER_MEASURES,
    KILLED,
    N_COUNTERS,
    PROGRAMME_COMPONENTS,
    QUEUED,
    REGIME_COMPONENTS,
    ROUTE_SERIES,
    SERIES,
    SERVING,
    STRENGTH_QUANTILES,
    WOUNDED,
)
from defection.model.parameters import (
    MODE_THRESHOLD,
    EngineParams,
    overrun_probability,
    per_month_to_per_day,
    route_params,
)
from defection.model.population import (
    NEVER,
    Companies,
    Population,
    SoldierState,
    Traits,
    draw_soldier,
    present,
    soldier_keys,
    synthesise,
)
from defection.model.programme import (
    ProgrammeState,
    apply_events,
    compact,
    enqueue,
    expected_queue_step,
    expected_wait_days,
    extraction_slots,
    fraudulent_claimants,
    horizon_expectations,
    impersonators,
    serve_queue,
    undetected,
    update_offer,
)
from defection.model.regime import (
    CounterMeasures,
    adaptive_update,
    apply_counter_measures,
    exit_ratio,
    initial_counter_measures,
)
from defection.scenario import Scenario

PHASES = (
    "exogenous",
    "programme",
    "regime",
    "information",
    "decision",
    "extraction",
    "attrition",
    "units",
    "economics",
    "record",
)


@njit(cache=True, parallel=True)
def attrition_and_replacement(
    t: int,
    seed: int,
    rep: int,
    p: EngineParams,
    st: SoldierState,
    tr: Traits,
    co: Companies,
    counts: np.ndarray,
    census: np.ndarray,
    replacement_rate: float,
) -> None:
    """Phase 10: deaths and wounds at the eq. 1 hazard (queued soldiers too: they are still in the line);
    vacant slots refilled with the day's probability `replacement_rate` (eq. 21, capped by eq. 21b). Each
    company's census (present, queued, aware: as `census_row` counts them) is taken in the same pass, in
    integers, from the soldiers who stay and the replacements: nothing after this phase changes a soldier's
    status or awareness the same day.

    The hazards are read from a table by company class and soldier type (`attrition_thresholds`, once a day), and
    a soldier whose uniform is at or above his class's greatest threshold (`attrition_reach`) survives without
    his type being read. The arrays are read from the tuples once, before the parallel loop (a tuple's arrays read
    inside it would have their reference counts updated by both threads)."""
    status, left_day, aware_day, record = st.status, st.left_day, st.aware_day, st.record
    soldier_type, vsl, income, moral, threshold, family, offer_noise = tr
    company_type, company_class = co.company_type, co.company_class
    killed_below, hit_below = attrition_thresholds(
        p.death_hazard, p.class_exposure, p.type_hazard_multiplier, p.intensity, p.wounded_per_killed
    )
    reach = attrition_reach(killed_below, hit_below)
    cs = p.company_size
    k_att = rng.stream_key(seed, rep, t, rng.ATTRITION)
    k_rep = rng.stream_key(seed, rep, t, rng.REPLACEMENT)
    keys = soldier_keys(seed, rep, t)
    for c in prange(company_type.size):
        cls = company_class[c]
        reach_c = reach[cls]
        n_present = 0
        n_queued = 0
        n_aware = 0
        for i in range(c * cs, (c + 1) * cs):
            s = status[i]
            if present(s):
                u = rng.uniform(k_att, i)
                stays = True
                if u < reach_c:
                    ty = soldier_type[i]
                    if u < killed_below[cls, ty]:
                        status[i] = KILLED
                        left_day[i] = t
                        counts[c, C_KILLED] += 1
                        stays = False
                    elif u < hit_below[cls, ty]:
                        status[i] = WOUNDED
                        left_day[i] = t
                        counts[c, C_WOUNDED] += 1
                        stays = False
                if stays:
                    n_present += 1
                    if s == QUEUED:
                        n_queued += 1
                    if aware_day[i] <= t:
                        n_aware += 1
            elif left_day[i] < t and rng.uniform(k_rep, i) < replacement_rate:
                draw_soldier(
                    i, company_type[c], keys, p, soldier_type, vsl, income, moral, threshold, family, offer_noise
                )
                status[i] = SERVING
                left_day[i] = NEVER
                aware_day[i] = NEVER
                record[i] = 0
                counts[c, C_REPLACED] += 1
                n_present += 1  # serving, not queued, not aware (aware_day NEVER)
        census[c, 0], census[c, 1], census[c, 2] = n_present, n_queued, n_aware


@njit(cache=True)
def attrition_thresholds(
    death_hazard0: float,
    class_exposure: np.ndarray,
    type_hazard_multiplier: np.ndarray,
    intensity: float,
    wounded_per_killed: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 1 by company class (rows) and soldier type (columns): the uniform below which a present soldier is
    killed, p^K, and below which he is killed or wounded, p^K·(1 + wounded per killed); the same expressions as
    evaluated per soldier, so the same numbers."""
    killed = np.empty((class_exposure.size, type_hazard_multiplier.size))
    hit = np.empty_like(killed)
    for k in range(class_exposure.size):
        for j in range(type_hazard_multiplier.size):
            pk = death_hazard(death_hazard0, class_exposure[k], type_hazard_multiplier[j], intensity)
            killed[k, j] = pk
            hit[k, j] = pk * (1.0 + wounded_per_killed)
    return killed, hit


@njit(cache=True)
def attrition_reach(killed_below: np.ndarray, hit_below: np.ndarray) -> np.ndarray:
    """The greatest threshold of each company class over soldier types and both tables of `attrition_thresholds`:
    a soldier whose uniform is at or above it is neither killed nor wounded, whatever his type."""
    reach = np.empty(hit_below.shape[0])
    for k in range(hit_below.shape[0]):
        reach[k] = max(killed_below[k].max(), hit_below[k].max())
    return reach


@njit(cache=True, inline="always")
def census_row(t: int, first: int, stop: int, status: np.ndarray, aware_day: np.ndarray) -> tuple[int, int, int]:
    """Present (serving or queued), queued and aware soldiers among slots first…stop−1 (one company; integer
    counts: exact sums). Inlined (it only reads): a call would update the reference counts of its arrays."""
    s = 0
    q = 0
    a = 0
    for i in range(first, stop):
        if present(status[i]):
            s += 1
            if status[i] == QUEUED:
                q += 1
            if aware_day[i] <= t:
                a += 1
    return s, q, a


@njit(cache=True, parallel=True)
def company_census(t: int, p: EngineParams, status: np.ndarray, aware_day: np.ndarray, census: np.ndarray) -> None:
    """Present (serving or queued), queued and aware soldiers per company (threshold mode, which has no attrition
    phase; otherwise `attrition_and_replacement` takes the census)."""
    cs = p.company_size
    for c in prange(census.shape[0]):
        census[c, 0], census[c, 1], census[c, 2] = census_row(t, c * cs, (c + 1) * cs, status, aware_day)


@njit(cache=True, inline="always")
def strength_ratio(serving: int, establishment: int) -> float:
    """Eq. 22: S_u(t)/S_u(0), present-for-duty over establishment."""
    return serving / establishment


@njit(cache=True)
def strength_percentile(present: np.ndarray, establishment: int, q: float) -> float:
    """The q-th percentile of company strength (eq. 22) across companies, interpolated linearly between order
    statistics as `numpy.percentile` does; a counting sort, since strengths are present counts 0…establishment."""
    counts = np.zeros(establishment + 1, dtype=np.int64)
    for c in range(present.size):
        counts[min(max(present[c], 0), establishment)] += 1
    pos = q / 100.0 * (present.size - 1)
    lo = int(np.floor(pos))
    frac = pos - lo
    seen, value_lo, value_hi = 0, -1, -1
    for v in range(establishment + 1):
        seen += counts[v]
        if value_lo < 0 and seen > lo:
            value_lo = v
        if seen > lo + 1 or (seen > lo and frac == 0.0):
            value_hi = v
            break
    if value_hi < 0:
        value_hi = value_lo
    return (value_lo + frac * (value_hi - value_lo)) / establishment


@njit(cache=True)
def unit_summary(
    p: EngineParams,
    census: np.ndarray,
    evidence_pos: np.ndarray,
    evidence_neg: np.ndarray,
    public_pos: float,
    public_neg: float,
    counts: np.ndarray,
    totals: np.ndarray,
) -> tuple[float, float]:
    """Serial sums in company order (deterministic): counter totals, mean credibility and the share of
    combat-ineffective companies (eq. 22)."""
    cs = p.company_size
    n_comp = census.shape[0]
    totals[:] = 0
    n_ineff = 0
    cred_sum = 0.0
    n_present = 0
    for c in range(n_comp):
        for k in range(counts.shape[1]):
            totals[k] += counts[c, k]
        n_present += census[c, 0]
        if strength_ratio(census[c, 0], cs) < p.combat_ineffective_threshold:
            n_ineff += 1
        cred_sum += census[c, 0] * credibility(
            p.prior_alpha, p.prior_beta, evidence_pos[c] + public_pos, evidence_neg[c] + public_neg
        )
    cred = cred_sum / n_present if n_present > 0 else np.nan
    return cred, n_ineff / n_comp


@njit(cache=True)
def strength_percentiles(
    census: np.ndarray, establishment: int, quantiles: np.ndarray, cols: np.ndarray, row: np.ndarray
) -> None:
    """Eq. 22: the percentiles `quantiles` of company strength (`strength_percentile`), written to `row[cols]`."""
    for k in range(quantiles.size):
        row[cols[k]] = strength_percentile(census[:, 0], establishment, quantiles[k])


_COUNT_COLS = np.array([COL[name] for name in (*COUNT_SERIES, *ROUTE_SERIES)])
"""Columns of the daily series that are counter totals, and the counter each one reads (`_COUNT_COUNTERS`)."""
_COUNT_COUNTERS = np.array([*COUNT_SERIES.values(), *ROUTE_SERIES.values()])
_QUANTILES = np.array(STRENGTH_QUANTILES, dtype=np.float64)
_STRENGTH_COLS = np.array([COL[f"unit_strength_p{q}"] for q in STRENGTH_QUANTILES])
_COST_PV_COLS = np.array([COL[f"cost_{comp}_pv"] for comp in PROGRAMME_COMPONENTS])
_REGIME_COST_COLS = np.array([COL[f"regime_{comp}"] for comp in REGIME_COMPONENTS])
_ACCOUNTING_COLS = np.array(
    [COL[name] for name in ("fraud_claimants", "fraud_paid", "programme_cost", "programme_cost_pv", "regime_cost")]
    + [*_STRENGTH_COLS, *_COST_PV_COLS, *_REGIME_COST_COLS]
)
"""Columns that only the cost accounting writes (`book_costs`, the strength percentiles): NaN without it."""
_MEASURE_COLS = np.array([COL[name] for name in COUNTER_MEASURES])
"""Columns of the counter-measures, in the order of `CounterMeasures.as_dict` (outputs.COUNTER_MEASURES)."""


@dataclass
class ReplicateOutput:
    """The daily series of one replicate and the profile of its phases."""

    daily: np.ndarray  # (days, len(SERIES))
    agents: int
    phase_seconds: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now


EntryPoints = dict[tuple[object, tuple[object, ...]], Callable[..., Any]]
"""Compiled entry points by (kernel, `argument_types_key`): memoisation of what a kernel's dispatcher resolves for
arguments of those Numba types, shared by the replicates of one `simulate` (or one worker process)."""


def argument_types_key(args: tuple[Any, ...]) -> tuple[object, ...] | None:
    """A hashable fingerprint of the Numba types of `args`, computed without asking Numba to type them (which costs
    tens of µs for a NamedTuple of 86 fields); None when an argument is of a kind it does not know.

    Equal keys mean equal Numba types (`numba.typeof`): an array by its exact class, dtype, dimensions, layout,
    writeability and alignment; a Python bool, float or int by its class (an int only below 64 bits, where Numba
    types it as int64); a numpy scalar by its class; a tuple (NamedTuple) by its class and its elements' keys."""
    key: list[object] = []
    for a in args:
        k = _value_types_key(a)
        if k is None:
            return None
        key.append(k)
    return tuple(key)


def _value_types_key(a: Any) -> object:
    """A hashable fingerprint of the Numba type of `a` (`argument_types_key`), None when unknown."""
    cls = type(a)
    if cls is np.ndarray:
        f = a.flags
        return (cls, a.dtype, a.ndim, f.c_contiguous, f.f_contiguous, f.writeable, f.aligned)
    if cls is float or cls is bool or issubclass(cls, np.number | np.bool_):
        return cls
    if cls is int:  # Numba types an int of 64 bits or more as uint64 or not at all
        return cls if a.bit_length() < 64 else None
    if issubclass(cls, tuple):
        elements = argument_types_key(a)
        return (cls, elements) if elements is not None else None
    return None


class DirectCall:
    """A Numba kernel called through its compiled machine code, without the dispatcher's per-call type resolution.

    Resolving the types of the arguments costs the dispatcher about 6 µs for every NamedTuple argument (it has no
    fast path for them: `EngineParams` alone has 86 fields), which is most of the daily loop's fixed cost at small
    agent counts (docs/performance.md, "The daily loop's fixed cost"). The first call looks the compiled version up
    in `entry_points` by `argument_types_key`, or goes through the dispatcher, which compiles or loads the kernel and
    types the arguments, and records it there; later calls go straight to that compiled version. So every later
    call must pass arguments of the same Numba types: `run_replicate` makes one `DirectCall` per kernel and
    replicate, and passes the same arrays and same-typed scalars and parameter tuples every day.
    """

    def __init__(self, kernel: Any, entry_points: EntryPoints | None = None) -> None:
        self.kernel = kernel
        self.entry_points: EntryPoints = {} if entry_points is None else entry_points
        self.call: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        if self.call is not None:
            return self.call(*args)
        key = argument_types_key(args)
        known = self.entry_points.get((self.kernel, key)) if key is not None else None
        if known is not None:
            self.call = known
            return known(*args)
        result = self.kernel(*args)
        overloads = getattr(self.kernel, "overloads", {})  # a plain function when NUMBA_DISABLE_JIT=1
        compiled = overloads.get(tuple(numba.typeof(a) for a in args))  # type: ignore[no-untyped-call]
        self.call = compiled.entry_point if compiled is not None else self.kernel
        if key is not None:
            self.entry_points[(self.kernel, key)] = self.call
        return result


def replacement_probability(rate: float, capacity_share: float, vacant_share: float) -> float:
    """Eq. 21b: ρ_t = min(ρ_rep, ρ_max / v_t), the day's chance that a vacant slot is refilled, so that the expected
    replacements ρ_t·v_t never exceed the army's capacity ρ_max (v_t: vacant slots as a share of the establishment,
    at the end of the day before; ρ_max = 0: no cap)."""
    if capacity_share <= 0.0 or rate * vacant_share <= capacity_share:
        return rate
    return capacity_share / vacant_share


def recent_exit_share(flow: np.ndarray, daily: np.ndarray, t: int, step: int) -> float:
    """Eq. 27b: the share of the force lost per 30 days over the last `step` days (the adaptive offer rule's d)."""
    mean_serving = _window_mean(daily, COL["serving"], t - step, t)
    return _window_sum(flow, 0, t - step, t) / max(1.0, mean_serving) * 30.0 / step


def _window_sum(daily: np.ndarray, col: int, start: int, stop: int) -> float:
    start, stop = max(0, start), max(0, stop)
    return float(daily[start:stop, col].sum()) if stop > start else 0.0


def _window_mean(daily: np.ndarray, col: int, start: int, stop: int) -> float:
    start, stop = max(0, start), max(0, stop)
    return float(daily[start:stop, col].mean()) if stop > start else 0.0


class DayKernels:
    """The kernels the daily loop calls every day, each a `DirectCall` (one set per replicate), their compiled entry
    points looked up in (and added to) `entry_points`."""

    def __init__(self, entry_points: EntryPoints | None = None) -> None:
        ep: EntryPoints = {} if entry_points is None else entry_points
        self.spread_awareness = DirectCall(spread_awareness, ep)
        self.decide = DirectCall(decide, ep)
        self.decide_threshold = DirectCall(decide_threshold, ep)
        self.enqueue = DirectCall(enqueue, ep)
        self.serve_queue = DirectCall(serve_queue, ep)
        self.attrition_and_replacement = DirectCall(attrition_and_replacement, ep)
        self.update_company_signals = DirectCall(update_company_signals, ep)
        self.company_census = DirectCall(company_census, ep)
        self.unit_summary = DirectCall(unit_summary, ep)
        self.strength_percentiles = DirectCall(strength_percentiles, ep)


def book_costs(
    sc: Scenario,
    prog: ProgrammeState,
    t: int,
    totals: np.ndarray,
    w: float,
    rise: float,
    measures: CounterMeasures,
    measures0: CounterMeasures,
    present_now: float,
    threshold_mode: bool,
    row: np.ndarray,
) -> None:
    """The economics phase: fraudulent claimants (eq. 35b, 35c), the programme's costs committed today (eqs. 36–36l;
    the budget cap closes it) and the regime's (eq. 33), written to today's row of the daily series."""
    pg = sc.programme
    # Python floats from here (numpy scalars' arithmetic is the same IEEE arithmetic, at several times the cost)
    paid, extracted = float(totals[C_PAID]) * w, float(totals[C_EXTRACTED]) * w
    genuine = float(totals[C_PAID] + totals[C_REJECTED]) * w
    fraud = fraudulent_claimants(
        impersonators(genuine, prog.last_offer, pg.impersonators_per_defector, pg.impersonation_elasticity),
        genuine,
        measures.infiltration,
        sc.offer.asylum_probability,
        sc.regime.exchange_return_probability,
        pg.recycled_share,
    )
    fraud_paid = undetected(fraud, pg.screening_sensitivity)
    topup = rise if sc.offer.schedule.rule == "ratchet_topup" else 0.0
    flows = ProgrammeFlows(
        paid=paid,
        extracted=extracted,
        genuine_claimants=genuine,
        fraud_claimants=fraud,
        fraud_paid=fraud_paid,
        offer=prog.last_offer,
        topup_per_defector=topup,
        already_paid=prog.paid_total,
        open=prog.open,
    )
    costs = programme_costs(sc, t, flows) if not threshold_mode else {}
    prog.paid_total += flows.paid
    nominal = sum(v[0] for v in costs.values())
    prog.committed_cost += nominal
    cap = sc.offer.schedule.budget_cap_usd
    if cap > 0 and prog.committed_cost >= cap:
        prog.closed_by_budget = True
    rcost = regime_costs(
        sc,
        CounterMeasureCost(
            serving=present_now,
            pay_rise_usd_day=per_month_to_per_day(measures.pay_usd_month - measures0.pay_usd_month),
            extra_monitors_per_soldier=measures.monitors - measures0.monitors,
            pay_usd_day=per_month_to_per_day(measures.pay_usd_month),
            blocking=measures.blocking,
            propaganda=measures.propaganda,
        ),
    )
    row[COL["fraud_claimants"]] = fraud
    row[COL["fraud_paid"]] = fraud_paid
    row[COL["programme_cost"]] = nominal
    row[COL["programme_cost_pv"]] = sum(v[1] for v in costs.values())
    if costs:
        row[_COST_PV_COLS] = [costs[comp][1] for comp in PROGRAMME_COMPONENTS]
    row[COL["regime_cost"]] = sum(rcost.values())
    row[_REGIME_COST_COLS] = [rcost[comp] for comp in REGIME_COMPONENTS]


def run_replicate(
    sc: Scenario,
    p0: EngineParams,
    rep: int,
    n_agents: int,
    on_day: Callable[[int], None] | None = None,
    fixed_counter_measures: CounterMeasures | None = None,
    accounting: bool = True,
    entry_points: EntryPoints | None = None,
) -> ReplicateOutput:
    """Simulate one replicate. `fixed_counter_measures` pins the regime's responses (best-response candidates).

    `accounting=False` skips the cost accounting that the soldiers' dynamics do not read (`book_costs` and the
    strength percentiles; with a budget cap the costs close the programme, so they are booked anyway): the same
    soldiers, flows and shares (`tests/test_accounting.py`), with the skipped columns of the daily series NaN.
    Calibration uses it: its summary statistics are shares.

    `entry_points` (see `DirectCall`) lets the replicates of one run share the kernels' compiled entry points
    instead of resolving them again through Numba's dispatchers in each replicate (pure memoisation)."""
    sim, pg, rr = sc.simulation, sc.programme, sc.regime.response
    seed, days = sim.seed, sim.days
    timer = _Timer()
    pop: Population = synthesise(n_agents, seed, rep, p0)
    n_comp, n = pop.n_companies, pop.n
    soldiers, traits, companies = pop.soldiers, pop.traits, pop.companies
    w = sc.force.soldiers / n  # represented soldiers per agent
    counts = np.zeros((n_comp, N_COUNTERS), np.int64)
    totals = np.zeros(N_COUNTERS, np.int64)
    census = np.zeros((n_comp, 3), np.int64)
    queue = np.zeros(2 * n, np.int32)
    queue_entry = np.zeros(2 * n, np.int32)
    head = tail = 0
    daily = np.zeros((days, len(SERIES)))
    if not accounting:
        daily[:, _ACCOUNTING_COLS] = np.nan
    expected = np.zeros((n_comp, 5))  # eq. 28b per company today: direct arrivals, programme contacts, their q,
    # deserters not caught, surrenderers reaching captivity
    waiting = waiting_q = 0.0  # the programme's queue in expectation (eq. 34c)
    flow = np.zeros((days, 1))  # the flow of soldiers out as the regime and the programme see it, per day (eq. 28b)
    threshold_mode = p0.mode == MODE_THRESHOLD
    measures0 = initial_counter_measures(sc)
    measures = fixed_counter_measures if fixed_counter_measures is not None else measures0
    p = apply_counter_measures(p0, sc, measures)
    rp = route_params(sc)
    prog = ProgrammeState()
    arrived_total = 0
    kernels = DayKernels(entry_points)
    adaptive_offer = sc.offer.schedule.rule == "adaptive"  # the only rule that reads the recent exit share
    queued_total = 0
    replacement_capacity = sc.combat.replacement_capacity_share_per_day
    present_prev = float(n)  # slots present at the end of the day before (eq. 21b); all on day 0
    recorded_measures, measure_values = measures, list(measures.as_dict().values())
    timer.lap("exogenous")  # population synthesis is booked to the first phase
    for t in range(days):
        counts[:] = 0
        expected[:] = 0.0
        # 1. exogenous: combat intensity is fixed per scenario in this version
        timer.lap("exogenous")
        # 2. programme: offer B(t), expectations, public credibility events, extraction capacity
        recent = recent_exit_share(flow, daily, t, sc.offer.schedule.step_days) if adaptive_offer else 0.0
        rise = update_offer(sc, prog, t, recent)
        ratio, still_open = horizon_expectations(sc, prog, t)
        apply_events(
            sc,
            prog,
            t,
            seed,
            rep,
            p.memory,
            unannounced_raise=rise > 0 and sc.offer.schedule.rule == "unannounced_escalation",
        )
        prog.public_neg += measures.propaganda * rr.state_media_trust
        slots = extraction_slots(prog, pg.extraction_capacity_per_day, w)
        queued_now = float(queued_total) if t > 0 else 0.0
        wait_days = expected_wait_days(queued_now, pg.extraction_capacity_per_day / w)
        timer.lap("programme")
        # 3. regime: review its measures every T_R days, seeing exits with a delay
        adaptive = fixed_counter_measures is None and rr.mode in ("adaptive", "best_response")  # candidate 0: the rules
        if adaptive and t > 0 and t % rr.update_days == 0:
            lo, hi = t - rr.observation_delay_days - rr.update_days, t - rr.observation_delay_days
            if hi > 0:
                exits = _window_sum(flow, 0, lo, hi)  # soldiers lost to the other side (eq. 28b)
                ratio_d = exit_ratio(
                    exits, _window_mean(daily, COL["serving"], lo, hi), hi - max(0, lo), rr.target_exit_share_per_month
                )
                measures = adaptive_update(sc, measures, ratio_d, float(daily[t - 1, COL["strength_share"]]))
                p = apply_counter_measures(p0, sc, measures)
        timer.lap("regime")
        # 4-5. information (awareness); credibility is read from company and public evidence
        if not threshold_mode:
            kernels.spread_awareness(
                t, seed, rep, p, prog.open, soldiers.status, soldiers.aware_day, soldiers.neighbours, n_comp
            )
        timer.lap("information")
        # 6-9. opportunity, decision, squad coordination; direct crossings or contacts with the programme
        if threshold_mode:
            kernels.decide_threshold(
                t,
                arrived_total / n,
                soldiers.status,
                soldiers.left_day,
                traits.threshold,
                traits.soldier_type,
                p.company_size,
                counts,
            )
        else:
            kernels.decide(
                t,
                seed,
                rep,
                p,
                rp,
                OfferToday(
                    prog.offer,
                    prog.open,
                    prog.public_pos,
                    prog.public_neg,
                    ratio,
                    still_open,
                    sc.offer.schedule.rule == "ratchet_topup",
                    wait_days,
                ),
                overrun_probability(sc, t),
                soldiers,
                traits,
                companies,
                counts,
                expected,
            )
        timer.lap("decision")
        # 9b. the programme's queue: detection while waiting, extraction, screening (eq. 34-35)
        if not threshold_mode:
            tail = kernels.enqueue(
                t, p.company_size, counts, C_CONTACTS, soldiers.queue_day, soldiers.status, queue, queue_entry, tail
            )
            head = kernels.serve_queue(
                t,
                seed,
                rep,
                p,
                slots,
                pg.screening_specificity,
                head,
                tail,
                queue,
                queue_entry,
                soldiers,
                traits.soldier_type,
                counts,
            )
            if tail - head > 0.9 * queue.size or head > queue.size:
                head, tail = compact(head, tail, queue, queue_entry, soldiers.status, soldiers.queue_day)
            direct, joined, joined_q, deserting, surrendering = expected.sum(axis=0) * w
            waiting, waiting_q, programme_arrivals = expected_queue_step(
                waiting, waiting_q, joined, joined_q, p.queue_detection_per_day, pg.extraction_capacity_per_day
            )
            flow[t, 0] = direct + programme_arrivals + deserting + surrendering  # exits by every route (eq. 28b)
        else:  # threshold mode has no choice probabilities: there the flow is the realised one
            flow[t, 0] = counts[:, C_ARRIVED].sum() * w
        timer.lap("extraction")
        # 10. attrition and replacement
        if not threshold_mode:
            rho = replacement_probability(p.replacement_rate, replacement_capacity, 1.0 - present_prev / n)
            kernels.attrition_and_replacement(t, seed, rep, p, soldiers, traits, companies, counts, census, rho)
        timer.lap("attrition")
        # 11-12. unit state, precedent and credibility evidence
        kernels.update_company_signals(
            p, counts, companies.precedent, companies.evidence_pos, companies.evidence_neg, companies.defected
        )
        if threshold_mode:  # otherwise the attrition phase took it
            kernels.company_census(t, p, soldiers.status, soldiers.aware_day, census)
        cred, ineffective = kernels.unit_summary(
            p, census, companies.evidence_pos, companies.evidence_neg, prog.public_pos, prog.public_neg, counts, totals
        )
        timer.lap("units")
        # economics: programme and regime costs committed today (eq. 33, 36)
        present_total, queued_total, aware_total = census.sum(axis=0)
        present_prev = float(present_total)
        row = daily[t]
        row[_COUNT_COLS] = totals[_COUNT_COUNTERS] * w
        present_now = float(present_total) * w
        if accounting or sc.offer.schedule.budget_cap_usd > 0:  # a budget cap feeds the costs back
            book_costs(sc, prog, t, totals, w, rise, measures, measures0, present_now, threshold_mode, row)
        timer.lap("economics")
        # 13. record
        row[COL["offer_usd"]] = prog.offer
        row[COL["programme_open"]] = float(prog.open)
        row[COL["serving"]] = present_now
        row[COL["queued"]] = float(queued_total) * w
        row[COL["aware"]] = float(aware_total) * w
        row[COL["credibility"]] = cred
        row[COL["strength_share"]] = present_now / (n * w)
        row[COL["units_ineffective_share"]] = ineffective
        if accounting:
            kernels.strength_percentiles(census, p.company_size, _QUANTILES, _STRENGTH_COLS, row)
        if measures is not recorded_measures:  # they change only when the regime reviews them
            recorded_measures, measure_values = measures, list(measures.as_dict().values())
        row[_MEASURE_COLS] = measure_values
        arrived_total += int(totals[C_ARRIVED])
        timer.lap("record")
        if on_day is not None:
            on_day(t)
    return ReplicateOutput(daily=daily, agents=n, phase_seconds=timer.seconds)
