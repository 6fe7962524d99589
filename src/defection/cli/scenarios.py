"""`defection scenarios list|show`: the ready scenarios shipped beside the default, and the historical cases that
run as scenarios (`defection run NAME`, `defection run --case ID`)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import JsonOpt, fail, out

# The case library (pydantic, the model's declarations) is imported inside the commands: `--help` stays light.

scenarios_app = typer.Typer(no_args_is_help=True, help="The shipped scenarios and the historical cases, ready to run.")


def scenario_rows() -> list[dict[str, Any]]:
    """One row per runnable scenario: the default, the shipped scenarios, then every historical case."""
    from defection.calibrate.cases import CaseError, load_cases  # lazy: see the note at the top
    from defection.scenario.library import library_scenarios

    rows: list[dict[str, Any]] = [
        {
            "name": "(default)",
            "kind": "default",
            "run": "defection run",
            "description": "The proposal's $100k package, flat, offered to the force of 2024-25 (docs/proposal.md).",
        }
    ]
    rows += [
        {"name": s.name, "kind": "scenario", "run": f"defection run {s.name}", "description": s.description}
        for s in library_scenarios()
    ]
    try:
        cases = load_cases()
    except CaseError as e:
        fail(e.render(), code=1)
    rows += [
        {
            "name": c.id,
            "kind": "case",
            "run": f"defection run --case {c.id}",
            "description": f"{c.meta.title} ({c.meta.period}); war: {c.meta.family}; observed: "
            + ", ".join(dict.fromkeys(o.outcome for o in c.observed)),
        }
        for c in cases
    ]
    return rows


@scenarios_app.command("list")
def scenarios_list(as_json: JsonOpt = False) -> None:
    """Every ready scenario, in one line each, with the command that runs it."""
    rows = scenario_rows()
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(
        title=f"{len(rows)} ready scenarios (`defection scenarios show NAME` prints one)", title_justify="left"
    )
    for col in ("name", "kind", "description", "run"):
        table.add_column(col, no_wrap=col in ("name", "kind"), overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kind"], r["description"], r["run"])
    out.print(table)


@scenarios_app.command("show")
def scenarios_show(name: Annotated[str, typer.Argument(help="A shipped scenario's name or a case's id.")]) -> None:
    """Print a ready scenario's TOML file (a shipped scenario, or a case file): redirect it to start from it."""
    from defection.calibrate.cases import library_dir  # lazy: see the note at the top
    from defection.scenario.library import library_names, library_path

    cases = sorted(p.stem for p in library_dir().glob("*.toml"))
    path = library_path(name) or (library_dir() / f"{name}.toml" if name in cases else None)
    if path is None:
        fail(f"{name}: no such scenario or case; scenarios: {', '.join(library_names())}; cases: {', '.join(cases)}")
    sys.stdout.write(path.read_text(encoding="utf-8"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.add_typer(scenarios_app, name="scenarios")
