"""Scores of out-of-sample predictions, the way forecasters score them (docs/calibration.md, "How the backtest is
scored"): interval coverage, the weighted interval score on log shares (`scoringrules`), the median |log error|,
PIT values, a naive baseline and its skill, and a jackknife+ conformal interval from the leave-one-out residuals.

Every function is pure: arrays in, numbers out. Shares are compared on the natural-log scale, with a share below
the case's log floor (eq. 40; `cases.log_floor`) raised to it so that a zero has a finite logarithm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

FloatArray = npt.NDArray[np.float64]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The predictive quantiles kept per observation: the 90% and 50% central intervals and the median."""
ALPHAS = (0.5, 0.1)
"""The weighted interval score's intervals, as 1 − level: the 50% (p25–p75) and 90% (p05–p95) intervals."""


def log_shares(values: npt.ArrayLike, floor: npt.ArrayLike) -> FloatArray:
    """Eq. 40: natural log of shares, each raised to its floor first."""
    out: FloatArray = np.log(np.maximum(np.asarray(values, float), np.asarray(floor, float)))
    return out


def inside(observed: npt.ArrayLike, lo: npt.ArrayLike, hi: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each observed value lies in its closed interval [lo, hi]."""
    y = np.asarray(observed, float)
    return np.asarray((np.asarray(lo, float) <= y) & (y <= np.asarray(hi, float)), dtype=bool)


def interval_coverage(observed: npt.ArrayLike, lo: npt.ArrayLike, hi: npt.ArrayLike) -> float:
    """The share of observed values inside their intervals (nan with no observations)."""
    hits = inside(observed, lo, hi)
    return float(hits.mean()) if hits.size else math.nan


def weighted_interval_score(
    observed_log: npt.ArrayLike,
    median_log: npt.ArrayLike,
    lower_log: npt.ArrayLike,
    upper_log: npt.ArrayLike,
    alphas: Sequence[float] = ALPHAS,
) -> FloatArray:
    """The weighted interval score (Bracher et al. 2021) of each observation on log shares, by `scoringrules`:
    lower/upper have one column per alpha in `alphas` (1 − the interval's level); canonical weights, alpha/2 for
    each interval and 1/2 for the median, over K + 1/2."""
    import scoringrules as sr  # lazy: only the backtest scores

    # the numba backend: scoringrules 0.10.0's numpy backend drops the 50% interval's penalty for arrays of
    # observations (tests/test_scores.py checks the value by hand)
    score = sr.weighted_interval_score(
        np.asarray(observed_log, float),
        np.asarray(median_log, float),
        np.asarray(lower_log, float),
        np.asarray(upper_log, float),
        np.asarray(alphas, float),
        backend="numba",
    )
    return np.atleast_1d(np.asarray(score, float))


def scored_value(observed_log: npt.ArrayLike, median_log: npt.ArrayLike, upper_bound: npt.ArrayLike) -> FloatArray:
    """Eq. 54: the value an observation is scored at, y*: y itself, or, for a bound "fewer than N" (y = log N),
    min(y, m) with m the prediction's median. For nested central intervals every term of the weighted interval
    score is then at its smallest over the values the bound allows: |m − y*| = (m − y)₊, and an interval is
    penalised only by (l − y)₊, how far its lower end lies above the bound."""
    y, m = np.asarray(observed_log, float), np.asarray(median_log, float)
    out: FloatArray = np.where(np.asarray(upper_bound, bool), np.minimum(y, m), y)
    return out


def median_abs_log_error(observed: npt.ArrayLike, median: npt.ArrayLike, floor: npt.ArrayLike) -> float:
    """The median over observations of |log predicted median − log observed| (eq. 40 without the tolerance)."""
    err = np.abs(log_shares(median, floor) - log_shares(observed, floor))
    return float(np.median(err)) if err.size else math.nan


def pit_value(observed: float, draws: npt.ArrayLike, rng: np.random.Generator) -> float:
    """The randomised probability integral transform of one observation under its predictive draws:
    (#draws below + V)/(n + 1), V uniform on [0, #draws equal + 1], which is uniform on [0, 1] when the
    observation is exchangeable with the draws, ties (many zero draws) included."""
    x = np.asarray(draws, float)
    below, equal = int(np.sum(x < observed)), int(np.sum(x == observed))
    return float((below + rng.uniform(0.0, equal + 1.0)) / (x.size + 1))


def pit_values(observed: Sequence[float], draws: Sequence[npt.ArrayLike], seed: int = 0) -> FloatArray:
    """`pit_value` of each observation, ties randomised by one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    return np.array([pit_value(float(y), d, rng) for y, d in zip(observed, draws, strict=True)], dtype=float)


def _others(groups: Sequence[str] | None, n: int) -> list[FloatArray]:
    """For each observation i, a mask of the observations from other groups (cases): the ones used to predict i."""
    g = np.arange(n).astype(str) if groups is None else np.asarray(groups, dtype=str)
    return [np.asarray(g != g[i], dtype=bool) for i in range(n)]


def naive_quantiles(
    observed_log: npt.ArrayLike, groups: Sequence[str] | None = None, quantiles: Sequence[float] = QUANTILES
) -> FloatArray:
    """The naive baseline: observation i predicted log-normal, with the mean and standard deviation (ddof 1) of
    the log values of the observations in other groups (cases); returns log quantiles, one row per observation
    (nan where fewer than two other observations)."""
    y = np.asarray(observed_log, float)
    z = norm.ppf(np.asarray(quantiles, float))
    out = np.full((y.size, z.size), np.nan)
    for i, mask in enumerate(_others(groups, y.size)):
        rest = y[mask]
        if rest.size >= 2:
            out[i] = rest.mean() + rest.std(ddof=1) * z
    return out


def skill(score_model: float, score_naive: float) -> float:
    """Skill against the baseline: 1 − score_model/score_naive (1 perfect, 0 no better, < 0 worse)."""
    if not math.isfinite(score_naive) or score_naive <= 0:
        return math.nan
    return 1.0 - score_model / score_naive


def jackknife_plus(
    centre_log: npt.ArrayLike,
    residuals: npt.ArrayLike,
    level: float = 0.9,
    groups: Sequence[str] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Jackknife+ interval (Barber et al. 2021) of each observation on the log scale: from the other groups'
    leave-one-out residuals R_j = |log observed_j − log median_j|, the floor(α(m+1))-th smallest of
    centre_i − R_j and the ceil((1 − α)(m+1))-th smallest of centre_i + R_j, α = 1 − level, m the number of
    other observations; −inf/+inf where m is too small for that rank. Each fold predicts only its own held-out
    case, so centre_i stands for every leave-one-out fit at observation i."""
    c, r = np.asarray(centre_log, float), np.asarray(residuals, float)
    alpha = 1.0 - level
    lo, hi = np.full(c.size, -np.inf), np.full(c.size, np.inf)
    for i, mask in enumerate(_others(groups, c.size)):
        rest = r[mask]
        m = rest.size
        # the ranks, with a margin for rounding (1 − 0.8 is 0.19999… in binary floating point)
        k_lo, k_hi = math.floor(alpha * (m + 1) + 1e-9), math.ceil(level * (m + 1) - 1e-9)
        if 1 <= k_lo <= m:
            lo[i] = np.sort(c[i] - rest)[k_lo - 1]
        if 1 <= k_hi <= m:
            hi[i] = np.sort(c[i] + rest)[k_hi - 1]
    return lo, hi
