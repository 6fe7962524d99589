"""`simulate`: run a scenario's replicates and collect tidy results."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from defection.analysis import interval_table, replicate_outcomes
from defection.dynamics import PHASES, SERIES, run_replicate
from defection.parameters import engine_params, offer_active, offer_schedule
from defection.population import simulated_agents
from defection.scenario import Scenario, default_scenario, with_overrides

LIBRARIES = ("numpy", "numba", "llvmlite", "pydantic", "duckdb", "pandas", "pyarrow", "typer", "rich")


def package_version() -> str:
    try:
        return metadata.version("defection-lab")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


@dataclass
class RunResult:
    """Everything one run produced. DataFrames are tidy: one row per (replicate, day) or replicate."""

    scenario: Scenario
    seed: int
    agents: int
    represented: int
    days: int
    replicates: int
    daily: pd.DataFrame
    per_replicate: pd.DataFrame
    phase_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    run_id: str | None = None

    @property
    def scenario_json(self) -> str:
        return self.scenario.canonical_json()

    @property
    def scenario_hash(self) -> str:
        return self.scenario.content_hash()

    def outcomes(self) -> pd.DataFrame:
        """Median, 90% interval (p05–p95) and mean of every outcome across replicates."""
        return interval_table(self.per_replicate)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object of `defection run`."""
        table = self.outcomes()
        return {
            "run_id": self.run_id,
            "scenario_hash": self.scenario_hash,
            "scenario_name": self.scenario.meta.name,
            "seed": self.seed,
            "agents": self.agents,
            "represented": self.represented,
            "days": self.days,
            "replicates": self.replicates,
            "outcomes": {
                r.outcome: {"median": r.median, "p05": r.p05, "p95": r.p95} for r in table.itertuples()
            },
        }


def simulate(scenario: Scenario | None = None, *, replicates: int | None = None, days: int | None = None,
             seed: int | None = None, agents: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run every replicate of a scenario. Keyword arguments override `scenario.simulation`.

    `progress(done_days, total_days)` is called after every simulated day.
    """
    sc = with_overrides(scenario or default_scenario(), replicates=replicates, days=days, seed=seed,
                        agents=agents)
    sim = sc.simulation
    p = engine_params(sc)
    offers = offer_schedule(sc, sim.days)
    on = offer_active(sc, sim.days)
    n_agents = simulated_agents(sim.agents, p.company_size)
    total = sim.days * sim.replicates
    frames: list[pd.DataFrame] = []
    rows: list[dict[str, float]] = []
    phases = dict.fromkeys(PHASES, 0.0)
    start = time.perf_counter()
    for rep in range(sim.replicates):
        done_before = rep * sim.days

        def tick(t: int, base: int = done_before) -> None:
            if progress is not None:
                progress(base + t + 1, total)

        out = run_replicate(p, sim.seed, rep, sim.days, n_agents, offers, on, on_day=tick)
        for k, v in out.phase_seconds.items():
            phases[k] += v
        df = pd.DataFrame(out.daily, columns=list(SERIES))
        df.insert(0, "day", np.arange(sim.days, dtype=np.int32))
        df.insert(0, "replicate", np.int32(rep))
        frames.append(df)
        row: dict[str, float] = {"replicate": rep}
        row.update(replicate_outcomes(out.daily, n_agents, sc.force.soldiers))
        rows.append(row)
    return RunResult(
        scenario=sc,
        seed=sim.seed,
        agents=n_agents,
        represented=sc.force.soldiers,
        days=sim.days,
        replicates=sim.replicates,
        daily=pd.concat(frames, ignore_index=True),
        per_replicate=pd.DataFrame(rows),
        phase_seconds=phases,
        wall_seconds=time.perf_counter() - start,
    )
