"""`defection predict`: the model's prediction of case files it was not calibrated on.

The computation is the backtest's: each case's own scenario, simulated once per posterior draw (each replicate
draws its own particle), summarised as the median with 50% and 90% intervals of every observed outcome.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import JsonOpt, NoPosteriorOpt, PosteriorOpt, choose_posterior, fail, fmt, json_default, out

# The case library (pydantic, the scenario) and the engine are imported inside the commands: `defection --help` needs
# neither.
if TYPE_CHECKING:
    from defection.calibrate.cases import Case

PREDICTION_KEYS = ("case", "outcome", "observed", "median", "p05", "p95", "p25", "p75", "inside_90")


def _load(files: list[Path]) -> list[Case]:
    from defection.calibrate.cases import CaseError, load_case  # lazy: see the note at the top

    cases, bad = [], []
    for f in files:
        try:
            cases.append(load_case(f))
        except CaseError as e:
            bad.append(e.render())
    if bad:
        fail("\n".join(bad))
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        fail(f"case id {', '.join(dupes)} is used by more than one of the files given")
    return cases


def predict(
    files: Annotated[list[Path], typer.Argument(help="Case TOML files (the format of `defection cases check`).")],
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
    draws: Annotated[int, typer.Option("--draws", min=2, max=10_000, help="Posterior draws (simulations).")] = 40,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (common random numbers).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Predict each case file's observed outcomes with the calibrated model, as the backtest does for a held-out
    case: the median and the 50% and 90% intervals, next to what was observed. Nothing is calibrated or stored.
    The posterior is --posterior, else the shipped calibrated model; --no-posterior gives the hand-tuned defaults."""
    # lazy: pyABC (see cli/calibrate.py); imported only when a prediction is made
    from defection.calibrate.abc import predictive_check

    if posterior is not None and no_posterior:
        fail("give either --posterior or --no-posterior, not both")
    cases = _load(files)
    post, where = choose_posterior(cases[0].scenario, posterior, no_posterior)
    table = predictive_check(cases, post, draws, seed)
    # inside_90 as the backtest scores it: an upper bound is covered when the 5th percentile is below it
    rows: list[dict[str, Any]] = [
        {
            **{k: r[k] for k in PREDICTION_KEYS if k != "inside_90"},
            "inside_90": bool(r["inside"]),
            "likelihood": r["likelihood"],
        }
        for r in table.to_dict("records")
    ]
    if as_json:
        used = None if post is None else {"hash": post.content_hash(), "source": where}
        payload = {
            "posterior": used,
            "discrepancy": table.attrs.get("discrepancy"),
            "draws": draws,
            "seed": seed,
            "observations": rows,
        }
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
        return
    t = Table(title=f"Predictions ({draws} draws; {where})", title_justify="left")
    for col in ("case", "outcome", "observed", "median", "50% interval", "90% interval", "inside 90%"):
        t.add_column(col, justify="left" if col in ("case", "outcome") else "right")
    for r in rows:
        name = r["outcome"]
        t.add_row(
            r["case"],
            name,
            ("< " if r["likelihood"] == "upper_bound" else "") + fmt(name, r["observed"]),
            fmt(name, r["median"]),
            f"{fmt(name, r['p25'])} – {fmt(name, r['p75'])}",
            f"{fmt(name, r['p05'])} – {fmt(name, r['p95'])}",
            "yes" if r["inside_90"] else "no",
        )
    out.print(t)
    if table.attrs.get("discrepancy"):
        out.print(f"structural error: {table.attrs['discrepancy']}", highlight=False)


def offer_effect(
    file: Annotated[
        Path | None, typer.Argument(help="A case file or a scenario file (default: the default scenario).")
    ] = None,
    outcome: Annotated[str, typer.Option("--outcome", help="The share outcome to measure.")] = "defected_share",
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
    draws: Annotated[int, typer.Option("--draws", min=2, max=10_000, help="Posterior draws (simulations).")] = 40,
    agents: Annotated[int | None, typer.Option("--agents", min=99, help="Agents (default: the file's).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (common random numbers).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """The offer's effect as the calibrated model sees it (eq. 52): the change in the outcome per doubling of the
    cash, log2(share(2B)/share(B)), and against no cash at all, each over posterior draws with common random
    numbers, with its median and 90% interval. +1 means the flow doubles with the reward; 0 that it does not move."""
    from defection.calibrate.cases import SHARE_OUTCOMES
    from defection.calibrate.effect import offer_effect as measure
    from defection.scenario import ScenarioError, default_scenario, load_scenario
    from defection.scenario.files import InputFileError, read_toml

    if posterior is not None and no_posterior:
        fail("give either --posterior or --no-posterior, not both")
    if outcome not in SHARE_OUTCOMES:
        fail(f"--outcome {outcome!r} is not a share outcome; allowed: {', '.join(SHARE_OUTCOMES)}")
    if file is None:
        sc = default_scenario()
    else:
        try:
            is_case = "case" in read_toml(file)
        except InputFileError as e:
            fail(f"{file}: {e}")
        try:
            sc = _load([file])[0].scenario if is_case else load_scenario(file)
        except ScenarioError as e:
            fail(e.render())
    post, where = choose_posterior(sc, posterior, no_posterior)
    result = measure(sc, post, outcome=outcome, draws=draws, seed=seed, agents=agents).summary()
    result["posterior"] = None if post is None else {"hash": post.content_hash(), "source": where}
    if as_json:
        sys.stdout.write(json.dumps(result, default=json_default) + "\n")
        return
    t = Table(title=f"The offer's effect on {outcome} ({draws} draws; {where})", title_justify="left")
    for col in ("", "median", "90% interval"):
        t.add_column(col, justify="left" if not col else "right")
    for label, key in (
        (f"{outcome} at ${result['cash_usd']:,.0f}", "share"),
        ("log2 change per doubling of the cash", "log2_change_per_doubling"),
        ("log2 change against no cash", "log2_change_versus_no_cash"),
    ):
        r = result[key]
        cells = [fmt(outcome, r[q]) if key == "share" else f"{r[q]:+.2f}" for q in ("median", "p05", "p95")]
        t.add_row(label, cells[0], f"{cells[1]} – {cells[2]}")
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(predict)
    app.command("offer-effect")(offer_effect)
