"""Differences between two runs, B − A, per outcome.

Runs that share a master seed and the same replicates used common random numbers: replicate r of B and
replicate r of A drew the same random numbers, so the per-replicate difference B_r − A_r isolates the effect of
what differs between the runs. For such paired runs the median of the paired differences, their 5th–95th
percentile (a 90% interval) and the share of replicates where B > A are reported. Runs with different seeds are
not paired: every difference B_j − A_i over all pairs of replicates is used instead, which gives a wider, unpaired
interval. Replicates with a non-finite value (e.g. days_to_target 'never') are left out of the differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DIFF_COLUMNS = ["outcome", "paired", "n", "median", "p05", "p95", "share_b_greater"]


def pairing(
    run_a: dict[str, Any], run_b: dict[str, Any], reps_a: pd.DataFrame, reps_b: pd.DataFrame
) -> tuple[bool, str]:
    """Whether replicate r of run B can be paired with replicate r of run A (same seed, same replicates), and
    why (or why not)."""
    if reps_a.empty or reps_b.empty or "replicate" not in reps_a or "replicate" not in reps_b:
        return False, "not paired: one of the runs has no per-replicate outcomes"
    if run_a.get("seed") != run_b.get("seed"):
        return False, (
            f"not paired: the runs have different seeds ({run_a.get('seed')} and {run_b.get('seed')}); "
            "intervals are unpaired (all pairs of replicates)"
        )
    if sorted(reps_a["replicate"]) != sorted(reps_b["replicate"]):
        return False, (
            f"not paired: the runs have different replicates ({len(reps_a)} and {len(reps_b)}); "
            "intervals are unpaired (all pairs of replicates)"
        )
    return True, (
        f"paired: same seed ({run_a.get('seed')}) and the same {len(reps_a)} replicates, so replicate r "
        "of each run used common random numbers"
    )


def common_outcomes(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The outcome columns both per-replicate frames hold, in A's order."""
    return [c for c in a.columns if c != "replicate" and c in b.columns]


def _stats(outcome: str, paired: bool, diffs: np.ndarray, greater: np.ndarray) -> dict[str, Any]:
    if diffs.size == 0:
        return {
            "outcome": outcome,
            "paired": paired,
            "n": 0,
            "median": np.nan,
            "p05": np.nan,
            "p95": np.nan,
            "share_b_greater": np.nan,
        }
    return {
        "outcome": outcome,
        "paired": paired,
        "n": int(diffs.size),
        "median": float(np.median(diffs)),
        "p05": float(np.quantile(diffs, 0.05)),
        "p95": float(np.quantile(diffs, 0.95)),
        "share_b_greater": float(np.mean(greater)),
    }


def paired_differences(a: pd.DataFrame, b: pd.DataFrame, outcomes: list[str] | None = None) -> pd.DataFrame:
    """Per outcome: median, p05 and p95 of B_r − A_r over the replicates r both runs have, and the share of them
    with B_r > A_r. `a` and `b` are per-replicate frames (replicate and one column per outcome)."""
    names = outcomes if outcomes is not None else common_outcomes(a, b)
    joined = a[["replicate", *names]].merge(
        b[["replicate", *names]], on="replicate", how="inner", suffixes=("_a", "_b")
    )
    rows = []
    for name in names:
        va = joined[f"{name}_a"].to_numpy(dtype=float)
        vb = joined[f"{name}_b"].to_numpy(dtype=float)
        keep = np.isfinite(va) & np.isfinite(vb)
        rows.append(_stats(name, True, vb[keep] - va[keep], vb[keep] > va[keep]))
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def unpaired_differences(a: pd.DataFrame, b: pd.DataFrame, outcomes: list[str] | None = None) -> pd.DataFrame:
    """Per outcome: median, p05 and p95 of B_j − A_i over every pair of replicates (i of A, j of B), and the
    share of those pairs with B_j > A_i: the comparison for runs that did not share random numbers."""
    names = outcomes if outcomes is not None else common_outcomes(a, b)
    rows = []
    for name in names:
        va = a[name].to_numpy(dtype=float)
        vb = b[name].to_numpy(dtype=float)
        va, vb = va[np.isfinite(va)], vb[np.isfinite(vb)]
        grid = vb[None, :] - va[:, None]
        rows.append(_stats(name, False, grid.ravel(), (grid > 0).ravel()))
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def differences(
    run_a: dict[str, Any], run_b: dict[str, Any], reps_a: pd.DataFrame, reps_b: pd.DataFrame
) -> tuple[pd.DataFrame, bool, str]:
    """B − A for every common outcome: paired when the runs share seed and replicates, else unpaired; returns
    (table, paired, explanation)."""
    paired, why = pairing(run_a, run_b, reps_a, reps_b)
    if reps_a.empty or reps_b.empty:
        return pd.DataFrame(columns=DIFF_COLUMNS), False, why
    table = paired_differences(reps_a, reps_b) if paired else unpaired_differences(reps_a, reps_b)
    return table, paired, why
