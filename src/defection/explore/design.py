"""Experimental designs over a spec's factors, and the one task every exploration runs: simulate one design
point (a set of parameter changes) with the spec's replicates and return its outcome summary.

Designs are built in the unit cube and mapped to parameter values by each factor (log or linear range, or a
list of values). The task is a pure function of plain data (the base scenario as JSON, the changes, the
settings and a seed), so it can run in another process or on another machine; no simulation object ever
crosses a process boundary, only a small dict comes back. Every design point uses the same seed, so points
see the same random numbers (common random numbers) and differences between them are paired.
"""

from __future__ import annotations

import itertools
import json
import math
import traceback
from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy.stats import qmc

from defection.engine import RunSettings, simulate
from defection.explore.spec import Spec
from defection.scenario import Scenario, scenario_from_dict, with_changes


def salib_problem(spec: Spec) -> dict[str, Any]:
    """The SALib problem for the spec's factors, in the unit cube (factors map u ∈ [0, 1] to values)."""
    return {
        "num_vars": len(spec.factors),
        "names": [f.path for f in spec.factors],
        "bounds": [[0.0, 1.0]] * len(spec.factors),
    }


def unit_design(spec: Spec) -> np.ndarray:
    """Design points in the unit cube, one row per experiment, in a fixed order for a given spec and seed."""
    ex, d = spec.experiment, len(spec.factors)
    points: np.ndarray
    if ex.sampler == "lhs":
        points = qmc.LatinHypercube(d=d, seed=ex.seed).random(ex.samples)
        return points
    if ex.sampler == "sobol":
        from SALib.sample import sobol  # lazy: SALib is needed only by the sobol and morris samplers

        points = sobol.sample(salib_problem(spec), ex.samples, calc_second_order=False, seed=ex.seed)
        return points
    if ex.sampler == "morris":
        from SALib.sample import morris  # lazy: SALib is needed only by the sobol and morris samplers

        points = morris.sample(salib_problem(spec), ex.samples, num_levels=4, seed=ex.seed)
        return points
    # full factorial: every listed value of a categorical factor, `samples` evenly spaced levels of a numeric one
    axes = []
    for f in spec.factors:
        n = len(f.values) if f.values is not None else ex.samples
        axes.append(
            [(k + 0.5) / n for k in range(n)]
            if f.values is not None
            else ([0.5] if n == 1 else [k / (n - 1) for k in range(n)])
        )
    return np.array(list(itertools.product(*axes)), dtype=float)


def design(spec: Spec) -> pd.DataFrame:
    """The experiments: `experiment` (0, 1, …) and one column per factor path with the parameter value."""
    units = unit_design(spec)
    rows = [{f.path: f.value(float(u)) for f, u in zip(spec.factors, point, strict=True)} for point in units]
    df = pd.DataFrame(rows, columns=[f.path for f in spec.factors])
    df.insert(0, "experiment", np.arange(len(df), dtype=np.int64))
    return df


def settings(spec: Spec) -> RunSettings:
    ex = spec.experiment
    return {"replicates": ex.replicates, "days": ex.days, "agents": ex.agents, "seed": ex.seed}


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


def _loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


def base_json(sc: Scenario) -> str:
    return sc.canonical_json()
