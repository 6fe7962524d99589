"""A tour of defection-lab's Python API, in the order a user meets it.

    python examples/api_tour.py [OUTPUT_FOLDER]      # default: a new temporary folder

It loads a scenario, changes one lever (the cash offer, $100,000 -> $10,000,000), simulates both versions on the
same random numbers, reads the results as DataFrames, stores both runs in a DuckDB file, compares them (paired
differences) and writes figures and reports as self-contained HTML files into OUTPUT_FOLDER. docs/api.md's code
blocks are copied from the marked sections of this file; tests/test_api_tour.py runs it and checks the copies, so
the walk-through stays true.

The run is deliberately small (2,000 agents, 30 days, 3 replicates) so that it finishes in seconds once Numba's
cache is warm (the first run in a fresh checkout compiles the kernels, about a minute or two). For results worth
reading use the scenario's own settings (365 days, 20 replicates) or `defection run`.
"""

from __future__ import annotations

# --8<-- [start:imports]
import argparse
import tempfile
from pathlib import Path

import pandas as pd

import defection
from defection.report import render_compare, render_report
from defection.report.comparison import load_comparison
from defection.report.figures import defections_compared
from defection.scenario import with_changes, with_overrides
from defection.store import ResultsDB, RunMeta

# Small, fast settings; the same seed for both runs gives them common random numbers (replicate r of each run
# draws the same random numbers), so their difference isolates the effect of the lever.
SMALL = {"agents": 2_000, "days": 30, "replicates": 3, "seed": 7}
SHOWN = ("defected_share", "attempts", "caught", "programme_cost_usd")  # outcomes printed below


def interval_line(name: str, median: float, p05: float, p95: float) -> str:
    """One printed result: median and 90% interval (tests/test_api_tour.py reads these lines)."""
    return f"  {name:<22} median {median:.6g}  90% interval [{p05:.6g}, {p95:.6g}]"


# --8<-- [end:imports]


def tour(out: Path) -> None:
    # --8<-- [start:scenario]
    # A scenario is a validated pydantic model. Write the default as a commented TOML file (every field with its
    # unit, range and source), then load it back: `load_scenario` validates and raises ScenarioError with the
    # file, field path, value and allowed range of every problem.
    path = out / "scenario.toml"
    path.write_text(defection.scenario_to_toml(defection.default_scenario()), encoding="utf-8")
    base = defection.load_scenario(path)
    assert base.content_hash() == defection.default_scenario().content_hash()
    print(f"scenario '{base.meta.name}': cash offer ${base.offer.cash_usd:,.0f}, hash {base.content_hash()}")
    # --8<-- [end:scenario]

    # --8<-- [start:lever]
    # Change a lever by its dotted path (the names of `defection params`); the copy is validated again. $10M per
    # defector is the README's tipping example: in a 30-day toy run a smaller change (say $250,000) may move nobody.
    richer = with_changes(base, {"offer.cash_usd": 10_000_000})
    # --8<-- [end:lever]

    # --8<-- [start:store]
    # Store runs in a DuckDB file, as `defection run` does: record the run as 'running' before simulating (so an
    # interrupted run is visible as such), then store its results and mark it 'complete' in one transaction.
    db = ResultsDB(out / "results.duckdb")

    def simulate_and_store(sc: defection.Scenario) -> defection.RunResult:
        small = with_overrides(sc, **SMALL)  # simulation settings, validated like any other change
        run_id = db.begin_run(RunMeta.from_scenario(small))
        try:
            result = defection.simulate(small)
        except BaseException as e:
            db.mark_run(run_id, "failed", f"{type(e).__name__}: {e}")
            raise
        result.run_id = run_id
        db.complete_run(run_id, result)
        return result

    a = simulate_and_store(base)
    b = simulate_and_store(richer)
    # (`defection.simulate(sc, agents=..., days=..., replicates=..., seed=...)` alone runs without storing, and
    # `db.store(result)` stores a finished result in one call.)
    # --8<-- [end:store]

    # --8<-- [start:results]
    # Tidy DataFrames: `daily` has one row per (replicate, day) and one column per series; `per_replicate` one row
    # per replicate and one column per outcome; `outcomes()` the median, 90% interval (p05, p95) and mean of each.
    daily: pd.DataFrame = a.daily
    print(f"daily: {len(daily)} rows = {a.replicates} replicates x {a.days} days; e.g. columns {list(daily)[:5]}")
    print(f"per_replicate: {len(a.per_replicate)} rows x {a.per_replicate.shape[1] - 1} outcomes")
    for result in (a, b):
        table = result.outcomes().set_index("outcome")
        print(f"run {result.run_id}: cash ${result.scenario.offer.cash_usd:,.0f}, {result.agents:,} agents")
        for name in SHOWN:
            row = table.loc[name]
            print(interval_line(name, row["median"], row["p05"], row["p95"]))
    # --8<-- [end:results]

    # --8<-- [start:compare]
    # Compare stored runs: each run's outcomes, and each later run minus the first. Same seed and replicates make
    # the differences paired (replicate r minus replicate r), hence much narrower than the runs' own intervals.
    cmp = load_comparison(db, [a.run_id, b.run_id])
    diff = cmp.differences[0]
    print(f"{diff.run_id} - {cmp.run_ids[0]}: {diff.explanation}")
    for row in diff.table.set_index("outcome").loc[list(SHOWN)].itertuples():
        print(interval_line(f"diff {row.Index}", row.median, row.p05, row.p95))
    print(f"stored runs: {db.list_runs()[['run_id', 'status', 'scenario_hash']].to_dict('records')}")
    # --8<-- [end:compare]

    # --8<-- [start:plot]
    # Figures are pure functions from DataFrames to plotly figures; reports are self-contained HTML (plotly.js
    # inlined, nothing fetched from the network).
    fig = defections_compared({"$100,000": a.daily, "$10,000,000": b.daily})
    fig.write_html(out / "defections.html", include_plotlyjs=True)
    (out / "report.html").write_text(render_report(db, b.run_id), encoding="utf-8")
    (out / "compare.html").write_text(render_compare(db, [a.run_id, b.run_id]), encoding="utf-8")
    print(f"wrote {out / 'defections.html'}, {out / 'report.html'} and {out / 'compare.html'}")
    # --8<-- [end:plot]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, help="output folder (default: a new temporary folder)")
    args = parser.parse_args()
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="defection-tour-"))
    out.mkdir(parents=True, exist_ok=True)
    tour(out)


if __name__ == "__main__":
    main()
