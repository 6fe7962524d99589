"""`defection cases`, `calibrate` and `backtest`: the case library, calibration and validation."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import (
    DbOpt,
    JsonOpt,
    Reporter,
    check_folder,
    command_seconds,
    fail,
    json_default,
    out,
    recorded,
)

# defection.store (duckdb), calibrate.abc/backtest (pyABC, matplotlib), the case library (pydantic), the engine
# (numba, scipy) and pandas are imported inside the commands that use them, so that `defection --help` does not
# load them (and `defection cases` only the case library).
if TYPE_CHECKING:
    import pandas as pd

    from defection.calibrate.cases import Case
    from defection.store import RunMeta

# ----------------------------------------------------------------------------- cases, calibrate, backtest
cases_app = typer.Typer(no_args_is_help=True, help="The historical case library used for calibration.")
CasesOpt = Annotated[
    Path | None,
    typer.Option("--cases", help="Folder of case files (default: the shipped library).", show_default=False),
]
CaseOpt = Annotated[
    list[str] | None, typer.Option("--case", help="Use only this case (repeatable).", show_default=False)
]
ParticlesOpt = Annotated[int, typer.Option("--particles", min=4, max=100_000, help="ABC-SMC population size.")]
GenerationsOpt = Annotated[int, typer.Option("--generations", min=1, max=100, help="ABC-SMC generations (at most).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=512, help="Processes that simulate particles.")]


class EarlyRejection(StrEnum):
    every = "every"
    last = "last"
    off = "off"


class Schedule(StrEnum):
    default = "default"
    ess = "ess"


ScheduleOpt = Annotated[
    Schedule,
    typer.Option(
        "--temperature-schedule",
        help="How the temperature falls between generations: pyABC's default (an acceptance-rate target and a decay "
        "that reaches 1 at the last generation), or 'ess' (steps that keep half the particles' effective sample "
        "size; more generations to reach 1). docs/calibration.md.",
    ),
]

KernelOpt = Annotated[
    float | None,
    typer.Option(
        "--kernel-scaling",
        min=0.1,
        max=20.0,
        help="Width of ABC-SMC's proposal kernel in multiples of Silverman's rule (default 2): wider keeps more "
        "particles' weight at the cost of more proposals outside the prior (docs/calibration.md).",
        show_default=False,
    ),
]

RestartsOpt = Annotated[
    int,
    typer.Option(
        "--restarts",
        min=1,
        max=16,
        help="Independent ABC-SMC runs (seeds SEED, SEED+1, …) whose final particles are pooled: the Monte Carlo "
        "error of one run averaged out, for that many times the simulations (docs/calibration.md, 'Restarts').",
    ),
]

EarlyOpt = Annotated[
    EarlyRejection,
    typer.Option(
        "--early-rejection",
        help="Stop simulating a particle's cases once the first ones prove it rejected: in every generation (a "
        "sample of the same posterior), in the last one only (the same sample as 'off'), or off "
        "(docs/calibration.md).",
    ),
]
CPUS = max(1, os.cpu_count() or 1)


def _cases(folder: Path | None, only: list[str] | None = None) -> list[Case]:
    from defection.calibrate.cases import CaseError, load_cases  # lazy: see the note at the top

    try:
        return load_cases(folder, only)
    except CaseError as e:
        fail(e.render())


@cases_app.command("list")
def cases_list(folder: CasesOpt = None, as_json: JsonOpt = False) -> None:
    """The cases, their observed outcomes and tolerances."""
    cases = _cases(folder)
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "title": c.meta.title,
            "period": c.meta.period,
            "soldiers": c.scenario.force.soldiers,
            "days": c.scenario.simulation.days,
            "agents": c.meta.calibration_agents,
            "observed": [o.model_dump() for o in c.observed],
            "sources": c.meta.sources,
            "file": c.path,
        }
        for c in cases
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=f"{len(rows)} historical cases")
    for col in ("case", "period", "force", "days", "observed (share of force)", "tolerance"):
        table.add_column(col, overflow="fold")
    for r in rows:
        obs = "\n".join(f"{o['outcome']} = {100 * o['value']:.3g}% [{o['tag']}]" for o in r["observed"])
        tol = "\n".join(f"±{o['tolerance']:g} log" for o in r["observed"])
        table.add_row(f"{r['id']}\n[dim]{r['title']}[/]", r["period"], f"{r['soldiers']:,}", str(r["days"]), obs, tol)
    out.print(table)


@cases_app.command("check")
def cases_check(files: Annotated[list[Path], typer.Argument(help="Case TOML files.")]) -> None:
    """Validate case files and say what is wrong."""
    from defection.calibrate.cases import CaseError, load_case  # lazy: see the note at the top

    bad = []
    for f in files:
        try:
            c = load_case(f)
            out.print(f"[green]ok[/] {f}: case '{c.id}', {len(c.observed)} observation(s)")
        except CaseError as e:
            bad.append(e.render())
    if bad:
        fail("\n".join(bad))


def _calibration_meta(kind: str, cases: list[Case], settings: dict[str, Any]) -> RunMeta:
    from defection.engine import library_versions, package_version  # lazy: see the note at the top
    from defection.store import RunMeta

    spec = {"cases": [c.id for c in cases], "settings": settings}
    text = json.dumps(spec, sort_keys=True)
    return RunMeta(
        kind=kind,
        scenario_name=f"{len(cases)} cases",
        scenario_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        scenario_json=text,
        seed=int(settings["seed"]),
        replicates=int(settings["particles"]),
        package_version=package_version(),
        library_versions=library_versions(),
    )


def _abc_settings(
    particles: int,
    generations: int,
    workers: int,
    seed: int,
    max_minutes: float,
    early: EarlyRejection,
    schedule: Schedule,
    kernel_scaling: float | None,
    restarts: int = 1,
) -> dict[str, Any]:
    """The ABC-SMC settings shared by `calibrate` and `backtest` (and stored with their runs)."""
    from defection.calibrate.abc import KERNEL_SCALING  # lazy (pyABC's module); the command imports it anyway

    return {
        "particles": particles,
        "generations": generations,
        "workers": workers,
        "seed": seed,
        "max_seconds": 60.0 * max_minutes,
        "early_rejection": early.value,
        "schedule": schedule.value,
        "kernel_scaling": KERNEL_SCALING if kernel_scaling is None else kernel_scaling,
        "restarts": restarts,
    }


def calibrate(
    folder: CasesOpt = None,
    case: CaseOpt = None,
    particles: ParticlesOpt = 32,
    generations: GenerationsOpt = 4,
    workers: WorkersOpt = CPUS,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the ABC sampler.")] = 1,
    max_minutes: Annotated[
        float,
        typer.Option(
            "--max-minutes",
            min=0.01,
            help="Time limit for the whole command: sampling, then the predictive check. A run cut short keeps the "
            "ABC-SMC generations finished so far (and says so); if none finished, it fails.",
        ),
    ] = 25.0,
    check_draws: Annotated[
        int, typer.Option("--check-draws", min=0, help="Posterior predictive draws per case (0 = no check).")
    ] = 24,
    no_discrepancy: Annotated[
        bool,
        typer.Option(
            "--no-discrepancy",
            help="Assume the model has no structural error: no δ per family of war (docs/calibration.md).",
        ),
    ] = False,
    early: EarlyOpt = EarlyRejection.every,
    schedule: ScheduleOpt = Schedule.default,
    kernel_scaling: KernelOpt = None,
    restarts: RestartsOpt = 1,
    output: Annotated[Path, typer.Option("--output", "-o", help="Posterior file to write.")] = Path("posterior.json"),
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write the calibration's HTML report (self-contained): the posterior's marginals and "
            "pairwise plots, the predictive check.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
) -> None:
    """Estimate the shared behavioural parameters from the historical cases (ABC-SMC); write a posterior file
    that `run --posterior` and `claims` use, and store the calibration.

    Progress goes to stderr: a live display on a terminal, timestamped lines otherwise (at every stage, and a
    heartbeat at least once a minute, or every $DEFECTION_HEARTBEAT_SECONDS)."""
    # lazy: pyABC (see the note at the top)
    from defection.calibrate.abc import Deadline
    from defection.calibrate.abc import calibrate as run_calibration

    deadline = Deadline(60.0 * max_minutes)
    cases = _cases(folder, case)
    check_folder("--output", output)
    if report is not None:
        check_folder("--report", report)
    settings = _abc_settings(
        particles, generations, workers, seed, max_minutes, early, schedule, kernel_scaling, restarts
    )
    with recorded(db, _calibration_meta("calibration", cases, settings), "calibration") as (store, run_id):
        with Reporter("calibrate", transient=as_json) as rep:
            rep.stage(f"calibrating {len(cases)} case(s): {particles} particles, up to {generations} generations")
            cal = run_calibration(
                cases,
                check_draws=check_draws,
                progress=rep,
                deadline=deadline,
                discrepancy=not no_discrepancy,
                **settings,
            )
            rep.stage("storing the posterior")
        cal.posterior.meta["run_id"] = run_id
        cal.posterior.save(output)
        cal.wall_seconds = command_seconds()  # the command's (imports, cases, storing), not the sampler's alone
        store.complete_artifacts(
            run_id,
            {"posterior": cal.posterior.to_dict(), "calibration": cal.to_dict()},
            _calibration_outcomes(cal),
            cal.wall_seconds,
        )
    if report is not None:
        from defection.report.html import render_report  # lazy: plotly (see the note at the top)

        report.write_text(render_report(store, run_id), encoding="utf-8")
    payload = {
        "run_id": run_id,
        "posterior_file": str(output),
        "report": None if report is None else str(report),
        **cal.to_dict(),
        "wall_seconds": command_seconds(),
    }
    if as_json:
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
        return
    meta = cal.posterior.meta
    table = Table(
        title=f"Posterior over {len(cases)} cases ({cal.simulations:,} simulations, "
        f"{cal.wall_seconds:.0f} s, final ε {meta['final_epsilon']:.3g}, effective sample size "
        f"{meta['effective_sample_size']:.1f} of {particles})",
        title_justify="left",
    )
    for col in ("parameter", "prior range", "median", "90% interval"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    for r in payload["parameters"]:
        table.add_row(
            r["parameter"],
            f"{r['prior_lo']:.3g} – {r['prior_hi']:.3g}",
            f"{r['median']:.3g}",
            f"{r['p05']:.3g} – {r['p95']:.3g}",
        )
    out.print(table)
    if cal.check is not None:
        out.print(_check_table(cal.check.to_dict("records"), "Posterior predictive check (in sample)"))
    if meta["effective_sample_size"] < particles / 5:
        out.print(
            f"[yellow]warning:[/] the posterior's effective sample size is {meta['effective_sample_size']:.1f} "
            f"of {particles} particles: a few particles carry most of the weight, so the intervals understate "
            "parameter uncertainty. More particles (--particles) help."
        )
    for note in cal.notes:
        out.print(f"[yellow]cut short:[/] {note}")
    written = f"{output}" + ("" if report is None else f" and report {report}")
    out.print(f"wrote {written}; stored as run [bold]{run_id}[/] in {db}")


def _calibration_outcomes(cal: Any) -> pd.DataFrame:
    import pandas as pd  # lazy: see the note at the top

    rows = [
        {
            "outcome": f"param:{r['parameter']}",
            "median": r["median"],
            "p05": r["p05"],
            "p95": r["p95"],
            "mean": math.nan,
        }
        for r in cal.posterior.summary().to_dict("records")
    ]
    if cal.check is not None:
        rows += [
            {
                "outcome": f"check:{r['case']}:{r['outcome']}",
                "median": r["median"],
                "p05": r["p05"],
                "p95": r["p95"],
                "mean": r["observed"],
            }
            for r in cal.check.to_dict("records")
        ]
    return pd.DataFrame(rows)


def _check_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("case", "outcome", "observed", "predicted median", "90% interval", "inside", "|log error|"):
        table.add_column(col, justify="left" if col in ("case", "outcome") else "right")
    for r in rows:
        table.add_row(
            r["case"],
            r["outcome"],
            f"{100 * r['observed']:.3g}%",
            f"{100 * r['median']:.3g}%",
            f"{100 * r['p05']:.3g}% – {100 * r['p95']:.3g}%",
            "yes" if r["inside"] else "[red]no[/]",
            f"{r['abs_log_error']:.2f}",
        )
    return table


def backtest(
    folder: CasesOpt = None,
    case: CaseOpt = None,
    particles: ParticlesOpt = 32,
    generations: GenerationsOpt = 4,
    workers: WorkersOpt = CPUS,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the ABC sampler.")] = 1,
    draws: Annotated[int, typer.Option("--draws", min=2, help="Posterior draws for each prediction.")] = 40,
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.1, help="Time limit per calibration.")] = 10.0,
    early: EarlyOpt = EarlyRejection.every,
    schedule: ScheduleOpt = Schedule.default,
    kernel_scaling: KernelOpt = None,
    restarts: RestartsOpt = 1,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds",
            min=2,
            help="Hold out this many groups of cases in turn (grouped K-fold, families mixed) instead of one case at "
            "a time: fewer, cheaper calibrations.",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[Path, typer.Option("--plot", help="PNG of predicted against observed.")] = Path("backtest.png"),
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the HTML validation report (self-contained).", show_default=False),
    ] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
) -> None:
    """Leave-one-case-out validation (or grouped K-fold with --folds): calibrate on all cases but one, predict the
    one left out, repeat; report
    coverage of the 50% and 90% intervals, the median absolute log error, the weighted interval score against a
    naive baseline and a conformal interval (docs/calibration.md), and plot predicted against observed."""
    # lazy: pyABC and matplotlib (see the note at the top)
    from defection.calibrate.backtest import backtest as run_backtest
    from defection.calibrate.backtest import backtest_plot

    cases = _cases(folder, case)
    if len(cases) < 2:
        fail("a backtest needs at least two cases")
    if folds is not None and folds > len(cases):
        fail(f"--folds {folds}: there are only {len(cases)} cases to divide")
    check_folder("--plot", plot)
    if report is not None:
        check_folder("--report", report)
    settings = _abc_settings(
        particles, generations, workers, seed, max_minutes, early, schedule, kernel_scaling, restarts
    )
    with recorded(db, _calibration_meta("backtest", cases, settings), "backtest") as (store, run_id):
        with Reporter("backtest", transient=as_json) as rep:
            held = "one case at a time" if folds is None else f"{folds} groups of cases in turn"
            rep.stage(
                f"backtesting {len(cases)} cases, holding out {held}: {particles} particles, up to {generations} "
                "generations each"
            )
            bt = run_backtest(cases, draws=draws, folds=folds, progress=rep, on_fold=rep.overall, **settings)
        backtest_plot(bt, plot)
        summary = bt.to_dict()
        rows = bt.rows.assign(outcome=lambda d: "heldout:" + d["case"] + ":" + d["outcome"], mean=bt.rows["observed"])
        summary["wall_seconds"] = command_seconds()  # the command's, not the folds' alone
        store.complete_artifacts(run_id, {"backtest": summary}, rows, summary["wall_seconds"])
    if report is not None:
        from defection.report.validation import validation_report  # lazy: plotly (see the note at the top)

        report.write_text(validation_report(summary, run_id)[0], encoding="utf-8")
    payload = {"run_id": run_id, "plot": str(plot), "report": None if report is None else str(report), **summary}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
        return
    title = "Leave-one-case-out" if folds is None else f"{folds}-fold (cases held out in groups)"
    out.print(_check_table(summary["rows"], f"{title} predictions (out of sample)"))
    out.print(_backtest_scores(summary))
    written = f"plot {plot}" + ("" if report is None else f", report {report}")
    out.print(f"{written}; stored as run [bold]{run_id}[/] in {db}")


def _backtest_scores(s: dict[str, Any]) -> str:
    """The backtest's scores in one paragraph (None, for a score that could not be computed, prints as n/a)."""

    def num(key: str, spec: str) -> str:
        return "n/a" if s.get(key) is None else format(s[key], spec)

    return (
        f"coverage of the 50% intervals {num('coverage_50', '.0%')}, of the 90% intervals "
        f"[bold]{num('coverage_90', '.0%')}[/] (conformal: {num('conformal_coverage_90', '.0%')}) of "
        f"{s['observations']}; median |log error| {num('median_abs_log_error', '.2f')}; interval score "
        f"{num('interval_score', '.3g')} against {num('interval_score_naive', '.3g')} for the naive baseline "
        f"(skill {num('skill', '.2f')})"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.add_typer(cases_app, name="cases")
    app.command()(calibrate)
    app.command()(backtest)
