"""The `defection` application: one Typer app, with each command group registered from its own module."""

from __future__ import annotations

import typer

from defection.cli import (
    bench,
    brief,
    calibrate,
    claims,
    curve,
    predict,
    report,
    run,
    runs,
    scenarios,
    search,
    sweep,
    web,
)
from defection.cli.console import STARTED_KEY, mark_command_start, process_started

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="defection-lab: test offers that would make soldiers of an invading army defect.",
)


@app.callback()
def _start(ctx: typer.Context) -> None:
    """Every command: note when it began, so its recorded wall time is the whole command's."""
    mark_command_start(ctx)


for group in (run, scenarios, runs, claims, curve, calibrate, predict, bench, sweep, search, report, brief, web):
    group.register(app)


def main() -> None:
    """The `defection` entry point: the command's clock starts with the process (its imports included)."""
    app(obj={STARTED_KEY: process_started()})
