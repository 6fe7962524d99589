"""The outcomes of one replicate, computed from its daily series (docs/model.md §7)."""

from __future__ import annotations

import math

import numpy as np

from defection.model.dynamics import COL
from defection.model.economics import budget_total, regime_loss
from defection.scenario import TYPE_NAMES, Scenario

OUTCOMES = {
    "defected": "Soldiers who reached the other side (represented force).",
    "defected_share": "Defected as a share of the initial force.",
    "attempts": "Crossings attempted (directly, or extracted by the programme).",
    "contacts": "Soldiers who contacted the programme and joined its queue.",
    "defected_programme_share": "Share of the initial force that arrived through the programme's extraction.",
    "caught": "Caught by their own side (crossing or while waiting), executions included.",
    "caught_share": "Caught as a share of the initial force (a detected-exit flow, e.g. desertion prosecutions).",
    "detected_waiting": "Caught while waiting for extraction.",
    "executed": "Caught and summarily executed.",
    "killed_crossing": "Killed while crossing.",
    "queued_final": "Still waiting for extraction on the last day.",
    "paid_defectors": "Genuine defectors verified and paid.",
    "rejected": "Genuine defectors rejected by screening (not paid).",
    "fraud_claimants": "Impersonators, infiltrators and repeat claimants screened.",
    "fraud_paid": "Fraudulent claimants who passed screening and were paid.",
    "killed_in_action": "Soldiers killed in combat.",
    "wounded": "Soldiers evacuated wounded.",
    "replaced": "Replacements who arrived in depleted companies.",
    "aware_share": "Share of serving soldiers who know the offer, final day.",
    "credibility": "Mean believed probability that promises are kept, final day.",
    "strength_remaining_share": "Soldiers present over establishment, final day.",
    "units_ineffective_share": "Share of companies below the combat-ineffective threshold, final day.",
    "units_ineffective_peak_share": "Largest daily share of combat-ineffective companies.",
    "offer_final_usd": "Cash offer on the last day (0 if the programme closed).",
    "offer_max_usd": "Highest cash offer during the run.",
    "days_to_target": "First day the defected share reached programme.target_share (none: not reached).",
    "programme_cost_usd": "Programme cost, present value at day 0 (USD).",
    "programme_cost_nominal_usd": "Programme cost, undiscounted (USD).",
    "cost_per_genuine_defector_usd": "Programme cost (present value) per paid genuine defector.",
    "fraud_losses_usd": "Payments to fraudulent claimants, present value.",
    "budget_share": "Programme cost as a share of the budget sources.",
    "regime_cost_usd": "What the regime's counter-measures cost it (USD).",
    "regime_loss_usd": "The regime's loss: soldier value × defectors + counter-measure cost (eq. 32).",
    "monitors_final": "Monitors per soldier on the last day.",
    "pay_final_usd_month": "Soldier pay on the last day (USD/month).",
    **{f"defected_share_{t}": f"Share of {t} soldiers who defected." for t in TYPE_NAMES},
}
OPEN_ENDED = {"days_to_target", "cost_per_genuine_defector_usd"}  # 'never' is +inf, shown as none


def first_day_reaching(cumulative: np.ndarray, level: float) -> float:
    """First day on which a cumulative series reaches `level`; NaN if it never does."""
    hit = np.nonzero(cumulative >= level)[0]
    return float(hit[0]) if hit.size else math.nan


def replicate_outcomes(daily: np.ndarray, sc: Scenario) -> dict[str, float]:
    """The outcomes of one replicate from its daily series (counts already in represented soldiers)."""
    n = sc.force.soldiers
    tot = daily.sum(axis=0)
    last = daily[-1]
    serving = last[COL["serving"]]
    defected = tot[COL["arrived"]]
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
        "regime_loss_usd": regime_loss(defected, sc.regime.response.soldier_value_usd, regime_cost),
        "monitors_final": float(last[COL["monitors"]]),
        "pay_final_usd_month": float(last[COL["pay_usd_month"]]),
    }
    for k, name in enumerate(TYPE_NAMES):
        share = sc.force.types.ordered()[k][1].share
        out[f"defected_share_{name}"] = tot[COL[f"arrived_{name}"]] / (n * share) if share > 0 else 0.0
    return {k: float(v) for k, v in out.items()}
