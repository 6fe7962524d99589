"""The regime fights back (docs/model.md §7.11): adaptive rules with delays and triggers, or counter-measures
chosen as a best response to the offer using the simulator itself.

The regime's counter-measures live in a small ``CounterMeasures`` record; ``apply_counter_measures`` writes them
into the engine's parameter tuple each time they change. ("Levers" are the programme's policy choices: the offer's
terms, which exploration specs and the dashboard vary; the regime's responses are counter-measures.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from defection.model.parameters import EngineParams, class_monitors, per_month_to_per_day, reach_with_blocking
from defection.model.rng import latin_hypercube
from defection.scenario import Scenario


@dataclass(frozen=True)
class CounterMeasures:
    monitors: float  # M, monitors per soldier
    blocking: float  # b_R, share of every channel blocked by the regime
    propaganda: float  # negative public evidence per day
    family_reprisal: float  # F_pol, USD
    execution: float  # π_exec
    sentence: float  # J, years
    infiltration: float  # infiltrators per genuine defector
    pay_usd_month: float  # w

    def as_dict(self) -> dict[str, float]:
        # The fields by name, as dataclasses.asdict gives them, without its recursive deep copy: the engine records
        # them every simulated day, and asdict took about a tenth of a small calibration case's time.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def initial_counter_measures(sc: Scenario) -> CounterMeasures:
    rg = sc.regime
    return CounterMeasures(
        monitors=rg.monitors_per_soldier,
        blocking=0.0,
        propaganda=0.0,
        family_reprisal=rg.family_reprisal_usd,
        execution=rg.execution_probability,
        sentence=rg.sentence_years,
        infiltration=0.0,
        pay_usd_month=sc.combat.pay_usd_month,
    )


def apply_counter_measures(p: EngineParams, sc: Scenario, lv: CounterMeasures) -> EngineParams:
    """The engine parameters with the regime's current counter-measures."""
    return p._replace(
        class_monitors=class_monitors(lv.monitors, sc),
        external_reach=reach_with_blocking(p.channel_effective, lv.blocking),
        family_reprisal_usd=lv.family_reprisal,
        execution_probability=lv.execution,
        sentence_years=lv.sentence,
        pay_usd_day=per_month_to_per_day(lv.pay_usd_month),
    )


def exit_ratio(exits: float, mean_serving: float, window_days: int, target_per_month: float) -> float:
    """Eq. 28a: d̄/d*, the observed monthly exit share over the tolerated one."""
    if mean_serving <= 0 or window_days <= 0:
        return 0.0
    monthly = exits / mean_serving * 30.0 / window_days
    return monthly / target_per_month


def adaptive_update(sc: Scenario, lv: CounterMeasures, ratio: float, strength_share: float) -> CounterMeasures:
    """Eq. 28–31: one review of the regime's counter-measures. CounterMeasures only tighten (no rule relaxes them)."""
    r = sc.regime.response
    excess = max(0.0, ratio - 1.0)
    monitors = lv.monitors
    if excess > 0:
        monitors = min(r.max_monitors_per_soldier, max(lv.monitors, 0.01) * (1.0 + r.monitor_response * excess))
    pay = lv.pay_usd_month * (1.0 + r.pay_rise) if strength_share < r.strength_floor else lv.pay_usd_month
    return replace(
        lv,
        monitors=max(lv.monitors, monitors),
        blocking=min(r.max_blocking, lv.blocking + r.blocking_response * excess),
        propaganda=min(r.max_propaganda, lv.propaganda + r.propaganda_response * excess),
        family_reprisal=max(lv.family_reprisal, r.family_reprisal_on_usd)
        if ratio > r.family_trigger
        else lv.family_reprisal,
        execution=max(lv.execution, r.execution_on) if ratio > r.execution_trigger else lv.execution,
        sentence=max(lv.sentence, r.sentence_on_years) if ratio > r.sentence_trigger else lv.sentence,
        infiltration=r.infiltration_share if ratio > r.infiltration_trigger else lv.infiltration,
        pay_usd_month=pay,
    )


def candidate_counter_measures(sc: Scenario, n: int, seed: int) -> list[CounterMeasures]:
    """Eq. 32: static counter-measure sets for the best-response search, a Latin hypercube over each one's range
    (from where the regime starts to the ceiling its adaptive rules may reach)."""
    r = sc.regime.response
    base = initial_counter_measures(sc)
    lo = np.array(
        [base.monitors, 0.0, 0.0, base.family_reprisal, base.execution, base.sentence, 0.0, base.pay_usd_month]
    )
    hi = np.array(
        [
            max(base.monitors, r.max_monitors_per_soldier),
            r.max_blocking,
            r.max_propaganda,
            max(base.family_reprisal, r.family_reprisal_on_usd),
            max(base.execution, r.execution_on),
            max(base.sentence, r.sentence_on_years),
            r.infiltration_share,
            base.pay_usd_month * 1.5,
        ]
    )
    span = np.where(hi > lo, hi - lo, 0.0)
    unit = latin_hypercube(lo.size, n, seed)
    points = lo + unit * span
    return [CounterMeasures(*map(float, row)) for row in points]
