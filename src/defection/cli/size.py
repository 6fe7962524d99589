"""Refusing a run too large to start by accident: `--yes` to go on (the estimate is `model.size`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from defection.cli.console import fail, warn

if TYPE_CHECKING:
    from defection.scenario import Scenario

YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes",
        help="Start the run even if its estimated time (over an hour) or memory (over what this machine has "
        "available) is too large.",
    ),
]


def check_size(sc: Scenario, yes: bool, workers: int = 1) -> None:
    """Refuse (exit 2, nothing recorded) a run whose estimate is over the limits of `model.size`, with the estimate
    and what to change; with `yes`, warn and go on."""
    # lazy: model.size reads model.population, which loads numba; `defection --help` needs neither
    from defection.model.size import available_memory, describe, scenario_size, size_problems

    size = scenario_size(sc, workers)
    problems = size_problems(size, available_memory())
    if not problems:
        return
    why = " and ".join(problems)
    if yes:
        warn(f"a large run ({describe(size)}): {why}; going on (--yes)")
        return
    fail(
        f"this run is too large to start without --yes: {describe(size)}; {why}. "
        "Reduce --agents, --days or --replicates (or the scenario's simulation section), or pass --yes to run it "
        "anyway."
    )
