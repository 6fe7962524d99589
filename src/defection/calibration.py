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
import json
import logging
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defection import rng
from defection.cases import Case, log_error, log_floor
from defection.scenario import Problem, Scenario, ScenarioError, with_changes

POSTERIOR_FORMAT = "defection-posterior/1"
KERNEL_SCALING = 2.0  # ABC-SMC proposal width relative to Silverman's rule (see `calibrate`)


@dataclass(frozen=True)
class Uncertain:
    """A calibrated parameter: scenario path, prior range (uniform, on log10 if `log`) and why it is uncertain."""

    path: str
    lo: float
    hi: float
    log: bool
    why: str

    @property
    def key(self) -> str:
        """The name pyABC sees (no dots)."""
        return self.path.replace(".", "__")

    def to_model(self, x: float) -> float:
        return float(10.0**x) if self.log else float(x)

    def from_model(self, v: float) -> float:
        return float(math.log10(v)) if self.log else float(v)

    @property
    def prior_bounds(self) -> tuple[float, float]:
        return (math.log10(self.lo), math.log10(self.hi)) if self.log else (self.lo, self.hi)


CALIBRATED: tuple[Uncertain, ...] = (
    Uncertain("preferences.moral_cost_median_usd", 3e4, 3e6, True,
              "m0: latent moral/identity cost (Kuran [C3]); model-reference §5 'CALIBRATE, wide'"),
    Uncertain("preferences.moral_cost_log_sd", 0.3, 2.0, False, "heterogeneity of m0 (model-reference §5)"),
    Uncertain("preferences.logit_scale", 0.03, 1.0, True, "σ, logit scale (McFadden [T1]); model-reference §5"),
    Uncertain("preferences.peer_weight", 0.0, 2.0, False, "φ, peer effect (Albrecht et al. [S5]); model-reference §5"),
    Uncertain("preferences.precedent_weight", 0.0, 8.0, False, "ψ, precedent (Lehmann & Zhukov [S6])"),
    Uncertain("information.reach_multiplier", 0.1, 10.0, True, "Bass p scale on channel reach [I1, I2]"),
    Uncertain("information.peer_imitation", 0.0, 0.5, False, "Bass q, per day (model-reference §5: 0.02–0.5)"),
    Uncertain("credibility.prior_alpha", 0.5, 6.0, False, "credibility prior Beta(α, 2) (model-reference §5: "
              "(1,4)–(4,1))"),
    Uncertain("crossing.killed_crossing_base", 0.02, 0.4, False, "p^x_0, base crossing risk (model-reference §5)"),
)


# ----------------------------------------------------------------------------- the posterior
class PosteriorError(ScenarioError):
    """A posterior file could not be read."""

    def render(self) -> str:
        return "\n".join([f"{self.source}: invalid posterior file", *(f"  - {p}" for p in self.problems)])


@dataclass
class Posterior:
    """A weighted sample of calibrated parameter sets (natural units, one row per particle)."""

    parameters: tuple[str, ...]
    samples: np.ndarray  # (particles, parameters)
    weights: np.ndarray  # (particles,), sums to 1
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=float).reshape(-1, len(self.parameters))
        w = np.asarray(self.weights, dtype=float)
        self.weights = w / w.sum()

    @property
    def size(self) -> int:
        return int(self.samples.shape[0])

    def draw_index(self, seed: int, replicate: int) -> int:
        """The particle replicate `replicate` uses: weighted, from a counter-based uniform (eq. 41)."""
        u = rng.keyed_uniform(seed, replicate, -2, rng.POSTERIOR, 0)
        k = int(np.searchsorted(np.cumsum(self.weights), u, side="right"))
        return min(k, self.size - 1)

    def without(self, paths: Sequence[str]) -> Posterior:
        """The same particles and weights without some parameters: a variant that sets a calibrated parameter
        itself keeps its value, and replicate r still draws particle k(r) for the rest (paired comparisons)."""
        keep = [j for j, p in enumerate(self.parameters) if p not in set(paths)]
        return Posterior(tuple(self.parameters[j] for j in keep), self.samples[:, keep], self.weights, self.meta)

    def changes(self, k: int) -> dict[str, float]:
        return {p: float(v) for p, v in zip(self.parameters, self.samples[k], strict=True)}

    def apply(self, sc: Scenario, k: int) -> Scenario:
        """The scenario with particle k's parameter values."""
        return with_changes(sc, self.changes(k), "<posterior>")

    def summary(self) -> pd.DataFrame:
        """Weighted median and 90% interval of every parameter, with its prior range."""
        priors = {u.path: u for u in CALIBRATED}
        rows = []
        for j, path in enumerate(self.parameters):
            med, lo, hi = weighted_quantiles(self.samples[:, j], self.weights, (0.5, 0.05, 0.95))
            u = priors.get(path)
            rows.append({"parameter": path, "median": med, "p05": lo, "p95": hi,
                         "prior_lo": u.lo if u else math.nan, "prior_hi": u.hi if u else math.nan})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"format": POSTERIOR_FORMAT, "parameters": list(self.parameters),
                "samples": self.samples.tolist(), "weights": self.weights.tolist(), "meta": self.meta}

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write the posterior as JSON (atomically: a temporary file renamed into place)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")
        os.replace(tmp, target)
        return target

    @classmethod
    def from_dict(cls, data: Any, source: str = "<posterior>") -> Posterior:
        problems: list[Problem] = []
        if not isinstance(data, dict) or data.get("format") != POSTERIOR_FORMAT:
            raise PosteriorError(source, [Problem("format", data.get("format") if isinstance(data, dict) else data,
                                                  f"expected '{POSTERIOR_FORMAT}'")])
        params = data.get("parameters")
        known = {u.path for u in CALIBRATED}
        if not isinstance(params, list) or not params:
            problems.append(Problem("parameters", params, "expected a non-empty list of scenario paths"))
        else:
            problems += [Problem("parameters", p, "not a calibrated parameter; known: " + ", ".join(sorted(known)))
                         for p in params if p not in known]
        try:
            samples = np.asarray(data.get("samples"), dtype=float)
            weights = np.asarray(data.get("weights"), dtype=float)
        except (TypeError, ValueError):
            samples, weights = np.zeros((0, 0)), np.zeros(0)
            problems.append(Problem("samples", "…", "expected numbers"))
        if not problems:
            if samples.ndim != 2 or samples.shape[1] != len(params) or samples.shape[0] == 0:
                problems.append(Problem("samples", f"shape {samples.shape}",
                                        f"expected (particles, {len(params)}) numbers"))
            elif weights.shape != (samples.shape[0],) or not np.all(weights >= 0) or weights.sum() <= 0:
                problems.append(Problem("weights", f"shape {weights.shape}",
                                        f"expected {samples.shape[0]} non-negative weights with a positive sum"))
            elif not np.all(np.isfinite(samples)):
                problems.append(Problem("samples", "non-finite", "every sample must be a finite number"))
        if problems:
            raise PosteriorError(source, problems)
        return cls(tuple(params), samples, weights, dict(data.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        p = Path(path)
        if not p.is_file():
            raise PosteriorError(str(p), [Problem("(file)", str(p), "posterior file not found")])
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PosteriorError(str(p), [Problem("(file)", str(p), f"not JSON: {e}")]) from None
        return cls.from_dict(data, str(p))


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of a weighted sample, (Σw)²/Σw²."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2))


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Quantiles of a weighted sample (inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cdf = np.cumsum(w) / w.sum()
    return [float(v[min(int(np.searchsorted(cdf, q, side="left")), v.size - 1)]) for q in qs]


# ----------------------------------------------------------------------------- cases → summary statistics
def observation_key(case: Case, k: int) -> str:
    """A unique name for observation k of a case (a case may observe one outcome twice, from two sources)."""
    return f"{case.id}:{k}:{case.observed[k].outcome}"


def case_run(case: Case, changes: dict[str, float], seed: int, replicates: int = 1, agents: int | None = None,
             posterior: Posterior | None = None) -> pd.DataFrame:
    """Per-replicate outcomes of one case with calibrated parameters set to `changes`."""
    from defection.engine import simulate

    sc = with_changes(case.scenario, changes, case.path) if changes else case.scenario
    res = simulate(sc, replicates=replicates, seed=seed, agents=agents or case.meta.calibration_agents,
                   posterior=posterior)
    out = res.per_replicate.copy()
    out.attrs["agents"] = res.agents
    return out


def standardised_errors(case: Case, row: pd.Series, agents: int) -> dict[str, float]:
    """Eq. 40: (log simulated − log observed)/tolerance for each observation of a case."""
    floor = log_floor(agents)
    return {observation_key(case, k): log_error(float(row[o.outcome]), o.value, floor) / o.tolerance
            for k, o in enumerate(case.observed)}


class CaseModel:
    """The pyABC model: calibrated parameters in, standardised log errors of every case out."""

    def __init__(self, cases: Sequence[Case], parameters: Sequence[Uncertain]):
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


def calibrate(cases: Sequence[Case], *, parameters: Sequence[Uncertain] = CALIBRATED, particles: int = 64,
              generations: int = 6, workers: int = 1, seed: int = 1, min_epsilon: float = 0.0,
              max_seconds: float | None = None, check_draws: int = 0,
              progress: Callable[[str], None] | None = None) -> Calibration:
    """ABC-SMC (pyABC) over the calibrated parameters, shared across `cases` (eq. 40–41).

    `workers` > 1 evaluates particles in that many processes, each simulating single-threaded. Stops after
    `generations`, at `min_epsilon`, or after `max_seconds`. `check_draws` > 0 adds a posterior predictive check.
    """
    import pyabc

    if not cases:
        raise ValueError("calibration needs at least one case")
    start = time.perf_counter()
    parameters = list(parameters)
    prior = pyabc.Distribution(**{u.key: pyabc.RV("uniform", u.prior_bounds[0], u.prior_bounds[1] - u.prior_bounds[0])
                                  for u in parameters})
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
    abc = pyabc.ABCSMC(model, prior, pyabc.PNormDistance(p=2), population_size=particles, sampler=sampler,
                       transitions=pyabc.MultivariateNormalTransition(scaling=KERNEL_SCALING))
    with tempfile.TemporaryDirectory(prefix="defection-abc-") as tmp, _closing(sampler):
        abc.new("sqlite:///" + os.path.join(tmp, "abc.db"), observed)
        history = abc.run(minimum_epsilon=min_epsilon, max_nr_populations=generations,
                          max_walltime=None if max_seconds is None else _timedelta(max_seconds))
        df, w = history.get_distribution(m=0)
        pops = history.get_all_populations()
        pops = pops[pops["t"] >= 0].copy()
        pops["ess"] = [effective_sample_size(history.get_distribution(m=0, t=int(t))[1]) for t in pops["t"]]
        simulations = int(history.total_nr_simulations)
    abc_log.handlers, abc_log.level, abc_log.propagate = saved
    pops = pops.rename(columns={"samples": "simulations"})[["t", "epsilon", "simulations", "particles", "ess"]]
    samples = np.column_stack([[u.to_model(x) for x in df[u.key].to_numpy()] for u in parameters])
    settings = {"particles": particles, "generations": generations, "workers": workers, "seed": seed,
                "min_epsilon": min_epsilon, "max_seconds": max_seconds}
    meta = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
            "method": f"ABC-SMC (pyabc {pyabc.__version__})", "cases": [c.id for c in cases],
            "observations": list(observed), "final_epsilon": float(pops["epsilon"].iloc[-1]),
            "effective_sample_size": float(pops["ess"].iloc[-1]),
            "settings": settings, "priors": {u.path: {"lo": u.lo, "hi": u.hi, "log": u.log, "why": u.why}
                                             for u in parameters}}
    post = Posterior(tuple(u.path for u in parameters), samples, np.asarray(w, float), meta)
    result = Calibration(post, pops.reset_index(drop=True), simulations, 0.0, [c.id for c in cases], settings)
    if check_draws > 0:
        result.check = predictive_check(cases, post, check_draws, seed)
    result.wall_seconds = time.perf_counter() - start
    return result


def _single_thread() -> None:
    import numba

    numba.set_num_threads(1)


def _sampler(workers: int) -> Any:
    """pyABC's sampler: one process, or `workers` fresh (spawned, not forked: Numba's OpenMP layer is not
    fork-safe) processes that simulate single-threaded."""
    from pyabc.sampler import ConcurrentFutureSampler, SingleCoreSampler

    if workers <= 1:
        return SingleCoreSampler()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_single_thread)
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


def _timedelta(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def predictive_check(cases: Sequence[Case], posterior: Posterior, draws: int, seed: int) -> pd.DataFrame:
    """For every observation: the observed value and the posterior predictive median and 90% interval."""
    rows = []
    for case in cases:
        runs = case_run(case, {}, seed, replicates=draws, posterior=posterior)
        for o in case.observed:
            v = runs[o.outcome].to_numpy(dtype=float)
            lo, med, hi = (float(np.quantile(v, q)) for q in (0.05, 0.5, 0.95))
            floor = log_floor(runs.attrs["agents"])
            rows.append({"case": case.id, "outcome": o.outcome, "observed": o.value, "tolerance": o.tolerance,
                         "tag": o.tag, "median": med, "p05": lo, "p95": hi,
                         "inside": bool(lo <= o.value <= hi),
                         "abs_log_error": abs(log_error(med, o.value, floor))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- backtest
@dataclass
class Backtest:
    """Leave-one-case-out predictions: one row per held-out observation."""

    rows: pd.DataFrame  # case, outcome, observed, median, p05, p95, inside, abs_log_error, …
    settings: dict[str, Any]
    wall_seconds: float
    posteriors: dict[str, dict[str, Any]] = field(default_factory=dict)  # held-out case → posterior summary

    @property
    def coverage(self) -> float:
        """Share of observed values inside their predicted 90% interval."""
        return float(self.rows["inside"].mean())

    @property
    def median_abs_log_error(self) -> float:
        return float(self.rows["abs_log_error"].median())

    def to_dict(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "median_abs_log_error": self.median_abs_log_error,
                "interval": 0.9, "settings": self.settings, "wall_seconds": self.wall_seconds,
                "cases": self.rows.to_dict("records"), "posteriors": self.posteriors}


def backtest(cases: Sequence[Case], *, draws: int = 40, progress: Callable[[str], None] | None = None,
             **settings: Any) -> Backtest:
    """Leave one case out: calibrate on the rest (same `settings` as `calibrate`), predict the one left out
    with `draws` posterior draws, repeat for every case."""
    if len(cases) < 2:
        raise ValueError("a backtest needs at least two cases")
    start = time.perf_counter()
    frames, posteriors = [], {}
    for k, held in enumerate(cases):
        rest = [c for c in cases if c.id != held.id]
        if progress is not None:
            progress(f"case {k + 1}/{len(cases)}: calibrating without {held.id}")
        cal = calibrate(rest, progress=progress, **settings)
        if progress is not None:
            progress(f"case {k + 1}/{len(cases)}: predicting {held.id}")
        frames.append(predictive_check([held], cal.posterior, draws, int(settings.get("seed", 1))))
        posteriors[held.id] = {"simulations": cal.simulations,
                               "final_epsilon": cal.posterior.meta.get("final_epsilon"),
                               "parameters": cal.posterior.summary().to_dict("records")}
    rows = pd.concat(frames, ignore_index=True)
    return Backtest(rows, {"draws": draws, **settings}, time.perf_counter() - start, posteriors)


def backtest_plot(bt: Backtest, path: str | Path) -> Path:
    """Predicted (median and 90% interval) against observed, log–log, with the line of perfect prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = bt.rows
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    lo = float(np.nanmin([r["observed"].min(), r["p05"].replace(0, np.nan).min()])) / 3
    hi = float(np.nanmax([r["observed"].max(), r["p95"].max()])) * 3
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, ls="--", label="predicted = observed")
    colours = np.where(r["inside"], "tab:blue", "tab:red")
    floor = lo
    med = r["median"].clip(lower=floor)
    err = np.vstack([med - r["p05"].clip(lower=floor), r["p95"].clip(lower=floor) - med])
    for i in range(len(r)):
        ax.errorbar(r["observed"].iloc[i], med.iloc[i], yerr=err[:, i:i + 1], fmt="o", color=colours[i], capsize=3)
        ax.annotate(f"{r['case'].iloc[i]}\n{r['outcome'].iloc[i]}", (r["observed"].iloc[i], med.iloc[i]),
                    textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("observed (share of force over the case's horizon)")
    ax.set_ylabel("predicted median and 90% interval")
    ax.set_title(f"Leave-one-case-out backtest: coverage {bt.coverage:.0%}, "
                 f"median |log error| {bt.median_abs_log_error:.2f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target)
    plt.close(fig)
    return target
