"""Console helpers shared by every command: output, errors without tracebacks, recorded runs, number formats."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from defection.model.outputs import OUTCOMES
from defection.scenario import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from defection.store import ResultsDB, RunMeta


out = Console()
err = Console(stderr=True)

ScenarioArg = Annotated[
    Path | None, typer.Argument(help="Scenario TOML file (default: the embedded proposal).", show_default=False)
]
DbOpt = Annotated[Path, typer.Option("--db", help="Results database (DuckDB file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout instead of tables.")]
PosteriorOpt = Annotated[
    Path | None,
    typer.Option(
        "--posterior",
        help="Posterior file from `defection calibrate`: each replicate draws its calibrated parameters from it.",
        show_default=False,
    ),
]

NoPosteriorOpt = Annotated[
    bool,
    typer.Option(
        "--no-posterior",
        help="Ignore any posterior (the scenario's `simulation.posterior`, a stored calibration): use the "
        "scenario's parameter values.",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_or_fail(path: Path | None, *, posterior: bool = True) -> Scenario:
    """The scenario file, or a clean error; `posterior=False` ignores a posterior the file names."""
    try:
        return load_scenario(path, posterior=posterior)
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
    # lazy: `defection --help` and `defection check` need no store; duckdb and the store take 0.03 s to import
    from defection.store import ResultsDB, ResultsError

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
    from defection.store import ResultsError, RunNotFound  # lazy: as in recorded

    try:
        store.mark_run(run_id, status, error)
    except (ResultsError, RunNotFound, ValueError) as e:
        err.print(f"[yellow]warning:[/] could not record run {run_id} as {status}: {e}")


def fmt(name: str, v: float | None) -> str:
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
    table = Table(title=title, title_justify="left")
    table.add_column("outcome", no_wrap=True)
    table.add_column("median", justify="right")
    table.add_column("90% interval", justify="right")
    wide = out.width >= 120
    if wide:
        table.add_column("meaning", style="dim")
    for r in rows:
        name = r["outcome"]
        cells = [name, fmt(name, r["median"]), f"{fmt(name, r['p05'])} – {fmt(name, r['p95'])}"]
        table.add_row(*cells, *([OUTCOMES.get(name, "")] if wide else []))
    return table


# ----------------------------------------------------------------------------- runs
def open_store(db: Path) -> ResultsDB:
    from defection.store import ResultsDB, ResultsError  # lazy: keeps duckdb out of CLI start-up (as in recorded)

    if not db.exists():
        fail(f"no results database at {db}; run `defection run` first or pass --db")
    try:
        return ResultsDB(db)
    except ResultsError as e:
        fail(str(e))


def json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_folder(option: str, path: Path) -> None:
    """Fail before any work if an output file's folder does not exist."""
    if not path.parent.exists():
        fail(f"{option} {path}: folder {path.parent} does not exist")
