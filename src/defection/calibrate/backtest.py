"""Leave-one-case-out validation of the calibrated model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defection.calibrate import scores as sc
from defection.calibrate.abc import (
    calibrate,
    particle_agent_days,
    predictive_check,
)
from defection.calibrate.cases import Case, library_hash
from defection.engine import code_version
from defection.scenario.posterior import Posterior
from defection.workers import replicate_workers

# ----------------------------------------------------------------------------- backtest
ROW_KEYS = (
    "case",
    "outcome",
    "observed",
    "median",
    "p05",
    "p25",
    "p75",
    "p95",
    "inside_50",
    "inside_90",
    "abs_log_error",
    "pit",
    "conformal_lo",
    "conformal_hi",
)
"""The columns of each held-out observation's row in `Backtest.to_dict()` (besides tolerance, tag, draws…)."""


def scored_rows(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The backtest's rows with each observation's scores added: inside its 50% and 90% intervals, PIT value
    (ties randomised, seeded with `seed`), weighted interval score of the model and of the naive baseline (log
    shares), and the jackknife+ conformal 90% interval from the other cases' leave-one-out residuals."""
    r = rows.copy()
    floor = r["log_floor"].to_numpy(float)
    y = sc.log_shares(r["observed"], floor)
    centre = sc.log_shares(r["median"], floor)
    groups = [str(c) for c in r["case"]]
    r["inside_50"] = sc.inside(r["observed"], r["p25"], r["p75"])
    r["inside_90"] = sc.inside(r["observed"], r["p05"], r["p95"])
    r["pit"] = sc.pit_values(list(r["observed"]), list(r["draws"]), seed)
    bound = (r["likelihood"] == "upper_bound").to_numpy() if "likelihood" in r else np.zeros(len(r), bool)
    if bound.any():  # "fewer than N": an interval covers it if its lower end is below N; no PIT for a bound
        obs = r["observed"].to_numpy(float)
        r.loc[bound, "inside_50"] = r["p25"].to_numpy(float)[bound] < obs[bound]
        r.loc[bound, "inside_90"] = r["p05"].to_numpy(float)[bound] < obs[bound]
        r.loc[bound, "pit"] = np.nan
    q = np.column_stack([sc.log_shares(r[c], floor) for c in ("p05", "p25", "median", "p75", "p95")])
    # a bound is scored at the value it allows that each score's terms would choose (eq. 54), model and baseline alike
    y_model = sc.scored_value(y, centre, bound)
    r["interval_score"] = sc.weighted_interval_score(y_model, centre, q[:, [1, 0]], q[:, [3, 4]])
    naive = sc.naive_quantiles(y, groups)
    r["naive_p05"], r["naive_median"], r["naive_p95"] = np.exp(naive[:, 0]), np.exp(naive[:, 2]), np.exp(naive[:, 4])
    y_naive = sc.scored_value(y, naive[:, 2], bound)
    r["interval_score_naive"] = sc.weighted_interval_score(y_naive, naive[:, 2], naive[:, [1, 0]], naive[:, [3, 4]])
    lo, hi = sc.jackknife_plus(centre, np.abs(y_model - centre), 0.9, groups)  # a bound's residual: (m − y)₊
    r["conformal_lo"], r["conformal_hi"] = np.exp(lo), np.exp(hi)
    r["conformal_inside_90"] = np.where(bound, lo <= y, sc.inside(y, lo, hi))  # a bound: the lower end below it
    return r


def _number(x: Any) -> Any:
    """A float for JSON: None where it is not finite (strict JSON has no NaN or Infinity)."""
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


@dataclass
class Backtest:
    """Leave-one-case-out predictions: one row per held-out observation."""

    rows: pd.DataFrame  # case, outcome, observed, median, p05, p25, p75, p95, inside, abs_log_error, draws, …
    settings: dict[str, Any]
    wall_seconds: float
    posteriors: dict[str, dict[str, Any]] = field(default_factory=dict)  # held-out case → posterior summary, particles
    cases_hash: str = "unknown"
    code_version: str = "unknown"

    @property
    def coverage(self) -> float:
        """Share of observed values inside their predicted 90% interval."""
        return float(self.rows["inside"].mean())

    @property
    def median_abs_log_error(self) -> float:
        return float(self.rows["abs_log_error"].median())

    def scored(self) -> pd.DataFrame:
        """`scored_rows` of this backtest (PIT ties randomised with the backtest's seed)."""
        return scored_rows(self.rows, int(self.settings.get("seed", 1)))

    def scores(self, scored: pd.DataFrame | None = None) -> dict[str, float]:
        """The summary scores (docs/calibration.md, "How the backtest is scored")."""
        r = self.scored() if scored is None else scored
        wis, naive = float(r["interval_score"].mean()), float(r["interval_score_naive"].mean())
        return {
            "coverage_50": float(r["inside_50"].mean()),
            "coverage_90": float(r["inside_90"].mean()),
            "median_abs_log_error": self.median_abs_log_error,
            "interval_score": wis,
            "interval_score_naive": naive,
            "skill": sc.skill(wis, naive),
            "conformal_coverage_90": float(r["conformal_inside_90"].mean()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], likelihood: Mapping[tuple[str, str], str] | None = None) -> Backtest:
        """The backtest a summary (`to_dict`, `backtest --json`, docs/validation/backtest.json) describes, to be
        scored again: each row's predictive quantiles and draws are kept, its scores recomputed by `to_dict`. A row's
        likelihood is the summary's, else `likelihood[(case, outcome)]` (summaries written before rows kept it),
        else "lognormal"."""
        rows = pd.DataFrame(data["rows"])
        known = dict(likelihood or {})
        kept = rows["likelihood"] if "likelihood" in rows else pd.Series([None] * len(rows))
        rows["likelihood"] = [
            k if isinstance(k, str) else known.get((str(c), str(o)), "lognormal")
            for k, c, o in zip(kept, rows["case"], rows["outcome"], strict=True)
        ]
        return cls(
            rows,
            dict(data.get("settings") or {}),
            float(data.get("wall_seconds") or 0.0),
            dict(data.get("posteriors") or {}),
            cases_hash=str(data.get("cases_hash", "unknown")),
            code_version=str(data.get("code_version", "unknown")),
        )

    def to_dict(self) -> dict[str, Any]:
        r = self.scored()
        keys = [*ROW_KEYS, "likelihood", "tolerance", "tag", "inside", "interval_score", "interval_score_naive"]
        keys += ["naive_p05", "naive_median", "naive_p95", "log_floor", "draws"]
        rows = [{k: _number(v) for k, v in rec.items()} for rec in r[[k for k in keys if k in r]].to_dict("records")]
        return {
            "code_version": self.code_version,
            "cases_hash": self.cases_hash,
            "observations": len(r),
            **{k: _number(v) for k, v in self.scores(r).items()},
            "coverage": self.coverage,  # = coverage_90, the name used before the scores
            "interval": 0.9,
            "settings": self.settings,
            "wall_seconds": self.wall_seconds,
            "rows": rows,
            "cases": rows,  # the name used before the scores
            "posteriors": self.posteriors,
        }


def particles(post: Posterior) -> dict[str, Any]:
    """A fold's weighted particles as its posterior file stores them (`parameters`, `samples`, `weights`): what the
    validation report's pairwise plots draw."""
    return {"parameters": list(post.parameters), "samples": post.samples.tolist(), "weights": post.weights.tolist()}


def case_folds(cases: Sequence[Case], folds: int | None = None) -> list[list[Case]]:
    """The groups of cases held out together: one case each (leave-one-case-out, `folds` None), or `folds` groups
    dealt in turn from the cases sorted by family and id, so that each group mixes the families and each training
    set keeps cases of both (grouped K-fold cross-validation)."""
    if folds is None:
        return [[c] for c in cases]
    if not 2 <= folds <= len(cases):
        raise ValueError(f"folds = {folds} must be between 2 and the number of cases ({len(cases)})")
    ordered = sorted(cases, key=lambda c: (c.meta.family, c.id))
    return [ordered[k::folds] for k in range(folds)]


def backtest(
    cases: Sequence[Case],
    *,
    draws: int = 40,
    folds: int | None = None,
    progress: Callable[[str], None] | None = None,
    on_fold: Callable[[float, float], None] | None = None,
    **settings: Any,
) -> Backtest:
    """Leave one case out: calibrate on the rest (same `settings` as `calibrate`), predict the one left out
    with `draws` posterior draws, repeat for every case. With `folds`, hold out each of `folds` groups of cases
    instead (`case_folds`): fewer calibrations, each on fewer cases.

    With `workers` > 1 one pool of worker processes serves every fold (started once, not once per fold), and each
    held-out prediction runs in it while the next fold calibrates.

    `on_fold(done, total)` is called after each fold's calibration with the work done and in all, each fold
    weighted by the agent-days of one particle of its training set (`abc.particle_agent_days`): folds of unequal
    cost then give a time left proportional to the work left."""
    if len(cases) < 2:
        raise ValueError("a backtest needs at least two cases")
    groups = case_folds(cases, folds)
    start = time.perf_counter()
    seed = int(settings.get("seed", 1))
    predictions: list[Future[pd.DataFrame] | pd.DataFrame] = []
    posteriors = {}
    weights = [float(particle_agent_days([c for c in cases if c.id not in {h.id for h in held}])) for held in groups]
    with replicate_workers(int(settings.get("workers", 1))) as pool:
        for k, held in enumerate(groups):
            out = {c.id for c in held}
            rest = [c for c in cases if c.id not in out]
            names = ", ".join(c.id for c in held)
            unit = "case" if folds is None else "fold"
            if progress is not None:
                progress(f"{unit} {k + 1}/{len(groups)}: calibrating without {names}")
            cal = calibrate(rest, progress=progress, pool=pool, **settings)
            if progress is not None:
                progress(f"{unit} {k + 1}/{len(groups)}: predicting {names}")
            if pool is not None:
                predictions.append(pool.submit(predictive_check, held, cal.posterior, draws, seed))
            else:
                predictions.append(predictive_check(held, cal.posterior, draws, seed))
            fold = {
                "simulations": cal.simulations,
                "final_epsilon": cal.posterior.meta.get("final_epsilon"),
                "parameters": cal.posterior.summary().to_dict("records"),
                "particles": particles(cal.posterior),
            }
            posteriors.update({c.id: fold for c in held})  # one summary per fold, shared by its cases
            if on_fold is not None:
                on_fold(sum(weights[: k + 1]), sum(weights))
        frames = [p.result() if isinstance(p, Future) else p for p in predictions]
    rows = pd.concat(frames, ignore_index=True)
    return Backtest(
        rows,
        {"draws": draws, "folds": folds, **settings},
        time.perf_counter() - start,
        posteriors,
        cases_hash=library_hash(cases),
        code_version=code_version(),
    )


def backtest_plot(bt: Backtest, path: str | Path) -> Path:
    """Predicted (median and 90% interval) against observed, log–log, with the line of perfect prediction."""
    import matplotlib  # lazy: matplotlib loads only to draw the plot, with the file-only Agg backend

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
        ax.errorbar(r["observed"].iloc[i], med.iloc[i], yerr=err[:, i : i + 1], fmt="o", color=colours[i], capsize=3)
        ax.annotate(
            f"{r['case'].iloc[i]}\n{r['outcome'].iloc[i]}",
            (r["observed"].iloc[i], med.iloc[i]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=7,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("observed (share of force over the case's horizon)")
    ax.set_ylabel("predicted median and 90% interval")
    ax.set_title(
        f"Leave-one-case-out backtest: coverage {bt.coverage:.0%}, median |log error| {bt.median_abs_log_error:.2f}",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target)
    plt.close(fig)
    return target
