"""`defection run`, `init`, `check` and `params`: simulate a scenario and work with scenario files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import (
    DbOpt,
    JsonOpt,
    NoPosteriorOpt,
    PosteriorOpt,
    ReplicateWorkersOpt,
    Reporter,
    ScenarioArg,
    check_output_file,
    check_posterior_flags,
    command_seconds,
    fail,
    fmt,
    load_or_fail,
    out,
    outcome_table,
    recorded,
    warn_resolution,
)
from defection.cli.size import YesOpt, check_size
from defection.report import ReportError

# defection.store (duckdb), the HTML report (plotly), the engine (numba, pandas, scipy), the posterior (numpy) and
# the scenario (pydantic) are imported inside the commands: `defection --help` needs none of them, and `defection
# check` only the scenario.
if TYPE_CHECKING:
    import pandas as pd

    from defection.calibrate.cases import Case
    from defection.store import ResultsDB

# ----------------------------------------------------------------------------- run


def run(
    scenario: ScenarioArg = None,
    replicates: Annotated[int | None, typer.Option("--replicates", "-r", help="Replicates.")] = None,
    days: Annotated[int | None, typer.Option("--days", "-d", help="Days to simulate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Master seed.")] = None,
    agents: Annotated[int | None, typer.Option("--agents", "-k", help="Simulated agents (whole companies).")] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="After storing the run, write its self-contained HTML report to this file.",
            show_default=False,
        ),
    ] = None,
    yes: YesOpt = False,
    workers: ReplicateWorkersOpt = None,
    case: Annotated[
        str | None,
        typer.Option(
            "--case",
            help="Run a historical case of the library as a scenario (`defection scenarios list`), at its "
            "calibration size unless --agents is given, and print what history recorded beside the simulation.",
            show_default=False,
        ),
    ] = None,
    paired_baseline: Annotated[
        bool,
        typer.Option(
            "--paired-baseline",
            help="Also simulate the same world with no offer (claim 1's definition: no cash, asylum, trip, "
            "education, threat or channels) on the same seed and replicates, and store its daily share of companies "
            "combat-ineffective, so the report shows the offer's paired effect beside the total. Doubles the "
            "simulation time; off by default.",
        ),
    ] = False,
) -> None:
    """Simulate a scenario (a file, a shipped scenario's name, or a historical case with --case), print median and
    90% interval of each outcome, and store the run. A run estimated to take over an hour, or more memory than the
    machine has available, is refused unless --yes is given (with --paired-baseline, twice the replicates count)."""
    from defection.engine import simulate, workers_for  # lazy: see the note at the top
    from defection.scenario import ScenarioError, with_overrides, with_posterior
    from defection.scenario.posterior import shipped_posterior_path
    from defection.store import RunMeta
    from defection.workers import replicate_workers

    if report is not None:
        check_output_file("--report", report)
    check_posterior_flags(posterior, no_posterior)
    history: Case | None = None
    if case is not None:
        if scenario is not None:
            fail(f"give a scenario file ({scenario}) or --case {case}, not both")
        history = case_or_fail(case)
        base, source = history.scenario, history.path
        agents = agents if agents is not None else history.meta.calibration_agents
    else:
        base = load_or_fail(scenario, posterior=not no_posterior)
        source = str(scenario) if scenario else "<command line>"
    try:
        sc = with_overrides(
            base,
            source=f"{source} (with command-line options)",
            replicates=replicates,
            days=days,
            seed=seed,
            agents=agents,
        )
        if posterior is not None:
            sc = with_posterior(sc, posterior, "--posterior")
        elif not no_posterior and not sc.simulation.posterior and shipped_posterior_path().is_file():
            sc = with_posterior(sc, shipped_posterior_path(), "the shipped posterior")
    except ScenarioError as e:
        fail(e.render())
    n_workers = workers if workers is not None else workers_for(sc)
    # each worker holds a population; the no-offer baseline simulates as many replicates again, one after the other
    check_size(with_overrides(sc, replicates=2 * sc.simulation.replicates) if paired_baseline else sc, yes, n_workers)
    sim = sc.simulation
    warn_resolution(sim.agents, sc.force.company_size)
    with recorded(db, RunMeta.from_scenario(sc)) as (store, run_id), store.stage_daily(run_id) as staged:
        # replicate-days: units of equal cost (the same agents every day), so the time left is proportional
        with Reporter("run", transient=as_json) as rep, replicate_workers(n_workers) as pool:
            rep.stage("simulating: replicate-days", total=sim.days * sim.replicates)
            result = simulate(sc, progress=rep.count, on_daily=staged, workers=pool)
            artifacts: dict[str, Any] = {}
            if paired_baseline:
                from defection.claims import PAIRED_BASELINE, baseline_artifact, no_offer_baseline

                rep.stage("simulating the paired no-offer baseline: replicate-days", total=sim.days * sim.replicates)
                artifacts[PAIRED_BASELINE] = baseline_artifact(no_offer_baseline(sc, workers=pool, progress=rep.count))
        result.run_id = run_id
        result.wall_seconds = command_seconds()  # the command's (imports, loading, storing), not the engine's alone
        store.complete_run(run_id, result, artifacts, staged=staged)  # the daily rows were streamed to `staged`
    if report is not None:
        _write_report(store, run_id, report)
    result.wall_seconds = command_seconds()
    # history's figures cover the case's own horizon: another --days makes them incomparable
    compared = history is not None and sim.days == history.scenario.simulation.days
    recorded_rows = case_comparison(history, result.outcomes()) if history is not None and compared else []
    if as_json:
        payload = result.to_dict()
        if history is not None:
            payload["case"] = {
                "id": history.id,
                "title": history.meta.title,
                "horizon_days": history.scenario.simulation.days,
                "observed": recorded_rows,  # empty when --days changed the horizon
            }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    title = (
        f"{sc.meta.name}: {result.agents:,} agents for {result.represented:,} soldiers, "
        f"{result.days} days, {result.replicates} replicates, seed {result.seed}"
    )
    out.print(outcome_table(result.outcomes().to_dict("records"), title))
    out.print(
        f"calibrated parameters: posterior {result.posterior_path} ({result.posterior_hash}); each replicate draws "
        "a particle, so the intervals include parameter uncertainty"
        if result.posterior_path
        else "calibrated parameters: none; the scenario's hand-tuned values (--no-posterior or no posterior)",
        highlight=False,
    )
    if history is not None and compared:
        out.print(case_table(history, recorded_rows))
    elif history is not None:
        out.print(
            f"history's figures for {history.id} cover its horizon of {history.scenario.simulation.days} days; this "
            f"run simulated {sim.days}, so they are not shown beside it (run without --days to compare)",
            highlight=False,
        )
    out.print(f"stored as run [bold]{run_id}[/] in {db} ({result.wall_seconds:.1f} s)")
    if report is not None:
        out.print(f"report: {report}", highlight=False)


def case_or_fail(case_id: str) -> Case:
    """A historical case of the shipped library by its id, or a clean error naming the known ids."""
    from defection.calibrate.cases import CaseError, load_cases  # lazy: see the note at the top

    try:
        return load_cases(only=[case_id])[0]
    except CaseError as e:
        fail(e.render())


def case_comparison(history: Case, outcomes: pd.DataFrame) -> list[dict[str, Any]]:
    """Each observation of the case's first period beside the simulated share as its source would have recorded it
    (the simulated median and 90% interval times `capture`); later periods (`changes`) are `defection predict`'s."""
    by_name = outcomes.set_index("outcome")
    rows = []
    for k, o in enumerate(history.observed):
        if history.variant(k) != 0:
            continue
        sim = by_name.loc[o.outcome]
        rows.append(
            {
                "outcome": o.outcome,
                "observed": o.value,
                "likelihood": o.likelihood,
                "tag": o.tag,
                "recorded": o.recorded,
                "simulated_median": o.recorded_share(float(sim["median"])),
                "simulated_p05": o.recorded_share(float(sim["p05"])),
                "simulated_p95": o.recorded_share(float(sim["p95"])),
            }
        )
    return rows


def case_table(history: Case, rows: list[dict[str, Any]]) -> Table:
    """What history recorded beside what the model simulates, as the source would have counted it."""
    table = Table(title=f"{history.meta.title}: recorded by history and simulated", title_justify="left")
    for col in ("outcome", "observed", "simulated median", "simulated 90% interval", "source tag", "what was counted"):
        table.add_column(col, justify="right" if "simulated" in col or col == "observed" else "left")
    for r in rows:
        bound = "< " if r["likelihood"] == "upper_bound" else ""
        table.add_row(
            r["outcome"],
            f"{bound}{fmt(r['outcome'], r['observed'])}",
            fmt(r["outcome"], r["simulated_median"]),
            f"{fmt(r['outcome'], r['simulated_p05'])} – {fmt(r['outcome'], r['simulated_p95'])}",
            f"[{r['tag']}]",
            r["recorded"],
        )
    if len(history.scenarios()) > 1:
        table.caption = (
            f"This runs the case's first period; its {len(history.scenarios()) - 1} other period(s) are compared by "
            f"`defection predict`."
        )
    return table


def _write_report(store: ResultsDB, run_id: str, path: Path) -> None:
    """Write a stored run's HTML report; a failure is a clean error (the run itself stays stored)."""
    from defection.report import render_report  # lazy: see the note at the top

    try:
        path.write_text(render_report(store, run_id), encoding="utf-8")
    except (ReportError, OSError) as e:
        fail(f"run {run_id} is stored, but its report could not be written to {path}: {e}", code=1)


# ----------------------------------------------------------------------------- scenarios


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the scenario TOML.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the default scenario as a commented TOML file to start from."""
    from defection.scenario import scenario_to_toml  # lazy: see the note at the top

    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        fail(f"{path.parent} does not exist")
    path.write_text(scenario_to_toml(), encoding="utf-8")
    out.print(f"wrote {path}: every parameter with unit, range and source. Check it with `defection check {path}`.")


def check(path: Annotated[Path, typer.Argument(help="Scenario TOML file.")]) -> None:
    """Validate a scenario and say what is wrong."""
    sc = load_or_fail(path)
    out.print(f"[green]ok[/] {path}: scenario '{sc.meta.name}', hash {sc.content_hash()}")


def params(
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/parameters.md.")] = False,
) -> None:
    """Every parameter with unit, default, range and source."""
    from defection.scenario import iter_params, registry_markdown  # lazy: see the note at the top

    if markdown:
        sys.stdout.write(registry_markdown())
        return
    rows = [
        {
            "path": p.path,
            "unit": p.unit,
            "default": p.default,
            "min": p.lo,
            "max": p.hi,
            "source": p.source,
            "description": p.description,
        }
        for p in iter_params()
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=f"{len(rows)} parameters", show_lines=False)
    for col in ("parameter", "default", "unit", "range", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        rng = "" if r["min"] is None else f"[{r['min']}, {r['max']}]"
        table.add_row(r["path"], str(r["default"]), r["unit"], rng, r["source"])
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(run)
    app.command()(init)
    app.command()(check)
    app.command()(params)
