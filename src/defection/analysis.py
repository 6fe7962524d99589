"""Statistics across replicates: medians with 90% intervals, and numbers made safe for JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from defection.model.outputs import OPEN_ENDED, OUTCOMES


def quantiles(values: np.ndarray, open_ended: bool) -> tuple[float, float, float, float]:
    """(median, p05, p95, mean). Open-ended outcomes treat NaN ('never') as +∞ and use order statistics."""
    v = np.asarray(values, dtype=float)
    if open_ended:
        v = np.where(np.isnan(v), np.inf, v)
        med, lo, hi = (float(np.quantile(v, q, method="inverted_cdf")) for q in (0.5, 0.05, 0.95))
        finite = v[np.isfinite(v)]
        mean = float(finite.mean()) if finite.size == v.size else math.inf
        return med, lo, hi, mean
    return float(np.median(v)), float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95)), float(np.mean(v))


def interval_table(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """Median, 5th and 95th percentile and mean of each outcome across replicates."""
    rows = []
    for name in OUTCOMES:
        med, lo, hi, mean = quantiles(per_replicate[name].to_numpy(dtype=float), name in OPEN_ENDED)
        rows.append({"outcome": name, "median": med, "p05": lo, "p95": hi, "mean": mean})
    return pd.DataFrame(rows)


def json_number(v: float) -> float | None:
    """A float for JSON: ±∞ and NaN become null."""
    return float(v) if math.isfinite(v) else None


def json_safe(o: Any) -> Any:
    """A JSON-ready copy of nested dicts, lists and tuples in which ±∞ and NaN floats become null."""
    if isinstance(o, float):
        return json_number(o)
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_safe(v) for v in o]
    return o
