"""Console helpers shared by every command: output, errors without tracebacks, recorded runs, number formats."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, Self

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from defection.workers import process_age

# The scenario (pydantic), the model's declarations and the store (duckdb) are imported where they are used:
# `defection --help` loads none of them (docs/performance.md, "Start-up").
if TYPE_CHECKING:
    from defection.scenario import Scenario
    from defection.scenario.posterior import Posterior
    from defection.store import ResultsDB, RunMeta


# Into a pipe or a file Rich would assume 80 columns and squeeze a table until columns are cut; there the width is
# wide enough for every table the commands print (COLUMNS, when set, still decides, as on a terminal).
PIPE_WIDTH = 200


def console_width(is_terminal: bool, environ: Mapping[str, str]) -> int | None:
    """The width to print at: the terminal's own (None: Rich measures it), COLUMNS if set, else PIPE_WIDTH."""
    if is_terminal or environ.get("COLUMNS", "").strip().isdigit():
        return None
    return PIPE_WIDTH


out = Console(width=console_width(Console().is_terminal, os.environ))
err = Console(stderr=True, width=console_width(Console(stderr=True).is_terminal, os.environ))

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
ReplicateWorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        max=512,
        help="Processes that simulate replicates side by side, each on one thread (same results). Default: one per "
        "CPU when the run is large enough to pay for starting them (about 2 s), else 1 (this process, threads).",
        show_default=False,
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """A warning on standard error (the command goes on)."""
    err.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def warn_resolution(agents: int, company_size: int, what: str = "") -> None:
    """Warn when `agents` is too few for resolution-independent outcomes (model.population.MIN_RESOLVED_COMPANIES)."""
    from defection.model.population import resolution_warning  # lazy: numba, which `--help` and `check` skip

    message = resolution_warning(agents, company_size)
    if message is not None:
        warn(f"{what}{message}")


def load_or_fail(path: Path | None, *, posterior: bool = True) -> Scenario:
    """The scenario file, or a clean error; `posterior=False` ignores a posterior the file names."""
    from defection.scenario import ScenarioError, load_scenario  # lazy: see the note at the top

    try:
        return load_scenario(path, posterior=posterior)
    except ScenarioError as e:
        fail(e.render())


def check_posterior_flags(posterior: Path | None, no_posterior: bool) -> None:
    """--posterior FILE and --no-posterior together are a clean error."""
    if posterior is not None and no_posterior:
        fail("--posterior and --no-posterior contradict each other; give one")


def choose_posterior(sc: Scenario, posterior: Path | None, no_posterior: bool) -> tuple[Posterior | None, str]:
    """The posterior a command draws the calibrated parameters from: --posterior, else the scenario's, else the
    shipped calibrated model (unless --no-posterior, which gives the scenario's hand-tuned values); and that in
    words. Both flags together, or a posterior file that cannot be read, are clean errors."""
    from defection.scenario.posterior import Posterior, PosteriorError, shipped_posterior_path  # lazy: numpy

    check_posterior_flags(posterior, no_posterior)
    if no_posterior:
        return None, "scenario values (--no-posterior)"
    try:
        if posterior is not None:
            return Posterior.load(posterior), f"posterior {posterior}"
        if sc.simulation.posterior:
            return Posterior.load(sc.simulation.posterior), f"posterior {sc.simulation.posterior}"
        shipped = shipped_posterior_path()
        if shipped.is_file():
            return Posterior.load(shipped), f"the shipped posterior {shipped}"
    except PosteriorError as e:
        fail(e.render())
    return None, "scenario values (this installation has no shipped posterior)"


class _Terminated(Exception):
    """SIGTERM turned into an exception so an interrupted run is recorded as such."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@contextmanager
def recorded(db: Path, meta: RunMeta, what: str = "run") -> Iterator[tuple[ResultsDB, str]]:
    """Record a run as 'running', yield (store, run_id); an interruption or failure inside the block marks it
    'interrupted' or 'failed' (exit 130 or 1, no traceback). The block must complete the run itself.

    If the database cannot take the finished results (locked by another process past the wait, damaged, no longer
    writable), the store spills them to Parquet beside it (`ResultsSpilled`): the message says where and how to
    ingest them, and the command exits with `SPILLED_EXIT` (3); the run's row is left 'running' (the database
    could not be written) and is shown as interrupted, pointing at the spill, until it is ingested."""
    # lazy: `defection --help` and `defection check` need no store; duckdb and the store take 0.03 s to import
    from defection.store import ResultsDB, ResultsError, ResultsSpilled
    from defection.store.progress import remove_progress, write_progress

    try:
        store = ResultsDB(db, notify=notify_wait)
        run_id = store.begin_run(meta)
    except ResultsError as e:
        fail(escape(str(e)))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    published = _run_progress.set(lambda state: write_progress(store.path, run_id, state))
    try:
        yield store, run_id
    except (KeyboardInterrupt, _Terminated):
        _mark(store, run_id, "interrupted", "interrupted (SIGINT/SIGTERM) before completion")
        err.print(f"[yellow]interrupted:[/] {what} {run_id} recorded as interrupted; nothing partial was stored.")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except ResultsSpilled as e:
        fail(escape(f"{what} {run_id} finished but could not be stored: {e}"), code=SPILLED_EXIT)
    except Exception as e:  # a bug or resource failure: record it, no traceback for the user
        _mark(store, run_id, "failed", f"{type(e).__name__}: {e}")
        fail(f"{what} {run_id} failed: {type(e).__name__}: {e}", code=1)
    finally:
        _run_progress.reset(published)
        remove_progress(store.path, run_id)
        signal.signal(signal.SIGTERM, previous)


ProgressSink = Callable[[dict[str, Any]], object]
"""Where a `Reporter` publishes its state for the dashboard: `defection.store.progress.write_progress` of the run
being recorded."""

_run_progress: ContextVar[ProgressSink | None] = ContextVar("defection_run_progress", default=None)
"""The progress sink of the run `recorded` is recording (None outside one): a `Reporter` made inside it publishes
there, so every recorded command's progress reaches the dashboard without each command passing it on."""


def notify_wait(message: str) -> None:
    """What the store says while it waits for another process's lock on the database (on stderr)."""
    err.print(f"[yellow]waiting:[/] {escape(message)}", highlight=False, soft_wrap=True)


SPILLED_EXIT = 3
"""Exit status of a command whose finished results went to a spill file because the database could not take them."""


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
    from defection.model.outputs import OUTCOMES  # lazy: see the note at the top

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
        meaning = OUTCOMES.get(name.split(" @ ", 1)[0], "")  # a curve's rows: 'defected_share @ level 1 = 10,000'
        table.add_row(*cells, *([meaning] if wide else []))
    return table


# ----------------------------------------------------------------------------- runs
def open_store(db: Path) -> ResultsDB:
    from defection.store import ResultsDB, ResultsError  # lazy: keeps duckdb out of CLI start-up (as in recorded)

    if not db.exists():
        fail(f"no results database at {db}; run `defection run` first or pass --db")
    try:
        return ResultsDB(db, notify=notify_wait)
    except ResultsError as e:
        fail(escape(str(e)))


def json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_folder(option: str, path: Path) -> None:
    """Fail before any work if an output file's folder does not exist."""
    if not path.parent.exists():
        fail(f"{option} {path}: folder {path.parent} does not exist")


def check_output_file(option: str, path: Path) -> None:
    """Fail before any work if an output file cannot be written: its folder is missing, or it is a folder."""
    check_folder(option, path)
    if path.is_dir():
        fail(f"{option} {path}: is a folder; give a file name such as report.html")


# ----------------------------------------------------------------------------- the command's own clock
STARTED_KEY = "defection.started"
"""Key in the app's context object (`main` passes it) under which the process's start is given."""

_command_start: ContextVar[float | None] = ContextVar("defection_command_start", default=None)
"""When the running command began (time.monotonic()); set by the app's callback for each invocation."""


def process_started() -> float:
    """When this process started, as a time.monotonic() reading (now, where the platform does not tell)."""
    return time.monotonic() - process_age()


def mark_command_start(ctx: typer.Context) -> None:
    """Remember when the command began (the app's callback calls this before any command runs): the process's
    start when the `defection` entry point passed it (`main`: the imports count too), else now (an in-process
    call, e.g. a test's CliRunner)."""
    given = ctx.obj.get(STARTED_KEY) if isinstance(ctx.obj, dict) else None
    _command_start.set(float(given) if given is not None else time.monotonic())


def command_started() -> float:
    """When the running command began (time.monotonic()); outside a command (a library call), now."""
    started = _command_start.get()
    return started if started is not None else time.monotonic()


def command_seconds(started: float | None = None) -> float:
    """Wall seconds since the command began (or since `started`, a time.monotonic() reading): what a stored run
    and the `--json` output's `wall_seconds` record, so a run's recorded time is the whole command's."""
    begun = command_started() if started is None else started
    return max(0.0, time.monotonic() - begun)


# ----------------------------------------------------------------------------- progress of long commands
STAGE_PUBLISH_SECONDS = 0.5
"""A new stage is published at once unless the last publication was more recent than this."""
PUBLISH_SECONDS = 2.0
"""How often a `Reporter` inside a recorded run writes its progress for the dashboard (at most; a few ms each)."""
HEARTBEAT_ENV = "DEFECTION_HEARTBEAT_SECONDS"
HEARTBEAT_SECONDS = 60.0  # the longest silence on a non-terminal stderr while a command works


def heartbeat_seconds() -> float:
    """Seconds between heartbeat lines on a non-terminal stderr: $DEFECTION_HEARTBEAT_SECONDS, else 60."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, "") or HEARTBEAT_SECONDS)
    except ValueError:
        return HEARTBEAT_SECONDS
    return value if math.isfinite(value) and value > 0 else HEARTBEAT_SECONDS


def elapsed_text(seconds: float) -> str:
    """Elapsed time as 42s, 3m05s or 2h07m."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def time_left(done: float, total: float | None, elapsed: float) -> float | None:
    """Seconds left for a stage that did `done` of `total` work units in `elapsed` seconds, at the rate so far
    (None before any work is done or with no total). Work units must be proportional to cost (agent-days, or
    tasks of equal size), so that tasks of unequal size do not skew the estimate."""
    if total is None or done <= 0 or elapsed <= 0 or not math.isfinite(elapsed):
        return None
    return max(0.0, elapsed * (total - done) / done)


def left_text(seconds: float | None) -> str:
    """An estimate of the time left, e.g. 'about 3m05s left' ('' when there is none yet)."""
    return "" if seconds is None else f"about {elapsed_text(seconds)} left"


class Reporter:
    """What a long command is doing, on stderr. On a terminal: a Rich progress display (stage, bar, count,
    time elapsed and left). Otherwise (a log file, CI): plain timestamped lines, one at every stage change and
    note, and a heartbeat with the stage, its count, the time left and the elapsed time whenever nothing was
    written for `heartbeat_seconds()`, so a log never goes silent for longer while work continues. Stdout is
    untouched.

    The time left (`time_left`) is the stage's work left at the stage's rate so far. The work is counted in
    `work` units when the stage gives a `work_total` (e.g. agent-days, for tasks of unequal size), else in the
    stage's count.

    Use: ``with Reporter("calibrate") as rep: rep.stage("generation 1/6", total=64); rep.update(completed=3)``;
    ``rep.stage`` is itself a ``progress(message)`` callback, ``rep.count`` a ``progress(done, total)`` one."""

    def __init__(
        self,
        command: str,
        *,
        transient: bool = False,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        publish: ProgressSink | None = None,
        publish_seconds: float = PUBLISH_SECONDS,
    ) -> None:
        self.command = command
        self.publish = publish if publish is not None else _run_progress.get()
        self.publish_seconds = publish_seconds
        self._published = -math.inf  # time.monotonic() of the last publication
        self._publisher: threading.Thread | None = None
        self.console = console or err
        self.interactive = self.console.is_terminal
        self.transient = transient
        self.heartbeat = heartbeat_seconds()
        self.clock = clock
        self._stage = "starting"
        self._detail = ""
        self._completed = 0
        self._total: int | None = None
        self._stage_start = self._start = clock()
        self._first_completed = 0
        self._work = 0.0
        self._work_total: float | None = None
        self._overall: tuple[float, float] | None = None  # (work done, work in all) of the whole command
        self._last_line = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        self._start = self._stage_start = self.clock()
        self._last_line = time.monotonic()
        if self.interactive:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                console=self.console,
                transient=self.transient,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.command, total=None, detail="", left="")
        else:
            self._thread = threading.Thread(target=self._beat, name=f"{self.command}-heartbeat", daemon=True)
            self._thread.start()
        if self.publish is not None:  # the first stage publishes at once; then every `publish_seconds`
            self._publisher = threading.Thread(target=self._publish_loop, name=f"{self.command}-progress", daemon=True)
            self._publisher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._publisher is not None:
            self._publisher.join()
        if self._progress is not None:
            self._progress.stop()
        else:
            ended = "finished" if kind is None else f"stopped ({kind.__name__})"
            self._line("done", ended)

    def elapsed(self) -> float:
        return self.clock() - self._start

    def stage(self, name: str, total: int | None = None, completed: int = 0, work_total: float | None = None) -> None:
        """A new stage (always a line on a non-terminal stderr). `work_total`: the stage's work in units
        proportional to cost (e.g. agent-days), which `update(work=…)` counts and the time left is based on."""
        with self._lock:
            self._stage, self._total, self._completed, self._detail = name, total, completed, ""
            self._first_completed, self._work, self._work_total = completed, 0.0, work_total
            self._stage_start = self.clock()
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=name, total=total, completed=completed, detail="", left="")
        else:
            self._line("stage", name)
        if self.publish is not None and time.monotonic() - self._published >= STAGE_PUBLISH_SECONDS:
            self._publish()  # a new stage shows at once (unless stages come faster than that)

    def update(
        self,
        *,
        completed: int | None = None,
        total: int | None = None,
        advance: int = 0,
        detail: str | None = None,
        work: float = 0.0,
        line: bool = False,
    ) -> None:
        """Progress within the stage (a count, a detail, `work` units done since the last update); shown live on
        a terminal, in the next heartbeat otherwise (at once with `line=True`)."""
        with self._lock:
            if total is not None:
                self._total = total
            self._completed = (self._completed if completed is None else completed) + advance
            self._work += work
            if detail is not None:
                self._detail = detail
            state = (self._completed, self._total, self._detail)
        left = left_text(self.time_left())
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=state[0], total=state[1], detail=state[2], left=left)
        elif line:
            self._line("working", self.status())

    def overall(self, done: float, total: float) -> None:
        """Work of the whole command (e.g. a backtest's folds weighted by their cost): once given, the time left
        is the command's, at its rate so far, rather than the stage's."""
        with self._lock:
            self._overall = (float(done), float(total))
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, left=left_text(self.time_left()))

    def time_left(self) -> float | None:
        """Seconds the stage (or, once `overall` was called, the command) still needs, at its rate so far (None
        before any of its work is done)."""
        with self._lock:
            if self._overall is not None:
                return time_left(self._overall[0], self._overall[1], self.clock() - self._start)
            elapsed = self.clock() - self._stage_start
            if self._work_total is not None:
                return time_left(self._work, self._work_total, elapsed)
            if self._total is None:
                return None
            return time_left(self._completed - self._first_completed, self._total - self._first_completed, elapsed)

    def __call__(self, message: str) -> None:
        """A `progress(message)` callback: each message starts a stage."""
        self.stage(message)

    def count(self, done: int, total: int) -> None:
        """A `progress(done, total)` callback."""
        self.update(completed=done, total=total)

    def note(self, message: str) -> None:
        """Something the user should know now (always a line; above the display on a terminal)."""
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, markup=False)
        else:
            self._line("note", message)

    def status(self) -> str:
        """The stage, its count and detail, and the time left, as one phrase."""
        left = left_text(self.time_left())
        with self._lock:
            parts = [self._stage]
            if self._total is not None:
                parts.append(f"{self._completed}/{self._total}")
            elif self._completed:
                parts.append(str(self._completed))
            if self._detail:
                parts.append(self._detail)
        return ", ".join([*parts, *([left] if left else [])])

    def snapshot(self) -> dict[str, Any]:
        """The state the dashboard shows (`defection.store.progress.FIELDS`): stage, detail, count, the fraction
        of the work done (the command's once `overall` was called, else the stage's, in work units when it has a
        `work_total`), elapsed and left seconds, and when (Unix time)."""
        left = self.time_left()
        with self._lock:
            state: dict[str, Any] = {"command": self.command, "stage": self._stage, "detail": self._detail}
            state["done"] = self._completed
            if self._total is not None:
                state["total"] = self._total
            if self._overall is not None and self._overall[1] > 0:
                fraction: float | None = self._overall[0] / self._overall[1]
            elif self._work_total:
                fraction = self._work / self._work_total
            elif self._total:
                fraction = self._completed / self._total
            else:
                fraction = None
        if fraction is not None:
            state["fraction"] = min(1.0, max(0.0, fraction))
        state["elapsed_seconds"] = self.elapsed()
        if left is not None:
            state["left_seconds"] = left
        state["updated_at"] = time.time()
        return state

    def _publish(self) -> None:
        """Hand the state to the progress sink (never raises: progress is a display, not the run)."""
        if self.publish is None:
            return
        self._published = time.monotonic()
        try:
            self.publish(self.snapshot())
        except Exception:  # a display must not fail the command
            return

    def _publish_loop(self) -> None:
        while not self._stop.wait(self.publish_seconds):
            self._publish()

    def _beat(self) -> None:
        while True:
            with self._lock:
                wait = self._last_line + self.heartbeat - time.monotonic()
            if self._stop.wait(max(wait, 0.0)):
                return
            with self._lock:
                due = time.monotonic() - self._last_line >= self.heartbeat
            if due:
                self._line("working", self.status())

    def _line(self, kind: str, text: str) -> None:
        """One plain log line: timestamp, command, kind, text, elapsed time; no markup, no wrapping."""
        stamp = datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
        line = f"{stamp} {self.command} {kind}: {text} ({elapsed_text(self.elapsed())} elapsed)\n"
        with self._lock:
            self._last_line = time.monotonic()
            stream = self.console.file
            stream.write(line)
            stream.flush()
