"""An optimisation's answer in words and short numbers, shared by `defection optimize`'s tables and the report of
an optimize run: the target as a goal, the verdict (the cheapest package reaching it, or that none did and what the
closest reached), a package and a trial's metrics with sensible precision."""

from __future__ import annotations

from typing import Any

from defection.report.format import fmt_short, fmt_short_interval

COST = "programme_cost_usd"


def goal_text(target: dict[str, Any]) -> str:
    """'defected_share ≥ 10% with probability ≥ 80%'."""
    name = str(target.get("outcome"))
    sign = "≥" if target.get("above", True) else "≤"
    return (
        f"{name} {sign} {fmt_short(name, target.get('value'))} with probability ≥ "
        f"{fmt_short('probability', target.get('probability'))}"
    )


def package_text(package: dict[str, Any], sep: str = "; ") -> str:
    """A package's levers, each value to 3 significant digits ('offer.cash_usd = $23,900')."""
    return sep.join(f"{k} = {fmt_short(k, v)}" for k, v in package.items())


def reached_text(row: dict[str, Any], outcome: str) -> str:
    """What a trial achieved on the target's outcome: its mean over worlds × replicates, the 90% interval, the share
    of world-replicates that reached the target and the mean cost."""
    m = row.get("metrics", {})
    span = row.get("interval")
    spread = (
        ""
        if not span
        else f" (90% of worlds × replicates: {fmt_short_interval(outcome, span.get('p05'), span.get('p95'))})"
    )
    prob = m.get("probability")
    reach = "" if prob is None else f", reaching the target in {fmt_short('probability', prob)} of them"
    return (
        f"{outcome} {fmt_short(outcome, m.get(outcome))} on average{spread}{reach}, at a mean cost of "
        f"{fmt_short(COST, m.get(COST))} (trial {row.get('trial')})"
    )


def verdict(result: dict[str, Any]) -> str | None:
    """A target optimisation's answer in one sentence (None for a Pareto front): the cheapest package reaching the
    target, or 'no package reached the target X; the closest reached Y'."""
    target = result.get("target")
    if result.get("mode") != "target" or not target:
        return None
    goal, outcome = goal_text(target), str(target.get("outcome"))
    if result.get("best"):
        return f"the cheapest package reaching the target {goal}: {reached_text(result['best'], outcome)}"
    if result.get("closest"):
        return f"no package reached the target {goal}; the closest reached {reached_text(result['closest'], outcome)}"
    return f"no trial completed, so no package was scored against the target {goal}"
