"""`defection predict`: the model's prediction of case files it was not calibrated on.

The computation is the backtest's: each case's own scenario, simulated once per posterior draw (each replicate
draws its own particle), summarised as the median with 50% and 90% intervals of every observed outcome.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from defection.calibrate.cases import Case, CaseError, load_case
from defection.cli.claims import choose_posterior
from defection.cli.console import JsonOpt, NoPosteriorOpt, PosteriorOpt, fail, fmt, json_default, out

PREDICTION_KEYS = ("case", "outcome", "observed", "median", "p05", "p95", "p25", "p75", "inside_90")


def _load(files: list[Path]) -> list[Case]:
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(predict)
