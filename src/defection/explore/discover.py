"""Scenario discovery with PRIM (EMA Workbench): in which regions of the uncertainty space does a package fail
(or succeed)?

The spec's design is run over its uncertainties only, with the levers fixed: a lever listed with a single value
takes that value, any other lever keeps the base scenario's value. Each case is marked as of interest when the
outcome's mean over replicates is below (or above) a threshold; PRIM peels boxes around the cases of interest.
For each box, the chosen point of its peeling trajectory is the one with the highest coverage among those whose
density reaches PRIM's density threshold (else the densest); its limits are reported for the uncertainties it
restricts, with coverage (share of all cases of interest inside the box), density (share of the box's cases that
are of interest), mass and quasi-p-values. A threshold that no case, or every case, meets leaves nothing to
separate: no box is sought, and `outcome_range` and `splitting_threshold` tell the user what to try instead.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from defection.explore.spec import Spec

DENSITY_THRESHOLD = 0.8


def uncertainty_spec(spec: Spec) -> Spec:
    """The spec with its levers removed: its design spans the uncertainties only."""
    if not spec.uncertainties:
        raise ValueError("scenario discovery needs at least one [[uncertainties]] factor in the spec")
    return spec.model_copy(update={"levers": []})


def fixed_levers(spec: Spec) -> dict[str, Any]:
    """Levers listed with exactly one value, as changes; the others keep the base scenario's value."""
    return {f.path: f.values[0] for f in spec.levers if f.values is not None and len(f.values) == 1}


def cases_of_interest(values: np.ndarray, threshold: float, below: bool = True) -> np.ndarray:
    """True where the outcome is below (or above) the threshold; a NaN outcome is never of interest."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return (v < threshold) if below else (v > threshold)


def threshold_split(y: np.ndarray) -> Literal["none", "all", "some"]:
    """Whether no case, every case or only some cases are of interest; PRIM needs some of each to find a box."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return "none"
    return "all" if y.all() else "some"


def outcome_range(values: np.ndarray) -> dict[str, float] | None:
    """Minimum, median and maximum of the finite outcome values (None if there is none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def splitting_threshold(values: np.ndarray) -> float | None:
    """A threshold that splits the cases as evenly as possible (strictly between two observed values, so the
    same cases fall on each side whether the cases of interest are below or above it), rounded to the fewest
    significant digits that keep it there; None if the finite values are all equal."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    distinct = np.unique(v)
    if len(distinct) < 2:
        return None
    mids = (distinct[:-1] + distinct[1:]) / 2
    below = np.searchsorted(v, mids, side="left")  # cases under each candidate
    k = int(np.argmin(np.abs(below - len(v) / 2)))
    lo, hi, mid = float(distinct[k]), float(distinct[k + 1]), float(mids[k])
    for digits in range(1, 18):
        rounded = float(f"{mid:.{digits}g}")
        if lo < rounded < hi:
            return rounded
    return mid


def prim_boxes(
    x: pd.DataFrame,
    y: np.ndarray,
    density_threshold: float = DENSITY_THRESHOLD,
    max_boxes: int = 1,
    peel_alpha: float = 0.05,
    mass_min: float = 0.05,
) -> list[dict[str, Any]]:
    """Up to `max_boxes` PRIM boxes (stopping at the first that does not reach the density threshold), each at its
    chosen trajectory point: {coverage, density, mass, restricted: {factor: limits}, qp, trajectory, chosen}."""
    y = np.asarray(y, dtype=bool)
    if threshold_split(y) != "some":  # no case, or every case, is of interest: there is no region to find
        return []
    x = _prim_frame(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EMA Workbench warns about optional packages on import
        from ema_workbench.analysis import prim  # lazy and inside the filter: it warns on import

        logging.getLogger("EMA").setLevel(logging.WARNING)
        algo = prim.Prim(x, y, threshold=density_threshold, peel_alpha=peel_alpha, mass_min=mass_min)
        boxes = []
        for _ in range(max_boxes):
            box = algo.find_box()
            if box is None or box.mean < density_threshold:
                break
            boxes.append(describe_box(box, algo.box_init, density_threshold))
    return boxes


def _prim_frame(x: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as floats, anything else as a categorical (PRIM restricts categories by subsets)."""
    out = {}
    for col in x.columns:
        s = x[col]
        out[col] = (
            s.astype(float)
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            else s.astype(str).astype("category")
        )
    return pd.DataFrame(out, index=x.index)


def choose(trajectory: pd.DataFrame, density_threshold: float) -> int:
    """The trajectory point with the highest coverage among those dense enough (ties: denser, then earlier);
    the densest point if none is."""
    traj = trajectory.reset_index(drop=True)
    dense = traj[traj["density"] >= density_threshold]
    if dense.empty:
        return int(traj["density"].astype(float).idxmax())
    order = dense.sort_values(["coverage", "density"], ascending=[False, False], kind="stable")
    return int(order.index[0])


def describe_box(box: Any, box_init: pd.DataFrame, density_threshold: float) -> dict[str, Any]:
    traj = box.peeling_trajectory.reset_index(drop=True)
    i = choose(traj, density_threshold)
    lims = box.box_lims[i]
    qp = box.qp[i] if i < len(box.qp) else {}
    restricted: dict[str, dict[str, Any]] = {}
    for col in lims.columns:
        lo, hi = lims[col].iloc[0], lims[col].iloc[1]
        init_lo, init_hi = box_init[col].iloc[0], box_init[col].iloc[1]
        if isinstance(lo, set):
            if lo != init_lo:
                restricted[col] = {"values": sorted(lo, key=str)}
        elif lo > init_lo or hi < init_hi:
            restricted[col] = {"low": float(lo) if lo > init_lo else None, "high": float(hi) if hi < init_hi else None}
    for col, p in qp.items():
        if col in restricted:
            restricted[col]["qp"] = [_qp_or_none(v) for v in p]
    row = traj.iloc[i]
    return {
        "coverage": float(row["coverage"]),
        "density": float(row["density"]),
        "mass": float(row["mass"]),
        "n": int(row["n"]),
        "chosen": i,
        "restricted": restricted,
        "trajectory": [
            {k: float(r[k]) for k in ("coverage", "density", "mass", "res_dim")} for _, r in traj.iterrows()
        ],
    }


def _qp_or_none(v: Any) -> float | None:
    """A restriction's quasi-p-value as a float, or None where PRIM gives none (missing, non-finite or negative)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) and f >= 0 else None  # PRIM marks an unrestricted side with -1
