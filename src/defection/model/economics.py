"""Costs: the programme's (what the offer costs its payer) and the regime's (what fighting back costs it).

Every cost is booked on the day it is committed, both nominal and as a present value at day 0 (eq. 36):
payments that fall later (deferred cash, years of resettlement) are discounted from the day they are paid.
Counts are in represented soldiers (agents × soldiers/agent).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from defection.model.outputs import PROGRAMME_COMPONENTS
from defection.scenario import Scenario


def discount_factor(rate: float, years: float) -> float:
    """Eq. 36: present value of one dollar paid `years` from day 0, (1 + ρ)^(−years)."""
    return float((1.0 + rate) ** (-years))


@lru_cache(maxsize=8192)  # the same (rate, years, day) recur in every replicate, and three times a day
def annuity(rate: float, years: int, start_years: float = 0.0) -> float:
    """Eq. 36b: Σ_{τ=0}^{n−1} (1 + ρ)^(−(start + τ)), yearly payments starting `start_years` from day 0."""
    return sum(discount_factor(rate, start_years + k) for k in range(years))


class ProgrammeFlows(NamedTuple):
    """One day's programme flows, in represented soldiers (a NamedTuple: built every simulated day, at a fraction of
    a frozen dataclass's cost)."""

    paid: float  # genuine defectors accepted and paid today
    extracted: float  # extractions attempted today
    genuine_claimants: float  # genuine defectors screened today (paid + rejected)
    fraud_claimants: float  # impersonators, infiltrators and repeat claimants screened today
    fraud_paid: float  # fraudulent claimants who passed screening
    offer: float  # B(t)
    topup_per_defector: float  # rise of the offer paid to every earlier defector (ratchet rule)
    already_paid: float  # defectors paid before today
    open: bool


def cash_on_arrival_cost(share_on_arrival: float, offer: float, paid: float) -> float:
    """Eq. 36a: φ·B_t·n_t, the cash paid on arrival (nominal)."""
    return share_on_arrival * offer * paid


def deferred_cash_cost(
    share_on_arrival: float, offer: float, paid: float, instalments: int, delay_years: float, rate: float, now: float
) -> tuple[float, float]:
    """Eq. 36b: (1 − φ)·B_t·n_t in T_pay yearly instalments from y_t + T_post, as (nominal, present value)."""
    deferred = (1.0 - share_on_arrival) * offer * paid
    pv = sum(deferred / instalments * discount_factor(rate, now + delay_years + k) for k in range(instalments))
    return deferred, pv


def topup_cost(rise_per_defector: float, already_paid: float) -> float:
    """Eq. 36c: ΔB_t · (defectors paid before t), the ratchet's top-up to every earlier defector (nominal)."""
    return rise_per_defector * already_paid


def per_person_cost(unit_cost: float, persons: float) -> float:
    """Eqs. 36d, 36i, 36j: a one-off unit cost times the persons it is paid for (trip, screening, extraction)."""
    return unit_cost * persons


def yearly_support_cost(per_year: float, persons: float, years: int, rate: float, now: float) -> tuple[float, float]:
    """Eqs. 36e, 36f, 36g: support paid per person and year for `years` years from y_t (resettlement, education,
    protection), as (nominal, present value via a_ρ(years, y_t))."""
    return per_year * persons * years, per_year * persons * annuity(rate, years, now)


def pow_upkeep_cost(usd_month: float, months: float, held: float, rate: float, now: float) -> tuple[float, float]:
    """Eq. 36h: c_pow·m_pow·(1 − π_asy)·n_t, spread evenly over max(1, round(m_pow/12)) years, as
    (nominal, present value); `held` = (1 − π_asy)·n_t."""
    years = max(1, round(months / 12.0))
    nominal = usd_month * months * held
    return nominal, nominal * (annuity(rate, years, now) / years)


def communications_cost(usd_day: float, coverages: list[float], is_open: bool) -> float:
    """Eq. 36k: c_com·Σ_k x_k per day while the programme is open (nominal)."""
    return usd_day * sum(coverages) if is_open else 0.0


def fraud_cost(fraud_paid: float, share_on_arrival: float, offer: float, trip_usd: float) -> float:
    """Eq. 36l: Fr^paid_t·(φ·B_t + c_trip), what fraudulent claimants who pass screening receive (nominal)."""
    return fraud_paid * (share_on_arrival * offer + trip_usd)


def programme_costs(sc: Scenario, day: int, f: ProgrammeFlows) -> dict[str, tuple[float, float]]:
    """Eq. 36a–l: each cost component committed on `day`, as (nominal, present value at day 0)."""
    of, pg = sc.offer, sc.programme
    rho = pg.discount_rate
    now = day / 365.0
    d_now = discount_factor(rho, now)
    resettled = f.paid * of.asylum_probability
    held = f.paid * (1.0 - of.asylum_probability)
    edu_years = pg.education_years if of.education else 0
    lump = {
        "cash_now": cash_on_arrival_cost(of.share_on_arrival, f.offer, f.paid),
        "topup": topup_cost(f.topup_per_defector, f.already_paid),
        "trip": per_person_cost(pg.trip_cost_usd, f.paid),
        "screening": per_person_cost(pg.screening_usd, f.genuine_claimants + f.fraud_claimants),
        "extraction": per_person_cost(pg.extraction_usd, f.extracted),
        "communications": communications_cost(
            pg.communications_usd_day, [ch.coverage for ch in sc.information.channels], f.open
        ),
        "fraud": fraud_cost(f.fraud_paid, of.share_on_arrival, f.offer, pg.trip_cost_usd),
    }
    out = {k: (v, v * d_now) for k, v in lump.items()}
    out["cash_deferred"] = deferred_cash_cost(
        of.share_on_arrival, f.offer, f.paid, of.deferred_instalments, of.deferred_delay_years, rho, now
    )
    out["resettlement"] = yearly_support_cost(pg.resettlement_usd_year, resettled, pg.resettlement_years, rho, now)
    out["education"] = yearly_support_cost(pg.education_usd_year, resettled * pg.education_takeup, edu_years, rho, now)
    out["protection"] = yearly_support_cost(pg.protection_usd_year, resettled, pg.protection_years, rho, now)
    out["pow_upkeep"] = pow_upkeep_cost(pg.pow_upkeep_usd_month, pg.pow_months, held, rho, now)
    return {k: out[k] for k in PROGRAMME_COMPONENTS}


class CounterMeasureCost(NamedTuple):
    """What the regime's counter-measures cost on one day, relative to where it started (a NamedTuple, as
    `ProgrammeFlows`)."""

    serving: float  # represented soldiers present
    pay_rise_usd_day: float  # w(t) − w(0), per soldier per day
    extra_monitors_per_soldier: float  # M(t) − M(0)
    pay_usd_day: float  # w(t)
    blocking: float
    propaganda: float


def regime_costs(sc: Scenario, c: CounterMeasureCost) -> dict[str, float]:
    """Eq. 33: a pay rise is paid to every soldier; monitors are soldiers taken from the line (their pay and
    the soldier they stop being); blocking and propaganda cost money per day."""
    r = sc.regime.response
    return {
        "pay_rise": c.serving * c.pay_rise_usd_day,
        "monitors": c.serving * max(0.0, c.extra_monitors_per_soldier) * c.pay_usd_day,
        "blocking": r.blocking_cost_usd_day * c.blocking,
        "propaganda": r.propaganda_cost_usd_day * c.propaganda,
    }


def regime_loss(exits: float, soldier_value: float, cost: float) -> float:
    """Eq. 32: L = v_s·Exits + C(levers), the regime's loss from defections and its counter-measures."""
    return soldier_value * exits + cost


def budget_total(sc: Scenario) -> float:
    return float(sum(s.amount_usd for s in sc.programme.budget_sources))
