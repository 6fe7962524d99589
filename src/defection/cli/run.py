"""`defection run`, `init`, `check` and `params`: simulate a scenario and work with scenario files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    command_seconds,
    fail,
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
) -> None:
    """Simulate a scenario, print median and 90% interval of each outcome, and store the run. A run estimated to take
    over an hour, or more memory than the machine has available, is refused unless --yes is given."""
    from defection.engine import simulate, workers_for  # lazy: see the note at the top
    from defection.scenario import ScenarioError, with_overrides, with_posterior
    from defection.scenario.posterior import shipped_posterior_path
    from defection.store import RunMeta
    from defection.workers import replicate_workers

    if report is not None and (not report.parent.exists() or report.is_dir()):
        fail(
            f"--report {report}: "
            + (
                f"folder {report.parent} does not exist"
                if not report.parent.exists()
                else "is a folder; give a file name such as report.html"
            )
        )
    if posterior is not None and no_posterior:
        fail("--posterior and --no-posterior contradict each other; give one")
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
    check_size(sc, yes, n_workers)  # each worker holds a population
    sim = sc.simulation
    warn_resolution(sim.agents, sc.force.company_size)
    with recorded(db, RunMeta.from_scenario(sc)) as (store, run_id), store.stage_daily(run_id) as staged:
        # replicate-days: units of equal cost (the same agents every day), so the time left is proportional
        with Reporter("run", transient=as_json) as rep, replicate_workers(n_workers) as pool:
            rep.stage("simulating: replicate-days", total=sim.days * sim.replicates)
            result = simulate(sc, progress=rep.count, on_daily=staged, workers=pool)
        result.run_id = run_id
        result.wall_seconds = command_seconds()  # the command's (imports, loading, storing), not the engine's alone
        store.complete_run(run_id, result, staged=staged)  # the daily rows were streamed to `staged`
    if report is not None:
        _write_report(store, run_id, report)
    result.wall_seconds = command_seconds()
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
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
    out.print(f"stored as run [bold]{run_id}[/] in {db} ({result.wall_seconds:.1f} s)")
    if report is not None:
        out.print(f"report: {report}", highlight=False)


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
