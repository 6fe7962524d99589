"""A comparison of complete runs: their outcome tables side by side and the differences of each run from the
first (paired where the runs share random numbers; see `defection.report.compare`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from defection.analysis import json_safe
from defection.report.compare import differences
from defection.report.errors import ReportError
from defection.report.format import fmt_interval, fmt_signed, fmt_value
from defection.report.store import complete_run

if TYPE_CHECKING:
    from defection.store import ResultsDB


@dataclass
class Difference:
    """Run `run_id` minus the first run of a comparison."""

    run_id: str
    paired: bool
    explanation: str
    table: pd.DataFrame  # outcome, paired, n, median, p05, p95, share_b_greater


@dataclass
class Comparison:
    """Runs, their outcome tables and per-replicate outcomes, and the differences from the first run."""

    runs: list[dict[str, Any]]
    outcomes: list[pd.DataFrame]
    replicates: list[pd.DataFrame]
    differences: list[Difference]

    @property
    def run_ids(self) -> list[str]:
        """The full ids of the runs, first (the reference) first."""
        return [r["run_id"] for r in self.runs]

    def outcome_names(self) -> list[str]:
        """Every outcome any run reports, the first run's order first."""
        names: list[str] = []
        for table in self.outcomes:
            names += [n for n in table["outcome"] if n not in names]
        return names

    def interval(self, k: int, outcome: str) -> dict[str, float] | None:
        """Median, p05 and p95 of an outcome in run k (None if the run lacks it)."""
        rows = self.outcomes[k][self.outcomes[k]["outcome"] == outcome]
        if rows.empty:
            return None
        r = rows.iloc[0]
        return {"median": float(r["median"]), "p05": float(r["p05"]), "p95": float(r["p95"])}

    def difference(self, k: int, outcome: str) -> dict[str, Any] | None:
        """Run k+1 minus the first run for an outcome (None if not computed)."""
        table = self.differences[k].table
        rows = table[table["outcome"] == outcome]
        return None if rows.empty else rows.iloc[0].to_dict()

    def row_texts(self, name: str) -> list[str]:
        """The comparison table's cells for one outcome, as text: median [90% interval] of each run, then for
        each other run its difference from the first [90% interval] and the share of replicates where it is
        larger ('–' where there is nothing to show)."""
        cells = []
        for k in range(len(self.runs)):
            iv = self.interval(k, name)
            cells.append(
                "–" if iv is None else f"{fmt_value(name, iv['median'])} [{fmt_interval(name, iv['p05'], iv['p95'])}]"
            )
        for k in range(len(self.differences)):
            dv = self.difference(k, name)
            if dv is None or not dv["n"]:
                cells += ["–", "–"]
            else:
                cells += [
                    f"{fmt_signed(name, dv['median'])} [{fmt_signed(name, dv['p05'])}, {fmt_signed(name, dv['p95'])}]",
                    f"{100 * dv['share_b_greater']:.0f}%",
                ]
        return cells

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: runs, outcomes per run, and differences from the first run (non-finite numbers as None)."""
        keys = (
            "run_id",
            "kind",
            "scenario_name",
            "scenario_hash",
            "seed",
            "agents",
            "represented",
            "days",
            "replicates",
        )
        return {
            "runs": [{k: r.get(k) for k in keys} for r in self.runs],
            "reference": self.run_ids[0],
            "outcomes": {
                name: {rid: json_safe(self.interval(k, name)) for k, rid in enumerate(self.run_ids)}
                for name in self.outcome_names()
            },
            "differences": [
                {
                    "run_id": d.run_id,
                    "minus": self.run_ids[0],
                    "paired": d.paired,
                    "explanation": d.explanation,
                    "outcomes": {
                        r["outcome"]: json_safe({k: r[k] for k in ("n", "median", "p05", "p95", "share_b_greater")})
                        for r in d.table.to_dict("records")
                    },
                }
                for d in self.differences
            ],
        }


def load_comparison(db: ResultsDB, run_ids: list[str]) -> Comparison:
    """Load complete runs (ids or unique prefixes) and compute each one's differences from the first."""
    if len(run_ids) < 2:
        raise ReportError("a comparison needs at least two runs")
    runs = [complete_run(db, r) for r in run_ids]
    ids = [r["run_id"] for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ReportError(f"run {', '.join(dupes)} is given more than once")
    outcomes = [db.outcomes(i) for i in ids]
    reps = [db.replicate_outcomes(i) for i in ids]
    diffs = []
    for run, rep in zip(runs[1:], reps[1:], strict=True):
        table, paired, why = differences(runs[0], run, reps[0], rep)
        diffs.append(Difference(run["run_id"], paired, why, table))
    return Comparison(runs, outcomes, reps, diffs)
