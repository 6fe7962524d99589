"""Costs: the programme's (what the offer costs its payer) and the regime's (what fighting back costs it).

Every cost is booked on the day it is committed, both nominal and as a present value at day 0 (eq. 36):
payments that fall later (deferred cash, years of resettlement) are discounted from the day they are paid.
Counts are in represented soldiers (agents × soldiers/agent).
"""

from __future__ import annotations

from dataclasses import dataclass

from defection.model.outputs import PROGRAMME_COMPONENTS
from defection.scenario import Scenario


def discount_factor(rate: float, years: float) -> float:
    """Eq. 36: present value of one dollar paid `years` from day 0, (1 + ρ)^(−years)."""
    return float((1.0 + rate) ** (-years))


def annuity(rate: float, years: int, start_years: float = 0.0) -> float:
    """Eq. 36b: Σ_{τ=0}^{n−1} (1 + ρ)^(−(start + τ)), yearly payments starting `start_years` from day 0."""
    return sum(discount_factor(rate, start_years + k) for k in range(years))


@dataclass(frozen=True)
class ProgrammeFlows:
    """One day's programme flows, in represented soldiers."""

    paid: float  # genuine defectors accepted and paid today
    extracted: float  # extractions attempted today
    genuine_claimants: float  # genuine defectors screened today (paid + rejected)
    fraud_claimants: float  # impersonators, infiltrators and repeat claimants screened today
    fraud_paid: float  # fraudulent claimants who passed screening
    offer: float  # B(t)
    topup_per_defector: float  # rise of the offer paid to every earlier defector (ratchet rule)
    already_paid: float  # defectors paid before today
    open: bool


def programme_costs(sc: Scenario, day: int, f: ProgrammeFlows) -> dict[str, tuple[float, float]]:
    """Eq. 36a–l: each cost component committed on `day`, as (nominal, present value)."""
    of, pg = sc.offer, sc.programme
    rho = pg.discount_rate
    now = day / 365.0
    d_now = discount_factor(rho, now)
    resettled = f.paid * of.asylum_probability
    held = f.paid * (1.0 - of.asylum_probability)
    deferred = (1.0 - of.share_on_arrival) * f.offer * f.paid
    deferred_pv = sum(
        deferred / of.deferred_instalments * discount_factor(rho, now + of.deferred_delay_years + k)
        for k in range(of.deferred_instalments)
    )
    edu_years = pg.education_years if of.education else 0

    def flow(per_year: float, persons: float, years: int) -> tuple[float, float]:
        return per_year * persons * years, per_year * persons * annuity(rho, years, now)

    pow_years = pg.pow_months / 12.0
    pow_nominal = pg.pow_upkeep_usd_month * pg.pow_months * held
    pow_pv = pow_nominal * (annuity(rho, max(1, round(pow_years)), now) / max(1, round(pow_years)))
    comms = pg.communications_usd_day * sum(ch.coverage for ch in sc.information.channels) if f.open else 0.0
    topup = f.topup_per_defector * f.already_paid
    fraud = f.fraud_paid * (of.share_on_arrival * f.offer + pg.trip_cost_usd)
    lump = {
        "cash_now": of.share_on_arrival * f.offer * f.paid,
        "topup": topup,
        "trip": pg.trip_cost_usd * f.paid,
        "screening": pg.screening_usd * (f.genuine_claimants + f.fraud_claimants),
        "extraction": pg.extraction_usd * f.extracted,
        "communications": comms,
        "fraud": fraud,
    }
    out = {k: (v, v * d_now) for k, v in lump.items()}
    out["cash_deferred"] = (deferred, deferred_pv)
    out["resettlement"] = flow(pg.resettlement_usd_year, resettled, pg.resettlement_years)
    out["education"] = flow(pg.education_usd_year, resettled * pg.education_takeup, edu_years)
    out["protection"] = flow(pg.protection_usd_year, resettled, pg.protection_years)
    out["pow_upkeep"] = (pow_nominal, pow_pv)
    return {k: out[k] for k in PROGRAMME_COMPONENTS}


@dataclass(frozen=True)
class CounterMeasureCost:
    """What the regime's counter-measures cost on one day, relative to where it started."""

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
