"""The tasks that explorations hand to worker processes: simulate one design point (a set of parameter changes)
with the spec's replicates and return a small dict, a batch of such points, and a warm-up.

A light module on purpose: a worker process that runs these imports the engine and the scenario, not the store
(DuckDB), the designs (SciPy, SALib), Optuna or Dask. Each task is a pure function of plain data (the base scenario
as JSON, the changes, the settings with their seed), so it gives the same numbers in any process or machine; it
never raises, a failure is returned with its error so one bad point cannot stop an exploration.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from defection.engine import RunSettings, simulate
from defection.scenario import scenario_from_dict, with_changes
from defection.scenario.posterior import Posterior


class PointSettings(RunSettings, total=False):
    """An exploration's run settings: `simulate`'s overrides, and the posterior each replicate draws its
    calibrated parameters from (absent: the base scenario's values)."""

    posterior: Posterior


def run_point(
    base_json: str,
    changes: dict[str, Any],
    run_settings: RunSettings,
    outcomes: list[str],
    single_thread: bool = True,
) -> dict[str, Any]:
    """Simulate one design point; return {status, error, <outcome>_mean/_median/_p05/_p95}. Never raises: a
    failure is returned with its error so one bad point cannot stop a sweep."""
    try:
        if single_thread:  # one level of parallelism: the workers
            numba.set_num_threads(1)
        sc = with_changes(scenario_from_dict(_loads(base_json), "<sweep base>"), changes, "<sweep point>")
        res = simulate(sc, **run_settings)
        row: dict[str, Any] = {
            "status": "ok",
            "error": None,
            "wall_seconds": res.wall_seconds,
            "agent_days": res.agent_days,
        }
        for name in outcomes:
            v = res.per_replicate[name].to_numpy(dtype=float)
            finite = v[np.isfinite(v)]
            row[f"{name}_mean"] = float(finite.mean()) if finite.size == v.size else math.inf
            row[f"{name}_median"] = float(np.median(v))
            row[f"{name}_p05"] = float(np.quantile(v, 0.05))
            row[f"{name}_p95"] = float(np.quantile(v, 0.95))
        return row
    except Exception as e:  # recorded, not raised
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}


def run_replicates(
    base_json: str,
    changes: dict[str, Any],
    run_settings: RunSettings,
    outcomes: list[str],
    single_thread: bool = True,
) -> dict[str, Any]:
    """Like `run_point`, but return every replicate's value of each outcome ({status, error, values:
    {outcome: [...]}}), as the probability of reaching a target needs them. Never raises."""
    try:
        if single_thread:
            numba.set_num_threads(1)
        sc = with_changes(scenario_from_dict(_loads(base_json), "<optimise base>"), changes, "<package>")
        res = simulate(sc, **run_settings)
        values = {name: [float(v) for v in res.per_replicate[name].to_numpy(dtype=float)] for name in outcomes}
        return {"status": "ok", "error": None, "values": values, "agent_days": res.agent_days}
    except Exception as e:  # recorded, not raised
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}


def run_points(
    base: str,
    batch: list[dict[str, Any]],
    run_settings: RunSettings,
    outcomes: list[str],
    task: Callable[..., dict[str, Any]] = run_point,
) -> list[dict[str, Any]]:
    """One task: a few experiments in a row (pure, so a batch rerun after a worker died gives the same results).
    Batching amortises the executor's per-task cost over simulations that take tens of ms."""
    return [task(base, changes, run_settings, outcomes) for changes in batch]


def warm_up(base: str, run_settings: RunSettings) -> bool:
    """Import the engine and load its compiled kernels with a one-day, one-replicate run, so the first experiment
    on a fresh worker is not slower than the rest (results are pure: this changes nothing)."""
    tiny: RunSettings = {**run_settings, "days": 1, "replicates": 1}
    return bool(run_point(base, {}, tiny, [])["status"] == "ok")


def prime() -> bool:
    """`warm_up` before the plan is known: a one-day, one-replicate run of the default scenario at a small size, which
    imports the engine and loads the compiled kernels that every scenario uses (`defection.explore.pool`)."""
    from defection.scenario import default_scenario

    return warm_up(default_scenario().canonical_json(), {"days": 1, "replicates": 1, "agents": 990, "seed": 0})


def _loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data
