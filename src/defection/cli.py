"""The `defection` command line (Typer + Rich). Thin: every command calls the Python API."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from defection.scenario import (
    Scenario,
    ScenarioError,
    iter_params,
    load_scenario,
    registry_markdown,
    scenario_to_toml,
    with_overrides,
    with_posterior,
)

if TYPE_CHECKING:
    from defection.calibration import Posterior
    from defection.results import ResultsDB, RunMeta

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="defection-lab: test offers that would make soldiers of an invading army defect.")
runs_app = typer.Typer(no_args_is_help=True, help="Browse and export stored runs.")
app.add_typer(runs_app, name="runs")

out = Console()
err = Console(stderr=True)

ScenarioArg = Annotated[Path | None, typer.Argument(help="Scenario TOML file (default: the embedded proposal).",
                                                    show_default=False)]
DbOpt = Annotated[Path, typer.Option("--db", help="Results database (DuckDB file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout instead of tables.")]
PosteriorOpt = Annotated[Path | None, typer.Option("--posterior", help="Posterior file from `defection calibrate`: "
                                                   "each replicate draws its calibrated parameters from it.",
                                                   show_default=False)]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(path: Path | None):
    try:
        return load_scenario(path)
    except ScenarioError as e:
        fail(e.render())


class _Terminated(Exception):
    """SIGTERM turned into an exception so an interrupted run is recorded as such."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@contextmanager
def recorded(db: Path, meta: RunMeta, what: str = "run") -> Iterator[tuple[ResultsDB, str]]:
    """Record a run as 'running', yield (store, run_id); an interruption or failure inside the block marks it
    'interrupted' or 'failed' (exit 130 or 1, no traceback). The block must complete the run itself."""
    from defection.results import ResultsDB, ResultsError

    try:
        store = ResultsDB(db)
        run_id = store.begin_run(meta)
    except ResultsError as e:
        fail(str(e))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield store, run_id
    except (KeyboardInterrupt, _Terminated):
        _mark(store, run_id, "interrupted", "interrupted (SIGINT/SIGTERM) before completion")
        err.print(f"[yellow]interrupted:[/] {what} {run_id} recorded as interrupted; nothing partial was stored.")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as e:  # a bug or resource failure: record it, no traceback for the user
        _mark(store, run_id, "failed", f"{type(e).__name__}: {e}")
        fail(f"{what} {run_id} failed: {type(e).__name__}: {e}", code=1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _mark(store: ResultsDB, run_id: str, status: Literal["failed", "interrupted"], error: str) -> None:
    """Mark a run that did not complete; if even that is impossible (the database file was removed or is
    unreadable), say so instead of raising."""
    from defection.results import ResultsError, RunNotFound

    try:
        store.mark_run(run_id, status, error)
    except (ResultsError, RunNotFound, ValueError) as e:
        err.print(f"[yellow]warning:[/] could not record run {run_id} as {status}: {e}")


def _fmt(name: str, v: float | None) -> str:
    if v is None or math.isnan(v):
        return "–"
    if math.isinf(v):
        return "never" if name == "days_to_target" else "∞"
    if "share" in name or name == "credibility":
        return f"{100 * v:.3g}%" if abs(v) < 0.01 else f"{100 * v:.1f}%"
    if "usd" in name:
        return f"${v / 1e9:,.2f}bn" if abs(v) >= 1e9 else f"${v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def outcome_table(rows: list[dict[str, Any]], title: str) -> Table:
    from defection.analysis import OUTCOMES

    table = Table(title=title, title_justify="left")
    table.add_column("outcome", no_wrap=True)
    table.add_column("median", justify="right")
    table.add_column("90% interval", justify="right")
    wide = out.width >= 120
    if wide:
        table.add_column("meaning", style="dim")
    for r in rows:
        name = r["outcome"]
        cells = [name, _fmt(name, r["median"]), f"{_fmt(name, r['p05'])} – {_fmt(name, r['p95'])}"]
        table.add_row(*cells, *([OUTCOMES.get(name, "")] if wide else []))
    return table


# ----------------------------------------------------------------------------- run
@app.command()
def run(
    scenario: ScenarioArg = None,
    replicates: Annotated[int | None, typer.Option("--replicates", "-r", help="Replicates.")] = None,
    days: Annotated[int | None, typer.Option("--days", "-d", help="Days to simulate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Master seed.")] = None,
    agents: Annotated[int | None, typer.Option("--agents", "-k", help="Simulated agents (whole companies).")] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
    posterior: PosteriorOpt = None,
    report: Annotated[Path | None, typer.Option("--report", help="After storing the run, write its "
                                                "self-contained HTML report to this file.",
                                                show_default=False)] = None,
) -> None:
    """Simulate a scenario, print median and 90% interval of each outcome, and store the run."""
    from defection.engine import simulate
    from defection.results import RunMeta

    if report is not None and (not report.parent.exists() or report.is_dir()):
        fail(f"--report {report}: " + (f"folder {report.parent} does not exist" if not report.parent.exists()
                                       else "is a folder; give a file name such as report.html"))
    base = _load(scenario)
    source = str(scenario) if scenario else "<command line>"
    try:
        sc = with_overrides(base, source=f"{source} (with command-line options)", replicates=replicates, days=days,
                            seed=seed, agents=agents)
        if posterior is not None:
            sc = with_posterior(sc, posterior, "--posterior")
    except ScenarioError as e:
        fail(e.render())
    sim = sc.simulation
    show_progress = not as_json or err.is_terminal
    progress = Progress(TextColumn("[bold]simulating[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("replicate-days"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=err, disable=not show_progress, transient=as_json)
    with recorded(db, RunMeta.from_scenario(sc)) as (store, run_id):
        with progress:
            task = progress.add_task("run", total=sim.days * sim.replicates)
            result = simulate(sc, progress=lambda done, total: progress.update(task, completed=done))
        result.run_id = run_id
        store.complete_run(run_id, result)
    if report is not None:
        _write_report(store, run_id, report)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
        return
    title = (f"{sc.meta.name}: {result.agents:,} agents for {result.represented:,} soldiers, "
             f"{result.days} days, {result.replicates} replicates, seed {result.seed}")
    out.print(outcome_table(result.outcomes().to_dict("records"), title))
    out.print(f"stored as run [bold]{run_id}[/] in {db} ({result.wall_seconds:.1f} s)")
    if report is not None:
        out.print(f"report: {report}", highlight=False)


def _write_report(store: ResultsDB, run_id: str, path: Path) -> None:
    """Write a stored run's HTML report; a failure is a clean error (the run itself stays stored)."""
    from defection.report import ReportError, render_report

    try:
        path.write_text(render_report(store, run_id), encoding="utf-8")
    except (ReportError, OSError) as e:
        fail(f"run {run_id} is stored, but its report could not be written to {path}: {e}", code=1)


# ----------------------------------------------------------------------------- scenarios
@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the scenario TOML.")],
         force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Write the default scenario as a commented TOML file to start from."""
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        fail(f"{path.parent} does not exist")
    path.write_text(scenario_to_toml(), encoding="utf-8")
    out.print(f"wrote {path}: every parameter with unit, range and source. Check it with `defection check {path}`.")


@app.command()
def check(path: Annotated[Path, typer.Argument(help="Scenario TOML file.")]) -> None:
    """Validate a scenario and say what is wrong."""
    sc = _load(path)
    out.print(f"[green]ok[/] {path}: scenario '{sc.meta.name}', hash {sc.content_hash()}")


@app.command()
def params(as_json: JsonOpt = False,
           markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/parameters.md.")] = False) -> None:
    """Every parameter with unit, default, range and source."""
    if markdown:
        sys.stdout.write(registry_markdown())
        return
    rows = [
        {"path": p.path, "unit": p.unit, "default": p.default, "min": p.lo, "max": p.hi, "source": p.source,
         "description": p.description}
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


# ----------------------------------------------------------------------------- runs
def _store(db: Path):
    from defection.results import ResultsDB, ResultsError

    if not db.exists():
        fail(f"no results database at {db}; run `defection run` first or pass --db")
    try:
        return ResultsDB(db)
    except ResultsError as e:
        fail(str(e))


@runs_app.command("list")
def runs_list(db: DbOpt = Path("defection.duckdb"), as_json: JsonOpt = False) -> None:
    """Stored runs, newest first."""
    from defection.results import ResultsError

    try:
        df = _store(db).list_runs()
    except ResultsError as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(df.to_json(orient="records", date_format="iso") + "\n")
        return
    table = Table(title=f"{len(df)} runs in {db}")
    for col in ("run_id", "status", "created (UTC)", "scenario", "agents", "days × reps"):
        table.add_column(col, no_wrap=col != "scenario", min_width=12 if col == "scenario" else None)
    for r in df.itertuples():
        colour = {"complete": "green", "running": "cyan", "failed": "red", "interrupted": "yellow"}.get(r.status, "")
        table.add_row(r.run_id, f"[{colour}]{r.status}[/]", str(r.created_at)[:16], r.scenario_name,
                      f"{r.agents:,}", f"{r.days} × {r.replicates}")
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
              db: DbOpt = Path("defection.duckdb"), as_json: JsonOpt = False) -> None:
    """One run: its settings, versions and outcomes."""
    from defection.results import ResultsError, RunNotFound

    store = _store(db)
    try:
        info = store.get_run(run_id)
        rows = store.outcomes(info["run_id"]).to_dict("records") if info["status"] == "complete" else []
    except (RunNotFound, ResultsError) as e:
        fail(str(e))
    if as_json:
        payload = {k: (str(v) if k.endswith("_at") else v) for k, v in info.items() if k != "scenario_json"}
        payload["scenario"] = json.loads(info["scenario_json"])
        payload["outcomes"] = {r["outcome"]: {"median": r["median"], "p05": r["p05"], "p95": r["p95"]} for r in rows}
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        return
    meta = Table(show_header=False, title=f"run {info['run_id']}", title_justify="left")
    for key in ("status", "kind", "scenario_name", "scenario_hash", "seed", "agents", "represented", "days",
                "replicates", "created_at", "finished_at", "wall_seconds", "package_version", "error"):
        meta.add_row(key, str(info.get(key)))
    meta.add_row("libraries", ", ".join(f"{k} {v}" for k, v in info["library_versions"].items()))
    out.print(meta)
    if rows:
        out.print(outcome_table(rows, "outcomes"))
    else:
        out.print(f"[yellow]no outcomes: the run is {info['status']}[/]")


@runs_app.command("export")
def runs_export(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet or csv.")] = "parquet",
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write into.")] = Path("export"),
    db: DbOpt = Path("defection.duckdb"),
) -> None:
    """Write a run's daily series, per-replicate outcomes, intervals and settings as Parquet or CSV files."""
    from defection.results import ResultsError, RunNotFound

    if fmt not in ("parquet", "csv"):
        fail(f"--format = {fmt!r}: allowed values are 'parquet' and 'csv'")
    store = _store(db)
    try:
        files = store.export(store.get_run(run_id)["run_id"], fmt, output)  # type: ignore[arg-type]
    except (RunNotFound, ResultsError, ValueError) as e:
        fail(str(e))
    for f in files:
        out.print(f"wrote {f}")


# ----------------------------------------------------------------------------- claims
VERDICT_STYLE = {"supported": "bold green", "not supported": "bold red"}


def _money_or_share(n: dict[str, Any]) -> str:
    def f(v: float) -> str:
        if v is None or not math.isfinite(v):
            return "–"
        if n["unit"] == "USD":
            return f"${v:,.0f}" if abs(v) < 1e9 else f"${v / 1e9:,.2f}bn"
        if "share" in n["name"] or "…as a share" in n["name"]:
            return f"{100 * v:.3g}%"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    return f"{f(n['median'])}  ({f(n['p05'])} – {f(n['p95'])})"


@app.command()
def claims(
    scenario: ScenarioArg = None,
    replicates: Annotated[int, typer.Option("--replicates", "-r", help="Replicates per variant.")] = 12,
    days: Annotated[int, typer.Option("--days", "-d", help="Days to simulate.")] = 365,
    agents: Annotated[int, typer.Option("--agents", "-k", help="Simulated agents per variant.")] = 19_800,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Master seed (default: the scenario's).")] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
    posterior: PosteriorOpt = None,
    no_posterior: Annotated[bool, typer.Option("--no-posterior", help="Ignore stored calibrations: use the "
                                               "scenario's parameter values.")] = False,
) -> None:
    """Test each claim of the proposal on the simulator: numbers with 90% intervals, a verdict, the parameters
    that decide it, and the best alternative design for a failing claim."""
    from defection.claims import run_claims
    from defection.results import RunMeta

    base = _load(scenario)
    try:
        sc = with_overrides(base, source="claims options", replicates=replicates, days=days, agents=agents,
                            seed=seed)
    except ScenarioError as e:
        fail(e.render())
    post, post_source = _claims_posterior(sc, posterior, no_posterior, db)
    with recorded(db, RunMeta.from_scenario(sc, kind="claims"), "claims run") as (store, run_id):
        with err.status("testing the claims…") as status:
            report = run_claims(sc, replicates, days, sc.simulation.agents, sc.simulation.seed,
                                progress=lambda label: status.update(f"simulating: {label}"), posterior=post)
        report.settings["posterior"] = post_source
        report.proposal.run_id = run_id
        store.complete_run(run_id, report.proposal, artifacts={"claims": report.to_dict()})
    payload = {"run_id": run_id, **report.to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
        return
    for c in payload["claims"]:
        style = VERDICT_STYLE.get(c["verdict"], "bold yellow")
        table = Table(title=f"Claim {c['number']}: {c['claim']}", title_justify="left", show_header=True,
                      caption=f"[{style}]{c['verdict']}[/]: {c['reason']}", caption_justify="left")
        table.add_column("quantity")
        table.add_column("median (90% interval)", justify="right")
        for n in c["numbers"]:
            table.add_row(n["name"], _money_or_share(n))
        out.print(table)
        out.print(f"[dim]test:[/] {c['test']}", highlight=False)
        if not c["deciding"]:
            out.print("[dim]decided by:[/] none of the tested parameters moves it", highlight=False)
        else:
            parts = [f"{d['parameter']} ({d['low']:g} → {d['high']:g}: {d['metric_at_low']:.3g} → "
                     f"{d['metric_at_high']:.3g})" for d in c["deciding"]]
            out.print("[dim]decided by:[/] " + "; ".join(parts), highlight=False)
        alt = c["alternative"]
        if alt and c["verdict"] != "supported":
            out.print(f"[dim]best alternative:[/] {alt['name']} — {alt['description']} "
                      f"({alt['proposal_metric']:.3g} → {alt['metric']:.3g})", highlight=False)
        out.print()
    out.print(f"{payload['simulations']} simulations × {replicates} replicates; "
              f"parameters: {post_source}; stored as run [bold]{run_id}[/] in {db}")


def _claims_posterior(sc: Scenario, posterior: Path | None, no_posterior: bool,
                      db: Path) -> tuple[Posterior | None, str]:
    """The posterior `claims` uses: --posterior, else the scenario's, else the newest calibration in the
    database (unless --no-posterior)."""
    from defection.calibration import Posterior, PosteriorError
    from defection.results import ResultsDB, ResultsError

    if no_posterior:
        return None, "scenario values (--no-posterior)"
    try:
        if posterior is not None:
            return Posterior.load(posterior), f"posterior {posterior}"
        if sc.simulation.posterior:
            return Posterior.load(sc.simulation.posterior), f"posterior {sc.simulation.posterior}"
    except PosteriorError as e:
        fail(e.render())
    if db.exists():
        try:
            store = ResultsDB(db)
            latest = store.latest("calibration")
            if latest is not None:
                return Posterior.from_dict(store.artifact(latest, "posterior")), f"calibration {latest} in {db}"
        except (ResultsError, PosteriorError) as e:
            fail(str(e))
    return None, "scenario values (no calibration in the database)"


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------- cases, calibrate, backtest
cases_app = typer.Typer(no_args_is_help=True, help="The historical case library used for calibration.")
app.add_typer(cases_app, name="cases")
CasesOpt = Annotated[Path | None, typer.Option("--cases", help="Folder of case files (default: the shipped "
                                               "library).", show_default=False)]
CaseOpt = Annotated[list[str] | None, typer.Option("--case", help="Use only this case (repeatable).",
                                                   show_default=False)]
ParticlesOpt = Annotated[int, typer.Option("--particles", min=4, max=100_000, help="ABC-SMC population size.")]
GenerationsOpt = Annotated[int, typer.Option("--generations", min=1, max=100, help="ABC-SMC generations (at most).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=512, help="Processes that simulate particles.")]
CPUS = max(1, os.cpu_count() or 1)


def _cases(folder: Path | None, only: list[str] | None = None) -> list[Any]:
    from defection.cases import CaseError, load_cases

    try:
        return load_cases(folder, only)
    except CaseError as e:
        fail(e.render())


@cases_app.command("list")
def cases_list(folder: CasesOpt = None, as_json: JsonOpt = False) -> None:
    """The cases, their observed outcomes and tolerances."""
    cases = _cases(folder)
    rows = [{"id": c.id, "title": c.meta.title, "period": c.meta.period, "soldiers": c.scenario.force.soldiers,
             "days": c.scenario.simulation.days, "agents": c.meta.calibration_agents,
             "observed": [o.model_dump() for o in c.observed], "sources": c.meta.sources, "file": c.path}
            for c in cases]
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
    from defection.cases import CaseError, load_case

    bad = []
    for f in files:
        try:
            c = load_case(f)
            out.print(f"[green]ok[/] {f}: case '{c.id}', {len(c.observed)} observation(s)")
        except CaseError as e:
            bad.append(e.render())
    if bad:
        fail("\n".join(bad))


def _calibration_meta(kind: str, cases: list[Any], settings: dict[str, Any]) -> RunMeta:
    from defection.engine import library_versions, package_version
    from defection.results import RunMeta

    spec = {"cases": [c.id for c in cases], "settings": settings}
    text = json.dumps(spec, sort_keys=True)
    return RunMeta(kind=kind, scenario_name=f"{len(cases)} cases", scenario_hash=hashlib.sha256(
        text.encode()).hexdigest()[:16], scenario_json=text, seed=int(settings["seed"]),
        replicates=int(settings["particles"]), package_version=package_version(),
        library_versions=library_versions())


def _abc_settings(particles: int, generations: int, workers: int, seed: int, max_minutes: float) -> dict[str, Any]:
    """The ABC-SMC settings shared by `calibrate` and `backtest` (and stored with their runs)."""
    return {"particles": particles, "generations": generations, "workers": workers, "seed": seed,
            "max_seconds": 60.0 * max_minutes}


def _check_folder(option: str, path: Path) -> None:
    """Fail before any work if an output file's folder does not exist."""
    if not path.parent.exists():
        fail(f"{option} {path}: folder {path.parent} does not exist")


@app.command()
def calibrate(
    folder: CasesOpt = None,
    case: CaseOpt = None,
    particles: ParticlesOpt = 64,
    generations: GenerationsOpt = 6,
    workers: WorkersOpt = CPUS,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the ABC sampler.")] = 1,
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.1, help="Stop after this long.")] = 25.0,
    check_draws: Annotated[int, typer.Option("--check-draws", min=0, help="Posterior predictive draws per case "
                                             "(0 = no check).")] = 24,
    output: Annotated[Path, typer.Option("--output", "-o", help="Posterior file to write.")] = Path("posterior.json"),
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
) -> None:
    """Estimate the shared behavioural parameters from the historical cases (ABC-SMC); write a posterior file
    that `run --posterior` and `claims` use, and store the calibration."""
    from defection.calibration import calibrate as run_calibration

    cases = _cases(folder, case)
    _check_folder("--output", output)
    settings = _abc_settings(particles, generations, workers, seed, max_minutes)
    with recorded(db, _calibration_meta("calibration", cases, settings), "calibration") as (store, run_id):
        with err.status("calibrating…") as status:
            cal = run_calibration(cases, check_draws=check_draws, progress=lambda m: status.update(f"ABC-SMC {m}"),
                                  **settings)
        cal.posterior.meta["run_id"] = run_id
        cal.posterior.save(output)
        store.complete_artifacts(run_id, {"posterior": cal.posterior.to_dict(), "calibration": cal.to_dict()},
                                 _calibration_outcomes(cal), cal.wall_seconds)
    payload = {"run_id": run_id, "posterior_file": str(output), **cal.to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
        return
    meta = cal.posterior.meta
    table = Table(title=f"Posterior over {len(cases)} cases ({cal.simulations:,} simulations, "
                        f"{cal.wall_seconds:.0f} s, final ε {meta['final_epsilon']:.3g}, effective sample size "
                        f"{meta['effective_sample_size']:.1f} of {particles})", title_justify="left")
    for col in ("parameter", "prior range", "median", "90% interval"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    for r in payload["parameters"]:
        table.add_row(r["parameter"], f"{r['prior_lo']:.3g} – {r['prior_hi']:.3g}", f"{r['median']:.3g}",
                      f"{r['p05']:.3g} – {r['p95']:.3g}")
    out.print(table)
    if cal.check is not None:
        out.print(_check_table(cal.check.to_dict("records"), "Posterior predictive check (in sample)"))
    if meta["effective_sample_size"] < particles / 5:
        out.print(f"[yellow]warning:[/] the posterior's effective sample size is {meta['effective_sample_size']:.1f} "
                  f"of {particles} particles: a few particles carry most of the weight, so the intervals understate "
                  "parameter uncertainty. More particles (--particles) help.")
    out.print(f"wrote {output}; stored as run [bold]{run_id}[/] in {db}")


def _calibration_outcomes(cal: Any) -> Any:
    import pandas as pd

    rows = [{"outcome": f"param:{r['parameter']}", "median": r["median"], "p05": r["p05"], "p95": r["p95"],
             "mean": math.nan} for r in cal.posterior.summary().to_dict("records")]
    if cal.check is not None:
        rows += [{"outcome": f"check:{r['case']}:{r['outcome']}", "median": r["median"], "p05": r["p05"],
                  "p95": r["p95"], "mean": r["observed"]} for r in cal.check.to_dict("records")]
    return pd.DataFrame(rows)


def _check_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("case", "outcome", "observed", "predicted median", "90% interval", "inside", "|log error|"):
        table.add_column(col, justify="left" if col in ("case", "outcome") else "right")
    for r in rows:
        table.add_row(r["case"], r["outcome"], f"{100 * r['observed']:.3g}%", f"{100 * r['median']:.3g}%",
                      f"{100 * r['p05']:.3g}% – {100 * r['p95']:.3g}%", "yes" if r["inside"] else "[red]no[/]",
                      f"{r['abs_log_error']:.2f}")
    return table


@app.command()
def backtest(
    folder: CasesOpt = None,
    case: CaseOpt = None,
    particles: ParticlesOpt = 32,
    generations: GenerationsOpt = 4,
    workers: WorkersOpt = CPUS,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the ABC sampler.")] = 1,
    draws: Annotated[int, typer.Option("--draws", min=2, help="Posterior draws for each prediction.")] = 40,
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.1, help="Time limit per calibration.")] = 10.0,
    plot: Annotated[Path, typer.Option("--plot", help="PNG of predicted against observed.")] = Path("backtest.png"),
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
) -> None:
    """Leave-one-case-out validation: calibrate on all cases but one, predict the one left out, repeat; report
    coverage of the 90% intervals and the median absolute log error, and plot predicted against observed."""
    from defection.calibration import backtest as run_backtest
    from defection.calibration import backtest_plot

    cases = _cases(folder, case)
    if len(cases) < 2:
        fail("a backtest needs at least two cases")
    _check_folder("--plot", plot)
    settings = _abc_settings(particles, generations, workers, seed, max_minutes)
    with recorded(db, _calibration_meta("backtest", cases, settings), "backtest") as (store, run_id):
        with err.status("backtesting…") as status:
            bt = run_backtest(cases, draws=draws, progress=lambda m: status.update(m), **settings)
        backtest_plot(bt, plot)
        rows = bt.rows.assign(outcome=lambda d: "heldout:" + d["case"] + ":" + d["outcome"], mean=bt.rows["observed"])
        store.complete_artifacts(run_id, {"backtest": bt.to_dict()}, rows, bt.wall_seconds)
    payload = {"run_id": run_id, "plot": str(plot), **bt.to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
        return
    out.print(_check_table(bt.rows.to_dict("records"), "Leave-one-case-out predictions (out of sample)"))
    out.print(f"coverage of the 90% intervals: [bold]{bt.coverage:.0%}[/] of {len(bt.rows)}; median |log error| "
              f"{bt.median_abs_log_error:.2f}; plot {plot}; stored as run [bold]{run_id}[/] in {db}")


# ----------------------------------------------------------------------------- bench
@app.command()
def bench(
    agents: Annotated[int, typer.Option("--agents", help="Simulated agents.")] = 1_000_000,
    days: Annotated[int, typer.Option("--days", help="Days per repeat.")] = 100,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed repeats; the median is reported.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Engine throughput of the full model (every phase) on the default scenario, in agent-days per second."""
    from defection.bench import run_bench

    if agents < 99 or days < 1 or repeats < 1:
        fail("--agents must be ≥ 99 (one company), --days and --repeats ≥ 1")
    report = run_bench(agents=agents, days=days, repeats=repeats)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    table = Table(title=f"defection bench: {report['agents']:,} agents × {days} days, median of {repeats}",
                  show_header=False)
    table.add_row("agent-days per second", f"{report['agent_days_per_s']:.3g}")
    table.add_row("seconds per repeat (median)", f"{report['seconds_median']:.3f}")
    table.add_row("numba threads", str(report["threads"]))
    table.add_row("machine", report["machine"])
    for phase, sec in report["phase_seconds"].items():
        table.add_row(f"  phase {phase}", f"{sec:.3f} s")
    out.print(table)


def _register_commands() -> None:
    """Commands that live beside their concept: exploration (sweep, sensitivity, optimize, discover), reports
    (report, compare) and the dashboard (serve)."""
    from defection.explore import search_cli, sweep_cli
    from defection.report import cli as report_cli
    from defection.web import cli as web_cli

    sweep_cli.register(app)
    search_cli.register(app)
    report_cli.register(app)
    web_cli.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
