"""The out-of-sample record the brief quotes: a few fields of the committed backtest summary, packaged.

`docs/validation/backtest.json` (`make validate`) is not part of an installed package, so its headline scores and
the held-out observations the model missed are copied into `defection/data/backtest-summary.json` by
`backtest_summary` (`python -m defection.report.backtest_summary`, which `make validate` runs after the backtest).
`tests/test_brief.py` checks that the packaged file is what `backtest_summary` makes of the committed one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from defection.report.files import write_atomically

SUMMARY_FIELDS = (
    "run_id",
    "code_version",
    "cases_hash",
    "observations",
    "coverage_50",
    "coverage_90",
    "median_abs_log_error",
    "interval_score",
    "interval_score_naive",
    "skill",
)
"""The backtest's headline fields the brief needs, copied as they are."""
SOURCE = "docs/validation/backtest.json"


def misses(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The held-out observations outside their 90% interval, each with how many times too few (or too many) the
    model's median gave: the structural misses."""
    out = []
    for r in rows:
        if r.get("inside_90", True):
            continue
        observed, median = float(r["observed"]), float(r["median"])
        ratio = observed / median if median > 0 and observed > 0 else math.nan
        out.append(
            {
                "case": r["case"],
                "outcome": r["outcome"],
                "observed": observed,
                "median": median,
                "factor": None if math.isnan(ratio) else max(ratio, 1 / ratio),  # None: a zero on either side
                "direction": "too few" if median < observed else "too many",
            }
        )
    return out


def backtest_summary(full: dict[str, Any]) -> dict[str, Any]:
    """The packaged summary of a backtest summary (`defection backtest --json`): its headline fields, the number of
    folds, and the observations outside their 90% interval."""
    summary = {k: full.get(k) for k in SUMMARY_FIELDS}
    summary["folds"] = (full.get("settings") or {}).get("folds")
    summary["outside_90"] = misses(full.get("rows") or [])
    summary["source"] = SOURCE
    return summary


def packaged_path() -> Path:
    """Where the installed package keeps the summary."""
    return Path(str(resources.files("defection") / "data" / "backtest-summary.json"))


def packaged_summary() -> dict[str, Any] | None:
    """The packaged backtest summary, or None if this installation has none (or it cannot be read)."""
    try:
        data = json.loads(packaged_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rescored(full: dict[str, Any]) -> dict[str, Any]:
    """A backtest summary scored again with today's scores (`calibrate.backtest.scored_rows`): its predictions, draws,
    folds and settings kept, each row's likelihood taken from the case library where the summary lacks it."""
    from defection.calibrate.backtest import Backtest
    from defection.calibrate.cases import load_cases

    kinds = {(c.id, o.outcome): o.likelihood for c in load_cases() for o in c.observed}
    again = Backtest.from_dict(full, kinds).to_dict()
    return {**full, **again}  # keys the command adds (run_id, plot, report) stay


def main(argv: list[str] | None = None) -> int:
    """Write the packaged summary from the committed backtest summary (with --rescore, score that summary again
    first and rewrite it)."""
    prog = "python -m defection.report.backtest_summary"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", type=Path, default=Path(SOURCE), help=f"Default: {SOURCE}.")
    ap.add_argument("--to", type=Path, default=packaged_path(), help="Default: the package's data folder.")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="Score the source's predictions again with today's scores and rewrite it before packaging.",
    )
    ap.add_argument(
        "--report", type=Path, default=None, help="With --rescore: write the validation report of the rescored summary."
    )
    args = ap.parse_args(argv)
    full = json.loads(args.source.read_text(encoding="utf-8"))
    if args.rescore:
        full = rescored(full)
        write_atomically(args.source, json.dumps(full) + "\n")
        print(f"rescored {args.source}")
        if args.report is not None:
            from defection.report.validation import validation_report  # lazy: plotly

            write_atomically(args.report, validation_report(full, full.get("run_id"))[0])
            print(f"wrote {args.report}")
    summary = backtest_summary(full)
    write_atomically(args.to, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
