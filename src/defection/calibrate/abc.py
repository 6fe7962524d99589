"""`defection calibrate` and `defection backtest`: estimate the parameters the literature does not pin down
from the historical case library, with approximate Bayesian computation (ABC-SMC, pyABC [M7c]), and test
out of sample how well the calibrated model predicts a case it has not seen.

The calibrated parameters (``CALIBRATED``) are shared across cases; each case maps its own context (force,
offer, channels, penalties, crossing risk, credibility, length) onto the rest of the scenario. Each observation's
summary statistic is the log of the simulated share as the source would have recorded it (times the observation's
``capture``); history is compared with it through a normal likelihood on log shares whose variance is the
observation's tolerance² plus the squared model discrepancy δ² of the case's family (``DISCREPANCY``, calibrated
with the behavioural parameters), sampled exactly with pyABC's stochastic acceptor and a temperature schedule
(eq. 40, docs/calibration.md "Discrepancy and observation model").
The result is a weighted posterior sample, stored in the results database and as a JSON
file that scenarios reference (``simulation.posterior``) and that ``defection run --posterior`` and
``defection claims`` propagate into their intervals: replicate r draws posterior particle k(r) with a
counter-based uniform, so variants that share a seed share draws (common random numbers).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from defection.calibrate.cases import Case, library_hash, log_error, log_floor, observation_key
from defection.calibrate.likelihood import observed_data
from defection.engine import code_version, simulate
from defection.model.population import simulated_agents
from defection.model.rng import posterior_particle
from defection.scenario import with_changes
from defection.scenario.posterior import (
    Posterior,
    effective_sample_size,
)
from defection.scenario.ranges import CALIBRATED, DISCREPANCY, Range, discrepancy_path
from defection.workers import replicate_workers, worker_pool

KERNEL_SCALING = 2.0
"""The ABC-SMC proposal kernel's width relative to Silverman's rule (`calibrate`'s `kernel_scaling`;
docs/calibration.md, "Method" and "What makes the weights degenerate")."""
CHECK_TIME_SHARE = 0.8  # the predictive check plans to use at most this share of the time left after sampling
EARLY_REJECTION = ("every", "last", "off")
SCHEDULES = ("default", "ess")
"""How the temperature falls between generations (`temperature_schedule`)."""
ESS_TARGET = 0.5
"""The 'ess' schedule's target: the next temperature keeps this share of the particles' effective sample size."""


def next_inverse_temperature(log_density: np.ndarray, weights: np.ndarray, beta: float, keep: float) -> float:
    """The 'ess' schedule's step: the largest inverse temperature β' in [β, 1] at which reweighting particles that
    target prior × likelihood^β (weights `weights`, log densities `log_density`) to likelihood^β' keeps the share
    `keep` of their effective sample size: ESS(w · L^(β'−β)) ≥ keep · ESS(w). Bisection; 1 when even β' = 1 keeps
    it."""
    w = np.asarray(weights, float) / np.sum(weights)
    ld = np.asarray(log_density, float)
    ld = ld - np.max(ld)

    def ess(b: float) -> float:
        v = w * np.exp(ld * (b - beta))
        return float(v.sum() ** 2 / np.sum(v**2))

    target = keep * ess(beta)
    if ess(1.0) >= target:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ess(mid) >= target else (lo, mid)
    return lo


def temperature_schedule(name: str) -> Any:
    """pyABC's temperature schedule for the stochastic acceptor. 'default': pyABC's own (each step the lower of
    the temperature that keeps a 30% acceptance rate and an exponential decay that reaches 1 at the last allowed
    generation). 'ess': each next temperature keeps ESS_TARGET of the current particles' effective sample size
    when they are reweighted to it (`next_inverse_temperature`): smaller steps where the density is steep, more
    generations to reach 1. (pyABC's own `EssScheme` reweights by L^β' instead of L^(β'−β) and measures the share
    against the particle count, not the current effective sample size, so it stalls while the sample is thin and
    then jumps: in a trial on the library it kept temperature 18.3 for four generations, then went to 1.) The last
    allowed generation is at temperature 1 in both."""
    import pyabc  # lazy: pyABC loads only for a calibration
    from pyabc.distance import SCALE_LIN
    from pyabc.epsilon.temperature import TemperatureScheme

    if name not in SCHEDULES:
        raise ValueError(f"temperature schedule is one of {', '.join(SCHEDULES)}, not {name!r}")
    if name == "ess":

        class KeepEss(TemperatureScheme):  # type: ignore[misc]
            """The 'ess' step as a pyABC temperature scheme."""

            def __call__(
                self,
                t: int,
                get_weighted_distances: Any,
                get_all_records: Any,
                max_nr_populations: int,
                pdf_norm: float,
                kernel_scale: str,
                prev_temperature: float | None,
                acceptance_rate: float,
            ) -> float:
                df = get_weighted_distances()
                pdfs = np.asarray(df["distance"], float)
                log_density = np.log(np.maximum(pdfs, 1e-300)) if kernel_scale == SCALE_LIN else pdfs
                beta = 0.0 if prev_temperature is None else 1.0 / prev_temperature
                return 1.0 / next_inverse_temperature(log_density, np.asarray(df["w"], float), beta, ESS_TARGET)

            def requires_distances(self) -> bool:
                return True

        return pyabc.Temperature(schemes=[KeepEss()])
    return pyabc.Temperature()


"""Where early rejection applies (`calibrate.early`): every generation, the last one only (a calibration identical
to one without it), or nowhere."""
DISCREPANCY_STREAM = 0x5D15C  # seeds the predictive's error draws (eq. 40) (with the seed, case and draw)


# ----------------------------------------------------------------------------- time limits and progress
class Deadline:
    """A wall-clock time limit shared by the steps of one command (`Deadline(seconds)` starts now). It holds an
    absolute time (`time.time()`), so worker processes can check a pickled copy."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.end = time.time() + self.seconds

    def left(self) -> float:
        """Seconds left (0 once expired)."""
        return max(0.0, self.end - time.time())

    def expired(self) -> bool:
        return time.time() >= self.end

    def share(self, parts: int) -> Deadline:
        """A deadline for the next of `parts` remaining steps: an equal share of the time left (a backtest gives
        each fold `deadline.share(folds_left)`)."""
        return Deadline(self.left() / max(1, parts))


class TimeLimitError(RuntimeError):
    """The time limit ran out before anything usable was produced (no ABC-SMC generation finished)."""


class _OutOfTime(Exception):
    """Raised inside the sampler when the deadline passes; turns into an unfinished, stopping generation."""


@runtime_checkable
class ProgressSink(Protocol):
    """Where a calibration reports what it is doing (`defection.cli.console.Reporter` is one)."""

    def stage(self, name: str, total: int | None = None, completed: int = 0) -> None: ...

    def update(
        self, *, completed: int | None = None, total: int | None = None, advance: int = 0, detail: str | None = None
    ) -> None: ...

    def note(self, message: str) -> None: ...


class _MessageSink:
    """A plain `progress(message)` callback seen as a ProgressSink: stages and notes become messages."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress

    def stage(self, name: str, total: int | None = None, completed: int = 0) -> None:
        if self.progress is not None:
            self.progress(name)

    def update(
        self, *, completed: int | None = None, total: int | None = None, advance: int = 0, detail: str | None = None
    ) -> None:
        pass

    def note(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


def progress_sink(progress: Callable[[str], None] | ProgressSink | None) -> ProgressSink:
    """A ProgressSink for `progress`: itself if it is one, else a wrapper around a message callback (or nothing)."""
    if isinstance(progress, ProgressSink):
        return progress
    return _MessageSink(progress)


class _Watch:
    """The sampler's view of the run: the deadline, live counts for the progress display, whether time ran out."""

    def __init__(self, deadline: Deadline | None, sink: ProgressSink, generations: int) -> None:
        self.deadline = deadline
        self.sink = sink
        self.generations = generations
        self.ran_out = False
        self.n = 0
        self.accepted = 0
        self.simulations = 0
        self.lock = threading.Lock()

    def begin(self, t: int, n: int) -> None:
        """A generation starts (t = -1: pyABC's prior sample that sets the first tolerance)."""
        with self.lock:
            self.n, self.accepted, self.simulations = n, 0, 0
        name = "ABC-SMC: sampling the prior" if t < 0 else f"ABC-SMC generation {t + 1}/{self.generations}"
        self.sink.stage(name, total=n)

    def counted(self, accepted: bool) -> None:
        """One simulation finished."""
        with self.lock:
            self.simulations += 1
            self.accepted += accepted
            done, sims = min(self.accepted, self.n), self.simulations
        self.sink.update(completed=done, detail=f"particles accepted, {sims} simulations run")

    def check(self) -> None:
        if self.deadline is not None and self.deadline.expired():
            raise _OutOfTime()

    def out_of_time(self, sampler: Any, t: int) -> Any:
        """The generation in progress stops unfinished: pyABC then ends the run with the generations it has."""
        self.ran_out = True
        if t <= 0:  # the prior sample or the first generation: nothing usable exists yet
            raise TimeLimitError(self.nothing_finished())
        self.sink.note(
            f"time limit reached during ABC-SMC generation {t + 1}/{self.generations} "
            f"({self.accepted} of {self.n} particles accepted): keeping the {t} generation(s) finished"
        )
        sample = sampler._create_empty_sample()
        sample.ok = False
        sampler.nr_evaluations_ = self.simulations
        return sample

    def nothing_finished(self) -> str:
        seconds = self.deadline.seconds if self.deadline is not None else math.inf
        return (
            f"the time limit ({seconds:.0f} s) ran out before the first ABC-SMC generation finished; "
            "no posterior was written. Allow more time (--max-minutes) or use fewer particles or cases."
        )


def _timed(sampler_class: type) -> type:
    """`sampler_class` made to stop at the watch's deadline and to report each generation."""

    class Timed(sampler_class):  # type: ignore[misc]
        watch: _Watch

        def sample_until_n_accepted(self, n: int, simulate_one: Any, t: int, **kwargs: Any) -> Any:
            self.watch.begin(t, n)
            try:
                return super().sample_until_n_accepted(n, simulate_one, t, **kwargs)
            except _OutOfTime:
                return self.watch.out_of_time(self, t)

    return Timed


class _CountingPool:
    """The sampler's view of a process pool: its finished jobs (batches of pyABC particles) are counted for the
    progress display, and pyABC's batch function is replaced by `_run_batch`, which unpickles a generation's
    simulation function once per worker instead of once per job. `shutdown` cancels this run's jobs that have not
    started, and shuts the pool down only if the run owns it (a backtest shares one pool across its folds)."""

    def __init__(self, pool: ProcessPoolExecutor, watch: _Watch, owned: bool = True) -> None:
        self.pool = pool
        self.watch = watch
        self.owned = owned
        self.futures: set[Future[Any]] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        from pyabc.sampler.eps_mixin import _global_full_submit_function_pickle  # lazy: as in calibrate

        if fn is _global_full_submit_function_pickle:
            fn = _run_batch
        future = self.pool.submit(fn, *args, **kwargs)
        self.futures.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        self.futures.discard(future)
        if future.cancelled() or future.exception() is not None:
            return
        for item in future.result():
            self.watch.counted(bool(item[1]))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self.owned:
            self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)
            return
        for future in list(self.futures):  # a shared pool: this run's jobs that have not started are dropped
            future.cancel()
        if wait:
            futures_wait(list(self.futures))


_GENERATION: dict[bytes, Any] = {}  # in a worker: the current generation's simulation function, by digest


def _run_batch(simulate_one_pickle: bytes, batch_size: int, job_ids: list[int]) -> list[tuple[Any, bool, int]]:
    """pyABC's `_global_full_submit_function_pickle` (evaluate `batch_size` particles with a freshly seeded global
    generator), except that the pickled simulation function, the same for every job of a generation (about 60 kB
    of cases, priors and proposal), is unpickled once per worker and generation rather than once per job: that cost
    10–80 ms a job, against about 0.7 s for the simulation of one particle. pyABC itself reuses one unpickled
    function for all particles of a batch, so reusing it across a worker's jobs changes nothing else."""
    import cloudpickle  # lazy: as in calibrate (a dependency of pyABC)

    key = hashlib.blake2b(simulate_one_pickle, digest_size=16).digest()
    simulate_one = _GENERATION.get(key)
    if simulate_one is None:
        _GENERATION.clear()
        simulate_one = _GENERATION[key] = cloudpickle.loads(simulate_one_pickle)
    random.seed()
    np.random.seed()
    out = []
    for j in range(batch_size):
        result = simulate_one()
        out.append((result, result.accepted, job_ids[j]))
    return out


# ----------------------------------------------------------------------------- cases → summary statistics
def case_run(
    case: Case,
    changes: dict[str, float],
    seed: int,
    replicates: int = 1,
    agents: int | None = None,
    posterior: Posterior | None = None,
    variant: int = 0,
) -> pd.DataFrame:
    """Per-replicate outcomes of one case with calibrated parameters set to `changes`: the shares, which are what
    a case observes (no cost accounting: cost outcomes are NaN). `variant` is the period (`Case.scenarios()`)."""
    base = case.scenarios()[variant]
    sc = with_changes(base, changes, case.path) if changes else base
    agents = agents or case.meta.calibration_agents
    res = simulate(sc, replicates=replicates, seed=seed, agents=agents, posterior=posterior, accounting=False)
    out = res.per_replicate.copy()
    out.attrs["agents"] = res.agents
    return out


def log_recorded_shares(case: Case, row: pd.Series, agents: int, variant: int = 0) -> dict[str, float]:
    """Eq. 40's summary statistics of the observations of period `variant`: log of each simulated share as recorded
    (times `capture`), raised to the log floor of `agents` where it is smaller (a zero)."""
    floor = log_floor(agents)
    return {
        observation_key(case, k): math.log(max(o.recorded_share(float(row[o.outcome])), floor))
        for k, o in enumerate(case.observed)
        if case.variant(k) == variant
    }


def families(cases: Sequence[Case]) -> list[str]:
    """The families of war among `cases`, in `ranges.FAMILIES` order (one discrepancy SD each)."""
    present = {c.meta.family for c in cases}
    return [u.path.split(".", 1)[1] for u in DISCREPANCY if u.path.split(".", 1)[1] in present]


class ErrorVariance:
    """Eq. 40's variance of each observation's log error: tolerance² + δ²_family, δ from the particle."""

    def __init__(self, cases: Sequence[Case]):
        self.keys = [observation_key(c, k) for c in cases for k in range(len(c.observed))]
        self.tolerance2 = np.array([o.tolerance**2 for c in cases for o in c.observed])
        self.delta_keys = [discrepancy_path(c.meta.family).replace(".", "__") for c in cases for _ in c.observed]

    def __call__(self, par: dict[str, float]) -> np.ndarray:
        delta = np.array([float(par[k]) if k in par else 0.0 for k in self.delta_keys])
        return np.asarray(self.tolerance2 + delta**2, dtype=float)


class CaseModel:
    """The pyABC model: calibrated parameters in, log recorded shares of every case's observations out."""

    def __init__(self, cases: Sequence[Case], parameters: Sequence[Range]):
        self.cases = list(cases)
        self.parameters = [u for u in parameters if u.path not in {d.path for d in DISCREPANCY}]

    def changes(self, par: dict[str, float]) -> dict[str, float]:
        return {u.path: u.to_model(float(par[u.key])) for u in self.parameters}

    @staticmethod
    def draw_seed() -> int:
        """A particle's simulation seed, from pyABC's numpy stream (the stream its acceptor draws from next)."""
        return int(np.random.randint(0, 2**31 - 1))

    @staticmethod
    def case_stats(case: Case, changes: dict[str, float], seed: int) -> dict[str, float]:
        """One simulation of a case (of each of its periods, with the same seed): the log recorded share of each of
        its observations."""
        stats: dict[str, float] = {}
        for v in range(len(case.scenarios())):
            runs = case_run(case, changes, seed, variant=v)
            stats.update(log_recorded_shares(case, runs.iloc[0], runs.attrs["agents"], v))
        return {observation_key(case, k): stats[observation_key(case, k)] for k in range(len(case.observed))}

    def __call__(self, par: dict[str, float]) -> dict[str, float]:
        seed = self.draw_seed()
        changes = self.changes(par)
        stats: dict[str, float] = {}
        for case in self.cases:
            stats.update(self.case_stats(case, changes, seed))
        return stats


@dataclass
class Calibration:
    """What `defection calibrate` produced."""

    posterior: Posterior
    populations: pd.DataFrame  # one row per ABC-SMC generation: t, epsilon, samples, particles
    simulations: int
    wall_seconds: float
    cases: list[str]
    settings: dict[str, Any]
    check: pd.DataFrame | None = None  # posterior predictive check: one row per observation
    check_draws: int = 0  # posterior predictive draws per case actually used (fewer than asked if time ran short)
    agent_days: int = 0  # agent-days simulated (an upper bound with early rejection: `particle_agent_days`)
    cut_short: bool = False  # the time limit stopped the sampler or shortened the predictive check
    notes: list[str] = field(default_factory=list)  # why, in words

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "settings": self.settings,
            "simulations": self.simulations,
            "wall_seconds": self.wall_seconds,
            "agent_days": self.agent_days,
            "generations": self.populations.to_dict("records"),
            "parameters": self.posterior.summary().to_dict("records"),
            "check": None if self.check is None else self.check.to_dict("records"),
            "check_draws": self.check_draws,
            "cut_short": self.cut_short,
            "notes": self.notes,
            "posterior_hash": self.posterior.loaded_hash(),  # as commands will print it for the file
        }


class _ProgressHandler(logging.Handler):
    """Forwards pyABC's tolerance and acceptance-rate log lines to the progress display."""

    def __init__(self, sink: ProgressSink):
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith(("t:", "Accepted")):
            self.sink.note(f"ABC-SMC {msg}")


def calibrate(
    cases: Sequence[Case],
    *,
    parameters: Sequence[Range] = CALIBRATED,
    particles: int = 64,
    generations: int = 6,
    workers: int = 1,
    seed: int = 1,
    min_epsilon: float = 0.0,
    max_seconds: float | None = None,
    check_draws: int = 0,
    progress: Callable[[str], None] | ProgressSink | None = None,
    deadline: Deadline | None = None,
    discrepancy: bool = True,
    pool: ProcessPoolExecutor | None = None,
    early_rejection: str = "every",
    schedule: str = "default",
    kernel_scaling: float = KERNEL_SCALING,
    restarts: int = 1,
) -> Calibration:
    """ABC-SMC (pyABC) over the calibrated parameters, shared across `cases`, and the discrepancy SD of every
    family of war among them (eq. 40–41): a stochastic acceptor with a normal kernel on log recorded shares
    (variance tolerance² + δ²) and a temperature schedule down to 1, i.e. exact inference under that error model.

    `workers` > 1 evaluates particles in that many processes, each simulating single-threaded. Stops after
    `generations`, at `min_epsilon`, or at the `deadline` (default: `max_seconds` from now), checked before every
    simulation: a generation the deadline interrupts is dropped and the finished ones are kept (`cut_short`), and
    if none finished, TimeLimitError. `check_draws` > 0 adds a posterior predictive check, with fewer draws, or
    fewer cases, when the time left does not allow all of them (said in `notes`). `min_epsilon` is a floor on the
    temperature (1 at the exact posterior; below 1 counts as 1). `discrepancy=False` assumes the model has no
    structural error (variance tolerance² alone, no δ calibrated): for synthetic checks and for comparison.
    `pool` (from `worker_pool`) evaluates particles and the predictive check in processes the caller started and
    keeps; without one, `workers` > 1 starts a pool for this calibration. `early_rejection` ("every", "last" or
    "off"; `calibrate.early`) stops simulating a particle's cases once they prove it rejected: in every generation
    (a sample of the same posterior), or in the last one only (the same sample). `schedule`: how the temperature
    falls (`temperature_schedule`). `kernel_scaling`: the proposal kernel's width in multiples of Silverman's rule.
    `restarts` > 1 runs that many independent ABC-SMC samplers (seeds `seed`, `seed` + 1, …) and pools their
    final particles (`pooled_restarts`).
    """
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, not {restarts!r}")
    if restarts > 1:
        return pooled_restarts(
            cases,
            restarts,
            parameters=parameters,
            particles=particles,
            generations=generations,
            workers=workers,
            seed=seed,
            min_epsilon=min_epsilon,
            max_seconds=max_seconds,
            check_draws=check_draws,
            progress=progress,
            deadline=deadline,
            discrepancy=discrepancy,
            pool=pool,
            early_rejection=early_rejection,
            schedule=schedule,
            kernel_scaling=kernel_scaling,
        )
    import pyabc  # lazy: pyABC (and its dependencies) load only for a calibration, not for `calibrate cases`

    if not cases:
        raise ValueError("calibration needs at least one case")
    if early_rejection not in EARLY_REJECTION:
        raise ValueError(f"early_rejection is 'every', 'last' or 'off', not {early_rejection!r}")
    eps = temperature_schedule(schedule)
    if not kernel_scaling > 0:
        raise ValueError(f"kernel_scaling must be positive, not {kernel_scaling!r}")
    start = time.perf_counter()
    if deadline is None and max_seconds is not None:
        deadline = Deadline(max_seconds)
    sink = progress_sink(progress)
    watch = _Watch(deadline, sink, generations)
    parameters = [u for u in parameters if u.path not in {d.path for d in DISCREPANCY}]
    if discrepancy:
        parameters += [u for u in DISCREPANCY if u.path.split(".", 1)[1] in families(cases)]
    prior = pyabc.Distribution(
        **{u.key: pyabc.RV("uniform", u.prior_bounds[0], u.prior_bounds[1] - u.prior_bounds[0]) for u in parameters}
    )
    own = replicate_workers(workers) if pool is None else nullcontext(pool)
    with own as pool:
        variance = ErrorVariance(cases)
        model: Any = CaseModel(cases, parameters)
        from defection.calibrate.kernel import observation_kernel  # lazy: it imports pyABC

        if early_rejection != "off":
            from defection.calibrate.early import EarlyRejectionModel  # lazy: it imports pyABC

            model = EarlyRejectionModel(model, variance, generations, max(1.0, min_epsilon), early_rejection)
        sampler = _sampler(workers, watch, pool)
        observed = observed_data(cases)
        abc_log = logging.getLogger("ABC")
        saved = (abc_log.handlers[:], abc_log.level, abc_log.propagate)
        abc_log.handlers = [_ProgressHandler(sink)] if progress is not None else []
        abc_log.setLevel(logging.INFO if progress is not None else logging.WARNING)
        abc_log.propagate = False
        np.random.seed(seed)
        # By default a proposal kernel twice Silverman's width: with nine parameters the default width let one particle
        # take most of the weight (effective sample size ≈1 of 64 in a full-library run); doubling it kept 3× the ESS
        # for about 10% more simulations in a three-case trial (docs/calibration.md).
        # The kernel's density is normalised by the highest density found so far (pyABC's default for the stochastic
        # acceptor), with importance weights correcting for it; the temperature reaches 1 at the last generation.
        abc = pyabc.ABCSMC(
            model,
            prior,
            observation_kernel(cases, variance),
            population_size=particles,
            sampler=sampler,
            transitions=pyabc.MultivariateNormalTransition(scaling=kernel_scaling),
            eps=eps,
            acceptor=pyabc.StochasticAcceptor(),
        )
        with tempfile.TemporaryDirectory(prefix="defection-abc-") as tmp, _closing(sampler):
            abc.new("sqlite:///" + os.path.join(tmp, "abc.db"), observed)
            try:
                history = abc.run(minimum_epsilon=max(1.0, min_epsilon), max_nr_populations=generations)
            finally:
                abc_log.handlers, abc_log.level, abc_log.propagate = saved
            if history.max_t < 0:
                raise TimeLimitError(watch.nothing_finished())
            df, w = history.get_distribution(m=0)
            pops = history.get_all_populations()
            pops = pops[pops["t"] >= 0].copy()
            pops["ess"] = [effective_sample_size(history.get_distribution(m=0, t=int(t))[1]) for t in pops["t"]]
            simulations = int(history.total_nr_simulations)
        sampling_seconds = time.perf_counter() - start
        pops = pops.rename(columns={"samples": "simulations"})[["t", "epsilon", "simulations", "particles", "ess"]]
        samples = np.column_stack([[u.to_model(x) for x in df[u.key].to_numpy()] for u in parameters])
        settings = {
            "particles": particles,
            "generations": generations,
            "workers": workers,
            "seed": seed,
            "min_epsilon": min_epsilon,
            "max_seconds": max_seconds,
            "discrepancy": discrepancy,
            "early_rejection": early_rejection,
            "schedule": schedule,
            "kernel_scaling": kernel_scaling,
            "restarts": 1,
        }
        meta = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "method": f"ABC-SMC, stochastic acceptor, normal kernel on log shares (pyabc {pyabc.__version__})",
            "error_model": "log recorded share ~ Normal(log observed, tolerance² + δ_family²)",
            "cases": [c.id for c in cases],
            "observations": list(observed),
            "final_epsilon": float(pops["epsilon"].iloc[-1]),  # the temperature: 1 at the exact posterior
            "effective_sample_size": float(pops["ess"].iloc[-1]),
            "settings": settings,
            "priors": {u.path: {"lo": u.lo, "hi": u.hi, "log": u.log, "why": u.why} for u in parameters},
            "cases_hash": library_hash(cases),
            "code_version": code_version(),
        }
        post = Posterior(tuple(u.path for u in parameters), samples, np.asarray(w, float), meta)
        result = Calibration(post, pops.reset_index(drop=True), simulations, 0.0, [c.id for c in cases], settings)
        if watch.ran_out:
            result.cut_short = True
            result.notes.append(
                f"the time limit stopped ABC-SMC after {len(pops)} of {generations} generation(s); "
                "the posterior is that of the last finished generation "
                f"(temperature {float(pops['epsilon'].iloc[-1]):.3g}; above 1 it is wider than the exact posterior)"
            )
        if check_draws > 0:
            _timed_check(result, cases, check_draws, seed, deadline, sampling_seconds, simulations, sink, pool, workers)
    per_particle = particle_agent_days(cases)
    result.agent_days = per_particle * (simulations + result.check_draws)
    result.wall_seconds = time.perf_counter() - start
    return result


def pooled_restarts(
    cases: Sequence[Case],
    restarts: int,
    *,
    seed: int = 1,
    workers: int = 1,
    max_seconds: float | None = None,
    check_draws: int = 0,
    progress: Callable[[str], None] | ProgressSink | None = None,
    deadline: Deadline | None = None,
    pool: ProcessPoolExecutor | None = None,
    **settings: Any,
) -> Calibration:
    """`restarts` independent ABC-SMC runs (`calibrate` with seeds `seed` … `seed` + restarts − 1, the other
    `settings` alike, one worker pool and one deadline), their final particles pooled with each run's weights scaled
    to 1/restarts (eq. 41b): a sample of the same posterior with the Monte Carlo error of one run averaged out, where
    a single run's weights rest on a few particles (docs/calibration.md, "Restarts"). Only runs that reached the
    lowest final temperature among them are pooled: a run the time limit stopped earlier (hotter, so wider) is
    dropped, and so is one that finished no generation; both are said in `notes`. If the first run finishes no
    generation, TimeLimitError. The predictive check (`check_draws`) runs once, on the pooled posterior."""
    start = time.perf_counter()
    if deadline is None and max_seconds is not None:
        deadline = Deadline(max_seconds)
    sink = progress_sink(progress)
    own = replicate_workers(workers) if pool is None else nullcontext(pool)
    with own as shared:
        runs: list[Calibration] = []
        notes: list[str] = []
        for r in range(restarts):
            sink.stage(f"ABC-SMC restart {r + 1}/{restarts} (seed {seed + r})")
            try:
                runs.append(
                    calibrate(
                        cases, seed=seed + r, workers=workers, deadline=deadline, pool=shared, progress=sink,
                        check_draws=0, restarts=1, **settings,
                    )
                )  # fmt: skip
            except TimeLimitError:
                if not runs:
                    raise
                notes.append(f"restart {r + 1} of {restarts} finished no generation before the time limit: not pooled")
                break
        coolest = min(float(c.posterior.meta["final_epsilon"]) for c in runs)
        pooled = [float(c.posterior.meta["final_epsilon"]) <= coolest for c in runs]
        for k, c in enumerate(runs):
            if not pooled[k]:
                notes.append(
                    f"restart {k + 1} of {restarts} stopped at temperature {c.posterior.meta['final_epsilon']:.3g}, "
                    f"hotter than {coolest:.3g}: not pooled"
                )
        result = _pool(runs, pooled, restarts, seed)
        result.notes = [n for c in runs for n in c.notes] + notes
        result.cut_short = any(c.cut_short for c in runs) or sum(pooled) < restarts
        for note in notes:
            sink.note(note)
        if check_draws > 0:
            sampling_seconds = time.perf_counter() - start
            _timed_check(
                result, cases, check_draws, seed, deadline, sampling_seconds, result.simulations, sink, shared, workers
            )
    result.agent_days = sum(c.agent_days for c in runs) + particle_agent_days(cases) * result.check_draws
    result.wall_seconds = time.perf_counter() - start
    return result


def pooled_posterior(posteriors: Sequence[Posterior], meta: dict[str, Any]) -> Posterior:
    """Eq. 41b: the particles of independent runs, each run's weights normalised and scaled by 1/(number of runs)."""
    names = posteriors[0].parameters
    if any(p.parameters != names for p in posteriors):
        raise ValueError("pooled posteriors must have the same parameters")
    samples = np.vstack([p.samples for p in posteriors])
    weights = np.concatenate([p.weights / p.weights.sum() / len(posteriors) for p in posteriors])
    return Posterior(names, samples, weights, meta)


def _pool(runs: list[Calibration], pooled: list[bool], restarts: int, seed: int) -> Calibration:
    """The Calibration of the runs marked `pooled`: their particles (`pooled_posterior`), every run's generations
    (with a `restart` column) and simulations, and settings that say how many restarts were asked for."""
    kept = [c for c, keep in zip(runs, pooled, strict=True) if keep]
    first = kept[0]
    settings = {**first.settings, "seed": seed, "restarts": restarts}
    post = pooled_posterior(
        [c.posterior for c in kept],
        {
            **first.posterior.meta,
            "settings": settings,
            "effective_sample_size": 0.0,  # set below, from the pooled weights
            "restarts": [
                {
                    "seed": c.settings["seed"],
                    "final_epsilon": c.posterior.meta["final_epsilon"],
                    "effective_sample_size": c.posterior.meta["effective_sample_size"],
                    "simulations": c.simulations,
                    "pooled": keep,
                }
                for c, keep in zip(runs, pooled, strict=True)
            ],
        },
    )
    post.meta["effective_sample_size"] = effective_sample_size(post.weights)
    pops = pd.concat([c.populations.assign(restart=k + 1) for k, c in enumerate(runs)], ignore_index=True)
    return Calibration(post, pops, sum(c.simulations for c in runs), 0.0, first.cases, settings)


def particle_agent_days(cases: Sequence[Case]) -> int:
    """Agent-days of one ABC simulation (one particle): every case, each of its periods, one replicate at its
    calibration agents. Early rejection stops some of them sooner, so counts built on it are upper bounds."""
    total = 0
    for case in cases:
        for sc in case.scenarios():
            total += simulated_agents(case.meta.calibration_agents, sc.force.company_size) * sc.simulation.days
    return total


def check_draws_that_fit(draws: int, seconds_left: float, seconds_per_draw: float) -> int:
    """Posterior predictive draws per case (at most `draws`) that fit in a share of the time left, at the cost
    per draw of every case the sampler measured; 0 when fewer than two fit (no interval from one draw)."""
    if not math.isfinite(seconds_left):
        return draws
    fit = int(CHECK_TIME_SHARE * seconds_left / max(seconds_per_draw, 1e-9))
    n = min(draws, fit)
    return n if n >= 2 else 0


def _timed_check(
    result: Calibration,
    cases: Sequence[Case],
    draws: int,
    seed: int,
    deadline: Deadline | None,
    sampling_seconds: float,
    simulations: int,
    sink: ProgressSink,
    pool: ProcessPoolExecutor | None = None,
    workers: int = 1,
) -> None:
    """The posterior predictive check within the deadline: fewer draws, or fewer cases, if time runs short. With a
    `pool` the cases are checked in its processes, side by side (the same numbers: a case's draws do not depend on
    the process or the number of threads that simulates them). A draw (one of every case) costs what a particle cost
    the sampler: `sampling_seconds` of wall time on `workers` processes for `simulations` particles."""
    seconds_per_draw = sampling_seconds * max(1, workers) / max(1, simulations)
    left = math.inf if deadline is None else deadline.left()
    processes = 1 if pool is None else max(1, min(len(cases), workers))
    n = check_draws_that_fit(draws, left, seconds_per_draw / processes)
    if n == 0:
        result.cut_short = True
        result.notes.append(f"posterior predictive check skipped: {left:.0f} s left of the time limit")
        sink.note(result.notes[-1])
        return
    if n < draws:
        result.cut_short = True
        result.notes.append(f"posterior predictive check with {n} of {draws} draws per case (time limit)")
        sink.note(result.notes[-1])
    frames = []
    if pool is not None:
        sink.stage(f"posterior predictive check: {len(cases)} cases, {n} draws each, in {processes} processes")
        futures = [pool.submit(predictive_check, [case], result.posterior, n, seed) for case in cases]
        done, _ = futures_wait(futures, timeout=None if deadline is None else deadline.left())
        for k, future in enumerate(futures):
            if future not in done:
                for f in futures[k:]:
                    f.cancel()
                result.cut_short = True
                result.notes.append(f"posterior predictive check stopped after {k} of {len(cases)} cases (time limit)")
                sink.note(result.notes[-1])
                break
            frames.append(future.result())
    else:
        for k, case in enumerate(cases):
            if deadline is not None and deadline.expired():
                result.cut_short = True
                result.notes.append(f"posterior predictive check stopped after {k} of {len(cases)} cases (time limit)")
                sink.note(result.notes[-1])
                break
            sink.stage(f"posterior predictive check: case {k + 1}/{len(cases)} ({case.id}, {n} draws)")
            frames.append(predictive_check([case], result.posterior, n, seed))
    result.check = pd.concat(frames, ignore_index=True) if frames else None
    result.check_draws = n if frames else 0


def _sampler(workers: int, watch: _Watch, pool: ProcessPoolExecutor | None = None) -> Any:
    """pyABC's sampler: one process, or `workers` processes of `pool` (a new `worker_pool` that the sampler owns
    when none is given) that simulate single-threaded; either stops at the watch's deadline."""
    from pyabc.sampler import ConcurrentFutureSampler, SingleCoreSampler  # lazy: as in calibrate

    if workers <= 1 and pool is None:

        class SingleCore(_timed(SingleCoreSampler)):  # type: ignore[misc]
            def sample_until_n_accepted(self, n: int, simulate_one: Any, t: int, **kwargs: Any) -> Any:
                def timed_one() -> Any:
                    self.watch.check()
                    particle = simulate_one()
                    self.watch.counted(bool(particle.accepted))
                    return particle

                return super().sample_until_n_accepted(n, timed_one, t, **kwargs)

        single = SingleCore()
        single.watch = watch
        return single

    class Concurrent(_timed(ConcurrentFutureSampler)):  # type: ignore[misc]
        def client_cores(self) -> int:
            self.watch.check()  # pyABC's main loop asks this every 10 ms
            return int(super().client_cores())

        def __getstate__(self) -> dict[str, Any]:
            state = super().__getstate__()
            state.pop("watch", None)
            return dict(state)

    owned = pool is None
    if pool is None:
        pool = worker_pool(workers)
    concurrent = Concurrent(_CountingPool(pool, watch, owned), client_max_jobs=2 * workers, batch_size=1)
    concurrent.watch = watch
    return concurrent


@contextmanager
def _closing(sampler: Any) -> Iterator[None]:
    """Shut the sampler's worker processes down however the run ends (an interrupt included); a shared pool
    only loses this run's jobs that have not started."""
    try:
        yield
    finally:
        pool = getattr(sampler, "client", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def predictive_variances(posterior: Posterior | None, case: Case, seed: int, draws: int) -> np.ndarray:
    """Eq. 40's error variance of each predictive draw (rows) and observation (columns) of a case: tolerance² +
    δ²_family, δ from the draw's posterior particle (0 without a posterior or when it has no discrepancy for the
    case's family)."""
    deltas = [0.0] * draws
    if posterior is not None and discrepancy_path(case.meta.family) in posterior.parameters:
        particles = (posterior_particle(posterior, seed, r) for r in range(draws))
        deltas = [posterior.discrepancy(k, case.meta.family) or 0.0 for k in particles]
    tolerance2 = np.array([o.tolerance**2 for o in case.observed])
    return np.array([tolerance2 + delta**2 for delta in deltas]).reshape(draws, len(case.observed))


def predictive_errors(posterior: Posterior | None, case: Case, seed: int, draws: int) -> np.ndarray:
    """Eq. 40's error of each predictive draw (rows) and observation (columns) of a case on the log scale:
    √(tolerance² + δ²_family)·z (`predictive_variances`), the error model the calibration assumes; z is a standard
    normal keyed by the seed, case and draw."""
    var = predictive_variances(posterior, case, seed, draws)
    out = np.empty_like(var)
    for r in range(draws):
        z = np.random.default_rng([DISCREPANCY_STREAM, seed, zlib.crc32(case.id.encode()), r])
        out[r] = np.sqrt(var[r]) * z.standard_normal(len(case.observed))
    return out


def predictive_counts(shares: np.ndarray, var: np.ndarray, force: float, rng: np.random.Generator) -> np.ndarray:
    """Eq. 40b's predictive draws of a count observation, as shares of the force: NB(μ = share × force, r =
    1/(e^{var} − 1)) / force, one per draw."""
    r = 1.0 / np.expm1(var)
    mu = shares * force
    return np.asarray(rng.negative_binomial(r, r / (r + mu)) / force, dtype=float)


def discrepancy_note(posterior: Posterior | None, cases: Sequence[Case]) -> str:
    """What the predictive includes of the model discrepancy and the observation error, in words."""
    if posterior is None:
        return (
            "no model discrepancy in the predictive (hand-tuned defaults, no posterior); "
            "it includes the observations' error (tolerance)"
        )
    missing = sorted({c.meta.family for c in cases} - {p.split(".", 1)[1] for p in posterior.parameters})
    if missing:
        return (
            f"no model discrepancy for {', '.join(missing)} cases: the posterior has none for that family; "
            "the predictive includes the observations' error (tolerance)"
        )
    return (
        "predictive includes the posterior's model discrepancy (δ of each draw's particle) and the observations' error"
    )


def predictive_check(cases: Sequence[Case], posterior: Posterior | None, draws: int, seed: int) -> pd.DataFrame:
    """For every observation: the observed value, the posterior predictive median, 50% (p25–p75) and 90%
    (p05–p95) intervals, the log floor of its case, and the predictive draws (one value per draw). A draw is the
    simulated share as recorded (times `capture`), times the error of eq. 40 (`predictive_errors`: observation
    error and model discrepancy), at most 1; `attrs["discrepancy"]` says what the predictive includes."""
    rows = []
    for case in cases:
        periods = [
            case_run(case, {}, seed, replicates=draws, posterior=posterior, variant=v)
            for v in range(len(case.scenarios()))
        ]
        errors = predictive_errors(posterior, case, seed, draws)
        var = predictive_variances(posterior, case, seed, draws)
        for j, o in enumerate(case.observed):
            runs = periods[case.variant(j)]
            floor = log_floor(runs.attrs["agents"])
            force = float(case.scenarios()[case.variant(j)].force.soldiers)
            v = np.maximum(o.recorded_share(1.0) * runs[o.outcome].to_numpy(dtype=float), floor)
            if o.likelihood == "lognormal":
                v = np.minimum(v * np.exp(errors[:, j]), 1.0)  # a share is at most the whole force
            else:  # eq. 40b: a count of soldiers, drawn with the same error variance
                rng = np.random.default_rng([DISCREPANCY_STREAM, seed, zlib.crc32(case.id.encode()), 10**6 + j])
                v = np.minimum(predictive_counts(v, var[:, j], force, rng), 1.0)
            lo, q25, med, q75, hi = (float(np.quantile(v, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
            if o.likelihood == "upper_bound":  # only a prediction above the bound misses it
                inside = lo < o.value
                error = max(0.0, log_error(med, o.value, floor))
            else:
                inside = lo <= o.value <= hi
                error = abs(log_error(med, max(o.value, floor), floor))
            rows.append(
                {
                    "case": case.id,
                    "outcome": o.outcome,
                    "likelihood": o.likelihood,
                    "observed": o.value,
                    "tolerance": o.tolerance,
                    "tag": o.tag,
                    "median": med,
                    "p05": lo,
                    "p95": hi,
                    "inside": bool(inside),
                    "abs_log_error": error,
                    "p25": q25,
                    "p75": q75,
                    "log_floor": floor,
                    "draws": v.tolist(),
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["discrepancy"] = discrepancy_note(posterior, cases)
    return frame
