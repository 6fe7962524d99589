"""`defection brief`: the one-page summary of a run or a claims run, in HTML and Markdown (issue 15, "The brief")."""

from __future__ import annotations

import json

from defection.report.backtest_summary import backtest_summary, packaged_summary

from .conftest import ROOT

BACKTEST = ROOT / "docs" / "validation" / "backtest.json"


def test_packaged_backtest_summary_matches_the_committed_backtest() -> None:
    """The installed package's copy is what `backtest_summary` makes of docs/validation/backtest.json (after a new
    backtest: `python -m defection.report.backtest_summary`, which `make validate` runs)."""
    full = json.loads(BACKTEST.read_text(encoding="utf-8"))
    assert packaged_summary() == json.loads(json.dumps(backtest_summary(full)))
    packaged = packaged_summary()
    assert packaged is not None and packaged["source"] == "docs/validation/backtest.json"
    assert {m["case"] for m in packaged["outside_90"]} == {r["case"] for r in full["rows"] if not r["inside_90"]}
