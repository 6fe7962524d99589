"""Sensitivity (Sobol', Morris), optimisation (Optuna ask-and-tell, journal resume) and scenario discovery (PRIM):
the methods on problems with known answers, then each command end to end on a tiny spec."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from defection.cli.app import app
from defection.explore import discover as disc
from defection.explore import optimize as opt
from defection.explore.design import base_json, run_point, salib_problem, unit_design
from defection.explore.sensitivity import check_method, indices
from defection.explore.spec import spec_from_dict
from defection.report import render_report
from defection.scenario import default_scenario
from defection.store import ResultsDB

from .conftest import cli

# three numeric parameters standing in for x1, x2, x3 (their unit positions are what the tests use)
ISHIGAMI_FACTORS = [
    {"path": "offer.asylum_probability", "low": 0.0, "high": 1.0},
    {"path": "regime.monitors_per_soldier", "low": 0.0, "high": 1.0},
    {"path": "preferences.moral_cost_median_usd", "low": 0.0, "high": 1e6},
]


def ishigami(u: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    x = -np.pi + 2 * np.pi * u
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def _spec(sampler: str, samples: int, seed: int = 1, **extra: Any) -> Any:
    return spec_from_dict(
        {
            "experiment": {"name": "t", "sampler": sampler, "samples": samples, "seed": seed},
            "uncertainties": ISHIGAMI_FACTORS,
            **extra,
        }
    )


# ----------------------------------------------------------------------------- sensitivity
def test_sobol_recovers_ishigami_indices() -> None:
    spec = _spec("sobol", 1024)
    X = unit_design(spec)  # the command's sampling path: the spec's Saltelli sample in the unit cube
    table = indices("sobol", salib_problem(spec), X, ishigami(X), seed=1).set_index("factor")
    names = [f["path"] for f in ISHIGAMI_FACTORS]
    s1 = table.loc[names, "S1"].to_numpy()
    st = table.loc[names, "ST"].to_numpy()
    np.testing.assert_allclose(s1, [0.314, 0.442, 0.0], atol=0.05)
    np.testing.assert_allclose(st, [0.558, 0.442, 0.244], atol=0.05)
    assert (table["S1_conf"] > 0).all() and (table["ST_conf"] < 0.15).all()
    assert list(table["rank"]) == [1, 2, 3]  # ranked by ST: x1, x2, x3


def test_morris_ranks_ishigami_x1_x2_above_x3() -> None:
    spec = _spec("morris", 50)
    X = unit_design(spec)
    table = indices("morris", salib_problem(spec), X, ishigami(X), seed=1).set_index("factor")
    mu = table["mu_star"]
    x1, x2, x3 = (f["path"] for f in ISHIGAMI_FACTORS)
    assert min(mu[x1], mu[x2]) > mu[x3]
    assert set(table.columns) >= {"mu_star", "mu_star_conf", "sigma", "mu"}


def test_sensitivity_method_must_match_sampler() -> None:
    with pytest.raises(ValueError, match="sampler is 'sobol' or 'morris'"):
        check_method(_spec("lhs", 8), None, ["defected_share"])
    with pytest.raises(ValueError, match="--method morris needs"):
        check_method(_spec("sobol", 8), "morris", ["defected_share"])
    with pytest.raises(ValueError, match="never"):
        check_method(_spec("sobol", 8), None, ["days_to_target"])
    assert check_method(_spec("morris", 4), None, ["defected_share"]) == "morris"


def test_constant_output_has_no_sobol_indices() -> None:
    spec = _spec("sobol", 8)
    X = unit_design(spec)
    table = indices("sobol", salib_problem(spec), X, np.zeros(len(X)))
    assert table["S1"].isna().all() and table["ST"].isna().all()


# ----------------------------------------------------------------------------- optimisation
LEVERS = [
    {"path": "offer.asylum_probability", "low": 0.0, "high": 1.0},
    {"path": "regime.monitors_per_soldier", "low": 0.0, "high": 1.0},
    {"path": "offer.education", "values": [True, False]},
]


def _lever_spec() -> Any:
    return spec_from_dict({"experiment": {"name": "synthetic", "seed": 3}, "levers": LEVERS})


def _synthetic(calls: list[dict[str, Any]]) -> opt.Scorer:
    """min cost = x + y + 0.5·education subject to 'probability' x ≥ 0.6: optimum x = 0.6, y = 0, no education."""

    def score(packages: list[dict[str, Any]]) -> list[opt.Scored]:
        calls.extend(packages)
        out = []
        for p in packages:
            x, y = p["offer.asylum_probability"], p["regime.monitors_per_soldier"]
            cost = x + y + (0.5 if p["offer.education"] else 0.0)
            out.append(opt.Scored([cost], [0.6 - x], {"metrics": {opt.COST: cost, "probability": x}}))
        return out

    return score


TARGET = opt.Problem("target", opt.Target(probability=0.6), days=30)


def test_optimiser_finds_known_optimum() -> None:
    spec = _lever_spec()
    levers, fixed = opt.decision_levers(spec)
    assert fixed == {} and len(levers) == 3
    calls: list[dict[str, Any]] = []
    study = opt.open_study("synthetic", TARGET, "tpe", seed=1)
    counts = opt.optimise(study, levers, _synthetic(calls), trials=60, batch=4)
    assert counts == {"reused": 0, "evaluated": 60, "complete": 60} and len(calls) == 60
    found = opt.results(study, TARGET)
    best = found["best"]
    assert best is not None and best["feasible"]
    assert best["package"]["offer.education"] is False
    assert 0.6 <= best["package"]["offer.asylum_probability"] < 0.7
    assert best["package"]["regime.monitors_per_soldier"] < 0.1
    assert best["metrics"][opt.COST] < 0.75
    # every feasible trial costs at least the optimum; the constraint reached Optuna
    assert all(t.constraints for t in study.trials)


def test_pareto_front_is_non_dominated() -> None:
    problem = opt.Problem("pareto", opt.Target(), days=30)
    levers, _ = opt.decision_levers(_lever_spec())

    def score(packages: list[dict[str, Any]]) -> list[opt.Scored]:
        out = []
        for p in packages:
            x, y = p["offer.asylum_probability"], p["regime.monitors_per_soldier"]
            values = [x + y, x, 30 - 20 * x]  # cost (min), defections (max), days (min)
            out.append(opt.Scored(values, [], {"metrics": dict(zip(problem.objectives, values, strict=True))}))
        return out

    study = opt.open_study("pareto", problem, "nsga2", seed=1, population=8)
    opt.optimise(study, levers, score, trials=24, batch=8)
    front = opt.results(study, problem)["pareto"]
    assert front and all(r["package"]["regime.monitors_per_soldier"] <= 1 for r in front)
    pts = [(r["metrics"][opt.COST], -r["metrics"]["defected_share"], r["metrics"][opt.DAYS]) for r in front]
    for a in pts:
        assert not any(all(bi <= ai for ai, bi in zip(a, b, strict=True)) and b != a for b in pts)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_journal_resume_reuses_finished_trials(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.log")
    levers, _ = opt.decision_levers(_lever_spec())
    first: list[dict[str, Any]] = []
    study = opt.open_study("resume", TARGET, "tpe", seed=1, storage=journal)
    assert opt.optimise(study, levers, _synthetic(first), trials=5, batch=2)["evaluated"] == 5
    before = [(t.number, t.params, t.values) for t in study.trials]

    # a run killed mid-batch: a trial asked and given a package, never told
    killed = opt.open_study("resume", TARGET, "tpe", seed=1, storage=journal)
    orphan = killed.ask()
    orphan.set_user_attr("owner", f"{socket.gethostname()}:{_dead_pid()}")
    orphan_package = opt.suggest(orphan, levers)

    second: list[dict[str, Any]] = []
    resumed = opt.open_study("resume", TARGET, "tpe", seed=1, storage=journal)
    counts = opt.optimise(resumed, levers, _synthetic(second), trials=9, batch=2)
    assert counts == {"reused": 5, "evaluated": 4, "complete": 9}
    assert len(second) == 4 and second[0] == orphan_package  # the orphan is evaluated first, with its package
    trials = resumed.trials
    assert [(t.number, t.params, t.values) for t in trials[:5]] == before
    assert len(trials) == 9 and all(t.state.name == "COMPLETE" for t in trials)
    assert trials[orphan.number].params == orphan_package
    # earlier packages are not asked again by the re-seeded sampler
    assert not any(p in first for p in second[1:])


def test_scoring_pools_worlds_and_replicates() -> None:
    ok = {"status": "ok", "error": None}
    worlds = [
        {**ok, "values": {opt.COST: [10.0, 30.0], "defected_share": [0.2, 0.05], opt.DAYS: [5.0, np.nan]}},
        {**ok, "values": {opt.COST: [20.0, 20.0], "defected_share": [0.1, 0.12], opt.DAYS: [9.0, 8.0]}},
    ]
    s = opt.score_package(worlds, opt.Problem("target", opt.Target(value=0.1, probability=0.8), days=30))
    assert s.values == [20.0]
    assert s.attrs["metrics"]["probability"] == pytest.approx(0.75)  # 3 of 4 world-replicates reach 10%
    assert s.constraint == [pytest.approx(0.05)]  # infeasible: 0.8 - 0.75 > 0
    assert s.attrs["metrics"][opt.DAYS] == pytest.approx((5 + 31 + 9 + 8) / 4)  # never = horizon + 1
    failed = opt.score_package(
        [worlds[0], {"status": "failed", "error": "boom"}], opt.Problem("target", opt.Target(), days=30)
    )
    assert failed.values is None and "boom" in (failed.error or "")


def test_worlds_are_a_fixed_seeded_ensemble() -> None:
    spec = spec_from_dict(
        {"experiment": {"name": "w", "seed": 5}, "uncertainties": ISHIGAMI_FACTORS[:2], "levers": LEVERS[2:]}
    )
    a, b = opt.worlds(spec, 6), opt.worlds(spec, 6)
    assert a == b and len(a) == 6 and set(a[0]) == {f["path"] for f in ISHIGAMI_FACTORS[:2]}
    column = sorted(w["offer.asylum_probability"] for w in a)  # LHS: one point per sixth of the range
    assert [int(6 * v) for v in column] == list(range(6))


@pytest.mark.slow
def test_evaluate_on_dask_matches_serial() -> None:
    bj = base_json(default_scenario())
    settings = {"replicates": 1, "days": 10, "agents": 990, "seed": 4}
    points = [{"offer.cash_usd": c} for c in (1e5, 1e7, 1e8)]
    serial = opt.evaluate(points, bj, settings, ["defected_share", "aware_share"])
    with opt.dask_client(workers=2) as client:
        assert client is not None
        parallel = opt.evaluate(points, bj, settings, ["defected_share", "aware_share"], client)
    strip = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in serial]
    assert strip == [{k: v for k, v in r.items() if k != "wall_seconds"} for r in parallel]
    assert all(r["status"] == "ok" for r in serial)
    assert serial[0] == {
        **run_point(bj, points[0], settings, ["defected_share", "aware_share"]),
        "wall_seconds": serial[0]["wall_seconds"],
    }


def test_evaluate_on_the_worker_pool_matches_serial() -> None:
    from defection.workers import replicate_workers

    bj = base_json(default_scenario())
    settings = {"replicates": 2, "days": 10, "agents": 990, "seed": 4}
    points = [{"offer.cash_usd": c} for c in (1e5, 1e7, 1e8)] + [{"offer.schedule.rule": "ratchet_topup"}]
    outcomes = ["defected_share", "aware_share"]
    serial = opt.evaluate(points, bj, settings, outcomes, task=opt.run_replicates)
    seen: list[tuple[int, int]] = []
    with replicate_workers(2) as pool:
        assert pool is not None
        assert opt.evaluator_description(pool, 2) == "worker pool (2 single-threaded processes)"
        pooled = opt.evaluate(
            points, bj, settings, outcomes, pool, task=opt.run_replicates, progress=lambda k, n: seen.append((k, n))
        )
    assert [r["status"] for r in serial] == ["ok", "ok", "ok", "failed"]  # a failed point is a row, in its place
    strip = [{k: v for k, v in r.items() if k != "traceback"} for r in serial]
    assert strip == [{k: v for k, v in r.items() if k != "traceback"} for r in pooled]
    assert seen == [(k, 4) for k in range(1, 5)]


# ----------------------------------------------------------------------------- scenario discovery
def test_prim_recovers_a_known_box() -> None:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.random((600, 3)), columns=["x1", "x2", "x3"])
    x["kind"] = rng.choice(["a", "b"], 600)
    y = ((x["x1"] < 0.3) & (x["x2"] > 0.6)).to_numpy()
    boxes = disc.prim_boxes(x, y)
    assert len(boxes) == 1
    box = boxes[0]
    assert set(box["restricted"]) == {"x1", "x2"}
    assert box["restricted"]["x1"]["low"] is None and box["restricted"]["x1"]["high"] == pytest.approx(0.3, abs=0.05)
    assert box["restricted"]["x2"]["high"] is None and box["restricted"]["x2"]["low"] == pytest.approx(0.6, abs=0.05)
    assert box["coverage"] >= 0.9 and box["density"] >= 0.9
    assert box["trajectory"][box["chosen"]]["coverage"] == box["coverage"]


def test_discovery_inputs() -> None:
    assert disc.prim_boxes(pd.DataFrame({"a": [0.1, 0.2]}), np.array([False, False])) == []
    np.testing.assert_array_equal(disc.cases_of_interest(np.array([0.1, 0.3, np.nan]), 0.2), [True, False, False])
    np.testing.assert_array_equal(
        disc.cases_of_interest(np.array([0.1, 0.3, np.inf]), 0.2, below=False), [False, True, True]
    )
    spec = spec_from_dict(
        {
            "experiment": {"name": "d"},
            "uncertainties": ISHIGAMI_FACTORS[:1],
            "levers": [{"path": "offer.cash_usd", "values": [5e6]}, LEVERS[1]],
        }
    )
    assert disc.fixed_levers(spec) == {"offer.cash_usd": 5e6}
    assert disc.uncertainty_spec(spec).levers == []
    with pytest.raises(ValueError, match="uncertainties"):
        disc.uncertainty_spec(spec_from_dict({"experiment": {"name": "d"}, "levers": LEVERS[:1]}))


def test_a_threshold_that_does_not_split_the_cases_finds_no_box() -> None:
    """Issue 13, item 9: PRIM raised AssertionError when every case was of interest."""
    x = pd.DataFrame({"a": np.linspace(0.0, 1.0, 10)})
    assert disc.prim_boxes(x, np.ones(10, dtype=bool)) == []
    assert disc.threshold_split(np.ones(10, dtype=bool)) == "all"
    assert disc.threshold_split(np.zeros(10, dtype=bool)) == "none"
    assert disc.threshold_split(np.arange(10) < 3) == "some"
    values = np.array([0.004, 0.001, np.nan, 0.002, 0.0031, 0.01])
    assert disc.outcome_range(values) == {"min": 0.001, "median": 0.0031, "max": 0.01}
    assert disc.outcome_range(np.array([np.nan])) is None
    # strictly between two observed values, splitting the finite cases evenly, with few digits
    assert disc.splitting_threshold(values) == 0.003
    assert disc.splitting_threshold(np.array([0.2, 0.2, np.nan])) is None
    for v in (np.array([1.0, 1.0, 1.0, 2.0]), np.array([0.12345678, 0.12345679]), np.array([-3.0, 5.0, 7.0])):
        t = disc.splitting_threshold(v)
        assert t is not None
        below = disc.cases_of_interest(v, t)
        assert below.any() and not below.all() and not np.isin(t, v)


# ----------------------------------------------------------------------------- commands end to end
TINY = """
[experiment]
name = "{name}"
sampler = "{sampler}"
samples = {samples}
replicates = {replicates}
seed = 1
days = 20
agents = 990

[[uncertainties]]
path = "preferences.moral_cost_median_usd"
low = 20_000.0
high = 2_000_000.0
log = true
{extra}
[[outcomes]]
name = "defected_share"
direction = "max"
"""
CASH_RANGE = '\n[[levers]]\npath = "offer.cash_usd"\nlow = 1_000_000.0\nhigh = 100_000_000.0\nlog = true\n'
CASH_FIXED = (
    '\n[[levers]]\npath = "offer.cash_usd"\nvalues = [20_000_000.0]\n[[uncertainties]]\n'
    'path = "regime.monitors_per_soldier"\nlow = 0.0\nhigh = 0.2\n'
)


def _write(
    tmp_path: Path, name: str, sampler: str = "lhs", samples: int = 4, replicates: int = 1, extra: str = CASH_RANGE
) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, sampler=sampler, samples=samples, replicates=replicates, extra=extra))
    return path


def _json(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, "stdout must hold exactly one JSON object"
    return json.loads(lines[0])


def _stored(db: Path, run_id: str, kind: str) -> ResultsDB:
    store = ResultsDB(db)
    row = store.list_runs().set_index("run_id").loc[run_id]
    assert row["kind"] == kind and row["status"] == "complete"
    return store


@pytest.mark.slow
def test_sensitivity_command(tmp_path: Path) -> None:
    spec, db, png = _write(tmp_path, "tiny-sobol", "sobol", 4), tmp_path / "r.duckdb", tmp_path / "s.png"
    payload = _json(cli("sensitivity", str(spec), "--db", str(db), "--plot", str(png), "--json"))
    assert payload["method"] == "sobol" and payload["points"] == 4 * (2 + 2)
    assert payload["factors"] == ["preferences.moral_cost_median_usd", "offer.cash_usd"]
    rows = payload["indices"]["defected_share"]
    assert [r["rank"] for r in rows] == [1, 2] and set(rows[0]) == {"rank", "factor", "S1", "S1_conf", "ST", "ST_conf"}
    assert png.stat().st_size > 1000
    store = _stored(db, payload["run_id"], "sensitivity")
    assert store.artifact(payload["run_id"], "sensitivity")["indices"] == payload["indices"]
    assert list(store.outcomes(payload["run_id"])["outcome"]) == ["defected_share"]


@pytest.mark.slow
def test_optimize_command_resumes_from_journal(tmp_path: Path) -> None:
    spec, db, journal = _write(tmp_path, "tiny-opt", replicates=2, samples=2), tmp_path / "r.duckdb", tmp_path / "j.log"
    common = (
        "--target",
        "0.0005",
        "--probability",
        "0.5",
        "--storage",
        str(journal),
        "--db",
        str(db),
        "--json",
        "--batch",
        "2",
    )
    first = _json(cli("optimize", str(spec), "--trials", "2", *common))
    assert first["mode"] == "target" and first["sampler"] == "tpe" and first["worlds"] == 2
    assert (first["reused"], first["evaluated"], first["complete"]) == (0, 2, 2)
    # the agent-days this command simulated: trials evaluated × worlds × replicates × agents × days
    assert first["agent_days"] == 2 * 2 * 2 * 990 * 20
    stored_wall = _stored(db, first["run_id"], "optimize").list_runs().set_index("run_id").loc[first["run_id"]]
    assert 0 < stored_wall["wall_seconds"] <= first["wall_seconds"]
    assert first["target"] == {"outcome": "defected_share", "value": 0.0005, "probability": 0.5, "above": True}
    second = _json(cli("optimize", str(spec), "--trials", "3", *common))
    assert second["study"] == first["study"]
    assert (second["reused"], second["evaluated"], second["complete"]) == (2, 1, 3)
    assert second["agent_days"] == 1 * 2 * 2 * 990 * 20  # the reused trials were not simulated again
    for payload in (first, second):
        for row in [payload["best"] or payload["closest"]]:
            assert set(row) == {"trial", "package", "metrics", "feasible", "interval"}
            assert set(row["metrics"]) == {"programme_cost_usd", "defected_share", "days_to_target", "probability"}
    trials = _stored(db, second["run_id"], "optimize").artifact(second["run_id"], "trials")
    assert [t["trial"] for t in trials] == [0, 1, 2]
    assert trials[:2] == _stored(db, first["run_id"], "optimize").artifact(first["run_id"], "trials")
    pareto = _json(cli("optimize", str(spec), "--trials", "2", "--db", str(db), "--json"))
    assert pareto["mode"] == "pareto" and pareto["sampler"] == "nsga2" and pareto["pareto"]
    assert set(pareto["pareto"][0]["metrics"]) == {"programme_cost_usd", "defected_share", "days_to_target"}


@pytest.mark.slow
def test_optimize_gives_the_same_study_serially_and_on_the_worker_pool(tmp_path: Path) -> None:
    spec = _write(tmp_path, "tiny-pool", replicates=2, samples=2)
    common = ("--target", "0.0005", "--probability", "0.5", "--json", "--batch", "2", "--trials", "4")
    runs = {
        w: _json(cli("optimize", str(spec), *common, "--workers", w, "--db", str(tmp_path / f"{w}.db"))) for w in "02"
    }
    assert runs["0"]["executor"] == "serial (this process)"
    assert runs["2"]["executor"] == "worker pool (2 single-threaded processes)"
    same = [{k: v for k, v in p.items() if k not in ("run_id", "wall_seconds", "executor")} for p in runs.values()]
    assert same[0] == same[1] and same[0]["evaluated"] == 4


@pytest.mark.slow
def test_discover_command(tmp_path: Path) -> None:
    spec, db = _write(tmp_path, "tiny-discover", samples=10, extra=CASH_FIXED), tmp_path / "r.duckdb"
    payload = _json(
        cli("discover", str(spec), "--outcome", "defected_share", "--threshold", "0.0005", "--db", str(db), "--json")
    )
    assert payload["cases"] == 10 and payload["direction"] == "below"
    assert payload["fixed_levers"] == {"offer.cash_usd": 20_000_000.0}
    assert 0 <= payload["cases_of_interest"] <= 10
    for box in payload["boxes"]:
        assert {"coverage", "density", "mass", "restricted", "chosen"} <= set(box)
        assert set(box["restricted"]) <= {"preferences.moral_cost_median_usd", "regime.monitors_per_soldier"}
    store = _stored(db, payload["run_id"], "discover")
    assert len(store.artifact(payload["run_id"], "cases")) == 10


@pytest.mark.slow
def test_discover_says_when_the_threshold_does_not_split_the_cases(tmp_path: Path) -> None:
    """Issue 13, item 9: a threshold every case meets (README: --threshold 0.1) crashed with AssertionError; one
    that no case meets printed only "nothing to discover". Both now say so, show the outcome's range and suggest a
    threshold inside it; the run and its cases are stored, exit 0."""
    spec, db = _write(tmp_path, "tiny-unsplit", samples=6, extra=CASH_FIXED), tmp_path / "r.duckdb"
    common = ("--outcome", "defected_share", "--db", str(db), "--json")
    every = cli("discover", str(spec), "--threshold", "2", *common)  # a share is at most 1: every case is below
    assert every.returncode == 0 and "Traceback" not in every.stderr, every.stderr
    said = " ".join(every.stderr.split())
    assert "every case (6 of 6) has defected_share < 2" in said and "no region to discover" in said
    payload = _json(every)
    assert payload["meets_threshold"] == "all" and payload["cases_of_interest"] == 6 and payload["boxes"] == []
    reached = payload["outcome_range"]
    assert 0 <= reached["min"] <= reached["median"] <= reached["max"] <= 1
    assert f"ranged from {reached['min']:.4g} to {reached['max']:.4g} (median {reached['median']:.4g})" in said
    stored = _stored(db, payload["run_id"], "discover").artifact(payload["run_id"], "cases")
    cases = [c["defected_share_mean"] for c in stored]
    assert len(cases) == 6, cases
    assert min(cases) == pytest.approx(reached["min"]) and max(cases) == pytest.approx(reached["max"])
    suggested = payload["suggested_threshold"]
    if reached["min"] < reached["max"]:
        assert reached["min"] < suggested < reached["max"] and f"--threshold {suggested!r}" in said
        assert 0 < sum(c < suggested for c in cases) < 6, "the suggestion must split the cases"
    else:
        assert suggested is None and "no threshold splits them" in said

    none = cli("discover", str(spec), "--threshold", "-1", *common)  # no share is below -1
    assert none.returncode == 0 and "Traceback" not in none.stderr, none.stderr
    said = " ".join(none.stderr.split())
    assert "no case has defected_share < -1" in said and "ranged from" in said
    assert _json(none)["meets_threshold"] == "none"

    human = cli("discover", str(spec), "--threshold", "2", "--outcome", "defected_share", "--db", str(db))
    assert human.returncode == 0 and "every case (6 of 6)" in " ".join(human.stderr.split()), human.stderr
    assert "6 of 6 cases have defected_share < 2" in human.stdout
    html = render_report(ResultsDB(db), payload["run_id"])
    assert "Every case meets the threshold, so it does not split the cases" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sensitivity", "{lhs}"), "sampler is 'sobol' or 'morris'"),
        (("sensitivity", "{sobol}", "--method", "morris"), "--method morris needs"),
        (("sensitivity", "{sobol}", "--outcome", "nonsense"), "'nonsense' is unknown"),
        (("optimize", "{lhs}", "--target-outcome", "nonsense", "--target", "0.1"), "not an outcome"),
        (("optimize", "{nolevers}", "--target", "0.1"), "at least one [[levers]]"),
        (("optimize", "{lhs}", "--sampler", "cmaes"), "choose one of nsga2, tpe"),
        (("discover", "{lhs}", "--outcome", "nonsense", "--threshold", "0.1"), "not an outcome"),
        (("discover", "{lhs}", "--outcome", "defected_share", "--threshold", "ten"), "Invalid value for '--threshold'"),
        (("discover", "{missing}", "--outcome", "defected_share", "--threshold", "0.1"), "file not found"),
        (
            (
                "optimize",
                "{bad}",
            ),
            "invalid spec",
        ),
    ],
)
def test_bad_input_is_a_clean_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    files = {
        "lhs": _write(tmp_path, "lhs"),
        "sobol": _write(tmp_path, "sobol", "sobol"),
        "nolevers": _write(tmp_path, "nolevers", extra=""),
        "missing": tmp_path / "missing.toml",
        "bad": tmp_path / "bad.toml",
    }
    files["bad"].write_text('[experiment]\nname = "x"\nsamples = -1\n')
    db = tmp_path / "r.duckdb"
    argv = [*(a.format(**{k: str(v) for k, v in files.items()}) for a in args), "--db", str(db)]
    r = CliRunner().invoke(app, argv)  # in process: bad input is refused before anything is simulated
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in " ".join(r.stderr.split()), r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.stderr
    assert not db.exists() or ResultsDB(db).list_runs().empty  # nothing recorded for bad input
