"""`defection claims`: test the proposal's claims, each with a verdict and its interval."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import (
    DbOpt,
    JsonOpt,
    NoPosteriorOpt,
    PosteriorOpt,
    Reporter,
    ScenarioArg,
    fail,
    json_default,
    load_or_fail,
    out,
    recorded,
    warn_resolution,
)

# defection.claims, defection.store (duckdb), the scenario (pydantic) and the posterior (numpy) are imported inside
# the commands: `defection --help` need not load them.
if TYPE_CHECKING:
    from defection.scenario import Scenario
    from defection.scenario.posterior import Posterior

# ----------------------------------------------------------------------------- claims
VERDICT_STYLE = {"supported": "bold green", "not supported": "bold red"}


def _money_or_share(n: dict[str, Any]) -> str:
    def f(v: float) -> str:
        if v is None or not math.isfinite(v):
            return "–"
        if n["unit"] == "USD":
            return f"${v:,.0f}" if abs(v) < 1e9 else f"${v / 1e9:,.2f}bn"
        if "share" in n["name"] or "…as a share" in n["name"]:
            return f"{100 * v:.3g}%"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    return f"{f(n['median'])}  ({f(n['p05'])} – {f(n['p95'])})"


def claims(
    scenario: ScenarioArg = None,
    replicates: Annotated[int, typer.Option("--replicates", "-r", help="Replicates per variant.")] = 12,
    days: Annotated[int, typer.Option("--days", "-d", help="Days to simulate.")] = 365,
    agents: Annotated[int, typer.Option("--agents", "-k", help="Simulated agents per variant.")] = 19_800,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Master seed (default: the scenario's).")] = None,
    db: DbOpt = Path("defection.duckdb"),
    as_json: JsonOpt = False,
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
) -> None:
    """Test each claim of the proposal on the simulator: numbers with 90% intervals, a verdict, the parameters
    that decide it, and the best alternative design for a failing claim."""
    from defection.claims import run_claims  # lazy: see the note at the top
    from defection.scenario import ScenarioError, with_overrides
    from defection.store import RunMeta  # lazy: duckdb

    if posterior is not None and no_posterior:
        fail("--posterior and --no-posterior contradict each other; give one")
    base = load_or_fail(scenario, posterior=not no_posterior)
    try:
        sc = with_overrides(base, source="claims options", replicates=replicates, days=days, agents=agents, seed=seed)
    except ScenarioError as e:
        fail(e.render())
    warn_resolution(sc.simulation.agents, sc.force.company_size)
    post, post_source = choose_posterior(sc, posterior, no_posterior)
    with recorded(db, RunMeta.from_scenario(sc, kind="claims"), "claims run") as (store, run_id):
        with Reporter("claims", transient=as_json) as rep:
            rep.stage("testing the claims (simulations run)")
            report = run_claims(
                sc,
                replicates,
                days,
                sc.simulation.agents,
                sc.simulation.seed,
                progress=lambda label: rep.update(advance=1, detail=f"now: {label}"),
                posterior=post,
            )
        report.settings["posterior"] = post_source
        report.proposal.run_id = run_id
        store.complete_run(run_id, report.proposal, artifacts={"claims": report.to_dict()})
    payload = {"run_id": run_id, **report.to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
        return
    for c in payload["claims"]:
        style = VERDICT_STYLE.get(c["verdict"], "bold yellow")
        table = Table(
            title=f"Claim {c['number']}: {c['claim']}",
            title_justify="left",
            show_header=True,
            caption=f"[{style}]{c['verdict']}[/]: {c['reason']}",
            caption_justify="left",
        )
        table.add_column("quantity")
        table.add_column("median (90% interval)", justify="right")
        for n in c["numbers"]:
            table.add_row(n["name"], _money_or_share(n))
        out.print(table)
        out.print(f"[dim]test:[/] {c['test']}", highlight=False)
        if not c["deciding"]:
            out.print("[dim]decided by:[/] none of the tested parameters moves it", highlight=False)
        else:
            parts = [
                f"{d['parameter']} ({d['low']:g} → {d['high']:g}: {d['metric_at_low']:.3g} → {d['metric_at_high']:.3g})"
                for d in c["deciding"]
            ]
            out.print("[dim]decided by:[/] " + "; ".join(parts), highlight=False)
        alt = c["alternative"]
        if alt and c["verdict"] != "supported":
            out.print(
                f"[dim]best alternative:[/] {alt['name']} — {alt['description']} "
                f"({alt['proposal_metric']:.3g} → {alt['metric']:.3g})",
                highlight=False,
            )
        out.print()
    out.print(
        f"{payload['simulations']} simulations × {replicates} replicates; "
        f"parameters: {post_source}; stored as run [bold]{run_id}[/] in {db}"
    )


def choose_posterior(sc: Scenario, posterior: Path | None, no_posterior: bool) -> tuple[Posterior | None, str]:
    """The posterior `claims` and `predict` use: --posterior, else the scenario's, else the shipped calibrated model
    (unless --no-posterior, which gives the scenario's hand-tuned values)."""
    from defection.scenario.posterior import Posterior, PosteriorError, shipped_posterior_path  # lazy: numpy

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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(claims)
