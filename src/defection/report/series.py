"""Daily series across replicates: cumulative flows, per-replicate totals and per-day quantile bands."""

from __future__ import annotations

from typing import Any

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


def stored_baseline(artifact: dict[str, Any] | None) -> pd.DataFrame | None:
    """A stored paired baseline's daily series (artifact `claims.PAIRED_BASELINE`) as a frame: replicate, day and
    each kept series; None when the run stored none (or an empty one)."""
    if not artifact or not artifact.get("daily"):
        return None
    frame = pd.DataFrame(artifact["daily"])
    return None if frame.empty or not {"replicate", "day"} <= set(frame.columns) else frame


def paired_difference(daily: pd.DataFrame, baseline: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per replicate and day: the run's value of a series minus the baseline's in the same replicate on the same day
    (common random numbers: the pairs share their random numbers); only the (replicate, day) both have."""
    keys = ["replicate", "day"]
    joined = daily[[*keys, column]].merge(baseline[[*keys, column]], on=keys, suffixes=("", "_baseline"))
    joined[column] = joined[column].astype(float) - joined[f"{column}_baseline"].astype(float)
    return joined[[*keys, column]]
