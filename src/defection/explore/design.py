"""Experimental designs over a spec's factors; the one task every exploration runs, simulate one design point (a
set of parameter changes) with the spec's replicates and return its outcome summary, is `run_point`
(`defection.explore.points`, a light module that worker processes import).

Designs are built in the unit cube and mapped to parameter values by each factor (log or linear range, or a
list of values). The task is a pure function of plain data (the base scenario as JSON, the changes, the
settings and a seed), so it can run in another process or on another machine; no simulation object ever
crosses a process boundary, only a small dict comes back. Every design point uses the same seed, so points
see the same random numbers (common random numbers) and differences between them are paired.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import qmc

from defection.engine import RunSettings
from defection.explore.points import run_point
from defection.explore.spec import Spec
from defection.scenario import Scenario

__all__ = ["base_json", "design", "run_point", "salib_problem", "settings", "unit_design"]


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


def base_json(sc: Scenario) -> str:
    return sc.canonical_json()
