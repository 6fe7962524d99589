"""`defection runs list|show|export|ingest`: browse and export stored runs, store spilled ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from defection.cli.console import DbOpt, JsonOpt, fail, notify_wait, open_store, out, outcome_table

# defection.store (duckdb) is imported inside the commands: `defection --help` need not load it.

runs_app = typer.Typer(no_args_is_help=True, help="Browse and export stored runs.")


@runs_app.command("list")
def runs_list(db: DbOpt = Path("defection.duckdb"), as_json: JsonOpt = False) -> None:
    """Stored runs, newest first, each with its main outcome (a run's defected share with its 90% interval, or the
    line that sums up a claims, optimize, curve, sweep or calibration run) and the posterior that produced it."""
    from defection.report.headline import headline, posterior_text  # lazy: see the note at the top
    from defection.store import ResultsError  # lazy: duckdb (see the note at the top)

    try:
        df = open_store(db).run_summaries()
    except ResultsError as e:
        fail(str(e))
    rows = df.to_dict("records")
    df["headline"] = [headline(r) for r in rows]
    df["posterior"] = [posterior_text(r) for r in rows]
    if as_json:
        df = df.drop(columns=[c for c in ("brief",) if c in df.columns])
        sys.stdout.write(df.to_json(orient="records", date_format="iso") + "\n")
        return
    table = Table(title=f"{len(df)} runs in {db}")
    for col in ("run_id", "status", "created (UTC)", "scenario", "agents", "days × reps", "main outcome", "posterior"):
        table.add_column(
            col, no_wrap=col not in ("scenario", "main outcome"), min_width=12 if col == "scenario" else None
        )
    for r in df.itertuples():
        colour = {"complete": "green", "running": "cyan", "failed": "red", "interrupted": "yellow"}.get(r.status, "")
        table.add_row(
            r.run_id,
            f"[{colour}]{r.status}[/]",
            str(r.created_at)[:16],
            r.scenario_name,
            f"{r.agents:,}",
            f"{r.days} × {r.replicates}",
            escape(str(r.headline)),
            str(r.posterior),
        )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
) -> None:
    """One run: its settings, versions and outcomes."""
    from defection.store import ResultsError, RunNotFound  # lazy: duckdb
    from defection.store.db import posterior_label

    store = open_store(db)
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
    for key in (
        "status",
        "kind",
        "scenario_name",
        "scenario_hash",
        "seed",
        "agents",
        "represented",
        "days",
        "replicates",
        "created_at",
        "finished_at",
        "wall_seconds",
        "package_version",
        "error",
    ):
        meta.add_row(key, str(info.get(key)))
    meta.add_row("posterior", posterior_label(info))
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
    from defection.store import ResultsError, RunNotFound  # lazy: duckdb

    kind: Literal["parquet", "csv"]
    if fmt == "parquet":
        kind = "parquet"
    elif fmt == "csv":
        kind = "csv"
    else:
        fail(f"--format = {fmt!r}: allowed values are 'parquet' and 'csv'")
    store = open_store(db)
    try:
        files = store.export(store.get_run(run_id)["run_id"], kind, output)
    except (RunNotFound, ResultsError, ValueError) as e:
        fail(str(e))
    for f in files:
        out.print(f"wrote {f}")


@runs_app.command("ingest")
def runs_ingest(
    spill: Annotated[
        Path, typer.Argument(help="A spilled run: the folder <database>.spill/<run_id> (or its spill.json).")
    ],
    db: DbOpt = Path("defection.duckdb"),
) -> None:
    """Store a run whose results were spilled to Parquet because the database was unavailable. Ingesting the same
    spill again stores nothing twice."""
    from defection.store import ResultsDB, ResultsError, RunNotFound  # lazy: duckdb

    if not spill.exists():
        fail(escape(f"{spill} does not exist; give the spill folder that the failed command printed"))
    try:
        run_id, stored = ResultsDB(db, notify=notify_wait).ingest(spill)
    except (ResultsError, RunNotFound) as e:
        fail(escape(str(e)))
    if not stored:
        out.print(escape(f"run {run_id} is already complete in {db}; nothing to do"), highlight=False)
        return
    rows = ", ".join(f"{n:,} {table}" for table, n in stored.items() if table != "runs")
    out.print(escape(f"stored run {run_id} in {db} ({rows or 'no result rows'}); {spill} may now be removed"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.add_typer(runs_app, name="runs")
