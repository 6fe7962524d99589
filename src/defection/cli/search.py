"""Command-line commands of the exploration layer (registered on the main `defection` app): `sensitivity`
(Sobol'/Morris), `optimize` (robust cheapest package or Pareto front, Optuna on local worker processes or Dask,
resumable) and `discover` (PRIM scenario discovery). Each stores its results as a run (kinds 'sensitivity',
'optimize', 'discover').

Shared helpers come from `defection.cli.console`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeAlias

import typer
from rich.markup import escape
from rich.table import Table

from defection.cli import console

# defection.explore (SALib, Dask, Optuna, EMA Workbench; the spec and the scenario: pydantic), the engine (numba,
# scipy), numpy, pandas and defection.store (duckdb) are imported inside the functions that use them: together they
# take seconds, which `defection --help` need not pay.
if TYPE_CHECKING:
    from concurrent.futures import Executor

    import numpy as np
    import pandas as pd
    from distributed import Client

    from defection.explore.design import ExplorationPosterior
    from defection.explore.spec import Factor, Spec
    from defection.scenario import Scenario
    from defection.store import RunMeta

    Evaluator: TypeAlias = Client | Executor | None

SpecArg = Annotated[Path, typer.Argument(help="Exploration spec (TOML): experiment, uncertainties, levers, outcomes.")]
DbOpt = Annotated[Path, typer.Option("--db", help="Results database (DuckDB file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout instead of tables.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=0,
        max=512,
        help="Local worker processes, one thread each, started once for the command (default: one per CPU; on a "
        "quiet 2-core machine 2.7x faster than serial for the shipped optimize example). 0 or 1 evaluates serially "
        "in this process, its kernels on every core: faster when other jobs keep the cores busy.",
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (tcp://host:8786) to evaluate on instead.",
        show_default=False,
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write the run's self-contained HTML report to this file (`defection report RUN_ID` writes it "
        "again later).",
        show_default=False,
    ),
]
DB_DEFAULT = Path("defection.duckdb")


# ----------------------------------------------------------------------------- shared helpers
def _fail(message: str) -> NoReturn:
    """A clean error (exit 2); the message is shown literally (no Rich markup: specs use [[levers]])."""
    console.fail(escape(message))


def _load(path: Path, posterior: Path | None, no_posterior: bool) -> tuple[Spec, Scenario, ExplorationPosterior]:
    """The spec, its base scenario and the posterior its simulations draw from (`console.choose_posterior`, less
    the parameters the spec's factors set); clean errors."""
    from defection.explore.design import exploration_posterior  # lazy: see the note at the top
    from defection.explore.spec import load_spec
    from defection.scenario import ScenarioError

    console.check_posterior_flags(posterior, no_posterior)
    try:
        spec, base = load_spec(path, posterior=not no_posterior)
    except ScenarioError as e:  # SpecError too; also a bad base scenario
        _fail(e.render())
    console.warn_resolution(spec.experiment.agents, base.force.company_size, f"{path}: experiment.agents: ")
    return spec, base, exploration_posterior(spec, *console.choose_posterior(base, posterior, no_posterior))


def _meta(kind: str, spec: Spec, base: Scenario, options: dict[str, Any], chosen: ExplorationPosterior) -> RunMeta:
    from defection.engine import library_versions, package_version  # lazy: see the note at the top
    from defection.explore.design import base_json
    from defection.store import RunMeta

    ex = spec.experiment
    text = json.dumps(
        {
            "spec": spec.model_dump(mode="json"),
            "options": {**options, "posterior": chosen.record()},
            "base_scenario": json.loads(base_json(base)),
        },
        sort_keys=True,
    )
    return RunMeta(
        kind=kind,
        scenario_name=ex.name,
        scenario_hash=spec.content_hash(),
        scenario_json=text,
        seed=ex.seed,
        agents=ex.agents,
        represented=base.force.soldiers,
        days=ex.days,
        replicates=ex.replicates,
        package_version=package_version(),
        library_versions=library_versions(),
    )


@contextmanager
def _evaluator(workers: int | None, scheduler: str | None) -> Iterator[tuple[Evaluator, str]]:
    """Where the points are evaluated, and that in words (the `executor` of --json): the Dask scheduler at
    `scheduler`, else `workers` local worker processes (`defection.workers.replicate_workers`), or serially in this
    process for 0 or 1. A scheduler that cannot be reached is a clean error."""
    from defection.explore.optimize import dask_client, evaluator_description  # lazy: see the note at the top
    from defection.workers import available_cpus, replicate_workers

    with ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(dask_client(0, scheduler))
            except (OSError, TimeoutError, ValueError) as e:
                _fail(f"--scheduler {scheduler}: cannot connect ({type(e).__name__}: {e})")
            yield client, evaluator_description(client)
            return
        n = available_cpus() if workers is None else workers  # the default: one worker per CPU
        pool = stack.enter_context(replicate_workers(n))
        yield pool, evaluator_description(pool, n)


def _changes(factors: list[Factor], units: np.ndarray) -> list[dict[str, Any]]:
    return [{f.path: f.value(float(u)) for f, u in zip(factors, row, strict=True)} for row in units]


def _check_outcome(name: str, option: str) -> None:
    from defection.model.outputs import OUTCOMES  # lazy: see the note at the top

    if name not in OUTCOMES:
        _fail(f"{option} {name!r} is not an outcome; allowed: {', '.join(OUTCOMES)}")


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=console.json_default) + "\n")


def _fmt(name: str, v: Any) -> str:
    return console.fmt(name, v)


def _summary_frame(summary: dict[str, dict[str, float | None]]) -> pd.DataFrame:
    import numpy as np  # lazy: see the note at the top
    import pandas as pd

    rows = [
        {"outcome": k, **{s: (np.nan if v.get(s) is None else v[s]) for s in ("median", "p05", "p95", "mean")}}
        for k, v in summary.items()
    ]
    return pd.DataFrame(rows, columns=["outcome", "median", "p05", "p95", "mean"])


# ----------------------------------------------------------------------------- sensitivity
def sensitivity_command(
    spec_path: Path,
    method: str | None,
    outcomes: list[str] | None,
    plot: Path | None,
    db: Path,
    as_json: bool,
    workers: int | None,
    scheduler: str | None,
    report: Path | None = None,
    posterior: Path | None = None,
    no_posterior: bool = False,
) -> None:
    # lazy: see the note at the top
    import numpy as np

    from defection.explore import sensitivity as sa
    from defection.explore.design import base_json, salib_problem, settings, unit_design
    from defection.explore.optimize import evaluate

    spec, base, chosen = _load(spec_path, posterior, no_posterior)
    names = list(dict.fromkeys(outcomes or [o.name for o in spec.outcomes]))
    try:
        m = sa.check_method(spec, method, names)
    except ValueError as e:
        _fail(f"{spec_path}: {e}")
    if plot is not None and not plot.parent.exists():
        _fail(f"--plot {plot}: folder {plot.parent} does not exist")
    if report is not None:
        console.check_folder("--report", report)
    X = unit_design(spec)
    points = _changes(spec.factors, X)
    problem = salib_problem(spec)
    options = {"method": m, "outcomes": names, "points": len(points)}
    with (
        _evaluator(workers, scheduler) as (client, _),
        console.recorded(db, _meta("sensitivity", spec, base, options, chosen), "sensitivity") as (store, run_id),
    ):
        with console.Reporter("sensitivity", transient=as_json) as progress:
            progress.stage("simulating design points", total=len(points))
            rows = evaluate(
                points,
                base_json(base),
                settings(spec, chosen),
                names,
                client,
                progress=progress.count,
            )
        Y = {n: sa.outputs_from_rows(rows, n) for n in names}
        tables = {n: sa.indices(m, problem, X, Y[n], seed=spec.experiment.seed) for n in names}
        cautions = sa.sample_warnings(m, spec.experiment.samples, tables)
        if plot is not None:
            sa.plot_indices(tables, m, plot, f"{spec.experiment.name}: {m} indices ({len(points)} points)")
        wall = console.command_seconds()  # the command's wall time, not its simulations' alone
        result = {
            "spec": spec.experiment.name,
            "method": m,
            "points": len(points),
            "factors": problem["names"],
            "outcomes": names,
            "indices": {n: sa.to_records(t) for n, t in tables.items()},
            "warnings": cautions,
            "plot": None if plot is None else str(plot),
            **chosen.fields(),
            "wall_seconds": wall,
        }
        store.complete_artifacts(
            run_id,
            {"sensitivity": result},
            sa.outcome_summary(Y),
            wall,
            posterior_hash=chosen.hash,
            posterior_path=chosen.path,
        )
        if report is not None:
            _write_report(store, run_id, report)
    for caution in cautions:
        console.warn(escape(caution))
    if as_json:
        _emit({"run_id": run_id, **result})
        return
    for n, t in tables.items():
        table = Table(
            title=f"{spec.experiment.name}: {m} indices of {n}_mean ({len(points)} points, 95% bootstrap intervals)",
            title_justify="left",
        )
        cols = ("S1", "ST") if m == "sobol" else ("mu_star", "sigma")
        for col in ("rank", "factor", *cols):
            table.add_column(col, justify="left" if col == "factor" else "right")
        for r in t.to_dict("records"):
            cells = [_index_cell(r, c) for c in cols]
            table.add_row(str(r["rank"]), r["factor"], *cells)
        console.out.print(table)
        if np.ptp(Y[n]) == 0:
            console.out.print(f"[yellow]{n} does not vary over the design (always {_fmt(n, float(Y[n][0]))})[/]")
    if plot is not None:
        console.out.print(f"chart: {plot}")
    if report is not None:
        console.out.print(f"report: {report}")
    console.out.print(chosen.describe(), highlight=False)
    console.out.print(f"stored as run [bold]{run_id}[/] in {db} ({wall:.1f} s)")


def _index_cell(row: dict[str, Any], col: str) -> str:
    import numpy as np  # lazy: see the note at the top

    v, conf = row[col], row.get(col + "_conf")
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.3g}" if conf is None or not np.isfinite(conf) else f"{v:.3g} ± {conf:.2g}"


# ----------------------------------------------------------------------------- optimize
def optimize_command(
    spec_path: Path,
    target_outcome: str,
    target: float | None,
    probability: float,
    trials: int,
    batch: int,
    sampler: str | None,
    storage: Path | None,
    robust_worlds: int | None,
    db: Path,
    as_json: bool,
    workers: int | None,
    scheduler: str | None,
    report: Path | None = None,
    posterior: Path | None = None,
    no_posterior: bool = False,
) -> None:
    # lazy: see the note at the top
    from defection.explore import optimize as opt
    from defection.explore.design import base_json, settings
    from defection.report.optimize_text import verdict

    spec, base, chosen = _load(spec_path, posterior, no_posterior)
    if report is not None:
        console.check_folder("--report", report)
    _check_outcome(target_outcome, "--target-outcome")
    from defection.model.outputs import OPEN_ENDED

    if target_outcome in OPEN_ENDED:
        _fail(
            f"--target-outcome {target_outcome} can be 'never' (infinite); choose a finite outcome such as "
            "defected_share"
        )
    levers, fixed = opt.decision_levers(spec)
    if not levers:
        _fail(
            f"{spec_path}: optimize needs at least one [[levers]] factor with a range or several values "
            "(the decision variables)"
        )
    mode: opt.Mode = "target" if target is not None else "pareto"
    sampler = sampler or ("tpe" if mode == "target" else "nsga2")
    if sampler not in opt.SAMPLERS:
        _fail(f"--sampler {sampler!r}: choose one of {', '.join(opt.SAMPLERS)}")
    if storage is not None and not storage.parent.exists():
        _fail(f"--storage {storage}: folder {storage.parent} does not exist")
    above = not any(o.name == target_outcome and o.direction == "min" for o in spec.outcomes)
    problem = opt.Problem(
        mode,
        opt.Target(target_outcome, 0.0 if target is None else float(target), probability, above),
        spec.experiment.days,
    )
    k = robust_worlds or spec.experiment.samples
    spec_worlds = opt.worlds(spec, k)
    name = opt.study_name(spec, problem, len(spec_worlds), base.content_hash() + chosen.key())
    try:
        study = opt.open_study(
            name,
            problem,
            sampler,
            spec.experiment.seed,
            None if storage is None else str(storage),
            population=max(4, min(50, trials // 4)),
        )
    except Exception as e:  # a file that is not an Optuna journal, a study posed differently
        _fail(f"--storage {storage}: cannot open study {name!r} ({type(e).__name__}: {e})")
    outcomes = list(dict.fromkeys([opt.COST, target_outcome, opt.DAYS, *(o.name for o in spec.outcomes)]))
    options = {
        "mode": mode,
        "target": problem.target.__dict__ if mode == "target" else None,
        "trials": trials,
        "batch": batch,
        "sampler": sampler,
        "worlds": len(spec_worlds),
        "study": name,
        "storage": None if storage is None else str(storage),
        "fixed_levers": fixed,
    }
    with (
        _evaluator(workers, scheduler) as (client, executor),
        console.recorded(db, _meta("optimize", spec, base, options, chosen), "optimisation") as (store, run_id),
    ):
        tally = opt.Tally()
        with console.Reporter("optimize", transient=as_json) as progress:
            progress.stage(f"optimising ({mode}, {sampler}): trials", total=trials)
            score = opt.simulation_scorer(
                problem, spec_worlds, fixed, base_json(base), settings(spec, chosen), outcomes, client, tally=tally
            )
            counts = opt.optimise(study, levers, score, trials, batch, on_batch=progress.count)
        found = opt.results(study, problem)
        wall = console.command_seconds()  # the command's: imports, the cluster's start-up, every trial
        result = {
            "spec": spec.experiment.name,
            "study": name,
            "storage": options["storage"],
            "mode": mode,
            "sampler": sampler,
            "target": options["target"],
            "worlds": len(spec_worlds),
            "replicates": spec.experiment.replicates,
            "fixed_levers": fixed,
            **counts,
            "failed": found["failed"],
            "best": opt.slim(found["best"], target_outcome),
            "closest": opt.slim(found["closest"], target_outcome),
            "pareto": [opt.slim(r, target_outcome) for r in found["pareto"]],
            "agent_days": tally.agent_days,
            "wall_seconds": wall,
            "executor": executor,
            **chosen.fields(),
        }
        result["verdict"] = verdict(result)
        shown = found["best"] or found["closest"]  # the outcomes table: the answer's, or the closest package's
        store.complete_artifacts(
            run_id,
            {"optimize": result, "trials": found["trials"]},
            _summary_frame(shown["summary"]) if shown else None,
            wall,
            posterior_hash=chosen.hash,
            posterior_path=chosen.path,
        )
        if report is not None:
            _write_report(store, run_id, report)
    if as_json:
        _emit({"run_id": run_id, **result})
        return
    _print_optimize(result, run_id, db, chosen.describe())
    if report is not None:
        console.out.print(f"report: {report}")


def _write_report(store: Any, run_id: str, path: Path) -> None:
    """Write a stored run's HTML report; a failure is a clean error (the run itself stays stored)."""
    from defection.report import ReportError, render_report  # lazy: see the note at the top

    try:
        path.write_text(render_report(store, run_id), encoding="utf-8")
    except (ReportError, OSError) as e:
        console.fail(escape(f"run {run_id} is stored, but its report could not be written to {path}: {e}"), code=1)


def _print_optimize(result: dict[str, Any], run_id: str, db: Path, posterior_line: str) -> None:
    from defection.report.format import fmt_short  # lazy: see the note at the top
    from defection.report.optimize_text import goal_text, package_text

    head = (
        f"study {result['study']}: {result['complete']} trials ({result['reused']} reused, "
        f"{result['evaluated']} evaluated now, {result['failed']} failed), {result['worlds']} worlds × "
        f"{result['replicates']} replicates"
    )
    console.out.print(head)
    rows = [result["best"]] if result["mode"] == "target" else result["pareto"]
    if result["mode"] == "target":
        goal = goal_text(result["target"])
        style = "bold" if result["best"] is not None else "yellow"
        console.out.print(f"[{style}]{escape(result['verdict'])}[/]", highlight=False)
        if result["best"] is None:
            rows = [result["closest"]] if result["closest"] else []
            title = f"the closest package (none reached {goal})"
        else:
            title = f"cheapest package with {goal}"
    else:
        title = f"Pareto front ({len(rows)} packages): cost, defections, days to target"
    table = Table(title=title, title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("package", overflow="fold")
    metric_names = list(rows[0]["metrics"]) if rows else []
    for m in metric_names:
        table.add_column(m, justify="right")
    for r in rows:
        table.add_row(
            str(r["trial"]),
            escape(package_text(r["package"], "\n")),
            *(fmt_short(m, r["metrics"][m]) for m in metric_names),
        )
    console.out.print(table)
    console.out.print(posterior_line, highlight=False)
    console.out.print(f"stored as run [bold]{run_id}[/] in {db} ({result['wall_seconds']:.1f} s)")


# ----------------------------------------------------------------------------- discover
def discover_command(
    spec_path: Path,
    outcome: str,
    threshold: float,
    below: bool,
    density: float,
    boxes: int,
    db: Path,
    as_json: bool,
    workers: int | None,
    scheduler: str | None,
    posterior: Path | None = None,
    no_posterior: bool = False,
) -> None:
    # lazy: see the note at the top
    import numpy as np
    import pandas as pd

    from defection.explore import discover as disc
    from defection.explore.design import base_json, settings, unit_design
    from defection.explore.optimize import evaluate
    from defection.explore.sensitivity import outcome_summary, outputs_from_rows

    spec, base, chosen = _load(spec_path, posterior, no_posterior)
    _check_outcome(outcome, "--outcome")
    try:
        uspec = disc.uncertainty_spec(spec)
    except ValueError as e:
        _fail(f"{spec_path}: {e}")
    fixed = disc.fixed_levers(spec)
    cases = _changes(uspec.factors, unit_design(uspec))
    x = pd.DataFrame(cases, columns=[f.path for f in uspec.factors])
    points = [{**row, **fixed} for row in cases]
    options = {
        "outcome": outcome,
        "threshold": threshold,
        "below": below,
        "density_threshold": density,
        "boxes": boxes,
        "fixed_levers": fixed,
        "cases": len(points),
    }
    with (
        _evaluator(workers, scheduler) as (client, _),
        console.recorded(db, _meta("discover", spec, base, options, chosen), "scenario discovery") as (store, run_id),
    ):
        with console.Reporter("discover", transient=as_json) as progress:
            progress.stage("simulating cases", total=len(points))
            rows = evaluate(
                points,
                base_json(base),
                settings(spec, chosen),
                [outcome],
                client,
                progress=progress.count,
            )
        y_values = outputs_from_rows(rows, outcome)
        y = disc.cases_of_interest(y_values, threshold, below)
        split = disc.threshold_split(y)
        found = disc.prim_boxes(x, y, density_threshold=density, max_boxes=boxes)
        wall = console.command_seconds()  # the command's wall time, not its simulations' alone
        result = {
            "spec": spec.experiment.name,
            "outcome": outcome,
            "threshold": threshold,
            "direction": "below" if below else "above",
            "cases": len(points),
            "cases_of_interest": int(y.sum()),
            "meets_threshold": split,
            "outcome_range": disc.outcome_range(y_values),
            "suggested_threshold": disc.splitting_threshold(y_values) if split != "some" else None,
            "fixed_levers": fixed,
            "density_threshold": density,
            "boxes": found,
            **chosen.fields(),
            "wall_seconds": wall,
        }
        table = x.assign(**{f"{outcome}_mean": y_values, "of_interest": y})
        store.complete_artifacts(
            run_id,
            {"discover": result, "cases": json.loads(table.to_json(orient="records"))},
            outcome_summary({outcome: y_values[np.isfinite(y_values)]}) if np.isfinite(y_values).any() else None,
            wall,
            posterior_hash=chosen.hash,
            posterior_path=chosen.path,
        )
    if split != "some":  # a valid answer (the cases are stored), but not the one asked for: say why and what to try
        console.warn(escape(_unsplit_message(result)))
    if as_json:
        _emit(
            {
                "run_id": run_id,
                **{k: v for k, v in result.items() if k != "boxes"},
                "boxes": [{k: v for k, v in b.items() if k != "trajectory"} for b in found],
            }
        )
        return
    _print_discover(result, run_id, db, chosen.describe())


def _unsplit_message(result: dict[str, Any]) -> str:
    """Why a threshold that no case (or every case) meets finds nothing: the outcome's range, and a threshold
    inside it."""
    n, name, sign = result["cases"], result["outcome"], "<" if result["direction"] == "below" else ">"
    who = "no case" if result["meets_threshold"] == "none" else f"every case ({n} of {n})"
    text = (
        f"{who} has {name} {sign} {result['threshold']:g}: the threshold does not split the cases, so there is "
        "no region to discover."
    )
    reached, suggestion = result["outcome_range"], result["suggested_threshold"]
    if reached is None:
        return f"{text} No case has a finite {name}."
    text += (
        f" Across the {n} cases {name} ranged from {reached['min']:.4g} to {reached['max']:.4g} "
        f"(median {reached['median']:.4g})"
    )
    if suggestion is None:
        return f"{text}; every case has the same value, so no threshold splits them."
    return (
        f"{text}; try a threshold inside that range, e.g. --threshold {suggestion!r} "
        "(about half the cases on each side)."
    )


def _print_discover(result: dict[str, Any], run_id: str, db: Path, posterior_line: str) -> None:
    sign = "<" if result["direction"] == "below" else ">"
    console.out.print(
        f"{result['cases_of_interest']} of {result['cases']} cases have {result['outcome']} "
        f"{sign} {result['threshold']:g}"
    )
    if not result["boxes"] and result["meets_threshold"] == "some":  # otherwise the warning said why
        console.out.print("[yellow]PRIM found no box reaching the density threshold[/]")
    for k, b in enumerate(result["boxes"], start=1):
        table = Table(
            title=f"box {k}: coverage {b['coverage']:.2f}, density {b['density']:.2f}, mass {b['mass']:.2f}"
            f" (trajectory point {b['chosen']})",
            title_justify="left",
        )
        for col in ("uncertainty", "limits", "quasi-p"):
            table.add_column(col)
        for name, lim in b["restricted"].items():
            if "values" in lim:
                text = "{" + ", ".join(map(str, lim["values"])) + "}"
            else:
                lo = "" if lim["low"] is None else f"{_fmt(name, lim['low'])} ≤ "
                hi = "" if lim["high"] is None else f" ≤ {_fmt(name, lim['high'])}"
                text = f"{lo}x{hi}"
            qp = ", ".join(f"{p:.2g}" for p in lim.get("qp", []) if p is not None)
            table.add_row(name, text, qp)
        console.out.print(table)
    console.out.print(posterior_line, highlight=False)
    console.out.print(f"stored as run [bold]{run_id}[/] in {db} ({result['wall_seconds']:.1f} s)")


# ----------------------------------------------------------------------------- registration
def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command()
    def sensitivity(
        spec: SpecArg,
        method: Annotated[
            str | None,
            typer.Option(
                "--method",
                help="sobol | morris (must match the spec's sampler; default: the sampler).",
                show_default=False,
            ),
        ] = None,
        outcome: Annotated[
            list[str] | None,
            typer.Option(
                "--outcome", help="Outcome to analyse (repeatable; default: the spec's outcomes).", show_default=False
            ),
        ] = None,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Write a bar chart of the indices (PNG).", show_default=False)
        ] = None,
        db: DbOpt = DB_DEFAULT,
        as_json: JsonOpt = False,
        workers: WorkersOpt = None,
        scheduler: SchedulerOpt = None,
        report: ReportOpt = None,
        posterior: console.PosteriorOpt = None,
        no_posterior: console.NoPosteriorOpt = False,
    ) -> None:
        """Global sensitivity of the spec's outcomes: Sobol' first-order and total indices (sampler 'sobol') or
        Morris screening (sampler 'morris'), with bootstrap confidence intervals.

        Warns (stderr, `warnings` in --json, and the report) when the sample is too small to trust: a Sobol' base
        sample N below 512 (where SALib's bootstrap intervals are still wider than ±0.1), fewer than 10 Morris
        trajectories (the low end of the 10–20 recommended), or, for an outcome, every factor's 95% interval
        including 0."""
        sensitivity_command(
            spec, method, outcome, plot, db, as_json, workers, scheduler, report, posterior, no_posterior
        )

    @app.command()
    def optimize(
        spec: SpecArg,
        target_outcome: Annotated[
            str,
            typer.Option(
                "--target-outcome",
                help="Outcome the target is on (and the 'defections' objective of the Pareto front).",
            ),
        ] = "defected_share",
        target: Annotated[
            float | None,
            typer.Option(
                "--target",
                help="Find the cheapest package reaching this "
                "value (≥, or ≤ if the spec lists the outcome with direction "
                "'min'); without it: the Pareto front.",
                show_default=False,
            ),
        ] = None,
        probability: Annotated[
            float,
            typer.Option(
                "--probability", min=0.0, max=1.0, help="Required share of worlds × replicates reaching the target."
            ),
        ] = 0.8,
        trials: Annotated[
            int,
            typer.Option(
                "--trials",
                min=1,
                max=100_000,
                help="Complete trials the study should hold (earlier ones in --storage count).",
            ),
        ] = 32,
        batch: Annotated[
            int, typer.Option("--batch", min=1, max=1024, help="Trials asked and evaluated together.")
        ] = 4,
        sampler: Annotated[
            str | None,
            typer.Option(
                "--sampler",
                help="nsga2 | tpe (default: tpe for a target, nsga2 for the Pareto front).",
                show_default=False,
            ),
        ] = None,
        storage: Annotated[
            Path | None,
            typer.Option(
                "--storage",
                help="Optuna journal file: a killed or extended optimisation resumes from it.",
                show_default=False,
            ),
        ] = None,
        robust_worlds: Annotated[
            int | None,
            typer.Option(
                "--robust-worlds",
                min=1,
                max=10_000,
                help="Uncertain worlds every package is scored in (default: the spec's samples).",
                show_default=False,
            ),
        ] = None,
        db: DbOpt = DB_DEFAULT,
        as_json: JsonOpt = False,
        workers: WorkersOpt = None,
        scheduler: SchedulerOpt = None,
        report: ReportOpt = None,
        posterior: console.PosteriorOpt = None,
        no_posterior: console.NoPosteriorOpt = False,
    ) -> None:
        """Optimise the spec's levers across a fixed ensemble of uncertain worlds: the cheapest package reaching a
        target with a given probability, or the Pareto front of cost, defections and time to effect."""
        optimize_command(
            spec,
            target_outcome,
            target,
            probability,
            trials,
            batch,
            sampler,
            storage,
            robust_worlds,
            db,
            as_json,
            workers,
            scheduler,
            report,
            posterior,
            no_posterior,
        )

    @app.command()
    def discover(
        spec: SpecArg,
        outcome: Annotated[str, typer.Option("--outcome", help="Outcome that defines the cases of interest.")],
        threshold: Annotated[float, typer.Option("--threshold", help="Threshold on the outcome's mean.")],
        below: Annotated[
            bool,
            typer.Option("--below/--above", help="Cases of interest: outcome below (default) or above the threshold."),
        ] = True,
        density: Annotated[
            float, typer.Option("--density-threshold", min=0.0, max=1.0, help="PRIM's density threshold for a box.")
        ] = 0.8,
        boxes: Annotated[int, typer.Option("--boxes", min=1, max=20, help="Boxes to find at most.")] = 1,
        db: DbOpt = DB_DEFAULT,
        as_json: JsonOpt = False,
        workers: WorkersOpt = None,
        scheduler: SchedulerOpt = None,
        posterior: console.PosteriorOpt = None,
        no_posterior: console.NoPosteriorOpt = False,
    ) -> None:
        """Scenario discovery (PRIM): the regions of the uncertainty space where the outcome is below (or above) a
        threshold, as boxes with coverage and density."""
        discover_command(
            spec, outcome, threshold, below, density, boxes, db, as_json, workers, scheduler, posterior, no_posterior
        )
