"""The outcomes of one replicate, computed from its daily series (docs/model.md §Outcomes).

The outcomes are declared (names, descriptions, which are open-ended) in ``model.outputs``; this module computes
them.
"""

from __future__ import annotations

import math

import numpy as np

from defection.model.economics import budget_total, regime_loss
from defection.model.outputs import COL, DERIVED_OUTCOMES
from defection.scenario import TYPE_NAMES, Scenario


def first_day_reaching(cumulative: np.ndarray, level: float) -> float:
    """First day on which a cumulative series reaches `level`; NaN if it never does."""
    hit = np.nonzero(cumulative >= level)[0]
    return float(hit[0]) if hit.size else math.nan


def replicate_outcomes(daily: np.ndarray, sc: Scenario) -> dict[str, float]:
    """The outcomes of one replicate from its daily series (counts already in represented soldiers), in the
    order of ``outputs.OUTCOMES``: the built-in ones, then those added with ``outputs.add_outcome``."""
    n = sc.force.soldiers
    tot = daily.sum(axis=0)
    last = daily[-1]
    serving = last[COL["serving"]]
    defected = tot[COL["arrived"]]
    deserted, surrendered = tot[COL["deserted"]], tot[COL["surrendered"]]
    lost = defected + deserted + surrendered  # soldiers the army lost by an exit route (eq. 32)
    paid = tot[COL["paid"]]
    cost_pv = tot[COL["programme_cost_pv"]]
    budget = budget_total(sc)
    regime_cost = tot[COL["regime_cost"]]
    out = {
        "defected": defected,
        "defected_share": defected / n,
        "attempts": tot[COL["attempts"]],
        "contacts": tot[COL["contacts"]],
        "defected_programme_share": tot[COL["arrived_programme"]] / n,
        "deserted": deserted,
        "deserted_share": deserted / n,
        "surrendered_in_combat": surrendered,
        "surrendered_share": surrendered / n,
        "returned_to_unit": tot[COL["returned_to_unit"]],
        "caught_deserting_share": tot[COL["caught_deserting"]] / n,
        "lost_share": lost / n,
        "caught": tot[COL["caught"]],
        "caught_share": tot[COL["caught"]] / n,
        "detected_waiting": tot[COL["detected_waiting"]],
        "executed": tot[COL["executed"]],
        "killed_crossing": tot[COL["killed_crossing"]],
        "queued_final": last[COL["queued"]],
        "paid_defectors": paid,
        "rejected": tot[COL["rejected"]],
        "fraud_claimants": tot[COL["fraud_claimants"]],
        "fraud_paid": tot[COL["fraud_paid"]],
        "killed_in_action": tot[COL["killed_in_action"]],
        "wounded": tot[COL["wounded"]],
        "replaced": tot[COL["replaced"]],
        "aware_share": last[COL["aware"]] / serving if serving > 0 else 0.0,
        "credibility": float(last[COL["credibility"]]),
        "strength_remaining_share": float(last[COL["strength_share"]]),
        "units_ineffective_share": float(last[COL["units_ineffective_share"]]),
        "units_ineffective_peak_share": float(daily[:, COL["units_ineffective_share"]].max()),
        "offer_final_usd": float(last[COL["offer_usd"]]),
        "offer_max_usd": float(daily[:, COL["offer_usd"]].max()),
        "days_to_target": first_day_reaching(np.cumsum(daily[:, COL["arrived"]]) / n, sc.programme.target_share),
        "programme_cost_usd": cost_pv,
        "programme_cost_nominal_usd": tot[COL["programme_cost"]],
        "cost_per_genuine_defector_usd": cost_pv / paid if paid > 0 else math.nan,
        "fraud_losses_usd": tot[COL["cost_fraud_pv"]],
        "budget_share": cost_pv / budget if budget > 0 else math.nan,
        "regime_cost_usd": regime_cost,
        "regime_loss_usd": regime_loss(lost, sc.regime.response.soldier_value_usd, regime_cost),
        "monitors_final": float(last[COL["monitors"]]),
        "pay_final_usd_month": float(last[COL["pay_usd_month"]]),
    }
    for k, name in enumerate(TYPE_NAMES):
        share = sc.force.types.ordered()[k][1].share
        out[f"defected_share_{name}"] = tot[COL[f"arrived_{name}"]] / (n * share) if share > 0 else 0.0
    for name, derive in DERIVED_OUTCOMES.items():
        out[name] = derive(daily, sc)
    return {k: float(v) for k, v in out.items()}
