"""`simulate`: run a scenario's replicates and collect tidy results."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from defection.analysis import interval_table, json_number
from defection.model.dynamics import PHASES, EntryPoints, ReplicateOutput, run_replicate
from defection.model.outcomes import replicate_outcomes
from defection.model.outputs import SERIES
from defection.model.parameters import engine_params
from defection.model.population import min_resolved_agents, simulated_agents
from defection.model.regime import CounterMeasures, candidate_counter_measures
from defection.model.rng import posterior_particle
from defection.scenario import Scenario, default_scenario, with_overrides
from defection.scenario.posterior import Posterior
from defection.workers import auto_workers, prefer_passive_threads, process_entry_points, replicate_task

prefer_passive_threads()  # before any kernel starts Numba's thread pool (docs/performance.md)


class RunSettings(TypedDict, total=False):
    """Keyword overrides of `scenario.simulation` that `simulate` accepts (a sweep's or a lab's run settings)."""

    replicates: int
    days: int
    agents: int
    seed: int


LIBRARIES = ("numpy", "numba", "llvmlite", "pydantic", "duckdb", "pandas", "pyarrow", "typer", "rich")


def package_version() -> str:
    try:
        return metadata.version("defection-lab")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def code_version() -> str:
    """The package version, and the git commit of the source tree when it is a checkout ('-dirty' if changed)."""
    root = Path(__file__).resolve().parents[2]  # src/defection/engine.py → the checkout, if it is one
    if not (root / ".git").exists():
        return package_version()
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{package_version()} (git {commit})" if commit else package_version()


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
    agent_days: int = 0  # agents × days × replicates simulated, every candidate policy of best-response mode included
    run_id: str | None = None
    regime_choice: dict[str, Any] | None = None  # best-response mode: the policy the regime chose
    posterior_hash: str | None = None  # content hash of the posterior the replicates drew from, if any
    posterior_path: str | None = None  # where that posterior was read from (a file, a stored calibration)

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
            "min_resolved_agents": min_resolved_agents(self.scenario.force.company_size),
            "represented": self.represented,
            "days": self.days,
            "replicates": self.replicates,
            "agent_days": self.agent_days,
            "wall_seconds": self.wall_seconds,
            "posterior": {"hash": self.posterior_hash, "path": self.posterior_path} if self.posterior_hash else None,
            "outcomes": {
                r.outcome: {"median": json_number(r.median), "p05": json_number(r.p05), "p95": json_number(r.p95)}
                for r in table.itertuples()
            },
            **({"regime_best_response": self.regime_choice} if self.regime_choice else {}),
        }


def extended(res: RunResult, more: RunResult) -> RunResult:
    """`res` with the replicates of `more` appended: `more` is the same scenario simulated with
    `first_replicate=res.replicates`, so the whole equals one run of res.replicates + more.replicates replicates
    (not in best-response mode, whose kept policy depends on every replicate)."""
    if res.regime_choice is not None or more.regime_choice is not None:
        raise ValueError("a best-response run cannot be extended: its kept policy depends on all its replicates")
    same = (more.seed, more.agents, more.days) == (res.seed, res.agents, res.days)
    if not same or int(more.per_replicate["replicate"].min()) != res.replicates:
        raise ValueError("only a run of the same settings, numbered from the next replicate, extends a run")
    total = res.replicates + more.replicates
    return RunResult(
        scenario=with_overrides(res.scenario, "extended", replicates=total),
        seed=res.seed,
        agents=res.agents,
        represented=res.represented,
        days=res.days,
        replicates=total,
        daily=pd.concat([res.daily, more.daily], ignore_index=True),
        per_replicate=pd.concat([res.per_replicate, more.per_replicate], ignore_index=True),
        phase_seconds={k: v + more.phase_seconds.get(k, 0.0) for k, v in res.phase_seconds.items()},
        wall_seconds=res.wall_seconds + more.wall_seconds,
        agent_days=res.agent_days + more.agent_days,
        posterior_hash=res.posterior_hash,
        posterior_path=res.posterior_path,
    )


def workers_for(sc: Scenario) -> int:
    """How many worker processes should simulate this scenario's replicates (`defection.workers.auto_workers`)."""
    sim = sc.simulation
    return auto_workers(simulated_agents(sim.agents, sc.force.company_size), sim.days, sim.replicates)


def _replicates(
    sc: Scenario,
    n_agents: int,
    fixed: CounterMeasures | None,
    tick: Callable[[int], None],
    phases: dict[str, float],
    posterior: Posterior | None = None,
    accounting: bool = True,
    sink: Callable[[int, np.ndarray], None] | None = None,
    workers: Executor | None = None,
    first: int = 0,
    entry_points: EntryPoints | None = None,
) -> tuple[list[np.ndarray], list[dict[str, float]]]:
    """Every replicate's daily series and outcomes under one regime policy (adaptive/static rules, or fixed
    counter-measures). With a `sink`, each replicate's daily series goes to it as soon as the replicate is done and
    is not kept (the returned list is then empty), so memory does not grow with the replicates.

    With a posterior, replicate r runs with the calibrated parameters of particle
    `posterior_particle(posterior, seed, r)`. With `workers`, the replicates run side by side in its processes.
    In this process the replicates share the kernels' compiled `entry_points` (`dynamics.DirectCall`).
    """
    out: list[np.ndarray] = []
    outcomes: list[dict[str, float]] = []
    outputs = _replicate_outputs(sc, n_agents, fixed, tick, posterior, accounting, workers, first, entry_points)
    for rep, res in enumerate(outputs, start=first):
        for k, v in res.phase_seconds.items():
            phases[k] += v
        outcomes.append(replicate_outcomes(res.daily, sc))
        if sink is None:
            out.append(res.daily)
        else:
            sink(rep, res.daily)
    return out, outcomes


def _replicate_scenarios(sc: Scenario, posterior: Posterior | None, first: int) -> Iterator[Scenario]:
    """Each replicate's scenario: the scenario itself, or with replicate r's posterior particle applied."""
    for rep in range(first, first + sc.simulation.replicates):
        yield sc if posterior is None else posterior.apply(sc, posterior_particle(posterior, sc.simulation.seed, rep))


def _replicate_outputs(
    sc: Scenario,
    n_agents: int,
    fixed: CounterMeasures | None,
    tick: Callable[[int], None],
    posterior: Posterior | None,
    accounting: bool,
    workers: Executor | None,
    first: int,
    entry_points: EntryPoints | None = None,
) -> Iterator[ReplicateOutput]:
    """Every replicate's output, in replicate order: one after another in this process (`tick` after each day),
    or side by side in the `workers` (`tick` for each day of a replicate when it is done; the outputs are the
    same, since a replicate's random numbers depend on its number, not on where it runs)."""
    scenarios = _replicate_scenarios(sc, posterior, first)
    if workers is None or sc.simulation.replicates < 2:
        p = engine_params(sc)
        for rep, sc_rep in enumerate(scenarios, start=first):
            p = p if sc_rep is sc else engine_params(sc_rep)
            yield run_replicate(
                sc_rep,
                p,
                rep,
                n_agents,
                on_day=tick,
                fixed_counter_measures=fixed,
                accounting=accounting,
                entry_points=entry_points,
            )
        return
    futures = [
        workers.submit(replicate_task, sc_rep, rep, n_agents, fixed, accounting)
        for rep, sc_rep in enumerate(scenarios, start=first)
    ]
    replicate_of = {future: k for k, future in enumerate(futures)}
    finished: dict[int, ReplicateOutput] = {}
    next_rep = 0
    try:
        for future in as_completed(futures):
            for t in range(sc.simulation.days):
                tick(t)
            finished[replicate_of[future]] = future.result()  # a failed replicate stops the run now
            while next_rep in finished:  # in replicate order, each as soon as those before it are done
                yield finished.pop(next_rep)
                next_rep += 1
    finally:
        for future in futures:
            future.cancel()


def _daily_frame(rep: int, daily: np.ndarray) -> pd.DataFrame:
    """One replicate's daily series as tidy rows: replicate, day and one column per series."""
    df = pd.DataFrame(daily, columns=list(SERIES))
    df.insert(0, "day", np.arange(len(daily), dtype=np.int32))
    df.insert(0, "replicate", np.int32(rep))
    return df


def _empty_daily() -> pd.DataFrame:
    columns: dict[str, pd.Series] = {"replicate": pd.Series(dtype="int32"), "day": pd.Series(dtype="int32")}
    columns.update({name: pd.Series(dtype="float64") for name in SERIES})
    return pd.DataFrame(columns)


def simulate(
    scenario: Scenario | None = None,
    *,
    replicates: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    agents: int | None = None,
    posterior: Posterior | None = None,
    progress: Callable[[int, int], None] | None = None,
    accounting: bool = True,
    on_daily: Callable[[pd.DataFrame], None] | None = None,
    workers: Executor | None = None,
    first_replicate: int = 0,
) -> RunResult:
    """Run every replicate of a scenario. Keyword arguments override `scenario.simulation`.

    `on_daily(rows)` streams the daily series: it receives each replicate's rows (replicate, day, series) as soon
    as the replicate is done, and the result's `daily` is then empty, so memory does not grow with replicates x
    days (`ResultsDB.stage_daily` is such a sink). In best-response mode the kept policy is known only at the end:
    its replicates' rows go to `on_daily` then.

    `posterior` (or the file named by `scenario.simulation.posterior`) gives each replicate its own draw of the
    calibrated parameters, so intervals include parameter uncertainty.

    `accounting=False` skips the cost accounting (`dynamics.run_replicate`): the same soldiers and shares, cost
    outcomes NaN; for callers that read only shares (calibration). Best-response mode chooses by cost, so it
    keeps the accounting.

    `workers` (a pool from `defection.workers.replicate_workers`) runs the replicates side by side in its
    processes, with the same results; `progress` then advances a replicate at a time.

    `first_replicate` numbers the replicates from there: replicates k…k+n−1 of a longer run, the same numbers as
    in that run (random numbers and posterior particles are keyed by the replicate's number), so a run can be
    extended by more replicates without simulating the first ones again (`extended`).

    `progress(done_days, total_days)` is called after every simulated day. In best-response mode the regime's
    candidate policies are simulated on the same seeds and the one with the lowest mean loss is kept (eq. 32).
    """
    sc = with_overrides(scenario or default_scenario(), replicates=replicates, days=days, seed=seed, agents=agents)
    sim, rr = sc.simulation, sc.regime.response
    if posterior is None and sim.posterior:
        posterior = Posterior.load(sim.posterior)
    n_agents = simulated_agents(sim.agents, sc.force.company_size)
    best_response = rr.mode == "best_response" and sim.mode == "full"
    candidates: list[CounterMeasures | None] = [None]
    if best_response:
        candidates += candidate_counter_measures(sc, rr.best_response_trials, sim.seed)
    total = sim.days * sim.replicates * len(candidates)
    done = 0
    phases = dict.fromkeys(PHASES, 0.0)
    start = time.perf_counter()

    def tick(t: int) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    choice: dict[str, Any] | None = None
    stream = on_daily is not None and not best_response
    best: tuple[float, list[np.ndarray], list[dict[str, float]]] | None = None
    losses = []
    entry_points = process_entry_points()  # the kernels' compiled entry points, resolved once per process
    for k, cand in enumerate(candidates):
        dailies, outs = _replicates(
            sc,
            n_agents,
            cand,
            tick,
            phases,
            posterior,
            accounting or best_response,
            sink=(lambda rep, daily: on_daily(_daily_frame(rep, daily))) if stream and on_daily else None,
            workers=workers,
            first=first_replicate,
            entry_points=entry_points,
        )
        loss = float(np.mean([o["regime_loss_usd"] for o in outs]))
        losses.append(loss)
        if best is None or loss < best[0]:
            best = (loss, dailies, outs)
            if best_response:
                choice = {
                    "candidate": k,
                    "policy": "adaptive rules" if cand is None else "fixed counter-measures",
                    "counter_measures": None if cand is None else cand.as_dict(),
                    "mean_loss_usd": loss,
                }
    assert best is not None
    if choice is not None:
        choice["candidate_losses_usd"] = losses
    frames = [_daily_frame(rep, daily) for rep, daily in enumerate(best[1], start=first_replicate)]
    rows = [{"replicate": rep, **o} for rep, o in enumerate(best[2], start=first_replicate)]
    if on_daily is not None:
        for frame in frames:  # best-response mode: the kept policy's rows, now that it is known
            on_daily(frame)
        frames = []
    return RunResult(
        scenario=sc,
        seed=sim.seed,
        agents=n_agents,
        represented=sc.force.soldiers,
        days=sim.days,
        replicates=sim.replicates,
        daily=pd.concat(frames, ignore_index=True) if frames else _empty_daily(),
        per_replicate=pd.DataFrame(rows),
        phase_seconds=phases,
        wall_seconds=time.perf_counter() - start,
        agent_days=n_agents * total,
        regime_choice=choice,
        posterior_hash=posterior.content_hash() if posterior is not None else None,
        posterior_path=posterior.source if posterior is not None else None,
    )
