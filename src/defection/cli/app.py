"""The `defection` application: one Typer app, with each command group registered from its own module."""

from __future__ import annotations

import typer

from defection.cli import bench, calibrate, claims, predict, report, run, runs, search, sweep, web

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="defection-lab: test offers that would make soldiers of an invading army defect.",
)
for group in (run, runs, claims, calibrate, predict, bench, sweep, search, report, web):
    group.register(app)


def main() -> None:
    app()
