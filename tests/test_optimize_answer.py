"""Issue 15, "Finding the package": what `defection optimize` says when no package reaches the target (the closest,
not the cheapest failure), numbers printed with sensible precision, the optimize run's report (trials table, cost
against share achieved), and the warning of `defection sensitivity` on a sample too small to trust."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from defection.cli import console
from defection.cli.search import _meta, _print_optimize
from defection.explore import optimize as opt
from defection.explore import sensitivity as sa
from defection.explore.design import exploration_posterior
from defection.explore.spec import spec_from_dict
from defection.report import render_report
from defection.report.explore_figures import cost_against_achieved, nondominated
from defection.report.format import fmt_short, fmt_sig
from defection.report.optimize_text import verdict
from defection.scenario import default_scenario
from defection.store import ResultsDB

from .conftest import cli

LEVERS = [
    {"path": "offer.cash_usd", "low": 10_000.0, "high": 20_000_000.0, "log": True},
    {"path": "regime.monitors_per_soldier", "low": 0.0, "high": 0.1},
]
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def long_numbers(text: str) -> list[str]:
    """The numbers in `text` written with more than 3 significant digits (23927.65489308518, 0.0123456, 23,927)."""
    out = []
    for token in NUMBER.findall(text):
        digits = token.replace(",", "")
        significant = digits.replace(".", "").lstrip("0") if "." in digits else digits.strip("0")
        if len(significant) > 3:
            out.append(token)
    return out


def _spec() -> Any:
    return spec_from_dict({"experiment": {"name": "answer", "seed": 2}, "levers": LEVERS})


def _share(pkg: dict[str, Any]) -> float:
    """A made-up share achieved: grows with the cash, falls with monitoring; at most 5%."""
    return 0.05 * np.log10(pkg["offer.cash_usd"] / 1e4) / np.log10(2e3) * (1 - 5 * pkg["regime.monitors_per_soldier"])


def _scorer(target: opt.Target) -> opt.Scorer:
    def score(packages: list[dict[str, Any]]) -> list[opt.Scored]:
        out = []
        for p in packages:
            share, cost = _share(p), p["offer.cash_usd"] * 7.123456789
            reached = float(share >= target.value)
            metrics = {opt.COST: cost, "defected_share": share, opt.DAYS: 181.0, "probability": reached}
            summary = {"defected_share": {"median": share, "p05": 0.8 * share, "p95": 1.2 * share, "mean": share}}
            out.append(opt.Scored([cost], [target.probability - reached], {"metrics": metrics, "summary": summary}))
        return out

    return score


def _study(target: opt.Target, trials: int = 12) -> tuple[opt.Problem, dict[str, Any]]:
    problem = opt.Problem("target", target, days=180)
    levers, _ = opt.decision_levers(_spec())
    study = opt.open_study("answer", problem, "tpe", seed=1)
    opt.optimise(study, levers, _scorer(target), trials=trials, batch=4)
    return problem, opt.results(study, problem)


def _result(problem: opt.Problem, found: dict[str, Any]) -> dict[str, Any]:
    """The command's result object, as `optimize_command` builds it."""
    name = problem.target.outcome
    result = {
        "spec": "answer",
        "study": "answer",
        "mode": problem.mode,
        "target": problem.target.__dict__,
        "worlds": 1,
        "replicates": 2,
        "complete": len(found["trials"]),
        "reused": 0,
        "evaluated": len(found["trials"]),
        "failed": 0,
        "best": opt.slim(found["best"], name),
        "closest": opt.slim(found["closest"], name),
        "pareto": [opt.slim(r, name) for r in found["pareto"]],
        "wall_seconds": 1.234567,
    }
    result["verdict"] = verdict(result)
    return result


# ----------------------------------------------------------------------------- the closest package
def test_unreachable_target_reports_the_package_that_came_closest() -> None:
    problem, found = _study(opt.Target(value=0.5, probability=0.8))  # the made-up share is at most 5%
    assert found["best"] is None
    shares = [t["metrics"]["defected_share"] for t in found["trials"]]
    costs = [t["metrics"][opt.COST] for t in found["trials"]]
    closest = found["closest"]
    assert closest["metrics"]["defected_share"] == max(shares)  # the most achieved,
    assert closest["metrics"][opt.COST] != min(costs)  # not the cheapest failure
    said = verdict(_result(problem, found))
    assert said is not None and said.startswith("no package reached the target defected_share ≥ 50%")
    assert f"the closest reached defected_share {fmt_short('defected_share', max(shares))} on average" in said
    assert "90% of worlds × replicates" in said and f"(trial {closest['trial']})" in said


def test_closeness_ranks_probability_then_the_share_achieved() -> None:
    t = opt.Target(value=0.1, probability=0.8)

    def row(p: float, share: float, cost: float) -> dict[str, Any]:
        return {"metrics": {"probability": p, "defected_share": share, opt.COST: cost}}

    ranked = sorted([row(0.0, 0.02, 1.0), row(0.0, 0.05, 9.0), row(0.5, 0.04, 5.0)], key=lambda r: opt.closeness(r, t))
    assert [r["metrics"][opt.COST] for r in ranked] == [1.0, 9.0, 5.0]
    below = opt.Target(value=0.01, probability=0.8, above=False)  # a ceiling: the lower the closer
    assert opt.closeness(row(0.0, 0.02, 1.0), below) > opt.closeness(row(0.0, 0.05, 1.0), below)


def test_reachable_target_keeps_the_cheapest_feasible_package() -> None:
    problem, found = _study(opt.Target(value=0.01, probability=0.8), trials=16)
    assert found["best"] is not None and found["closest"] is None
    feasible = [t["metrics"][opt.COST] for t in found["trials"] if t["feasible"]]
    assert found["best"]["metrics"][opt.COST] == min(feasible)
    assert verdict(_result(problem, found)).startswith("the cheapest package reaching the target")  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- precision
def test_numbers_are_printed_to_three_significant_digits() -> None:
    assert long_numbers("23927.65489308518 $23,900 0.00286 $20,000,000 0.012345 23,927") == [
        "23927.65489308518",
        "0.012345",
        "23,927",
    ]
    assert fmt_short("offer.cash_usd", 23927.65489308518) == "$23,900"
    assert fmt_short("programme_cost_usd", 2.0e7) == "$20,000,000"
    assert fmt_short("programme_cost_usd", 1.23456e10) == "$12.3bn"
    assert fmt_short("programme_cost_usd", 3.3912e12) == "$3.39tn"
    assert fmt_short("defected_share", 0.1) == "10%"
    assert fmt_short("defected_share", 0.000123456) == "0.0123%"
    assert fmt_short("probability", 0.75) == "75%"
    assert fmt_short("regime.monitors_per_soldier", 0.0123456) == "0.0123"
    assert fmt_short("programme.extraction_capacity_per_day", 12345.678) == "12,300"
    assert fmt_short("offer.education", True) == "True"
    assert fmt_short("days_to_target", float("inf")) == "never"
    assert fmt_sig(0.5) == "0.5" and fmt_sig(0.0) == "0" and fmt_sig(999.96) == "1,000"


@pytest.mark.parametrize("reachable", [False, True])
def test_the_printed_table_has_no_long_floats(reachable: bool) -> None:
    problem, found = _study(opt.Target(value=0.01 if reachable else 0.5, probability=0.8))
    result = _result(problem, found)
    with console.out.capture() as captured:
        _print_optimize(result, "r0", Path("x.duckdb"), "calibrated parameters: none")
    text = captured.get()
    assert not long_numbers(text), text
    said = " ".join(text.split())
    if reachable:
        assert "the cheapest package reaching the target defected_share ≥ 1%" in said
    else:
        assert "no package reached the target defected_share ≥ 50% with probability ≥ 80%; the closest reached" in said
        assert "the closest package (none reached" in said
    assert "offer.cash_usd = $" in said


# ----------------------------------------------------------------------------- the report
def _stored_optimize(tmp_path: Path, reachable: bool) -> tuple[ResultsDB, str, dict[str, Any]]:
    problem, found = _study(opt.Target(value=0.01 if reachable else 0.5, probability=0.8))
    result = _result(problem, found)
    db = ResultsDB(tmp_path / "r.duckdb")
    none = exploration_posterior(_spec(), None, "none")
    run_id = db.begin_run(_meta("optimize", _spec(), default_scenario(), {"mode": "target"}, none))
    shown = found["best"] or found["closest"]
    outcomes = pd.DataFrame(
        [{"outcome": k, **v} for k, v in shown["summary"].items()], columns=["outcome", "median", "p05", "p95", "mean"]
    )
    db.complete_artifacts(run_id, {"optimize": result, "trials": found["trials"]}, outcomes, 1.0)
    return db, run_id, result


@pytest.mark.parametrize("reachable", [False, True])
def test_optimize_report_shows_the_trials_and_the_front(tmp_path: Path, reachable: bool) -> None:
    db, run_id, result = _stored_optimize(tmp_path, reachable)
    html = render_report(db, run_id)
    assert "stored no outcomes" not in html
    assert 'id="trials-table"' in html and 'id="fig-cost-share"' in html and 'id="fig-pareto"' in html
    trials = db.artifact(run_id, "trials")
    body = html.split('id="trials-table"', 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == len(trials) + 1  # a header row and one row per trial
    assert not long_numbers(re.sub(r"<[^>]+>", " ", body))
    if reachable:
        assert "The cheapest package reaching the target" in html and "The outcomes of the cheapest package" in html
    else:
        assert "No package reached the target defected_share ≥ 50%" in html
        assert f"the outcomes of the closest (trial {result['closest']['trial']})" in html


def test_cost_against_achieved_marks_feasible_packages_and_the_front(tmp_path: Path) -> None:
    problem, found = _study(opt.Target(value=0.02, probability=0.8), trials=16)
    result = _result(problem, found)
    fig = cost_against_achieved(result, found["trials"])
    names = [tr.name for tr in fig.data]
    assert names[:2] == ["feasible (reached the target)", "not feasible"]
    feasible, infeasible = fig.data[0], fig.data[1]
    assert len(feasible.x) + len(infeasible.x) == len(found["trials"])
    assert len(feasible.x) == sum(t["feasible"] for t in found["trials"])
    assert any("front" in n for n in names) and any(n.startswith("target:") for n in names)
    assert nondominated([1.0, 2.0, 3.0, 2.5], [0.1, 0.3, 0.2, 0.3]) == [0, 1]
    assert nondominated([1.0, 2.0], [0.2, 0.1], above=False) == [0, 1]


# ----------------------------------------------------------------------------- sensitivity
def _table(st: list[float], conf: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"factor": ["a", "b"][: len(st)], "ST": st, "ST_conf": conf, "S1": st, "S1_conf": conf})


def test_sensitivity_warns_when_the_sample_is_too_small() -> None:
    assert sa.sample_warnings("sobol", 1024, {"y": _table([0.6, 0.2], [0.05, 0.05])}) == []
    small = sa.sample_warnings("sobol", 32, {"y": _table([0.6, 0.2], [0.05, 0.05])})
    assert len(small) == 1 and "N = 32 is below 512" in small[0]
    zero = sa.sample_warnings("sobol", 1024, {"y": _table([0.1, 0.05], [0.2, 0.3])})
    assert len(zero) == 1 and zero[0].startswith("y: every factor's 95% interval of ST includes 0")
    constant = _table([np.nan, np.nan], [np.nan, np.nan])  # an outcome that does not vary: said elsewhere
    assert sa.sample_warnings("sobol", 1024, {"y": constant}) == []
    morris = pd.DataFrame({"factor": ["a"], "mu_star": [1.0], "mu_star_conf": [2.0], "mu": [1.0], "sigma": [0.1]})
    said = sa.sample_warnings("morris", 4, {"y": morris})
    assert len(said) == 2 and "4 Morris trajectories are fewer than 10" in said[0] and "mu_star includes 0" in said[1]


TINY_SOBOL = """
[experiment]
name = "tiny-warn"
sampler = "sobol"
samples = 2
replicates = 1
seed = 1
days = 10
agents = 990

[[uncertainties]]
path = "preferences.moral_cost_median_usd"
low = 20_000.0
high = 2_000_000.0
log = true

[[levers]]
path = "offer.cash_usd"
low = 1_000_000.0
high = 20_000_000.0
log = true
"""


@pytest.mark.slow
def test_sensitivity_command_warns_on_a_tiny_sample(tmp_path: Path) -> None:
    spec, db, report = tmp_path / "s.toml", tmp_path / "r.duckdb", tmp_path / "s.html"
    spec.write_text(TINY_SOBOL)
    r = cli("sensitivity", str(spec), "--db", str(db), "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("N = 2 is below 512" in w for w in payload["warnings"])
    assert "N = 2 is below 512" in " ".join(r.stderr.split())
    html = report.read_text()
    assert 'id="sensitivity-warnings"' in html and "N = 2 is below 512" in html


def test_an_infeasible_package_is_ranked_by_its_shortfall() -> None:
    t = opt.Target(value=0.1, probability=0.8)
    assert opt.violation(t, 0.9, 0.05) == pytest.approx(-0.1)  # feasible: the shortfall does not count
    assert opt.violation(t, 0.0, 0.05) == pytest.approx(0.8 + 0.5)
    assert opt.violation(t, 0.0, 0.02) > opt.violation(t, 0.0, 0.05) > opt.violation(t, 0.5, 0.09)
    assert opt.violation(opt.Target(value=0.01, probability=0.8, above=False), 0.0, 0.015) == pytest.approx(1.3)
