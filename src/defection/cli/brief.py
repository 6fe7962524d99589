"""`defection brief`: the one-page summary of a run, a claims run or a scenario, in HTML and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from defection.cli.console import DbOpt, fail, warn

# defection.report.brief (plotly, duckdb), the claims and the scenario are imported inside the command: `defection
# --help` needs none of them.
if TYPE_CHECKING:
    from defection.report.brief import Brief

CLAIMS_DEFAULTS = {"replicates": 12, "days": 365, "agents": 19_800}
"""`defection claims`'s defaults, which a brief of a scenario uses for the options not given."""


def _fail(message: str) -> NoReturn:
    """A clean error (exit 2), the message shown literally (no Rich markup)."""
    fail(escape(message))


def check_output(option: str, path: Path) -> None:
    """Fail before any work if an output file cannot be written where asked."""
    if not path.parent.exists():
        _fail(f"{option} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        _fail(f"{option} {path} is a folder; give a file name such as brief.html")


def what_to_brief(target: str | None, db: Path) -> tuple[str, str | None]:
    """('run', run id) for a run stored in `db`, or ('scenario', the file or shipped name; None: the default
    scenario). A file wins over a run id, a run id over a shipped scenario's name; anything else is a clean error."""
    from defection.scenario.library import library_names, library_path
    from defection.store import ResultsDB, ResultsError, RunNotFound

    if target is None or Path(target).is_file():
        return "scenario", target
    why = f"no results database at {db}"
    if db.is_file():
        try:
            return "run", ResultsDB(db).resolve(target)
        except RunNotFound as e:
            if "ambiguous" in str(e):
                _fail(str(e))
            why = f"no run '{target}' in {db}"
        except ResultsError as e:
            _fail(str(e))
    if library_path(target) is not None:
        return "scenario", target
    _fail(
        f"{target}: {why}, no scenario file of that name, and no shipped scenario by that name "
        f"({', '.join(library_names())}). Give a stored run id (`defection runs list`), a scenario file, or a "
        "shipped scenario's name"
    )


def write_pngs_for(b: Brief, markdown: Path) -> tuple[dict[str, str] | None, str]:
    """The brief's figures as PNGs in `<markdown stem>-figures/` beside the Markdown, if a browser for kaleido is
    found: (figure id → path relative to the Markdown, or None; why there are none)."""
    from defection.report.errors import ReportError
    from defection.report.png import find_chrome, write_pngs

    if not b.figures:
        return None, "This run stored no daily series, so the brief has no figures"
    if find_chrome() is None:
        return None, (
            "PNG figures need Chrome or Chromium (kaleido), and none was found here (`apt-get install chromium`, or "
            "BROWSER_PATH): the figures are in the HTML brief only"
        )
    folder = markdown.parent / f"{markdown.stem}-figures"
    try:
        paths = write_pngs(b.figures, folder)
    except ReportError as e:
        warn(f"{e}; the Markdown brief refers to the HTML brief's figures instead")
        return None, f"PNG export failed ({e}): the figures are in the HTML brief only"
    return {key: p.relative_to(markdown.parent).as_posix() for key, p in zip(b.figures, paths, strict=True)}, ""


def brief(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN_ID|SCENARIO]",
            help="A stored claims run or run (a unique prefix is enough), or a scenario (a TOML file or a shipped "
            "scenario's name; none: the embedded proposal), whose claims are tested and stored first.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = Path("defection.duckdb"),
    output: Annotated[
        Path, typer.Option("--output", "-o", help="HTML file to write (self-contained, opens offline).")
    ] = Path("brief.html"),
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown", help="Markdown file to write (default: beside the HTML, ending in .md).", show_default=False
        ),
    ] = None,
    replicates: Annotated[
        int | None,
        typer.Option(
            "--replicates", "-r", help="SCENARIO only: replicates per variant (default 12).", show_default=False
        ),
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", "-d", help="SCENARIO only: days (default 365).", show_default=False)
    ] = None,
    agents: Annotated[
        int | None,
        typer.Option("--agents", "-k", help="SCENARIO only: agents per variant (default 19,800).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", "-s", help="SCENARIO only: master seed (default: the scenario's).", show_default=False),
    ] = None,
) -> None:
    """Write a one-page brief for a reader who will not open the rest: the question, the verdict on each of the
    proposal's six claims with what decides it and the best alternative, five key numbers with their 90% intervals
    and posterior, how the model did out of sample, the limits that matter, and three figures. A plain run takes
    the verdicts of the newest complete claims run of the same scenario and posterior (or says there is none); a
    scenario is tested with `defection claims` (same defaults), stored, then briefed. Prints the files written."""
    from defection.report.brief import render_brief  # lazy: plotly and duckdb (see the note at the top)
    from defection.report.errors import ReportError
    from defection.report.files import write_atomically
    from defection.store import ResultsDB, ResultsError, RunNotFound

    md_path = markdown if markdown is not None else output.with_suffix(".md")
    check_output("--output", output)
    check_output("--markdown", md_path)
    if md_path.resolve() == output.resolve():
        _fail(f"--markdown {md_path} is the HTML file too; give another name")
    kind, what = what_to_brief(target, db)
    given = {"--replicates": replicates, "--days": days, "--agents": agents, "--seed": seed}
    if kind == "run":
        used = [name for name, v in given.items() if v is not None]
        if used:
            _fail(f"{', '.join(used)}: only for a scenario, whose claims are tested; run {what} is already stored")
        run_id = str(what)
    else:
        from defection.cli.claims import stored_claims  # lazy: the engine

        run_id, _, _ = stored_claims(
            Path(what) if what is not None else None,
            replicates if replicates is not None else CLAIMS_DEFAULTS["replicates"],
            days if days is not None else CLAIMS_DEFAULTS["days"],
            agents if agents is not None else CLAIMS_DEFAULTS["agents"],
            seed,
            db,
        )
    try:
        b = render_brief(ResultsDB(db), run_id)
    except (RunNotFound, ResultsError, ReportError) as e:
        _fail(str(e))
    pngs, why = write_pngs_for(b, md_path)
    write_atomically(output, b.html)
    write_atomically(md_path, b.markdown_with(pngs, why, output.name))
    for p in (output, md_path, *(md_path.parent / rel for rel in (pngs or {}).values())):
        typer.echo(str(p))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(brief)
