"""Leave-one-case-out validation of the calibrated model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defection.calibrate.abc import (
    calibrate,
    predictive_check,
)
from defection.calibrate.cases import Case


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
        return {
            "coverage": self.coverage,
            "median_abs_log_error": self.median_abs_log_error,
            "interval": 0.9,
            "settings": self.settings,
            "wall_seconds": self.wall_seconds,
            "cases": self.rows.to_dict("records"),
            "posteriors": self.posteriors,
        }


def backtest(
    cases: Sequence[Case], *, draws: int = 40, progress: Callable[[str], None] | None = None, **settings: Any
) -> Backtest:
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
        posteriors[held.id] = {
            "simulations": cal.simulations,
            "final_epsilon": cal.posterior.meta.get("final_epsilon"),
            "parameters": cal.posterior.summary().to_dict("records"),
        }
    rows = pd.concat(frames, ignore_index=True)
    return Backtest(rows, {"draws": draws, **settings}, time.perf_counter() - start, posteriors)


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
