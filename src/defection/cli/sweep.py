"""`defection sweep`: run a spec's experiments on local worker processes or Dask, stream results to Parquet,
store them in DuckDB.

Registered on the main `defection` app by `defection.cli.app`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from defection.cli.console import (
    NoPosteriorOpt,
    PosteriorOpt,
    Reporter,
    check_posterior_flags,
    choose_posterior,
    command_seconds,
    fail,
    open_store,
    out,
    recorded,
    warn_resolution,
)
from defection.cli.console import fmt as _fmt

# defection.explore.sweep (Dask, pyarrow, duckdb), defection.store, the engine, defection.analysis (numba, pandas)
# and the scenario (pydantic) are imported inside the functions that use them: `defection --help` need not load them.
if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from defection.explore.spec import Spec
    from defection.explore.sweep import SweepFolder
    from defection.scenario import Scenario
    from defection.store import ResultsDB

CPUS = max(1, os.cpu_count() or 1)
DESIGN_ARTIFACT_ROWS = 100_000  # a larger design is stored by reference to its Parquet file (and in `experiments`)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("sweep")(sweep)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # KeyboardInterrupt, not an Exception: a task running in this process must not swallow it as a failed point
    raise KeyboardInterrupt


def sweep(
    spec_file: Annotated[
        Path,
        typer.Argument(
            # escaped: Typer renders help as Rich markup, where [experiment] would be taken for a style tag
            help=escape("Spec TOML file: [experiment], [[uncertainties]], [[levers]], [[outcomes]]."),
            show_default=False,
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=0,
            max=4096,
            help="Local worker processes, one thread each (default: "
            f"one per CPU, here {CPUS}); 0 runs the experiments serially "
            "in this process.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Address of a running Dask scheduler "
            "(e.g. tcp://10.0.0.5:8786) whose workers run the "
            "experiments instead of local processes.",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="How --workers run the experiments: 'pool' (worker processes started once, no scheduler), 'dask' "
            "(a Dask LocalCluster: seconds to start, retries a task whose worker died), or 'auto' (the pool below "
            "2e9 agent-days to run, else Dask).",
        ),
    ] = "auto",
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the plan and the Parquet result parts (default: sweeps/<experiment name>).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the interrupted sweep in --out: run only the experiments not yet in its parts."
        ),
    ] = False,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=1000,
            help="Experiments per task (default: enough tasks for 8 per worker, at most 8 experiments each).",
            show_default=False,
        ),
    ] = None,
    flush_every: Annotated[
        int, typer.Option("--flush-every", min=1, help="Write a Parquet part every N finished experiments…")
    ] = 32,
    flush_seconds: Annotated[
        float, typer.Option("--flush-seconds", min=0.0, help="…or every S seconds, whichever comes first.")
    ] = 5.0,
    db: Annotated[Path, typer.Option("--db", help="Results database (DuckDB file).")] = Path("defection.duckdb"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout instead of tables.")] = False,
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
) -> None:
    """Run every experiment of a spec (its design over uncertainties and levers, each with its replicates under
    common random numbers) on local worker processes or Dask; stream results to Parquet parts in --out and store
    them in the database as a run of kind 'sweep' (tables `experiments` and `experiment_outcomes`).

    Each replicate draws the calibrated parameters from the shipped posterior (or --posterior, or the base
    scenario's), except those the spec's factors set; --no-posterior uses the scenario's values."""
    # lazy: see the note at the top. Only the light modules first: the spec decides whether the experiments run
    # on the worker pool, and if they do its processes start (and load the engine) while the rest imports.
    from defection.explore.pool import EXECUTORS, primed_pool, runs_on_pool
    from defection.explore.spec import design_agent_days, load_spec
    from defection.scenario import ScenarioError

    if scheduler is not None and workers is not None:
        fail(
            "--workers and --scheduler: give one (--workers starts a local cluster; with --scheduler the "
            "cluster's workers run the experiments)"
        )
    if scheduler is not None and not scheduler.strip():
        fail("--scheduler: give an address such as tcp://127.0.0.1:8786")
    if executor not in EXECUTORS:
        fail(f"--executor {executor}: choose one of {', '.join(EXECUTORS)}")
    if scheduler is not None and executor == "pool":
        fail("--executor pool and --scheduler: the scheduler's Dask workers run the experiments; give one")
    check_posterior_flags(posterior, no_posterior)
    try:
        spec, base = load_spec(spec_file, posterior=not no_posterior)
    except ScenarioError as e:  # SpecError included
        fail(e.render())
    n_workers = CPUS if workers is None else workers
    started = (
        primed_pool(n_workers)[0] if runs_on_pool(n_workers, scheduler, executor, design_agent_days(spec)) else None
    )
    try:
        _sweep(
            spec_file,
            spec,
            base,
            n_workers,
            scheduler,
            executor,
            out_dir,
            resume,
            batch,
            flush_every,
            flush_seconds,
            db,
            as_json,
            posterior,
            no_posterior,
            started,
        )
    except BaseException:
        if started is not None:
            from defection.workers import stop_workers

            stop_workers(started)
        raise
    if started is not None:  # used (and shut down) by the sweep, or not needed after all (a resume found it done)
        started.shutdown(wait=False, cancel_futures=True)


def _sweep(
    spec_file: Path,
    spec: Spec,
    base: Scenario,
    n_workers: int,
    scheduler: str | None,
    executor: str,
    out_dir: Path | None,
    resume: bool,
    batch: int | None,
    flush_every: int,
    flush_seconds: float,
    db: Path,
    as_json: bool,
    posterior: Path | None,
    no_posterior: bool,
    started: ProcessPoolExecutor | None,
) -> None:
    """The sweep itself, once its options are checked and (for the worker pool) its processes are starting."""
    from defection.analysis import json_safe
    from defection.engine import library_versions, package_version
    from defection.explore.design import exploration_posterior
    from defection.explore.sweep import (
        SweepError,
        SweepFolder,
        executor_for,
        failures,
        make_plan,
        run_sweep,
        stored_run,
        sweep_agent_days,
    )
    from defection.scenario import ScenarioError
    from defection.store import RunMeta

    try:
        plan = make_plan(spec, base, str(spec_file))
    except ScenarioError as e:  # SpecError included
        fail(e.render())
    plan.posterior = exploration_posterior(plan.spec, *choose_posterior(plan.base, posterior, no_posterior))
    ex = plan.spec.experiment
    warn_resolution(ex.agents, plan.base.force.company_size, f"{spec_file}: experiment.agents: ")
    folder = SweepFolder(out_dir if out_dir is not None else Path("sweeps") / ex.name)
    meta = RunMeta(
        kind="sweep",
        scenario_name=ex.name,
        scenario_hash=plan.spec_hash,
        scenario_json=plan.base_json,
        seed=ex.seed,
        agents=ex.agents,
        represented=plan.base.force.soldiers,
        days=ex.days,
        replicates=ex.replicates,
        package_version=package_version(),
        library_versions=library_versions(),
    )
    try:
        with folder.lock(resume):
            done = folder.prepare(plan, resume)
            todo = int((~done).sum())
            chosen = executor_for(n_workers, scheduler, batch, executor, sweep_agent_days(plan, todo), started)
            if resume and done.all() and db.exists():
                finished = open_store(db)
                stored_as = stored_run(folder, plan, finished)
                if stored_as is not None:  # nothing to run and nothing to store: a second run would duplicate it
                    _report_complete(finished, stored_as, plan.spec.experiment.name, folder, db, as_json)
                    return
            with recorded(db, meta, "sweep") as (store, run_id):
                previous = signal.signal(signal.SIGTERM, _interrupt)
                try:
                    with Reporter("sweep", transient=as_json) as progress:
                        progress.stage("experiments", total=plan.planned, completed=int(done.sum()))
                        failed = 0
                        agent_days = 0  # simulated by this command (a resumed sweep's earlier parts excluded)

                        def tick(experiment: int, result: dict[str, Any]) -> None:
                            nonlocal failed, agent_days
                            failed += result.get("status") != "ok"
                            agent_days += int(result.get("agent_days") or 0)
                            progress.update(advance=1, detail=f"{failed} failed")

                        try:
                            stats = run_sweep(plan, folder, done, chosen, flush_every, flush_seconds, tick)
                        except SweepError as e:  # e.g. the scheduler cannot be reached
                            store.mark_run(run_id, "failed", str(e))
                            fail(f"sweep {run_id} failed: {e}")
                    artifacts = {
                        "spec": plan.spec.model_dump(mode="json"),
                        "design": (
                            plan.design.to_dict(orient="split", index=False)
                            if plan.planned <= DESIGN_ARTIFACT_ROWS
                            else {"rows": plan.planned, "file": str(folder.path / "design.parquet")}
                        ),
                        "sweep": {
                            "out": str(folder.path),
                            "parts": str(folder.parts_dir / "part-*.parquet"),
                            "spec_hash": plan.spec_hash,
                            "executor": stats.executor,
                            "resumed": stats.resumed,
                            "ran": stats.ran,
                            "startup_seconds": stats.startup_seconds,
                            "compute_seconds": stats.compute_seconds,
                        },
                        "posterior": plan.posterior.record(),
                    }
                    wall = command_seconds()  # the command's: imports, planning, the cluster's start-up, storing
                    parts: list[str | Path] = list(stats.parts)
                    counts = store.complete_sweep(
                        run_id,
                        parts,
                        plan.outcomes,
                        plan.planned,
                        artifacts,
                        wall,
                        posterior_hash=plan.posterior.hash,
                        posterior_path=plan.posterior.path,
                    )
                    with contextlib.suppress(OSError):  # a note only: a resume finds the run by its folder too
                        folder.record_stored(run_id, db)
                finally:
                    signal.signal(signal.SIGTERM, previous)
            summary = store.outcomes(run_id)
    except SweepError as e:
        fail(str(e))
    failed_rows = failures(stats.parts, limit=10)
    sims = stats.ran * ex.replicates
    payload = {
        "run_id": run_id,
        "name": ex.name,
        "spec_hash": plan.spec_hash,
        "out": str(folder.path),
        "parts": str(folder.parts_dir / "part-*.parquet"),
        "design": str(folder.path / "design.parquet"),
        **counts,
        "already_stored": False,
        "resumed": stats.resumed,
        "ran": stats.ran,
        "executor": stats.executor or "none (nothing to run)",
        "agent_days": agent_days,
        "wall_seconds": round(command_seconds(), 3),
        "startup_seconds": round(stats.startup_seconds, 3),
        "compute_seconds": round(stats.compute_seconds, 3),
        "simulations_per_minute": round(60.0 * sims / stats.compute_seconds, 1) if stats.ran else None,
        "summary": {
            r["outcome"].removeprefix("sweep:"): {k: r[k] for k in ("median", "p05", "p95", "mean")}
            for r in summary.to_dict("records")
            if r["outcome"].startswith("sweep:")
        },
        "failures": failed_rows,
        **plan.posterior.fields(),
        "tables": {
            "experiments": f"experiments WHERE run_id = '{run_id}'",
            "experiment_outcomes": f"experiment_outcomes WHERE run_id = '{run_id}'",
        },
    }
    if as_json:
        sys.stdout.write(json.dumps(json_safe(payload)) + "\n")
        return
    _print_report({**payload, "posterior_line": plan.posterior.describe()}, db)


def _report_complete(store: ResultsDB, run_id: str, name: str, folder: SweepFolder, db: Path, as_json: bool) -> None:
    """`--resume` of a sweep whose experiments are all in its folder and already stored as `run_id`: say so (one
    JSON object with --json); nothing is run or stored."""
    from defection.analysis import json_safe  # lazy: see the note at the top

    counts = store.artifact(run_id, "counts") or {}
    if as_json:
        payload = {
            "run_id": run_id,
            "name": name,
            "out": str(folder.path),
            "parts": str(folder.parts_dir / "part-*.parquet"),
            **counts,
            "already_stored": True,
            "resumed": counts.get("done"),
            "ran": 0,
        }
        sys.stdout.write(json.dumps(json_safe(payload)) + "\n")
        return
    out.print(
        f"sweep [bold]{escape(name)}[/] is complete: all {int(counts.get('planned', 0)):,} experiments in "
        f"{escape(str(folder.path))} are stored as run [bold]{run_id}[/] in {escape(str(db))}; nothing was run "
        f"or stored (see `defection runs show {run_id}`)",
        highlight=False,
        soft_wrap=True,
    )


def _print_report(p: dict[str, Any], db: Path) -> None:
    rate = f", {p['simulations_per_minute']:,.0f} simulations/min" if p["simulations_per_minute"] else ""
    out.print(
        f"sweep [bold]{p['name']}[/]: {p['planned']:,} experiments planned, {p['ok']:,} ok, "
        f"[{'red' if p['failed'] else 'green'}]{p['failed']:,} failed[/] ({p['resumed']:,} from an earlier "
        f"run, {p['ran']:,} run now on {p['executor']}{rate})",
        highlight=False,
    )
    if p["summary"]:
        table = Table(title="across the experiments (per-experiment medians)", title_justify="left")
        for col in ("outcome", "median", "5% – 95%"):
            table.add_column(col, justify="left" if col == "outcome" else "right")
        for name, s in p["summary"].items():
            table.add_row(name, _fmt(name, s["median"]), f"{_fmt(name, s['p05'])} – {_fmt(name, s['p95'])}")
        out.print(table)
    if p["failures"]:
        table = Table(title=f"failed experiments (first {len(p['failures'])} of {p['failed']})", title_justify="left")
        for col in ("experiment", "error", "parameters"):
            table.add_column(col, overflow="fold")
        for f in p["failures"]:
            table.add_row(str(f["experiment"]), f["error"] or "", json.dumps(f["params"]))
        out.print(table)
    out.print(p["posterior_line"], highlight=False)
    out.print(
        f"parts: {p['parts']}; stored as run [bold]{p['run_id']}[/] in {db} "
        f"(tables experiments, experiment_outcomes; {p['wall_seconds']:.1f} s)",
        highlight=False,
    )
