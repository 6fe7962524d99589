"""`defection claims`: each claim of the proposal turned into a quantitative test on the simulator.

Every test compares scenario variants that share the seed and replicate numbers (common random numbers),
so differences are paired replicate by replicate and their 90% intervals exclude most simulation noise.
Verdicts follow fixed, stated rules; the parameters that decide a verdict are found by moving a short list of
uncertain parameters to the ends of their plausible ranges one at a time.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from defection.analysis import json_safe
from defection.engine import RunResult, RunSettings, extended, simulate
from defection.model.outputs import OUTCOMES, SERIES
from defection.model.population import simulated_agents
from defection.scenario import Scenario, with_changes
from defection.scenario.posterior import Posterior
from defection.scenario.ranges import Range
from defection.scenario.registry import registry

MASS_SHARE = 0.10  # Lyall [S8]: mass desertion is ≥10% of the fielded force
STOPPED_UNITS = 0.30  # share of companies combat-ineffective that we call "stopped in its tracks" (assumption)
MIN_REPLICATES = 4  # fewer paired replicates give no 90% interval worth the name (p05/p95 are the extremes)
MIN_DAYS = 60  # the proposal's effects (credibility, word of mouth, extraction) take weeks to show
UNDECIDED = "undecided"
"""The verdict of a claim that these settings cannot decide (a quantity it rests on is undefined)."""

Progress = Callable[[str, int, int | None], None]
"""`progress(label, done, planned)`: called before each new simulation, with the simulations done so far and
the number planned (None if unknown)."""


@dataclass
class Number:
    """A quantity with its median and 90% interval across replicates."""

    name: str
    median: float
    p05: float
    p95: float
    unit: str = ""


@dataclass
class ClaimResult:
    number: int
    claim: str
    test: str
    numbers: list[Number]
    verdict: str  # "supported" | "not supported" | "depends on …"
    reason: str
    deciding: list[dict[str, Any]] = field(default_factory=list)
    alternative: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _interval(name: str, values: np.ndarray, unit: str = "") -> Number:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)] if np.isfinite(v).any() else v
    return Number(name, float(np.median(v)), float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95)), unit)


def patch(sc: Scenario, changes: dict[str, Any]) -> Scenario:
    """A copy of the scenario with dotted-path changes, e.g. {"offer.cash_usd": 0}."""
    return with_changes(sc, changes, "<claims>")


NO_OFFER = {
    "offer.cash_usd": 0.0,
    "offer.asylum_probability": 0.0,
    "offer.trip_value_usd": 0.0,
    "offer.education": False,
    "offer.threat.prosecution_probability": 0.0,
    "information.channels": [],
}

NO_OFFER_TEXT = (
    "no offer as claim 1 defines it: no cash, asylum, trip or education, no war-crimes threat to stayers and no "
    "information channels"
)
"""What 'no offer' means, in words, wherever a paired no-offer baseline is shown."""

PAIRED_BASELINE = "paired_baseline"
"""The name of the artifact holding a run's paired no-offer baseline (`baseline_artifact`)."""
BASELINE_SERIES = ("units_ineffective_share",)
"""The daily series a paired no-offer baseline keeps, per replicate and day (the report's paired differences)."""


def no_offer_baseline(
    sc: Scenario,
    posterior: Posterior | None = None,
    workers: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """The same world with the offer switched off (`NO_OFFER`), with the scenario's seed, replicates, agents and days:
    replicate r uses the same random numbers (and the same posterior particle) as replicate r of the scenario's own
    run, so their difference is paired (common random numbers), as in claim 1. `posterior`: the one the run drew
    from (default: the file `sc.simulation.posterior` names, if any); the parameters `NO_OFFER` sets are left out."""
    if posterior is None and sc.simulation.posterior:
        posterior = Posterior.load(sc.simulation.posterior)
    post = posterior.without(list(NO_OFFER)) if posterior is not None else None
    res = simulate(patch(sc, NO_OFFER), posterior=post, workers=workers, progress=progress)
    if posterior is not None:  # the posterior the run drew from, not the copy without the offer's parameters
        res.posterior_hash, res.posterior_path = posterior.content_hash(), posterior.source
    return res


def baseline_artifact(baseline: RunResult, series: tuple[str, ...] = BASELINE_SERIES) -> dict[str, Any]:
    """A paired no-offer baseline as the store keeps it (artifact `PAIRED_BASELINE`): what 'no offer' changed, the
    seed and size it ran with, and each kept daily series as columns `replicate`, `day` and the series (exact
    floats, so a difference of 0 stays 0)."""
    daily = baseline.daily.sort_values(["replicate", "day"])
    return {
        "definition": NO_OFFER_TEXT,
        "changes": NO_OFFER,
        "seed": baseline.seed,
        "replicates": baseline.replicates,
        "days": baseline.days,
        "agents": baseline.agents,
        "posterior_hash": baseline.posterior_hash,
        "daily": {
            "replicate": daily["replicate"].astype(int).tolist(),
            "day": daily["day"].astype(int).tolist(),
            **{name: daily[name].astype(float).tolist() for name in series},
        },
    }


# Programme designs tried as alternatives to a failing claim (each a scenario patch).
ALTERNATIVES: dict[str, tuple[str, dict[str, Any]]] = {
    "group surrender procedure": (
        "safe-conduct protocol for whole squads (1991 leaflets [H7b]): squads coordinate more and guided crossings "
        "are safer",
        {"preferences.reveal_probability": 0.6, "programme.extraction_crossing_risk": 0.2},
    ),
    "all cash on arrival": (
        "pay the whole sum on arrival instead of half after the war",
        {"offer.share_on_arrival": 1.0},
    ),
    "family extraction": (
        "bring families out first, as for Kuzminov [H6]",
        {"offer.family_extraction_probability": 0.7},
    ),
    "ten times the extraction capacity": (
        "process ten times as many surrenders a day",
        {"programme.extraction_capacity_per_day": "x10"},
    ),
    "credibility first": (
        "publicised, verifiable resettlements before scaling up (prior belief 0.75)",
        {"credibility.prior_alpha": 6.0, "credibility.prior_beta": 2.0},
    ),
}

# Uncertain parameters moved to their plausible low/high ends to find what decides a verdict.
SENSITIVE: tuple[Range, ...] = (
    Range("credibility.prior_alpha", 1.0, 6.0, why="credibility prior Beta(α, 2), calibrated (docs/model.md §7.9)"),
    Range("regime.monitors_per_soldier", 0.02, 0.1, why="monitoring density, assumption (docs/model.md §7.3)"),
    Range("programme.extraction_capacity_per_day", 5.0, 500.0, why="extraction capacity, assumption (§7.10)"),
    Range("preferences.moral_cost_median_usd", 100_000.0, 600_000.0, why="moral cost m0, calibrated (§7.4)"),
    Range("crossing.killed_crossing_base", 0.02, 0.3, why="base crossing risk, calibrated (§7.3)"),
    Range("regime.family_reprisal_usd", 0.0, 100_000.0, why="reprisals against families, assumption (§7.4)"),
    Range(
        "combat.replacement_capacity_share_per_day",
        0.0005,
        0.003,
        why="replacements the army can send a day, ≈10,000–63,000 a month for 700,000 soldiers (recruitment "
        "30,000–40,000 a month [R14]; §7.8, eq. 21b)",
    ),
)


class Lab:
    """Runs and caches simulations of scenario variants with common settings and seeds."""

    def __init__(
        self,
        base: Scenario,
        replicates: int,
        days: int,
        agents: int,
        seed: int,
        progress: Progress | None = None,
        posterior: Posterior | None = None,
        *,
        dry: bool = False,
        planned: int | None = None,
        workers: Executor | None = None,
    ):
        self.base = base
        self.settings: RunSettings = {"replicates": replicates, "days": days, "agents": agents, "seed": seed}
        self.progress = progress
        self.posterior = posterior  # replicate r uses the same posterior draw in every variant (paired)
        self.dry = dry  # plan only: count the distinct variants, simulate nothing (placeholder results)
        self.planned = planned
        self.workers = workers  # a pool from `defection.workers.replicate_workers`: replicates side by side
        self.agent_days = 0  # agents × days × replicates simulated, summed over the variants
        self.simulate_seconds = 0.0  # wall time spent in `simulate`, summed over the variants
        self.simulated = 0  # calls of `simulate` (a variant extended by more replicates counts again)
        self._cache: dict[str, RunResult] = {}

    def variant(self, changes: dict[str, Any], base: Scenario | None = None) -> Scenario:
        sc = base or self.base
        resolved = {}
        for path, value in changes.items():
            if isinstance(value, str) and value.startswith("x"):
                current: Any = sc.model_dump(mode="json")
                for part in path.split("."):
                    current = current[part]
                info = registry().get(path)
                lo, hi = (info.lo, info.hi) if info is not None else (None, None)
                value = float(current) * float(value[1:])
                value = min(hi, value) if hi is not None else value  # stay inside the allowed range
                value = max(lo, value) if lo is not None else value
            resolved[path] = value
        return patch(sc, resolved)

    def run(self, changes: dict[str, Any], label: str = "", base: Scenario | None = None) -> RunResult:
        """The variant's result with the lab's current replicate count: simulated once, and extended by the
        replicates it lacks when the count has grown since (adaptive replicates: the first ones are not re-run)."""
        sc = self.variant(changes, base)
        key = sc.content_hash()
        wanted = int(self.settings["replicates"])
        have = self._cache[key].replicates if key in self._cache else 0
        if have >= wanted:
            return self._cache[key]
        if self.dry:
            self._cache[key] = self._placeholder(sc)
            return self._cache[key]
        if self.progress:
            self.progress(label or ", ".join(changes) or "proposal", self.simulated, self.planned)
        post = self.posterior.without(list(changes)) if self.posterior is not None else None
        settings: RunSettings = {**self.settings, "replicates": wanted - have}
        res = simulate(sc, posterior=post, workers=self.workers, first_replicate=have, **settings)
        self.simulated += 1
        self.agent_days += res.agent_days
        self.simulate_seconds += res.wall_seconds
        self._cache[key] = extended(self._cache[key], res) if have else res
        return self._cache[key]

    def _placeholder(self, sc: Scenario) -> RunResult:
        """A result of zeros with the shape of a real one (planning: only the variants matter)."""
        reps, days = int(self.settings["replicates"]), 1
        daily = pd.DataFrame(0.0, index=range(reps * days), columns=list(SERIES))
        daily.insert(0, "day", np.zeros(reps * days, dtype=np.int32))
        daily.insert(0, "replicate", np.arange(reps, dtype=np.int32))
        per_rep = pd.DataFrame(0.0, index=range(reps), columns=list(OUTCOMES))
        per_rep.insert(0, "replicate", np.arange(reps))
        n = simulated_agents(int(self.settings["agents"]), sc.force.company_size)
        return RunResult(sc, int(self.settings["seed"]), n, sc.force.soldiers, days, reps, daily, per_rep)

    @property
    def runs(self) -> int:
        return len(self._cache)


def per_rep(res: RunResult, outcome: str) -> np.ndarray:
    values: np.ndarray = res.per_replicate[outcome].to_numpy(dtype=float)
    return values


def verdict_from_interval(n: Number, threshold: float, what: str) -> tuple[str, str]:
    """Supported if the median clears the threshold, not supported if even the 95th percentile misses it;
    undecided if the number is undefined."""
    if not all(math.isfinite(v) for v in (n.median, n.p05, n.p95)):
        return UNDECIDED, f"{what} is undefined at these settings"
    if n.median >= threshold:
        return "supported", f"median {what} {n.median:.3g} ≥ {threshold:.3g}"
    if n.p95 < threshold:
        return "not supported", f"95th percentile of {what} {n.p95:.3g} < {threshold:.3g}"
    return "depends", f"{what} straddles {threshold:.3g} (90% interval {n.p05:.3g}–{n.p95:.3g})"


def deciding_parameters(lab: Lab, metric: Callable[[Lab, dict[str, Any]], float], k: int = 3) -> list[dict[str, Any]]:
    """The k parameters whose low/high ends move `metric` the most (one at a time, common random numbers)."""
    rows: list[dict[str, Any]] = []
    for r in SENSITIVE:
        path, lo, hi = r.path, r.lo, r.hi
        m_lo, m_hi = metric(lab, {path: lo}), metric(lab, {path: hi})
        rows.append(
            {
                "parameter": path,
                "low": lo,
                "high": hi,
                "metric_at_low": m_lo,
                "metric_at_high": m_hi,
                "swing": abs(m_hi - m_lo),
            }
        )
    rows.sort(key=lambda r: -r["swing"])
    return [r for r in rows[:k] if r["swing"] > 0]  # a parameter that moves nothing decides nothing


def best_alternative(
    lab: Lab, metric: Callable[[Lab, dict[str, Any]], float], baseline: float, larger_is_better: bool = True
) -> dict[str, Any]:
    scored = []
    for name, (what, changes) in ALTERNATIVES.items():
        value = metric(lab, changes)
        scored.append((value if larger_is_better else -value, name, what, value))
    scored.sort(reverse=True)
    _, name, what, value = scored[0]
    return {
        "name": name,
        "description": what,
        "metric": value,
        "proposal_metric": baseline,
        "all": {n: v for _, n, _, v in scored},
    }


def _median(lab: Lab, changes: dict[str, Any], outcome: str) -> float:
    return float(np.median(per_rep(lab.run(changes), outcome)))


# ----------------------------------------------------------------------------- the six claims
def claim_mass_defection(lab: Lab) -> ClaimResult:
    prop, none = lab.run({}), lab.run(NO_OFFER, "no offer")
    share = _interval("defected share of force", per_rep(prop, "defected_share"))
    uplift = _interval(
        "defected share, offer − no offer (paired)", per_rep(prop, "defected_share") - per_rep(none, "defected_share")
    )
    conscripts = _interval("defected share of conscripts", per_rep(prop, "defected_share_conscript"))
    # Lyall's mass desertion counts every way of abandoning the fight: crossing, deserting home, surrendering
    lost = _interval("share of the force lost by any exit route", per_rep(prop, "lost_share"))
    p_mass = float(np.mean(per_rep(prop, "defected_share") >= MASS_SHARE))
    verdict, reason = verdict_from_interval(share, MASS_SHARE, "defected share")
    if verdict == "supported" and conscripts.median < share.median:
        verdict, reason = "depends", reason + "; but conscripts defect less than the force as a whole"
    metric = lambda lab_, ch: _median(lab_, ch, "defected_share")  # noqa: E731
    return ClaimResult(
        1,
        "$100k plus a trip induces mass defection, especially among young conscripts.",
        f"Simulate the proposal and the same world with no offer; mass defection = ≥{MASS_SHARE:.0%} of the force "
        f"(Lyall [S8]) within the horizon. Share of replicates reaching it: {p_mass:.0%}.",
        [share, uplift, conscripts, lost],
        verdict,
        reason,
        deciding_parameters(lab, metric),
        best_alternative(lab, metric, share.median),
    )


def claim_raise_until_it_works(lab: Lab) -> ClaimResult:
    sc = lab.base
    horizon_months = sc.simulation.days / 30.0
    target = MASS_SHARE / max(1.0, horizon_months)
    budget = sum(s.amount_usd for s in sc.programme.budget_sources)
    raising = {
        "offer.schedule.rule": "adaptive",
        "offer.schedule.growth_per_step": 0.5,
        "offer.schedule.step_days": 30,
        "offer.schedule.target_share_per_month": target,
        "offer.schedule.budget_cap_usd": budget,
    }
    adaptive = lab.run(raising, "raise 50%/month until target")
    topup = lab.run({**raising, "offer.schedule.rule": "ratchet_topup"}, "raise 50%/month with top-up")
    share = _interval("defected share, sweeten-until-target", per_rep(adaptive, "defected_share"))
    offer = _interval("final offer", per_rep(adaptive, "offer_max_usd"), "USD")
    cost = _interval("programme cost", per_rep(adaptive, "programme_cost_usd"), "USD")
    early = _interval(
        "defected share by day 30, announced raises − top-up clause (paired)",
        _cum_share(adaptive, 30) - _cum_share(topup, 30),
    )
    verdict, reason = verdict_from_interval(share, MASS_SHARE, "defected share")
    metric = lambda lab_, ch: _median(lab_, {**raising, **ch}, "defected_share")  # noqa: E731
    return ClaimResult(
        2,
        "If the first package fails, raising it until mass defections happen works.",
        f"Raise the cash by 50% every 30 days while fewer than {target:.2%} of the force defect per month, capped by "
        f"the budget sources (${budget:,.0f}); compare early defections with a retroactive top-up clause.",
        [share, offer, cost, early],
        verdict,
        reason,
        deciding_parameters(lab, metric),
        best_alternative(lab, metric, share.median),
    )


def _cum_share(res: RunResult, day: int) -> np.ndarray:
    d = res.daily[res.daily["day"] < day]
    share: np.ndarray = (d.groupby("replicate")["arrived"].sum() / res.represented).to_numpy()
    return share


def claim_few_defections_stop_the_army(lab: Lab) -> ClaimResult:
    levels: dict[str, dict[str, Any]] = {
        "offer $100k": {},
        "offer $1M": {"offer.cash_usd": 1e6},
        "offer $10M, capacity ×100": {"offer.cash_usd": 1e7, "programme.extraction_capacity_per_day": "x100"},
        "offer $10M, capacity ×100, no monitors": {
            "offer.cash_usd": 1e7,
            "regime.monitors_per_soldier": 0.0,
            "regime.response.mode": "static",
            "programme.extraction_capacity_per_day": "x100",
        },
        "the same, replacements 10,000 a month": {  # the low end of the replacement capacity (eq. 21b)
            "offer.cash_usd": 1e7,
            "regime.monitors_per_soldier": 0.0,
            "regime.response.mode": "static",
            "programme.extraction_capacity_per_day": "x100",
            "combat.replacement_capacity_share_per_day": 0.0005,
        },
    }
    pairs = []
    numbers = []
    for label, ch in levels.items():
        res = lab.run(ch, label)
        d, u = per_rep(res, "defected_share"), per_rep(res, "units_ineffective_peak_share")
        pairs.append((float(np.median(d)), float(np.median(u)), label))
        numbers.append(_interval(f"{label}: peak share of companies combat-ineffective", u))
        numbers.append(_interval(f"{label}: defected share", d))
    stopped = [d for d, u, _ in pairs if u >= STOPPED_UNITS]
    if stopped and min(stopped) <= MASS_SHARE:
        verdict, reason = (
            "supported",
            (f"{min(stopped):.1%} defections left ≥{STOPPED_UNITS:.0%} of companies combat-ineffective"),
        )
    elif stopped:
        verdict, reason = (
            "not supported",
            (
                f"it took {min(stopped):.1%} of the force defecting to leave "
                f"≥{STOPPED_UNITS:.0%} of companies combat-ineffective"
            ),
        )
    else:
        most = max(pairs)
        verdict, reason = (
            "not supported",
            (
                f"even {most[0]:.1%} defections ({most[2]}) left only {most[1]:.1%} of "
                f"companies combat-ineffective at worst (replacements refill units, even at 10,000 a month)"
            ),
        )
    metric = lambda lab_, ch: _median(lab_, ch, "units_ineffective_peak_share")  # noqa: E731
    return ClaimResult(
        3,
        "It won't take many defections to stop the army in its tracks.",
        f"Push defections up with larger offers and capacity and record the peak share of companies below the "
        f"combat-ineffective threshold (θ_CE = {lab.base.units.combat_ineffective_threshold}); 'stopped' = "
        f"≥{STOPPED_UNITS:.0%} of companies (assumption).",
        numbers,
        verdict,
        reason,
        deciding_parameters(lab, metric),
        None,
    )


def claim_cheap_and_paid_by_frozen_assets(lab: Lab) -> ClaimResult:
    prop = lab.run({})
    d = prop.daily.groupby("replicate")
    paid = d["paid"].sum().to_numpy()
    variable = (d["programme_cost_pv"].sum() - d["cost_communications_pv"].sum()).to_numpy()
    fixed = d["cost_communications_pv"].sum().to_numpy()
    per_defector = np.where(paid > 0, variable / np.maximum(paid, 1e-9), np.nan)
    no_paid = not (paid > 0).any()
    absorb = 300_000.0
    budget = sum(s.amount_usd for s in lab.base.programme.budget_sources)
    total_300k = per_defector * absorb + fixed
    n_per = _interval("cost per paid defector, excluding channel running costs", per_defector, "USD")
    n_total = _interval("cost of absorbing 300,000 defectors", total_300k, "USD")
    n_share = _interval("…as a share of the budget sources", total_300k / budget)
    n_fraud = _interval(
        "share of payments lost to fraud", (d["cost_fraud_pv"].sum() / d["programme_cost_pv"].sum()).to_numpy()
    )
    if no_paid:
        verdict, reason = (
            UNDECIDED,
            "cost per defector undefined: no defector was paid in any replicate at these settings "
            "(more agents, days or replicates are needed)",
        )
    elif n_share.p95 <= 0.10:
        verdict, reason = "supported", f"300,000 defectors cost ≤{n_share.p95:.1%} of the budget sources"
    elif n_share.p05 > 1.0:
        verdict, reason = "not supported", "300,000 defectors cost more than the budget sources"
    else:
        verdict, reason = (
            "depends",
            (
                f"300,000 defectors cost {n_share.median:.1%} of the budget sources "
                "(90% interval "
                f"{n_share.p05:.1%}–{n_share.p95:.1%}); the assets are "
                "immobilised, not available: their use is a political decision"
            ),
        )
    metric = lambda lab_, ch: _median(lab_, ch, "cost_per_genuine_defector_usd")  # noqa: E731
    return ClaimResult(
        4,
        "Absorbing a few hundred thousand defectors costs little, and frozen Russian money can pay for it.",
        "Programme cost per paid defector (cash now and deferred, trip, resettlement, education, protection, POW "
        "upkeep, screening, extraction, fraud; present value) scaled to 300,000 defectors, against the budget "
        f"sources (${budget:,.0f}).",
        [n_per, n_total, n_share, n_fraud],
        verdict,
        reason,
        deciding_parameters(lab, metric),
        None,
    )


def claim_threats_help(lab: Lab) -> ClaimResult:
    with_threat = lab.run({})
    without = lab.run({"offer.threat.prosecution_probability": 0.0}, "no war-crimes threat")
    certain = lab.run({"offer.threat.prosecution_probability": "x10"}, "threat certainty ×10")
    severe = lab.run({"offer.threat.sentence_years": "x2"}, "threat severity ×2")
    base = per_rep(with_threat, "defected")
    effect = _interval("defectors gained by the threat (paired)", base - per_rep(without, "defected"))
    cert = _interval("…if certainty rose tenfold (paired, vs proposal)", per_rep(certain, "defected") - base)
    sev = _interval("…if severity doubled (paired, vs proposal)", per_rep(severe, "defected") - base)
    relative = effect.median / max(float(np.median(base)), 1e-9)
    if effect.p05 > 0 and relative >= 0.05:
        verdict, reason = "supported", f"the threat adds {relative:.1%} defections"
    elif effect.p95 <= 0 or abs(relative) < 0.05:
        verdict, reason = (
            "not supported",
            (
                f"the threat changes defections by {relative:+.1%} (weak certainty: "
                "deterrence works through certainty, Nagin [D2])"
            ),
        )
    else:
        verdict, reason = "depends", f"the threat changes defections by {relative:+.1%}, within noise"

    def metric(lab_: Lab, ch: dict[str, Any]) -> float:
        return _median(lab_, ch, "defected") - _median(
            lab_, {**ch, "offer.threat.prosecution_probability": 0.0}, "defected"
        )

    return ClaimResult(
        5,
        "Threatening those who stay with war-crimes charges helps.",
        "Paired runs with and without the threat to stayers (perceived prosecution probability "
        f"{lab.base.offer.threat.prosecution_probability:g}, {lab.base.offer.threat.sentence_years:g} years), and with "
        "certainty ×10 or severity ×2.",
        [effect, cert, sev],
        verdict,
        reason,
        deciding_parameters(lab, metric),
        best_alternative(lab, lambda lab_, ch: _median(lab_, ch, "defected"), float(np.median(base))),
    )


def claim_asylum_and_education_matter(lab: Lab) -> ClaimResult:
    full = lab.run({})
    cash_only = lab.run({"offer.asylum_probability": 0.0, "offer.education": False}, "cash only")
    no_cash = lab.run({"offer.cash_usd": 0.0, "offer.trip_value_usd": 0.0}, "asylum and education, no cash")
    f = per_rep(full, "defected_share")
    from_noncash = _interval(
        "defected share added by asylum + education (paired)", f - per_rep(cash_only, "defected_share")
    )
    from_cash = _interval("defected share added by cash + trip (paired)", f - per_rep(no_cash, "defected_share"))
    share = _interval("defected share, full package", f)
    if from_noncash.p05 > 0 and from_noncash.median > from_cash.median:
        verdict, reason = "supported", "asylum and education add more defections than the cash"
    elif from_noncash.median <= from_cash.median and from_cash.p05 > 0:
        verdict, reason = "not supported", "the cash adds more than asylum and education"
    else:
        verdict, reason = "depends", "neither part of the package clearly adds more than the other"

    def metric(lab_: Lab, ch: dict[str, Any]) -> float:
        return _median(lab_, ch, "defected_share") - _median(
            lab_, {**ch, "offer.asylum_probability": 0.0, "offer.education": False}, "defected_share"
        )

    return ClaimResult(
        6,
        "Asylum and a Western education are what make the offer work.",
        "Paired runs of the full package, cash only (no asylum, no education), and asylum + education without cash.",
        [share, from_noncash, from_cash],
        verdict,
        reason,
        deciding_parameters(lab, metric),
        None,
    )


# What each claim's `deciding` rows and `alternative` measure (`metric_at_low`/`_high`, `metric`, `proposal_metric`),
# with the outcome whose units they are in: the reports label and format those numbers with them.
DECIDING_METRICS: dict[int, tuple[str, str]] = {
    1: ("median defected share", "defected_share"),
    2: ("median defected share when raising the offer", "defected_share"),
    3: ("median peak share of companies combat-ineffective", "units_ineffective_peak_share"),
    4: ("median cost per paid genuine defector", "cost_per_genuine_defector_usd"),
    5: ("median defectors gained by the threat", "defected"),
    6: ("median defected share added by asylum and education", "defected_share"),
}
ALTERNATIVE_METRICS: dict[int, tuple[str, str]] = {
    1: ("median defected share", "defected_share"),
    2: ("median defected share when raising the offer", "defected_share"),
    5: ("median defectors", "defected"),
}

CLAIMS = (
    claim_mass_defection,
    claim_raise_until_it_works,
    claim_few_defections_stop_the_army,
    claim_cheap_and_paid_by_frozen_assets,
    claim_threats_help,
    claim_asylum_and_education_matter,
)


@dataclass
class ClaimsReport:
    claims: list[ClaimResult]
    settings: dict[str, Any]
    simulations: int
    proposal: RunResult
    agent_days: int = 0  # agents × days × replicates simulated, summed over every variant
    simulate_seconds: float = 0.0  # wall time spent simulating, summed over every variant
    warnings: list[str] = field(default_factory=list)  # why these settings may be too small to decide
    adaptive: dict[str, Any] | None = None  # adaptive replicates: the rounds tried and why it stopped (run_claims)
    baseline: RunResult | None = None  # claim 1's no-offer variant, paired with `proposal` (stored by `claims`)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: an undefined number (NaN: no defectors in a replicate, say) is null, so
        neither `--json` nor the stored run ever holds a NaN."""
        data: dict[str, Any] = json_safe(
            {
                "settings": self.settings,
                "adaptive": self.adaptive,
                "simulations": self.simulations,
                "agent_days": self.agent_days,
                "simulate_seconds": self.simulate_seconds,
                "warnings": self.warnings,
                "claims": [c.to_dict() for c in self.claims],
            }
        )
        return data


def settings_warnings(replicates: int, days: int) -> list[str]:
    """Why settings may be too small for the claims' verdicts (before anything is simulated)."""
    found = []
    if replicates < MIN_REPLICATES:
        found.append(
            f"{replicates} replicate(s) per variant: fewer than {MIN_REPLICATES} give no usable 90% interval "
            "(the 5th and 95th percentiles are the extremes), so paired differences cannot be told from noise"
        )
    if days < MIN_DAYS:
        found.append(
            f"{days} day(s): fewer than {MIN_DAYS} leave too little time for credibility and extraction to act; "
            "most variants end with few or no defectors"
        )
    return found  # too few agents: `model.population.resolution_warning`, which the commands show


_UNDEFINED = re.compile(r"\b(nan|inf)\b|nan%", re.IGNORECASE)


def undecided_if_undefined(claim: ClaimResult) -> ClaimResult:
    """A claim whose verdict rests on an undefined quantity (no defectors, no variation) is undecided, and says
    so: no NaN reaches the user as a number."""
    if claim.verdict != UNDECIDED and _UNDEFINED.search(claim.reason):
        claim.verdict = UNDECIDED
        claim.reason = (
            "undefined at these settings: a quantity this verdict rests on has no value (e.g. no defectors in a "
            "variant, so a share or cost per defector is undefined)"
        )
    return claim


def plan_claims(base: Scenario, replicates: int, days: int, agents: int, seed: int) -> int:
    """How many distinct variants `run_claims` simulates with these settings (counted without simulating)."""
    lab = Lab(base, replicates, days, agents, seed, dry=True)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for claim in CLAIMS:
            claim(lab)
    return lab.runs


def replicate_rounds(replicates: int, adaptive: bool) -> list[int]:
    """The replicate counts a claims run tries in turn: with `adaptive`, MIN_REPLICATES, then MIN_REPLICATES more
    each round, up to `replicates`; else `replicates` alone."""
    if not adaptive or replicates < 2 * MIN_REPLICATES:
        return [replicates]
    return [*range(MIN_REPLICATES, replicates, MIN_REPLICATES), replicates]


def judge_claims(lab: Lab) -> list[ClaimResult]:
    """Every claim's verdict with the lab's current replicate count."""
    with np.errstate(all="ignore"), warnings.catch_warnings():  # undefined quantities are reported, not warned
        warnings.simplefilter("ignore", RuntimeWarning)
        results = [undecided_if_undefined(claim(lab)) for claim in CLAIMS]
    for r in results:
        if r.verdict == "depends" and r.deciding:
            r.verdict = "depends on " + ", ".join(d["parameter"] for d in r.deciding)
    return results


def adaptive_summary(tried: list[int], replicates: int, best_response: bool) -> dict[str, Any]:
    """What an adaptive claims run did: the replicate counts tried, the one used, and why it stopped there."""
    used = tried[-1]
    if used < replicates:
        why = f"every verdict was the same with {tried[-2]} and {used} replicates per variant"
    elif best_response:
        why = "best-response mode: its runs cannot be extended by more replicates, so all were run"
    elif len(tried) > 1:
        why = "the verdicts changed from round to round up to the full replicate count"
    else:
        why = f"fewer than {2 * MIN_REPLICATES} replicates: too few to stop early"
    return {
        "max_replicates": replicates,
        "replicates_used": used,
        "rounds": tried,
        "stopped_early": used < replicates,
        "why": why,
    }


def run_claims(
    base: Scenario,
    replicates: int,
    days: int,
    agents: int,
    seed: int,
    progress: Progress | None = None,
    posterior: Posterior | None = None,
    planned: int | None = None,
    workers: Executor | None = None,
    adaptive: bool = False,
) -> ClaimsReport:
    """Test all six claims of the proposal against `base` (the proposal scenario). With a posterior, every
    replicate draws calibrated parameters, so intervals include parameter uncertainty. `progress(label, done,
    planned)` is called before each simulation (`planned`: from `plan_claims`, if given). `workers` (a pool from
    `defection.workers.replicate_workers`) runs each variant's replicates side by side, with the same results.

    `adaptive`: judge the claims with MIN_REPLICATES replicates per variant, then with MIN_REPLICATES more each
    round (common random numbers: each round adds replicates, it does not redraw the first ones), and stop, before
    `replicates`, at the first round whose verdicts are all the same as the round before; the report's `adaptive`
    says where it stopped. A stability rule, not a guarantee: the verdicts of the full count may differ.

    Settings too small to decide are listed in the report's `warnings`; a verdict resting on an undefined
    quantity is 'undecided' and says why."""
    lab = Lab(base, replicates, days, agents, seed, progress, posterior, planned=planned, workers=workers)
    rounds = replicate_rounds(replicates, adaptive and base.regime.response.mode != "best_response")
    tried: list[int] = []
    previous: list[str] | None = None
    for count in rounds:
        lab.settings["replicates"] = count
        tried.append(count)
        results = judge_claims(lab)
        verdicts = [r.verdict for r in results]
        if verdicts == previous:
            break
        previous = verdicts
    used = tried[-1]
    found = settings_warnings(used, days)
    undecided = [r.number for r in results if r.verdict == UNDECIDED]
    if undecided:
        found.append(
            f"claim(s) {', '.join(map(str, undecided))} undecided: a quantity their verdict rests on is undefined "
            "at these settings"
        )
    rule = adaptive_summary(tried, replicates, base.regime.response.mode == "best_response") if adaptive else None
    proposal = lab.run({})
    baseline = lab.run(NO_OFFER, "no offer")  # already simulated for claim 1 (cached): no extra cost
    if posterior is not None:  # the posterior given, not the copy each variant draws from (its weights renormalised)
        for res in (proposal, baseline):
            res.posterior_hash, res.posterior_path = posterior.content_hash(), posterior.source
    return ClaimsReport(
        results,
        dict(lab.settings),
        lab.runs,
        proposal,
        lab.agent_days,
        lab.simulate_seconds,
        found,
        adaptive=rule,
        baseline=baseline,
    )
