"""`defection curve`: the response of the defected share (and the cost per defector) to one lever, the other levers
held, every level under common random numbers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
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
    choose_posterior,
    command_seconds,
    err,
    fail,
    fmt,
    json_default,
    load_or_fail,
    out,
    recorded,
    warn_resolution,
)

# defection.explore.curve (the engine: numba, pandas), the store (duckdb), the report (plotly) and the scenario
# (pydantic) are imported inside the command: `defection --help` needs none of them.
if TYPE_CHECKING:
    from defection.explore.curve import CurveResult
    from defection.store import ResultsDB

LeverArg = Annotated[
    str,
    typer.Argument(
        help="The lever: a numeric scenario parameter by its dotted path, e.g. offer.cash_usd or "
        "regime.monitors_per_soldier (`defection params` lists them with their allowed ranges).",
        show_default=False,
    ),
]


def curve(
    lever: LeverArg,
    scenario: ScenarioArg = None,
    lo: Annotated[
        float | None,
        typer.Option("--from", help="Lowest level (default: the lever's allowed minimum).", show_default=False),
    ] = None,
    hi: Annotated[
        float | None,
        typer.Option("--to", help="Highest level (default: the lever's allowed maximum).", show_default=False),
    ] = None,
    log: Annotated[
        bool | None,
        typer.Option(
            "--log/--linear",
            help="Space the levels geometrically (and draw a log x axis) or evenly. Default: log when --from > 0 and "
            "the range spans more than two decades.",
            show_default=False,
        ),
    ] = None,
    points: Annotated[int, typer.Option("--points", "-n", min=2, max=100, help="Levels on the curve.")] = 7,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Hold another parameter at a value, PATH=VALUE (repeatable), e.g. --set "
            "regime.monitors_per_soldier=0.02; a calibrated parameter set here keeps its value in every replicate.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="One curve per value of a second parameter, PATH=V1,V2,..., e.g. --by "
            "offer.asylum_probability=0.2,0.8.",
            show_default=False,
        ),
    ] = None,
    replicates: Annotated[
        int | None, typer.Option("--replicates", "-r", help="Replicates per level (default: the scenario's).")
    ] = None,
    agents: Annotated[int | None, typer.Option("--agents", "-k", help="Simulated agents (whole companies).")] = None,
    days: Annotated[int | None, typer.Option("--days", "-d", help="Days to simulate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Master seed, the same at every level.")] = None,
    outcomes: Annotated[
        list[str] | None,
        typer.Option(
            "--outcome",
            help="Outcome to show (repeatable; default: defected_share and cost_per_genuine_defector_usd).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write the curve's self-contained HTML report (Plotly figure) to this file.",
            show_default=False,
        ),
    ] = None,
    workers: ReplicateWorkersOpt = None,
) -> None:
    """Response curve: each outcome (median and 90% interval across replicates) at evenly or log-spaced levels of one
    lever, the others held; every level uses the same seed and replicates (common random numbers), so each level's
    paired difference from the first is the lever's effect alone. Stored as a run of kind 'curve'."""
    from defection.engine import workers_for  # lazy: see the note at the top
    from defection.explore.curve import (
        DEFAULT_OUTCOMES,
        CurveError,
        check_outcomes,
        curve_levels,
        curve_scenarios,
        default_log,
        held,
        is_integer,
        lever_info,
        lever_range,
        parse_assignment,
        parse_by,
        response_curve,
        spacing_note,
    )
    from defection.scenario import ScenarioError, with_overrides
    from defection.store import RunMeta
    from defection.workers import replicate_workers

    check_posterior_flags(posterior, no_posterior)
    if report is not None:
        check_output_file("--report", report)
    try:
        info = lever_info(lever)
        start, stop = lever_range(info, lo, hi)
        use_log = default_log(start, stop) if log is None else log
        levels = curve_levels(start, stop, points, use_log, is_integer(info))
        shown = check_outcomes(outcomes or list(DEFAULT_OUTCOMES))
        changes = dict(parse_assignment(s) for s in sets or [])
        by_lever = parse_by(by) if by is not None else None
        for path in changes:
            if path == lever or (by_lever is not None and path == by_lever[0]):
                raise CurveError(f"--set {path}: the curve varies it; remove the --set")
        if by_lever is not None and by_lever[0] == lever:
            raise CurveError(f"--by {by_lever[0]}: the lever itself; give a second parameter")
    except CurveError as e:
        fail(escape(str(e)))
    spacing = spacing_note(start, stop, use_log, chosen=log is not None)
    base = load_or_fail(scenario, posterior=not no_posterior)
    source = str(scenario) if scenario else "<command line>"
    try:
        sc = with_overrides(
            held(base, changes, "--set"),
            source=f"{source} (with command-line options)",
            replicates=replicates,
            days=days,
            seed=seed,
            agents=agents,
        )
        curve_scenarios(sc, lever, levels, by_lever)  # every point valid before anything runs
    except ScenarioError as e:
        fail(escape(e.render()))
    post, post_source = choose_posterior(sc, posterior, no_posterior)
    sim = sc.simulation
    warn_resolution(sim.agents, sc.force.company_size)
    if not as_json:
        err.print(f"levels of {lever}: {spacing}", highlight=False)
    n_points = len(levels) * (len(by_lever[1]) if by_lever else 1)
    with recorded(db, RunMeta.from_scenario(sc, kind="curve"), "curve") as (store, run_id):
        n_workers = workers if workers is not None else workers_for(sc)
        with Reporter("curve", transient=as_json) as rep, replicate_workers(n_workers) as pool:
            rep.stage(f"simulating {n_points} levels: replicate-days", total=n_points * sim.days * sim.replicates)
            result = response_curve(
                sc,
                lever,
                levels,
                sim.replicates,
                sim.seed,
                agents=sim.agents,
                days=sim.days,
                by=by_lever,
                outcomes=shown,
                posterior=post,
                log=use_log,
                spacing=spacing,
                held=changes,
                progress=rep.count,
                workers=pool,
            )
        result.run_id = run_id
        result.wall_seconds = command_seconds()
        store.complete_artifacts(
            run_id,
            {"curve": result.to_dict()},
            result.stored_outcomes(),
            result.wall_seconds,
            agents=result.agents,
            posterior_hash=result.posterior_hash,
            posterior_path=result.posterior_path,
        )
    if report is not None:
        _write_report(store, run_id, report)
    result.wall_seconds = command_seconds()
    payload = {**result.to_dict(), "parameters": post_source}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
        return
    for name in result.outcomes:
        out.print(curve_table(result, name))
    out.print(
        f"{len(result.levels)} levels"
        + (f" × {len(result.by_values)} values of {result.by}" if result.by is not None else "")
        + f" × {result.replicates} replicates, seed {result.seed} at every level, "
        f"{result.agents:,} agents for {result.represented:,} soldiers, {result.days} days "
        f"({result.agent_days:,} agent-days, {result.wall_seconds:.1f} s)",
        highlight=False,
    )
    out.print(
        f"calibrated parameters: posterior {result.posterior_path} ({result.posterior_hash}); each replicate draws "
        "the same particle at every level"
        + (f"; set by the curve instead: {', '.join(result.posterior_fixed)}" if result.posterior_fixed else "")
        if result.posterior_hash
        else f"calibrated parameters: none; {post_source}",
        highlight=False,
    )
    out.print(f"stored as run [bold]{run_id}[/] in {escape(str(db))}")
    if report is not None:
        out.print(f"report: {report}", highlight=False)


def _signed(name: str, v: float) -> str:
    text = fmt(name, v)
    return "+" + text if math.isfinite(v) and v > 0 else text


def curve_table(result: CurveResult, outcome: str) -> Table:
    """One outcome along the curve: level, median, 90% interval and the paired difference from the first level."""
    from defection.explore.curve import interval, level_text  # lazy: see the note at the top

    title = f"{outcome} against {result.lever}" + (f" ({result.unit})" if result.unit else "")
    table = Table(title=title, title_justify="left")
    if result.by is not None:
        table.add_column(result.by, no_wrap=True)
    table.add_column("level", justify="right", no_wrap=True)
    table.add_column("median", justify="right")
    table.add_column("90% interval", justify="right")
    table.add_column(f"paired difference from {level_text(result.levels[0])}: median (90%)", justify="right")
    for by in result.by_values:
        for level in result.levels:
            med, p05, p95 = interval(result.values(outcome, level, by))
            dmed, d05, d95 = interval(result.differences(outcome, level, by))
            cells = [
                level_text(level),
                fmt(outcome, med),
                f"{fmt(outcome, p05)} – {fmt(outcome, p95)}",
                f"{_signed(outcome, dmed)} ({_signed(outcome, d05)} – {_signed(outcome, d95)})",
            ]
            table.add_row(*([str(by)] if result.by is not None else []), *cells)
    return table


def _write_report(store: ResultsDB, run_id: str, path: Path) -> None:
    """Write the stored curve's HTML report; a failure is a clean error (the curve itself stays stored)."""
    from defection.report import ReportError, render_report  # lazy: see the note at the top

    try:
        path.write_text(render_report(store, run_id), encoding="utf-8")
    except (ReportError, OSError) as e:
        fail(escape(f"curve {run_id} is stored, but its report could not be written to {path}: {e}"), code=1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(curve)
