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
    ReplicateWorkersOpt,
    Reporter,
    ScenarioArg,
    check_posterior_flags,
    choose_posterior,
    command_seconds,
    fail,
    json_default,
    load_or_fail,
    out,
    recorded,
    warn,
    warn_resolution,
)

# defection.claims, defection.store (duckdb), the scenario (pydantic) and the posterior (numpy) are imported inside
# the commands: `defection --help` need not load them.
if TYPE_CHECKING:
    from defection.claims import ClaimsReport

# ----------------------------------------------------------------------------- claims
VERDICT_STYLE = {"supported": "bold green", "not supported": "bold red"}


def _money_or_share(n: dict[str, Any]) -> str:
    if n["median"] is None or not math.isfinite(n["median"]):
        return "undefined at these settings (e.g. no defectors)"

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
    workers: ReplicateWorkersOpt = None,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive",
            help="Judge the claims with 4 replicates per variant, then 4 more each round, and stop before --replicates "
            "once every verdict is the same two rounds running (a stability rule; the output says where it stopped).",
        ),
    ] = False,
) -> None:
    """Test each claim of the proposal on the simulator: numbers with 90% intervals, a verdict, the parameters
    that decide it, and the best alternative design for a failing claim."""
    run_id, report, early = stored_claims(
        scenario, replicates, days, agents, seed, db, posterior, no_posterior, workers, adaptive, quiet=as_json
    )
    post_source = report.settings["posterior"]
    payload = {"run_id": run_id, **report.to_dict(), "wall_seconds": command_seconds()}
    for why in report.warnings:
        if why not in early:
            warn(why)
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
                f"{d['parameter']} ({d['low']:g} → {d['high']:g}: {_g(d['metric_at_low'])} → {_g(d['metric_at_high'])})"
                for d in c["deciding"]
            ]
            out.print("[dim]decided by:[/] " + "; ".join(parts), highlight=False)
        alt = c["alternative"]
        if alt and c["verdict"] != "supported":
            out.print(
                f"[dim]best alternative:[/] {alt['name']} — {alt['description']} "
                f"({_g(alt['proposal_metric'])} → {_g(alt['metric'])})",
                highlight=False,
            )
        out.print()
    if report.adaptive is not None:
        a = report.adaptive
        out.print(
            f"adaptive replicates: {a['replicates_used']} of at most {a['max_replicates']} per variant "
            f"(rounds {', '.join(map(str, a['rounds']))}): {a['why']}",
            highlight=False,
        )
    used = report.settings["replicates"]
    out.print(
        f"{payload['simulations']} simulations × {used} replicates ({report.agent_days:,} agent-days, "
        f"{payload['wall_seconds']:.1f} s); parameters: {post_source}; stored as run [bold]{run_id}[/] in {db}"
    )


def stored_claims(
    scenario: Path | None,
    replicates: int,
    days: int,
    agents: int,
    seed: int | None,
    db: Path,
    posterior: Path | None = None,
    no_posterior: bool = False,
    workers: int | None = None,
    adaptive: bool = False,
    quiet: bool = False,
) -> tuple[str, ClaimsReport, list[str]]:
    """Test the claims on a scenario (a file, a shipped scenario's name, None: the default) as `defection claims`
    does, with progress on standard error (`quiet`: transient), and store the run; (run id, the report, the warnings
    given before simulating). A bad scenario or option is a clean error (exit 2) before anything is stored."""
    from defection.claims import (  # lazy: see the top
        PAIRED_BASELINE,
        baseline_artifact,
        plan_claims,
        replicate_rounds,
        run_claims,
        settings_warnings,
    )
    from defection.engine import workers_for
    from defection.scenario import ScenarioError, with_overrides
    from defection.store import RunMeta  # lazy: duckdb
    from defection.workers import replicate_workers

    check_posterior_flags(posterior, no_posterior)
    base = load_or_fail(scenario, posterior=not no_posterior)
    try:
        sc = with_overrides(base, source="claims options", replicates=replicates, days=days, agents=agents, seed=seed)
    except ScenarioError as e:
        fail(e.render())
    warn_resolution(sc.simulation.agents, sc.force.company_size)
    post, post_source = choose_posterior(sc, posterior, no_posterior)
    early = settings_warnings(replicates, days)
    for why in early:
        warn(f"these settings may be too small to decide the claims: {why}")
    with recorded(db, RunMeta.from_scenario(sc, kind="claims"), "claims run") as (store, run_id):
        n_workers = workers if workers is not None else workers_for(sc)
        with Reporter("claims", transient=quiet) as rep, replicate_workers(n_workers) as pool:
            planned = plan_claims(sc, replicates, days, sc.simulation.agents, sc.simulation.seed)
            if adaptive:  # each round may extend every variant: at most this many simulations
                planned *= len(replicate_rounds(replicates, adaptive))
            rep.stage("testing the claims: variants" + (" × rounds (at most)" if adaptive else ""), total=planned)

            def progress(label: str, done: int, total: int | None) -> None:
                rep.update(completed=done, detail=f"now: variant {done + 1} of {total}: {label}", line=True)

            report = run_claims(
                sc,
                replicates,
                days,
                sc.simulation.agents,
                sc.simulation.seed,
                progress=progress,
                posterior=post,
                planned=planned,
                workers=pool,
                adaptive=adaptive,
            )
            rep.update(completed=report.simulations, detail="all variants simulated")
        report.settings["posterior"] = post_source
        report.proposal.run_id = run_id
        # the stored run's wall time is the command's (every variant), not the proposal's simulation alone
        report.proposal.wall_seconds = command_seconds()
        artifacts: dict[str, Any] = {"claims": report.to_dict()}
        if report.baseline is not None:  # claim 1's no-offer variant: the report's paired differences, at no cost
            artifacts[PAIRED_BASELINE] = baseline_artifact(report.baseline)
        store.complete_run(run_id, report.proposal, artifacts=artifacts)
    return run_id, report, early


def _g(v: float | None) -> str:
    """A metric with three significant digits; 'undefined' for a missing or non-finite one (never 'nan')."""
    return "undefined" if v is None or not math.isfinite(v) else f"{v:.3g}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(claims)
