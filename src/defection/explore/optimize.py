"""Robust optimisation of a spec's levers with Optuna (ask-and-tell), evaluated on Dask.

Two problems:

* **target** — the cheapest package (minimum mean `programme_cost_usd`) that reaches a target, e.g. at least 10%
  of the force defected within the horizon, with probability ≥ 0.8. Every package is simulated in the same fixed
  set of K uncertain worlds (a Latin hypercube over the spec's uncertainties, seeded by the spec), each with the
  spec's replicates and the same seed (common random numbers); the probability is the share of the K × R
  world-replicates that reach the target. Feasibility is an Optuna constraint, required probability − achieved
  (feasible when ≤ 0), kept as the trial's `constraint` user attribute and given to Optuna with
  `Trial.set_constraint` (Optuna ≥ 5; older versions read it through the sampler's `constraints_func`). An
  infeasible package's constraint also counts how far its mean fell short of the target (`violation`), so that
  with a target no package reaches the search still moves towards the package that comes closest.
* **pareto** — the Pareto front of mean cost (min), mean defections (max) and mean time to effect
  (`days_to_target`, min; a world-replicate that never reaches the scenario's `programme.target_share` counts
  as the horizon + 1 day), with NSGA-II (or multi-objective TPE).

Asked trials are evaluated together as one batch (packages × worlds, on local worker processes or Dask). With a
journal file (`JournalFileBackend`) the study, named from the spec and the problem, survives the process: running
again with the same storage reuses every finished trial, and trials a killed process left running are evaluated
again with the parameters they were given.

`evaluate` (map the one-point task over points, serially, on a pool of worker processes or on a
`distributed.Client`) and `dask_client` are shared by the other exploration commands.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures import as_completed as futures_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from defection.analysis import json_safe, quantiles
from defection.engine import RunSettings
from defection.explore.points import run_point, run_replicates
from defection.explore.spec import Factor, Spec
from defection.model.outputs import OPEN_ENDED
from defection.model.rng import latin_hypercube
from defection.store import pid_alive

# optuna and distributed are imported inside the functions that use them (lazy): `search sensitivity` and
# `search discover` evaluate serially with `evaluate` and need neither.
if TYPE_CHECKING:
    import optuna
    from distributed import Client

Mode = Literal["target", "pareto"]
SAMPLERS = ("nsga2", "tpe")
COST = "programme_cost_usd"
DAYS = "days_to_target"
Task = Callable[..., dict[str, Any]]
Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- evaluation (shared)
@contextmanager
def dask_client(workers: int = 0, scheduler: str | None = None) -> Iterator[Client | None]:
    """A Dask client: the scheduler at `scheduler` if given, else a local cluster of `workers` processes with one
    thread each; None (evaluate serially in this process) when workers is 0 or 1."""
    if scheduler:
        from distributed import Client

        with Client(scheduler, timeout=10) as client:
            yield client
    elif workers > 1:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        yield None


def evaluate(
    points: Sequence[dict[str, Any]],
    base_json: str,
    settings: RunSettings,
    outcomes: list[str],
    client: Client | Executor | None = None,
    task: Task = run_point,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """`task(base_json, changes, settings, outcomes)` for every point, in the points' order: serially here (the
    simulation may use every core), on a pool of worker processes (`defection.workers.replicate_workers`, one
    thread each) or on the Dask client (one thread per task). The rows are the same whichever runs them."""
    n = len(points)
    if client is None:
        rows = []
        for k, changes in enumerate(points):
            rows.append(task(base_json, changes, settings, outcomes, single_thread=False))
            if progress is not None:
                progress(k + 1, n)
        return rows
    if isinstance(client, Executor):
        futures = [client.submit(task, base_json, changes, settings, outcomes) for changes in points]
        for done, _ in enumerate(futures_completed(futures), start=1):
            if progress is not None:
                progress(done, n)
        return [future.result() for future in futures]
    from distributed import as_completed

    base = client.scatter(base_json, broadcast=True)
    futures_dask = client.map(task, [base] * n, list(points), [settings] * n, [outcomes] * n, pure=False)
    for done, _ in enumerate(as_completed(futures_dask), start=1):
        if progress is not None:
            progress(done, n)
    gathered: list[dict[str, Any]] = client.gather(futures_dask)
    return gathered


def evaluator_description(client: Client | Executor | None, workers: int = 0) -> str:
    """Where `evaluate` runs its points, in words (the `executor` of a command's --json)."""
    if client is None:
        return "serial (this process)"
    if isinstance(client, Executor):
        return f"worker pool ({workers} single-threaded processes)"
    return f"Dask ({sum(client.nthreads().values())} worker threads)"


# ----------------------------------------------------------------------------- the problem
@dataclass(frozen=True)
class Target:
    """Reach `outcome` ≥ `value` (≤ when `above` is False) with probability ≥ `probability`."""

    outcome: str = "defected_share"
    value: float = 0.10
    probability: float = 0.8
    above: bool = True

    def reached(self, v: np.ndarray) -> np.ndarray:
        return v >= self.value if self.above else v <= self.value


@dataclass(frozen=True)
class Problem:
    mode: Mode
    target: Target
    days: int

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        return (
            ["minimize"]
            if self.mode == "target"
            else ["minimize", "maximize" if self.target.above else "minimize", "minimize"]
        )

    @property
    def objectives(self) -> list[str]:
        return [COST] if self.mode == "target" else [COST, self.target.outcome, DAYS]


@dataclass
class Scored:
    """One package's evaluation: objective values (None: the evaluation failed), constraint values (≤ 0 is
    feasible) and attributes to keep with the trial."""

    values: list[float] | None
    constraint: list[float] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


Scorer = Callable[[list[dict[str, Any]]], list[Scored]]


def decision_levers(spec: Spec) -> tuple[list[Factor], dict[str, Any]]:
    """The levers that are decision variables, and the fixed ones (a single listed value) as changes."""
    free = [f for f in spec.levers if not (f.values is not None and len(f.values) == 1)]
    fixed = {f.path: f.values[0] for f in spec.levers if f.values is not None and len(f.values) == 1}
    return free, fixed


def worlds(spec: Spec, k: int) -> list[dict[str, Any]]:
    """K uncertain worlds: a Latin hypercube over the spec's uncertainties, seeded by the spec ([{}] if none)."""
    if not spec.uncertainties:
        return [{}]
    units = latin_hypercube(len(spec.uncertainties), k, spec.experiment.seed)
    return [{f.path: f.value(float(u)) for f, u in zip(spec.uncertainties, row, strict=True)} for row in units]


def score_package(results: list[dict[str, Any]], problem: Problem) -> Scored:
    """Pool a package's world results (each with per-replicate values) into objectives and a constraint."""
    failed = [r for r in results if r.get("status") != "ok"]
    if failed:
        return Scored(None, error=f"{len(failed)} of {len(results)} worlds failed; first: {failed[0].get('error')}")
    pooled = {
        name: np.concatenate([np.asarray(r["values"][name], dtype=float) for r in results])
        for name in results[0]["values"]
    }
    t = problem.target
    reached = float(np.mean(t.reached(pooled[t.outcome])))
    days = np.where(np.isfinite(pooled[DAYS]), pooled[DAYS], problem.days + 1.0)
    metrics = {
        COST: float(np.mean(pooled[COST])),
        t.outcome: float(np.mean(pooled[t.outcome])),
        DAYS: float(np.mean(days)),
    }
    if problem.mode == "target":
        metrics["probability"] = reached
    values = [metrics[name] for name in problem.objectives]
    constraint = [violation(t, reached, metrics[t.outcome])] if problem.mode == "target" else []
    summary = {name: _summary(name, v) for name, v in pooled.items()}
    return Scored(values, constraint, {"metrics": metrics, "summary": summary})


def violation(target: Target, reached: float, achieved: float) -> float:
    """The constraint Optuna sees (feasible when ≤ 0): the required probability less the share of world-replicates
    that reached the target, and, for an infeasible package, also how far its mean fell short of the target value
    (a share of the value, in [0, 1]). With a target no package reaches, every probability is 0; the shortfall then
    still ranks the packages, so the sampler moves towards the most achieved rather than only the cheapest."""
    missing = target.probability - reached
    if missing <= 0:
        return missing
    scale = abs(target.value) or 1.0
    short = (target.value - achieved if target.above else achieved - target.value) / scale
    return missing + (min(1.0, max(0.0, short)) if math.isfinite(short) else 1.0)


def _summary(name: str, v: np.ndarray) -> dict[str, float | None]:
    med, lo, hi, mean = quantiles(v, name in OPEN_ENDED)
    stats = {"median": med, "p05": lo, "p95": hi, "mean": mean}
    return {k: (x if math.isfinite(x) else None) for k, x in stats.items()}


@dataclass
class Tally:
    """What an optimisation simulated so far."""

    agent_days: int = 0


def simulation_scorer(
    problem: Problem,
    spec_worlds: list[dict[str, Any]],
    fixed: dict[str, Any],
    base_json: str,
    settings: RunSettings,
    outcomes: list[str],
    client: Client | Executor | None = None,
    progress: Progress | None = None,
    tally: Tally | None = None,
) -> Scorer:
    """Score a batch of packages by simulating each in every world (one Dask batch for all of them); the
    agent-days simulated are added to `tally`."""
    k = len(spec_worlds)

    def score(packages: list[dict[str, Any]]) -> list[Scored]:
        points = [{**world, **fixed, **pkg} for pkg in packages for world in spec_worlds]
        rows = evaluate(points, base_json, settings, outcomes, client, task=run_replicates, progress=progress)
        if tally is not None:
            tally.agent_days += sum(int(r.get("agent_days") or 0) for r in rows)
        return [score_package(rows[i * k : (i + 1) * k], problem) for i in range(len(packages))]

    return score


# ----------------------------------------------------------------------------- the study
def study_name(spec: Spec, problem: Problem, k: int, base_hash: str) -> str:
    """A name that is the same whenever the same problem is posed (so a journal resumes it) and differs when the
    spec, the base scenario, the target or the worlds change."""
    key = json.dumps(
        {
            "spec": spec.content_hash(),
            "base": base_hash,
            "mode": problem.mode,
            "worlds": k,
            "target": problem.target.__dict__,
        },
        sort_keys=True,
    )
    return f"{spec.experiment.name}.{problem.mode}.{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _constraints(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
    return trial.user_attrs.get("constraint") or [1.0]


def _legacy_constraints() -> bool:
    """Optuna < 5 reads constraints through the sampler's `constraints_func`; Optuna ≥ 5 from the trial."""
    import optuna

    return not hasattr(optuna.trial.Trial, "set_constraint")


def make_sampler(name: str, seed: int, constrained: bool, population: int = 50) -> optuna.samplers.BaseSampler:
    import optuna

    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    cf = _constraints if constrained and _legacy_constraints() else None
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=cf, n_startup_trials=8, multivariate=True)
    return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=cf, population_size=population)


def open_study(
    name: str, problem: Problem, sampler: str, seed: int, storage: str | None = None, population: int = 50
) -> optuna.Study:
    """Create or load the study. The sampler's seed moves on with the number of trials already stored, so a
    resumed study does not ask again for the packages its first run asked for."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = JournalStorage(JournalFileBackend(storage)) if storage else optuna.storages.InMemoryStorage()
    existing = 0
    if storage:
        try:
            existing = len(optuna.load_study(study_name=name, storage=store).trials)
        except KeyError:
            existing = 0
    smp = make_sampler(sampler, seed + existing, problem.mode == "target", population)
    return optuna.create_study(
        study_name=name, storage=store, directions=problem.directions, sampler=smp, load_if_exists=True
    )


def suggest(trial: optuna.trial.BaseTrial, levers: list[Factor]) -> dict[str, Any]:
    """The package a trial proposes: one value per lever (categorical levers by their listed values)."""
    pkg: dict[str, Any] = {}
    for f in levers:
        if f.values is not None:
            plain = all(v is None or isinstance(v, bool | int | float | str) for v in f.values)
            choices = list(f.values) if plain else [json.dumps(v, sort_keys=True) for v in f.values]
            v = trial.suggest_categorical(f.path, choices)
            pkg[f.path] = v if plain else json.loads(v)
        elif f.integer:
            pkg[f.path] = trial.suggest_int(f.path, math.ceil(f.range.lo), math.floor(f.range.hi), log=f.log)
        else:
            pkg[f.path] = trial.suggest_float(f.path, f.range.lo, f.range.hi, log=f.log)
    return pkg


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stale(trial: optuna.trial.FrozenTrial) -> bool:
    """A running trial whose process (on this host) has gone: it was asked but never told."""
    owner = trial.user_attrs.get("owner")
    if owner is None:
        return True
    host, _, pid = str(owner).rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid))


def _reclaim(study: optuna.Study, levers: list[Factor]) -> list[tuple[optuna.Trial, dict[str, Any]]]:
    """Trials a killed run left running, with their packages, to evaluate again; incomplete ones are failed."""
    import optuna
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _stale(t):
            continue
        if all(f.path in t.params for f in levers):
            trial = optuna.Trial(study, t._trial_id)
            trial.set_user_attr("owner", _owner())
            out.append((trial, {f.path: t.params[f.path] for f in levers}))
        else:
            study.tell(t.number, state=TrialState.FAIL)
    return out


def optimise(
    study: optuna.Study,
    levers: list[Factor],
    score: Scorer,
    trials: int,
    batch: int = 4,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Run the study until it holds `trials` complete trials: ask a batch, score its packages together, tell the
    results. Returns how many trials were reused (already complete) and how many evaluated now."""
    from optuna.trial import TrialState

    def complete() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    reused = complete()
    evaluated = 0
    pending = _reclaim(study, levers)
    while complete() < trials:
        want = max(1, min(batch, trials - complete()))
        todo, pending = pending[:want], pending[want:]
        while len(todo) < want:
            trial = study.ask()
            trial.set_user_attr("owner", _owner())
            todo.append((trial, suggest(trial, levers)))
        scores = score([pkg for _, pkg in todo])
        for (trial, _), s in zip(todo, scores, strict=True):
            if s.values is None:
                trial.set_user_attr("error", s.error)
                study.tell(trial, state=TrialState.FAIL)
                continue
            for key, value in {**s.attrs, "constraint": s.constraint}.items():
                trial.set_user_attr(key, json_safe(value))
            if not _legacy_constraints():
                for i, c in enumerate(s.constraint):
                    trial.set_constraint(f"c{i}", c)
            study.tell(trial, s.values)
        evaluated += len(todo)
        if all(s.values is None for s in scores):
            raise RuntimeError(f"every package of a batch failed; first: {scores[0].error}")
        if on_batch is not None:
            on_batch(complete(), trials)
    return {"reused": reused, "evaluated": evaluated, "complete": complete()}


# ----------------------------------------------------------------------------- results
def trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "trial": t.number,
        "package": dict(t.params),
        "metrics": t.user_attrs.get("metrics", {}),
        "feasible": all(c <= 0 for c in (t.user_attrs.get("constraint") or [])),
        "summary": t.user_attrs.get("summary", {}),
    }


def closeness(row: dict[str, Any], target: Target) -> tuple[float, float, float]:
    """How close a trial came to the target, larger is closer: first the share of world-replicates that reached
    it, then the outcome's mean (higher for a target to reach from below, lower for one from above), then a lower
    cost. With a target no trial reaches every probability is 0, and the package that achieved the most wins (not
    the cheapest failure)."""
    metrics = row["metrics"]
    achieved = metrics.get(target.outcome)
    level = -math.inf if achieved is None or not math.isfinite(achieved) else float(achieved)
    return (float(metrics.get("probability", 0.0)), level if target.above else -level, -float(metrics[COST]))


def interval(row: dict[str, Any], outcome: str) -> dict[str, float | None] | None:
    """The outcome's median and 90% interval over a trial's world-replicates (None if the trial has no summary)."""
    stats = (row.get("summary") or {}).get(outcome)
    return None if stats is None else {k: stats.get(k) for k in ("median", "p05", "p95", "mean")}


def slim(row: dict[str, Any] | None, outcome: str) -> dict[str, Any] | None:
    """A trial as a command prints it: its summary of every outcome dropped, the target outcome's `interval`
    kept."""
    if row is None:
        return None
    return {**{k: v for k, v in row.items() if k != "summary"}, "interval": interval(row, outcome)}


def results(study: optuna.Study, problem: Problem) -> dict[str, Any]:
    """Best package (target: cheapest feasible; pareto: none), the closest package when none is feasible (the
    highest probability of reaching the target, then the most achieved: `closeness`), the Pareto front, and every
    complete trial."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    rows = [trial_row(t) for t in done]
    best = None
    if problem.mode == "target":
        feasible = [r for r in rows if r["feasible"]]
        if feasible:
            best = min(feasible, key=lambda r: (r["metrics"][COST], r["trial"]))
        closest = max(rows, key=lambda r: closeness(r, problem.target), default=None)
        front: list[dict[str, Any]] = []
    else:
        closest = None
        front = [trial_row(t) for t in study.best_trials] if done else []
        front.sort(key=lambda r: r["metrics"][COST])
    return {
        "best": best,
        "closest": closest if best is None else None,
        "pareto": front,
        "trials": rows,
        "failed": len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))),
    }
