"""Global sensitivity analysis of a spec's outcomes: Sobol' first-order and total indices (Saltelli sample,
bootstrap confidence intervals) or Morris elementary-effects screening (mu*, sigma), with SALib.

The sample is the spec's own design (`design.unit_design`: the Saltelli/Sobol' sample when the spec's sampler
is 'sobol', Morris trajectories when it is 'morris'), in the unit cube; indices are invariant to the factors'
affine maps, and Morris effects are per unit of each factor's range (so factors are comparable). The index
computation is a pure function of (problem, X, Y), so it can be checked against analytic test functions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from defection.explore.spec import Spec
from defection.model.outputs import OPEN_ENDED, OUTCOMES

Method = Literal["sobol", "morris"]
METHODS: tuple[Method, ...] = ("sobol", "morris")
MORRIS_LEVELS = 4  # the value design.unit_design samples Morris trajectories with
NUM_RESAMPLES = 200
CONF_LEVEL = 0.95
SOBOL_MIN_SAMPLES = 512
"""The base sample N below which a Sobol' analysis is warned about: on the Ishigami function (indices 0–0.56), SALib's
95% bootstrap half-widths of ST are ±0.34 at N = 64, ±0.21 at 128, ±0.16 at 256 and first fall to about ±0.1 at
N = 512 (±0.09 at 1024; measured with this module's `indices`, seed 1). SALib's own examples use N = 1024."""
MORRIS_MIN_TRAJECTORIES = 10
"""The Morris trajectories below which a screening is warned about: the low end of the 10–20 that Campolongo,
Cariboni & Saltelli (2007) and Saltelli et al.'s Primer (2008, ch. 3) recommend."""


def check_method(spec: Spec, method: str | None, outcomes: list[str]) -> Method:
    """The method for this spec (its sampler, unless `method` is given and agrees); ValueError says what is
    wrong with the combination."""
    sampler = spec.experiment.sampler
    if method is not None and method not in METHODS:
        raise ValueError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if sampler not in METHODS:
        raise ValueError(
            f"sensitivity needs a spec whose sampler is 'sobol' or 'morris'; "
            f"{spec.experiment.name!r} has sampler = {sampler!r} (set [experiment] sampler)"
        )
    if method is not None and method != sampler:
        raise ValueError(
            f"--method {method} needs [experiment] sampler = '{method}', but the spec's sampler is "
            f"'{sampler}' (its design is {sampler} points, not {method} points)"
        )
    if sampler == "sobol" and spec.experiment.samples < 2:
        raise ValueError("a Sobol' analysis needs samples >= 2 (a power of two, e.g. 64)")
    if sampler == "morris" and spec.experiment.samples < 2:
        raise ValueError("a Morris analysis needs samples (trajectories) >= 2")
    for name in outcomes:
        if name not in OUTCOMES:
            raise ValueError(f"outcome {name!r} is unknown; allowed: {', '.join(OUTCOMES)}")
        if name in OPEN_ENDED:
            raise ValueError(
                f"outcome {name!r} can be 'never' (infinite); {sampler} indices need a finite "
                "outcome at every design point"
            )
    return sampler


def sobol_indices(
    problem: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    seed: int | None = None,
    num_resamples: int = NUM_RESAMPLES,
    conf_level: float = CONF_LEVEL,
) -> pd.DataFrame:
    """First-order (S1) and total (ST) Sobol' indices with bootstrap half-widths (`*_conf`) for a Saltelli
    sample X (without second-order columns) and outputs Y; one row per factor. X is not used by the
    estimator, only checked against Y."""
    from SALib.analyze import sobol  # lazy: SALib loads only for the method asked for

    y = _outputs(X, Y)
    res = sobol.analyze(
        problem, y, calc_second_order=False, num_resamples=num_resamples, conf_level=conf_level, seed=seed
    )
    return pd.DataFrame(
        {
            "factor": problem["names"],
            "S1": res["S1"],
            "S1_conf": res["S1_conf"],
            "ST": res["ST"],
            "ST_conf": res["ST_conf"],
        }
    )


def morris_indices(
    problem: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    seed: int | None = None,
    num_resamples: int = NUM_RESAMPLES,
    conf_level: float = CONF_LEVEL,
) -> pd.DataFrame:
    """Morris screening: mean absolute elementary effect (mu_star) with its bootstrap half-width, the mean
    (mu) and the standard deviation (sigma) of the effects; one row per factor."""
    from SALib.analyze import morris  # lazy: SALib loads only for the method asked for

    y = _outputs(X, Y)
    res = morris.analyze(
        problem,
        np.asarray(X, dtype=float),
        y,
        num_resamples=num_resamples,
        conf_level=conf_level,
        num_levels=MORRIS_LEVELS,
        seed=seed,
    )
    return pd.DataFrame(
        {
            "factor": problem["names"],
            "mu_star": np.asarray(res["mu_star"], dtype=float),
            "mu_star_conf": np.asarray(res["mu_star_conf"], dtype=float),
            "mu": np.asarray(res["mu"], dtype=float),
            "sigma": np.asarray(res["sigma"], dtype=float),
        }
    )


def indices(
    method: Method, problem: dict[str, Any], X: np.ndarray, Y: np.ndarray, seed: int | None = None
) -> pd.DataFrame:
    """The method's indices, ranked (most influential first: by ST for Sobol', mu* for Morris). An output that
    does not vary over the design has no Sobol' indices (NaN) and zero Morris effects."""
    key = "ST" if method == "sobol" else "mu_star"
    y = _outputs(X, Y)
    if method == "sobol" and np.ptp(y) == 0:
        df = pd.DataFrame({"factor": problem["names"], **dict.fromkeys(("S1", "S1_conf", "ST", "ST_conf"), np.nan)})
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            df = (sobol_indices if method == "sobol" else morris_indices)(problem, X, y, seed=seed)
    df = df.sort_values(key, ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def _outputs(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    y = np.asarray(Y, dtype=float).ravel()
    if len(y) != len(X):
        raise ValueError(f"{len(y)} outputs for {len(X)} design points")
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise ValueError(f"{bad} of {len(y)} outputs are not finite; the indices need every design point")
    return y


def sample_warnings(method: Method, samples: int, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Why the indices may not be trusted: a base sample below SALib's guidance (`SOBOL_MIN_SAMPLES` for Sobol',
    `MORRIS_MIN_TRAJECTORIES` for Morris), and, per outcome, every factor's 95% interval including 0 (no factor told
    apart from no influence at all). Empty when neither applies; an outcome that does not vary gives no warning
    here (the command says so)."""
    out = []
    if method == "sobol" and samples < SOBOL_MIN_SAMPLES:
        out.append(
            f"the base sample N = {samples} is below {SOBOL_MIN_SAMPLES}: at that size SALib's 95% bootstrap "
            "intervals of Sobol' indices are wider than ±0.1 (±0.34 at N = 64 on the Ishigami test function), so "
            f"indices that close cannot be told apart; set [experiment] samples to {SOBOL_MIN_SAMPLES} or more "
            "(a power of two)"
        )
    if method == "morris" and samples < MORRIS_MIN_TRAJECTORIES:
        out.append(
            f"{samples} Morris trajectories are fewer than {MORRIS_MIN_TRAJECTORIES}, the low end of the 10–20 "
            "recommended (Campolongo et al. 2007; Saltelli et al. 2008): the ranking may change with more; set "
            f"[experiment] samples to {MORRIS_MIN_TRAJECTORIES} or more"
        )
    key = "ST" if method == "sobol" else "mu_star"
    for outcome, table in tables.items():
        value, conf = table[key].to_numpy(dtype=float), table[f"{key}_conf"].to_numpy(dtype=float)
        if not np.isfinite(value).any():
            continue
        low = value - np.where(np.isfinite(conf), conf, np.inf)
        if bool(np.all(~np.isfinite(low) | (low <= 0))):
            out.append(
                f"{outcome}: every factor's 95% interval of {key} includes 0, so no factor's influence can be told "
                "apart from none at this sample size; a larger sample (more [experiment] samples) narrows them"
            )
    return out


def outputs_from_rows(rows: list[dict[str, Any]], outcome: str) -> np.ndarray:
    """`<outcome>_mean` of every evaluated point; RuntimeError names the first failure if any point failed."""
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(rows)} design points failed; first: {failed[0].get('error')}")
    return np.array([r[f"{outcome}_mean"] for r in rows], dtype=float)


def plot_indices(tables: dict[str, pd.DataFrame], method: Method, path: str | Path, title: str = "") -> None:
    """A bar chart per outcome (S1 and ST, or mu* and sigma) with confidence error bars, saved as PNG."""
    import matplotlib  # lazy: matplotlib loads only to draw the plot, with the file-only Agg backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(tables)
    height = max(2.5, 0.45 * max(len(t) for t in tables.values()) + 1.2)
    fig, axes = plt.subplots(n, 1, figsize=(8.5, height * n), squeeze=False)
    for ax, (outcome, table) in zip(axes[:, 0], tables.items(), strict=True):
        _bars(ax, table.iloc[::-1], method)
        ax.set_title(outcome, loc="left", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _bars(ax: Any, table: pd.DataFrame, method: Method) -> None:
    y = np.arange(len(table))
    h = 0.38
    if method == "sobol":
        ax.barh(y + h / 2, table["S1"], h, xerr=table["S1_conf"], label="first order S1", capsize=3)
        ax.barh(y - h / 2, table["ST"], h, xerr=table["ST_conf"], label="total ST", capsize=3)
        ax.set_xlabel("Sobol' index (95% bootstrap interval)")
    else:
        ax.barh(y + h / 2, table["mu_star"], h, xerr=table["mu_star_conf"], label="mu* (mean |effect|)", capsize=3)
        ax.barh(y - h / 2, table["sigma"], h, label="sigma (interactions, non-linearity)")
        ax.set_xlabel("elementary effect per unit of the factor's range")
    ax.set_yticks(y, table["factor"], fontsize=8)
    ax.axvline(0.0, color="grey", lw=0.6)
    ax.legend(fontsize=8, loc="lower right")


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (JSON: non-finite numbers become None)."""
    rows = []
    for rec in table.to_dict("records"):
        rows.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not np.isfinite(v)
                    else (int(v) if isinstance(v, np.integer) else v)
                )
                for k, v in rec.items()
            }
        )
    return rows


def outcome_summary(Y: dict[str, np.ndarray]) -> pd.DataFrame:
    """Median, 90% range and mean of each outcome over the design points (the stored outcomes table)."""
    rows = [
        {
            "outcome": name,
            "median": float(np.median(y)),
            "p05": float(np.quantile(y, 0.05)),
            "p95": float(np.quantile(y, 0.95)),
            "mean": float(np.mean(y)),
        }
        for name, y in Y.items()
    ]
    return pd.DataFrame(rows, columns=["outcome", "median", "p05", "p95", "mean"])
