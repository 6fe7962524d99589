"""`defection report` and `defection compare`: self-contained HTML reports, PNG figures and run comparison.

Registered on the main `defection` app by `defection.cli.app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from defection.cli.console import fail, open_store, out
from defection.report.errors import ReportError

# defection.report.html and .png (plotly, kaleido), defection.report.comparison (pandas) and defection.store
# (duckdb) are imported inside the commands: `defection --help` and the other commands need none of them.
if TYPE_CHECKING:
    import plotly.graph_objects as go

    from defection.report.comparison import Comparison
    from defection.store import ResultsDB

DbOpt = Annotated[Path, typer.Option("--db", help="Results database (DuckDB file).")]
PngOpt = Annotated[
    Path | None,
    typer.Option(
        "--png",
        help="Also write every figure as a PNG into this folder (needs Chrome or Chromium).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("report")(report)
    app.command("compare")(compare)


def _fail(message: str) -> NoReturn:
    """A clean error (exit 2, no traceback); the message is shown literally (no Rich markup)."""
    fail(escape(message))


def _open(db: Path) -> ResultsDB:
    return open_store(db)


def _check_targets(output: Path | None, png: Path | None, option: str = "--output") -> None:
    """Fail before any work if an output folder is missing, or PNGs are asked for and no browser is found."""
    if output is not None and not output.parent.exists():
        _fail(f"{option} {output}: folder {output.parent} does not exist")
    if output is not None and output.is_dir():
        _fail(f"{option} {output} is a folder; give a file name such as report.html")
    if png is not None:
        from defection.report.png import NO_CHROME, find_chrome  # lazy: plotly (see the note at the top)

        if png.exists() and not png.is_dir():
            _fail(f"--png {png}: exists and is not a folder")
        if not png.parent.exists():
            _fail(f"--png {png}: folder {png.parent} does not exist")
        if find_chrome() is None:
            _fail(NO_CHROME)


def _write_pngs(figures: dict[str, go.Figure], folder: Path) -> list[Path]:
    from defection.report.png import write_pngs  # lazy: plotly (see the note at the top)

    try:
        return write_pngs(figures, folder)
    except ReportError as e:
        _fail(str(e))


def report(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file to write (default: report-<run id>.html).", show_default=False),
    ] = None,
    png: PngOpt = None,
    db: DbOpt = Path("defection.duckdb"),
) -> None:
    """Write a self-contained HTML report of a stored run (works offline: no CDN, no web fonts): settings,
    outcomes with 90% intervals, changed parameters and the figures of its kind. Prints the file's path."""
    from defection.report.html import report_with_figures  # lazy: plotly and duckdb (see the note at the top)
    from defection.store import ResultsError, RunNotFound

    _check_targets(output, png)
    store = _open(db)
    try:
        rid = store.resolve(run_id)
        html, figures = report_with_figures(store, rid)
    except (RunNotFound, ResultsError, ReportError) as e:
        _fail(str(e))
    path = output if output is not None else Path(f"report-{rid}.html")
    path.write_text(html, encoding="utf-8")
    typer.echo(str(path))
    if png is not None:
        for p in _write_pngs(figures, png):
            typer.echo(str(p))


def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Two or more run ids (unique prefixes are enough); the first is "
            "the reference the others are compared with."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Also write the comparison as a self-contained HTML file.", show_default=False
        ),
    ] = None,
    png: PngOpt = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object to stdout instead of a table.")
    ] = False,
) -> None:
    """Compare runs side by side: each outcome's median and 90% interval per run, and each run's difference from
    the first, paired replicate by replicate where the runs share seed and replicates (common random numbers)."""
    from defection.report.comparison import load_comparison  # lazy: see the note at the top
    from defection.store import ResultsError, RunNotFound

    if len(runs) < 2:
        _fail("compare needs at least two run ids")
    _check_targets(output, png)
    store = _open(db)
    try:
        cmp = load_comparison(store, runs)
    except (RunNotFound, ResultsError, ReportError) as e:
        _fail(str(e))
    figures: dict[str, Any] = {}
    if output is not None or png is not None:
        from defection.report.html import compare_with_figures  # lazy: plotly (see the note at the top)

        html, figures = compare_with_figures(store, cmp)
        if output is not None:
            output.write_text(html, encoding="utf-8")
    pngs = _write_pngs(figures, png) if png is not None else []
    if as_json:
        payload = {**cmp.to_dict(), "html": None if output is None else str(output), "png": [str(p) for p in pngs]}
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        return
    out.print(compare_table(cmp))
    for x, d in zip(run_letters(len(cmp.runs))[1:], cmp.differences, strict=True):
        out.print(f"{x} − A: {d.explanation}", highlight=False)
    for p in ([output] if output is not None else []) + pngs:
        out.print(f"wrote {p}", highlight=False)


def run_letters(n: int) -> list[str]:
    """Short column labels for n runs: A, B, C, … (then R27, R28, …)."""
    return [chr(ord("A") + k) if k < 26 else f"R{k + 1}" for k in range(n)]


def compare_table(cmp: Comparison) -> Table:
    """The terminal table: median [p05 – p95] per run (columns A, B, …, the runs in the order given, listed in
    the caption), and each run's difference from A with the share of replicates where it is larger."""
    letters = run_letters(len(cmp.runs))
    legend = "; ".join(
        f"{x} = {r['run_id']} ({r.get('scenario_name') or r.get('kind')}, seed {r.get('seed')})"
        for x, r in zip(letters, cmp.runs, strict=True)
    )
    table = Table(
        title="Outcomes: median [90% interval]; differences from A",
        title_justify="left",
        caption=legend,
        caption_justify="left",
    )
    table.add_column("outcome", no_wrap=True)
    for x in letters:
        table.add_column(x, justify="right")
    for x, d in zip(letters[1:], cmp.differences, strict=True):
        table.add_column(f"{x} − A ({'paired' if d.paired else 'unpaired'})", justify="right")
        table.add_column(f"P({x} > A)", justify="right")
    for name in cmp.outcome_names():
        table.add_row(*(Text(c) for c in [name, *cmp.row_texts(name)]))
    return table
