"""Daily series across replicates: cumulative flows, per-replicate totals and per-day quantile bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The quantiles across replicates drawn by every time-series figure: 90% band, 50% band, median."""


def matrix(daily: pd.DataFrame, column: str, cumulative: bool = False) -> pd.DataFrame:
    """One series as a days × replicates frame (index: day), optionally cumulated over days."""
    wide = daily.pivot(index="day", columns="replicate", values=column).sort_index()
    return wide.cumsum() if cumulative else wide


def bands(daily: pd.DataFrame, column: str, cumulative: bool = False) -> pd.DataFrame:
    """Per day: p05, p25, p50 (median), p75 and p95 of a series across replicates."""
    wide = matrix(daily, column, cumulative)
    values = wide.to_numpy(dtype=float)
    q = np.quantile(values, BAND_QUANTILES, axis=1) if values.size else np.empty((len(BAND_QUANTILES), 0))
    out = pd.DataFrame({"day": wide.index.to_numpy()})
    for level, row in zip(BAND_QUANTILES, q, strict=True):
        out[f"p{round(100 * level):02d}"] = row
    return out


def median_across(daily: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per day: the median across replicates of a state series (e.g. a percentile of company strength)."""
    wide = matrix(daily, column)
    return pd.DataFrame({"day": wide.index.to_numpy(), "median": np.median(wide.to_numpy(dtype=float), axis=1)})


def replicate_totals(daily: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per replicate: the sum over days of each flow column."""
    return daily.groupby("replicate")[columns].sum()


def replicate_peaks(daily: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per replicate: the largest daily value of each stock column."""
    return daily.groupby("replicate")[columns].max()


def summarise(values: np.ndarray | pd.Series) -> dict[str, float]:
    """Median, p05 and p95 of values across replicates (non-finite values dropped; NaN if none is left)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": float("nan"), "p05": float("nan"), "p95": float("nan")}
    return {"median": float(np.median(v)), "p05": float(np.quantile(v, 0.05)), "p95": float(np.quantile(v, 0.95))}
