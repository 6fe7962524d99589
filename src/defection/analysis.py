"""Outcomes of a run: per-replicate summaries and their medians with 90% intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from defection.dynamics import COL

OUTCOMES = {
    "defected": "Soldiers who reached the other side (represented force).",
    "defected_share": "Defected as a share of the initial force.",
    "attempts": "Attempts to cross (represented force).",
    "caught": "Attempters caught by their own side, executions included.",
    "executed": "Attempters caught and summarily executed.",
    "killed_crossing": "Attempters killed while crossing.",
    "killed_in_action": "Soldiers killed in combat.",
    "wounded": "Soldiers evacuated wounded.",
    "replaced": "Replacements who arrived in depleted companies.",
    "aware_share": "Share of serving soldiers who know the offer, final day.",
    "credibility": "Mean believed probability that promises are kept, final day.",
    "strength_remaining_share": "Serving soldiers over establishment, final day.",
    "units_ineffective_share": "Share of companies below the combat-ineffective threshold, final day.",
    "units_ineffective_peak_share": "Largest daily share of combat-ineffective companies.",
}


def replicate_outcomes(daily: np.ndarray, agents: int, represented: int) -> dict[str, float]:
    """The outcomes of one replicate from its daily series (counts scaled by represented/agents)."""
    w = represented / agents
    tot = daily.sum(axis=0)
    last = daily[-1]
    serving = last[COL["serving"]]
    return {
        "defected": tot[COL["arrived"]] * w,
        "defected_share": tot[COL["arrived"]] / agents,
        "attempts": tot[COL["attempts"]] * w,
        "caught": tot[COL["caught"]] * w,
        "executed": tot[COL["executed"]] * w,
        "killed_crossing": tot[COL["killed_crossing"]] * w,
        "killed_in_action": tot[COL["killed_in_action"]] * w,
        "wounded": tot[COL["wounded"]] * w,
        "replaced": tot[COL["replaced"]] * w,
        "aware_share": last[COL["aware"]] / serving if serving > 0 else 0.0,
        "credibility": float(last[COL["credibility"]]),
        "strength_remaining_share": float(last[COL["strength_share"]]),
        "units_ineffective_share": float(last[COL["units_ineffective_share"]]),
        "units_ineffective_peak_share": float(daily[:, COL["units_ineffective_share"]].max()),
    }


def interval_table(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """Median, 5th and 95th percentile and mean of each outcome across replicates."""
    rows = []
    for name in OUTCOMES:
        v = per_replicate[name].to_numpy(dtype=float)
        rows.append({
            "outcome": name,
            "median": float(np.median(v)),
            "p05": float(np.quantile(v, 0.05)),
            "p95": float(np.quantile(v, 0.95)),
            "mean": float(np.mean(v)),
        })
    return pd.DataFrame(rows)
