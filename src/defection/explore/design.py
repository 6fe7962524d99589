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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from defection.explore.points import PointSettings, run_point
from defection.explore.spec import Spec
from defection.model.rng import latin_hypercube
from defection.scenario import Scenario
from defection.scenario.posterior import Posterior

__all__ = [
    "ExplorationPosterior",
    "base_json",
    "design",
    "exploration_posterior",
    "run_point",
    "salib_problem",
    "settings",
    "unit_design",
]


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
        points = latin_hypercube(d, ex.samples, ex.seed)
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


@dataclass(frozen=True)
class ExplorationPosterior:
    """The posterior an exploration's simulations draw their calibrated parameters from (None: the base
    scenario's values), how it was chosen, and the calibrated parameters the spec's factors set instead."""

    posterior: Posterior | None  # whole, as read: its hash names the file
    source: str  # in words: "the shipped posterior …", "scenario values (--no-posterior)"
    set_by_design: tuple[str, ...] = ()

    @property
    def drawn(self) -> Posterior | None:
        """What each replicate draws from: the posterior less the parameters the design sets."""
        return None if self.posterior is None else self.posterior.without(self.set_by_design)

    @property
    def hash(self) -> str | None:
        return None if self.posterior is None else self.posterior.content_hash()

    @property
    def path(self) -> str | None:
        return None if self.posterior is None else self.posterior.source

    def key(self) -> str:
        """What a hash of the planned simulations adds for the posterior: '' for none, else its hash and the
        parameters the design sets (a sweep's plan hash, optimize's study name)."""
        return "" if self.posterior is None else f":{self.hash}:{','.join(self.set_by_design)}"

    def fields(self) -> dict[str, Any]:
        """The two fields an exploration's result gives it: `posterior` (`record`) and `parameters` (`source`)."""
        return {"posterior": self.record(), "parameters": self.source}

    def record(self) -> dict[str, Any] | None:
        """The posterior as runs record it (`--json`, the stored options): hash, file, what the design sets."""
        if self.posterior is None:
            return None
        return {"hash": self.hash, "path": self.path, "set_by_the_design": list(self.set_by_design)}

    def describe(self) -> str:
        """One line for a command's output: which posterior produced the numbers."""
        if self.posterior is None:
            return f"calibrated parameters: none; {self.source}"
        text = f"calibrated parameters: posterior {self.path} ({self.hash}); each replicate draws a particle"
        return text + (f"; set by the design instead: {', '.join(self.set_by_design)}" if self.set_by_design else "")


def exploration_posterior(spec: Spec, posterior: Posterior | None, source: str) -> ExplorationPosterior:
    """The chosen posterior with the calibrated parameters that the spec's uncertainties and levers set."""
    factors = {f.path for f in spec.factors}
    fixed = () if posterior is None else tuple(p for p in posterior.parameters if p in factors)
    return ExplorationPosterior(posterior, source, fixed)


def settings(spec: Spec, posterior: ExplorationPosterior | None = None) -> PointSettings:
    """The run settings of every design point; with a posterior, each replicate draws its particle (replicate r
    the same particle at every point: common random numbers extend to the calibrated parameters)."""
    ex = spec.experiment
    run: PointSettings = {"replicates": ex.replicates, "days": ex.days, "agents": ex.agents, "seed": ex.seed}
    drawn = None if posterior is None else posterior.drawn
    if drawn is not None:
        run["posterior"] = drawn
    return run


def base_json(sc: Scenario) -> str:
    """The base scenario as the tasks take it; a posterior file it names is left out (`settings` carries the
    exploration's posterior itself, so a worker on another machine needs no file)."""
    if sc.simulation.posterior:
        sc = sc.model_copy(deep=True)
        sc.simulation.posterior = ""
    return sc.canonical_json()
