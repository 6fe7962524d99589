"""`defection calibrate` and `defection backtest`: estimate the parameters the literature does not pin down
from the historical case library, with approximate Bayesian computation (ABC-SMC, pyABC [M7c]), and test
out of sample how well the calibrated model predicts a case it has not seen.

The calibrated parameters (``CALIBRATED``) are shared across cases; each case maps its own context (force,
offer, channels, penalties, crossing risk, credibility, length) onto the rest of the scenario. The distance
between a simulation and history is the root of the summed squared log errors, each divided by its case's
tolerance (eq. 40). The result is a weighted posterior sample, stored in the results database and as a JSON
file that scenarios reference (``simulation.posterior``) and that ``defection run --posterior`` and
``defection claims`` propagate into their intervals: replicate r draws posterior particle k(r) with a
counter-based uniform, so variants that share a seed share draws (common random numbers).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from defection.calibrate.cases import Case, log_error, log_floor
from defection.engine import package_version, simulate
from defection.scenario import with_changes
from defection.scenario.posterior import (
    Posterior,
    effective_sample_size,
)
from defection.scenario.ranges import CALIBRATED, Range

KERNEL_SCALING = 2.0  # ABC-SMC proposal width relative to Silverman's rule (see `calibrate`)


# ----------------------------------------------------------------------------- cases → summary statistics
def observation_key(case: Case, k: int) -> str:
    """A unique name for observation k of a case (a case may observe one outcome twice, from two sources)."""
    return f"{case.id}:{k}:{case.observed[k].outcome}"


def case_run(
    case: Case,
    changes: dict[str, float],
    seed: int,
    replicates: int = 1,
    agents: int | None = None,
    posterior: Posterior | None = None,
) -> pd.DataFrame:
    """Per-replicate outcomes of one case with calibrated parameters set to `changes`."""
    sc = with_changes(case.scenario, changes, case.path) if changes else case.scenario
    res = simulate(
        sc, replicates=replicates, seed=seed, agents=agents or case.meta.calibration_agents, posterior=posterior
    )
    out = res.per_replicate.copy()
    out.attrs["agents"] = res.agents
    return out


def standardised_errors(case: Case, row: pd.Series, agents: int) -> dict[str, float]:
    """Eq. 40: (log simulated − log observed)/tolerance for each observation of a case."""
    floor = log_floor(agents)
    return {
        observation_key(case, k): log_error(float(row[o.outcome]), o.value, floor) / o.tolerance
        for k, o in enumerate(case.observed)
    }


class CaseModel:
    """The pyABC model: calibrated parameters in, standardised log errors of every case out."""

    def __init__(self, cases: Sequence[Case], parameters: Sequence[Range]):
        self.cases = list(cases)
        self.parameters = list(parameters)

    def changes(self, par: dict[str, float]) -> dict[str, float]:
        return {u.path: u.to_model(float(par[u.key])) for u in self.parameters}

    def __call__(self, par: dict[str, float]) -> dict[str, float]:
        seed = int(np.random.randint(0, 2**31 - 1))
        changes = self.changes(par)
        stats: dict[str, float] = {}
        for case in self.cases:
            runs = case_run(case, changes, seed)
            stats.update(standardised_errors(case, runs.iloc[0], runs.attrs["agents"]))
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "settings": self.settings,
            "simulations": self.simulations,
            "wall_seconds": self.wall_seconds,
            "generations": self.populations.to_dict("records"),
            "parameters": self.posterior.summary().to_dict("records"),
            "check": None if self.check is None else self.check.to_dict("records"),
            "posterior_hash": self.posterior.content_hash(),
        }


class _ProgressHandler(logging.Handler):
    """Forwards pyABC's per-generation log lines ("t: 2, eps: …") to a progress callback."""

    def __init__(self, progress: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith(("t:", "Accepted", "Stop")):
            self.progress(msg)


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
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """ABC-SMC (pyABC) over the calibrated parameters, shared across `cases` (eq. 40–41).

    `workers` > 1 evaluates particles in that many processes, each simulating single-threaded. Stops after
    `generations`, at `min_epsilon`, or after `max_seconds`. `check_draws` > 0 adds a posterior predictive check.
    """
    import pyabc  # lazy: pyABC (and its dependencies) load only for a calibration, not for `calibrate cases`

    if not cases:
        raise ValueError("calibration needs at least one case")
    start = time.perf_counter()
    parameters = list(parameters)
    prior = pyabc.Distribution(
        **{u.key: pyabc.RV("uniform", u.prior_bounds[0], u.prior_bounds[1] - u.prior_bounds[0]) for u in parameters}
    )
    model = CaseModel(cases, parameters)
    sampler = _sampler(workers)
    observed = {observation_key(c, k): 0.0 for c in cases for k in range(len(c.observed))}
    abc_log = logging.getLogger("ABC")
    saved = (abc_log.handlers[:], abc_log.level, abc_log.propagate)
    abc_log.handlers = [_ProgressHandler(progress)] if progress is not None else []
    abc_log.setLevel(logging.INFO if progress is not None else logging.WARNING)
    abc_log.propagate = False
    np.random.seed(seed)
    # A proposal kernel twice Silverman's width: with nine parameters the default width let one particle take
    # most of the weight (effective sample size ≈1 of 64 in a full-library run); doubling it kept 3× the ESS for
    # about 10% more simulations in a three-case trial (docs/calibration.md).
    abc = pyabc.ABCSMC(
        model,
        prior,
        pyabc.PNormDistance(p=2),
        population_size=particles,
        sampler=sampler,
        transitions=pyabc.MultivariateNormalTransition(scaling=KERNEL_SCALING),
    )
    with tempfile.TemporaryDirectory(prefix="defection-abc-") as tmp, _closing(sampler):
        abc.new("sqlite:///" + os.path.join(tmp, "abc.db"), observed)
        history = abc.run(
            minimum_epsilon=min_epsilon,
            max_nr_populations=generations,
            max_walltime=None if max_seconds is None else _timedelta(max_seconds),
        )
        df, w = history.get_distribution(m=0)
        pops = history.get_all_populations()
        pops = pops[pops["t"] >= 0].copy()
        pops["ess"] = [effective_sample_size(history.get_distribution(m=0, t=int(t))[1]) for t in pops["t"]]
        simulations = int(history.total_nr_simulations)
    abc_log.handlers, abc_log.level, abc_log.propagate = saved
    pops = pops.rename(columns={"samples": "simulations"})[["t", "epsilon", "simulations", "particles", "ess"]]
    samples = np.column_stack([[u.to_model(x) for x in df[u.key].to_numpy()] for u in parameters])
    settings = {
        "particles": particles,
        "generations": generations,
        "workers": workers,
        "seed": seed,
        "min_epsilon": min_epsilon,
        "max_seconds": max_seconds,
    }
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": f"ABC-SMC (pyabc {pyabc.__version__})",
        "cases": [c.id for c in cases],
        "observations": list(observed),
        "final_epsilon": float(pops["epsilon"].iloc[-1]),
        "effective_sample_size": float(pops["ess"].iloc[-1]),
        "settings": settings,
        "priors": {u.path: {"lo": u.lo, "hi": u.hi, "log": u.log, "why": u.why} for u in parameters},
        "cases_hash": cases_hash(cases),
        "code_version": code_version(),
    }
    post = Posterior(tuple(u.path for u in parameters), samples, np.asarray(w, float), meta)
    result = Calibration(post, pops.reset_index(drop=True), simulations, 0.0, [c.id for c in cases], settings)
    if check_draws > 0:
        result.check = predictive_check(cases, post, check_draws, seed)
    result.wall_seconds = time.perf_counter() - start
    return result


def cases_hash(cases: Sequence[Case]) -> str:
    """SHA-256 over the bytes of the case files a calibration used, in sorted path order (a case not read from a
    file counts by its path)."""
    h = hashlib.sha256()
    for path in sorted(c.path for c in cases):
        p = Path(path)
        h.update(p.read_bytes() if p.is_file() else path.encode())
    return h.hexdigest()


def code_version() -> str:
    """The package version, and the git commit of the source tree when it is a checkout ('-dirty' if changed)."""
    root = Path(__file__).resolve().parents[3]  # src/defection/calibrate/abc.py → the checkout, if it is one
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


def _single_thread() -> None:
    numba.set_num_threads(1)


def _sampler(workers: int) -> Any:
    """pyABC's sampler: one process, or `workers` fresh (spawned, not forked: Numba's OpenMP layer is not
    fork-safe) processes that simulate single-threaded."""
    from pyabc.sampler import ConcurrentFutureSampler, SingleCoreSampler  # lazy: as in calibrate

    if workers <= 1:
        return SingleCoreSampler()
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_single_thread
    )
    return ConcurrentFutureSampler(pool, client_max_jobs=2 * workers, batch_size=1)


@contextmanager
def _closing(sampler: Any) -> Iterator[None]:
    """Shut the sampler's worker processes down however the run ends (an interrupt included)."""
    try:
        yield
    finally:
        pool = getattr(sampler, "client", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _timedelta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def predictive_check(cases: Sequence[Case], posterior: Posterior | None, draws: int, seed: int) -> pd.DataFrame:
    """For every observation: the observed value, the posterior predictive median, 50% (p25–p75) and 90%
    (p05–p95) intervals, the log floor of its case, and the predictive draws (one simulated value per draw)."""
    rows = []
    for case in cases:
        runs = case_run(case, {}, seed, replicates=draws, posterior=posterior)
        for o in case.observed:
            v = runs[o.outcome].to_numpy(dtype=float)
            lo, q25, med, q75, hi = (float(np.quantile(v, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
            floor = log_floor(runs.attrs["agents"])
            rows.append(
                {
                    "case": case.id,
                    "outcome": o.outcome,
                    "observed": o.value,
                    "tolerance": o.tolerance,
                    "tag": o.tag,
                    "median": med,
                    "p05": lo,
                    "p95": hi,
                    "inside": bool(lo <= o.value <= hi),
                    "abs_log_error": abs(log_error(med, o.value, floor)),
                    "p25": q25,
                    "p75": q75,
                    "log_floor": floor,
                    "draws": v.tolist(),
                }
            )
    return pd.DataFrame(rows)
