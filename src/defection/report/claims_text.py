"""A stored claim's "decided by" and "best alternative" lines, as `defection claims` prints them, in words a report
can show: each parameter's range and what moving it across does to the claim's metric, formatted in the metric's
units (`defection.claims.DECIDING_METRICS`, `ALTERNATIVE_METRICS`)."""

from __future__ import annotations

import math
from typing import Any

from defection.claims import ALTERNATIVE_METRICS, DECIDING_METRICS
from defection.report.format import fmt_value

NONE_DECIDES = "none of the tested parameters moves it"
NO_ALTERNATIVE = "none tested for this claim"
SUPPORTED_NO_ALTERNATIVE = "not needed: the claim is supported"


def metric_value(outcome: str, v: Any) -> str:
    """A metric in the units of `outcome`; 'undefined' for a missing or non-finite value (never 'nan')."""
    if v is None or not isinstance(v, int | float) or not math.isfinite(v):
        return "undefined"
    return fmt_value(outcome, float(v))


def decided_by(claim: dict[str, Any]) -> list[str]:
    """One phrase per deciding parameter: its low → high end and the metric at each (empty: none decides)."""
    what, outcome = DECIDING_METRICS.get(int(claim.get("number") or 0), ("metric", "value"))
    return [
        f"{d['parameter']} ({d['low']:g} → {d['high']:g}: {what} {metric_value(outcome, d.get('metric_at_low'))} → "
        f"{metric_value(outcome, d.get('metric_at_high'))})"
        for d in claim.get("deciding") or []
    ]


def decided_by_text(claim: dict[str, Any]) -> str:
    """The "decided by" line's content."""
    return "; ".join(decided_by(claim)) or NONE_DECIDES


def alternative_text(claim: dict[str, Any]) -> str:
    """The best alternative design and what it does to the claim's metric against the proposal; says why there is
    none (a supported claim needs none; some claims test none)."""
    alt = claim.get("alternative")
    if str(claim.get("verdict", "")) == "supported":
        return SUPPORTED_NO_ALTERNATIVE
    if not alt:
        return NO_ALTERNATIVE
    what, outcome = ALTERNATIVE_METRICS.get(int(claim.get("number") or 0), ("metric", "value"))
    return (
        f"{alt.get('name')}: {alt.get('description')} ({what} {metric_value(outcome, alt.get('proposal_metric'))} "
        f"with the proposal → {metric_value(outcome, alt.get('metric'))})"
    )
