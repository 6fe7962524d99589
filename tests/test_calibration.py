"""Calibration and validation: case files, parameter recovery on synthetic data, posterior propagation, backtest."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from defection import simulate
from defection.calibrate.abc import calibrate, case_run, particle_agent_days
from defection.calibrate.cases import Case, CaseError, library_hash, load_case, load_cases
from defection.engine import code_version
from defection.model.rng import posterior_particle
from defection.scenario import ScenarioError, load_scenario
from defection.scenario.posterior import Posterior, PosteriorError, weighted_quantiles
from defection.scenario.ranges import CALIBRATED

from .conftest import cli, cli_in_process, scenario, wait_for_running
from .processes import communicate, started

MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")
CROSSING = next(u for u in CALIBRATED if u.path == "crossing.killed_crossing_base")

SYNTH = """
[case]
id = "{id}"
title = "synthetic"
period = "none"
sources = ["simulated with known parameters"]
calibration_agents = {agents}

[[observed]]
outcome = "defected_share"
value = {defected}
tolerance = 0.25
tag = "S"

[[observed]]
outcome = "caught_share"
value = {caught}
tolerance = 0.25
tag = "S"

[scenario.simulation]
days = {days}
agents = {agents}
replicates = 1

[scenario.regime.response]
mode = "static"
"""


def write_case(
    folder: Path,
    case_id: str = "synth",
    defected: float = 0.01,
    caught: float = 0.01,
    days: int = 120,
    agents: int = 2_970,
) -> Path:
    path = folder / f"{case_id}.toml"
    path.write_text(SYNTH.format(id=case_id, defected=defected, caught=caught, days=days, agents=agents))
    return path


# ----------------------------------------------------------------------------- the shipped library
def test_the_shipped_library_loads_and_covers_the_issue_cases() -> None:
    ids = {c.id for c in load_cases()}
    for expected in (
        "chieu-hoi-1966",
        "chieu-hoi-1969-70",
        "gulf-1991",
        "colombia-2002-2015",
        "colombia-2007-08",
        "us-civil-war-usct",
        "ukraine-hotline-2022-24",
        "russia-awol-2022-25",
        "caporetto-1917",
        "confederate-desertion-1863-65",
        "nigeria-safe-corridor-2021-22",
        "philippines-eclip-2018-19",
        "red-army-returns-1919",
        "syria-army-2011-12",
        "uganda-lra-amnesty-2000s",
        "ukraine-awol-2022-25",
        "wehrmacht-desertion-1939-45",
    ):
        assert expected in ids
    cases = load_cases()
    for c in cases:
        assert c.meta.sources and all(o.tolerance > 0 for o in c.observed)
        assert all(o.value > 0 or o.likelihood == "count" for o in c.observed)
        assert c.scenario.simulation.agents == c.meta.calibration_agents
        # every case file states its kind of war and which routes were open, and its war is of its family
        raw = tomllib.loads(Path(c.path).read_text())["scenario"]
        assert "kind" in raw["war"] and all("open" in raw["routes"][r] for r in ("home", "surrender")), c.id
        assert c.scenario.war.kind in (c.meta.family, "mixed"), c.id
    # issue 12: at least 16 cases and 30 observations, with routes besides crossing and a before/after period
    assert len(cases) >= 16 and sum(len(c.observed) for c in cases) >= 30
    outcomes = {o.outcome for c in cases for o in c.observed}
    assert {"deserted_share", "surrendered_share", "caught_deserting_share"} <= outcomes
    assert any(len(c.scenarios()) > 1 for c in cases)


def test_every_number_in_a_case_file_has_a_comment() -> None:
    """Each scenario value is commented with its source, tag or 'assumption' (on its line or the line before), in
    the library."""
    for c in load_cases():
        lines = Path(c.path).read_text().splitlines()
        in_scenario = False
        for k, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("[") and "scenario" in stripped:
                in_scenario = True
            if not in_scenario or not stripped or stripped.startswith(("#", "[")) or "=" not in stripped:
                continue
            key = stripped.split("=")[0].strip()
            if key in ("name", "description", "mode") or stripped.endswith('"""'):
                continue
            commented = "#" in line or lines[k - 1].strip().startswith("#")
            assert commented, f"{c.path}:{k + 1}: {stripped} has no source comment"


# ----------------------------------------------------------------------------- bad case files
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s.replace(
                '[[observed]]\noutcome = "defected_share"\nvalue = 0.01\ntolerance = 0.25\ntag = "S"\n', ""
            ).replace('[[observed]]\noutcome = "caught_share"\nvalue = 0.01\ntolerance = 0.25\ntag = "S"\n', ""),
            "observed: required field is missing",
        ),
        (
            lambda s: s.replace("tolerance = 0.25", "tolerance = 0.0", 1),
            "observed[0].tolerance = 0.0: Input should be greater than 0",
        ),
        (lambda s: s.replace("tolerance = 0.25", "tolerance = -1", 1), "observed[0].tolerance = -1"),
        (
            lambda s: s.replace('tolerance = 0.25\ntag = "S"', 'tolerance = 0.3\ntag = "M"', 1),
            "tolerance = 0.3 is below 0.75, the floor for a [M] source",
        ),
        (
            lambda s: s.replace('outcome = "defected_share"', 'outcome = "defected"', 1),
            "observed[0].outcome = 'defected': not a share outcome",
        ),
        (lambda s: s.replace("value = 0.01", "value = 0", 1), "observed[0].value = 0"),
        (
            lambda s: s + "\n[scenario.preferences]\nlogit_scale = 0.5\n",
            "scenario.preferences.logit_scale: is estimated by calibration",
        ),
        (lambda s: s + "\n[scenario.force]\nsoldiers = -5\n", "scenario.force.soldiers = -5: out of range"),
        (lambda s: s.replace("[case]", "[case]\ncolour = 'red'"), "case.colour = 'red': unknown key"),
        (lambda s: s.replace("period =", "period = = "), "malformed TOML"),
        (
            lambda s: s.replace("[case]", '[case]\nfamily = "insurgency"'),
            "scenario.war.kind = 'conventional': contradicts case.family",
        ),
        (
            lambda s: s + "\n[scenario.routes.home]\ndaily_opportunity = 0.01\n",
            "scenario.routes.home.daily_opportunity: is estimated by calibration",
        ),
    ],
)
def test_bad_case_files_get_a_clear_error(tmp_path: Path, edit, expected: str) -> None:
    path = write_case(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(CaseError) as exc:
        load_case(path)
    assert str(path) in exc.value.render()
    assert expected in exc.value.render()
    r = cli_in_process("cases", "check", str(path))
    assert r.returncode == 2
    assert expected in r.stderr and "Traceback" not in r.stderr


def test_case_check_accepts_a_good_file(tmp_path: Path) -> None:
    r = cli_in_process("cases", "check", str(write_case(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


# ----------------------------------------------------------------------------- posterior files
def posterior(moral: list[float], weights: list[float] | None = None) -> Posterior:
    return Posterior((MORAL.path,), np.array(moral)[:, None], np.array(weights or [1.0] * len(moral)))


def test_posterior_round_trips_and_draws_by_weight(tmp_path: Path) -> None:
    post = posterior([1e5, 2e5, 4e5], [0.0, 1.0, 0.0])
    path = post.save(tmp_path / "p.json")
    back = Posterior.load(path)
    assert back.parameters == post.parameters and np.allclose(back.samples, post.samples)
    assert {posterior_particle(back, 7, r) for r in range(50)} == {1}  # only the particle with weight
    even = posterior([1e5, 2e5, 4e5])
    draws = [posterior_particle(even, 7, r) for r in range(3_000)]
    assert all(abs(draws.count(k) / 3_000 - 1 / 3) < 0.04 for k in range(3))
    assert draws == [posterior_particle(even, 7, r) for r in range(3_000)]  # a pure function of (seed, replicate)


def test_weighted_quantiles_by_hand() -> None:
    assert weighted_quantiles(np.array([3.0, 1.0, 2.0]), np.array([0.2, 0.5, 0.3]), (0.5, 0.05, 0.95)) == [
        1.0,
        1.0,
        3.0,
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"format": "x"}, "format = 'x': expected 'defection-posterior/1'"),
        (
            {"format": "defection-posterior/1", "parameters": ["offer.cash_usd"], "samples": [[1.0]], "weights": [1.0]},
            "parameters[0] = 'offer.cash_usd': not a calibrated parameter",
        ),
        (
            {"format": "defection-posterior/1", "parameters": [MORAL.path], "samples": [[1.0, 2.0]], "weights": [1.0]},
            "samples = 'shape (1, 2)'",
        ),
        (
            {"format": "defection-posterior/1", "parameters": [MORAL.path], "samples": [[1.0]], "weights": [-1.0]},
            "weights",
        ),
    ],
)
def test_bad_posterior_files_are_rejected(tmp_path: Path, payload: dict, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(PosteriorError) as exc:
        Posterior.load(path)
    assert expected in exc.value.render()
    scen = tmp_path / "s.toml"
    scen.write_text('[simulation]\nposterior = "bad.json"\n')
    with pytest.raises(ScenarioError) as exc2:
        load_scenario(scen)
    assert "simulation.posterior = 'bad.json'" in exc2.value.render()
    r = cli_in_process(
        "run", "--posterior", str(path), "--db", str(tmp_path / "r.duckdb"), "-r", "1", "-d", "5", "-k", "990"
    )
    assert r.returncode == 2 and "simulation.posterior" in r.stderr and "Traceback" not in r.stderr


def test_a_scenario_references_a_posterior_relative_to_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    posterior([1e5, 9e5]).save(tmp_path / "sub" / "post.json")
    scen = tmp_path / "sub" / "s.toml"
    scen.write_text('[simulation]\nposterior = "post.json"\n')
    sc = load_scenario(scen)
    assert Path(sc.simulation.posterior) == (tmp_path / "sub" / "post.json").resolve()


# ----------------------------------------------------------------------------- propagation
def test_posterior_draws_widen_intervals_and_keep_common_random_numbers() -> None:
    sc = scenario(regime__response__mode="static")
    settings = {"replicates": 12, "days": 120, "agents": 2_970, "seed": 11}
    fixed = simulate(sc, **settings)
    wide = posterior([5e4, 1e5, 3e5, 1e6, 3e6])
    spread = simulate(sc, posterior=wide, **settings)
    spread_sd = lambda r: float(np.std(r.per_replicate["defected_share"]))  # noqa: E731
    assert spread_sd(spread) > 1.3 * spread_sd(fixed)
    assert spread.posterior_hash == wide.content_hash() and fixed.posterior_hash is None
    # paired variants draw the same particle per replicate: a no-op change leaves every replicate identical
    again = simulate(scenario(regime__response__mode="static", meta__name="renamed"), posterior=wide, **settings)
    assert np.array_equal(again.per_replicate["defected_share"], spread.per_replicate["defected_share"])
    # replicate r with the posterior equals a plain run with particle k(r)'s values
    r = 3
    k = posterior_particle(wide, 11, r)
    plain = simulate(wide.apply(sc, k), **settings)
    assert plain.per_replicate["defected_share"].iloc[r] == spread.per_replicate["defected_share"].iloc[r]


def test_a_non_cash_programme_is_open_and_moves_soldiers() -> None:
    """A package of safety and asylum with no cash still takes defectors (the hotline, the 1991 leaflets)."""
    settings = {"replicates": 4, "days": 90, "agents": 9_900, "seed": 5}
    non_cash = simulate(scenario(offer__cash_usd=0.0, offer__asylum_probability=1.0), **settings)
    assert (non_cash.daily["programme_open"] == 1).all()
    assert non_cash.per_replicate["defected_programme_share"].median() > 0


# ----------------------------------------------------------------------------- parameter recovery
@pytest.mark.slow
def test_calibration_recovers_known_parameters_on_a_synthetic_case(tmp_path: Path) -> None:
    """Simulate with known moral cost and crossing risk, far from the prior's centre, calibrate both, and find
    the truth inside the posterior's 90% interval of both; for the moral cost, which the two shares identify, the
    interval is narrower than the prior's and the median much nearer the truth than the prior's centre. Peer and
    precedent terms are off to keep the counts Poisson-like."""
    truth = {MORAL.path: 60_000.0, CROSSING.path: 0.1}
    extra = "\n[scenario.preferences]\npeer_weight = 0.0\nprecedent_weight = 0.0\n"

    def synthetic(defected: float, caught: float) -> Case:
        path = write_case(tmp_path, defected=defected, caught=caught, days=120, agents=9_900)
        path.write_text(path.read_text() + extra)
        return load_case(path, calibrated=())  # the test may fix the other calibrated parameters

    case = synthetic(0.01, 0.01)
    runs = [case_run(case, truth, seed) for seed in range(5)]
    observed = {o: float(np.median([r[o].iloc[0] for r in runs])) for o in ("defected_share", "caught_share")}
    case = synthetic(observed["defected_share"], observed["caught_share"])
    cal = calibrate(
        [case],
        parameters=[MORAL, CROSSING],
        particles=40,
        generations=4,
        workers=2,
        seed=3,
        check_draws=6,
        discrepancy=False,
    )
    summary = cal.posterior.summary().set_index("parameter")
    for u in (MORAL, CROSSING):
        assert summary.loc[u.path, "p05"] <= truth[u.path] <= summary.loc[u.path, "p95"], summary.loc[u.path]
    for u in (MORAL,):  # identifiable from these two shares; the crossing risk only weakly (it trades off)
        row, true = summary.loc[u.path], u.from_model(truth[u.path])
        prior_lo, prior_hi = u.prior_bounds
        assert u.from_model(row["p95"]) - u.from_model(row["p05"]) < 0.7 * 0.9 * (prior_hi - prior_lo), u.path
        prior_centre = (prior_lo + prior_hi) / 2
        assert abs(u.from_model(row["median"]) - true) < 0.6 * abs(prior_centre - true), (u.path, row.to_dict())
    assert cal.populations["epsilon"].is_monotonic_decreasing
    assert cal.check is not None and list(cal.check["case"]) == ["synth", "synth"]


# ----------------------------------------------------------------------------- the commands
@pytest.mark.slow
def test_calibrate_and_backtest_commands(tmp_path: Path) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    write_case(folder, "alpha", defected=0.004, caught=0.01, days=60, agents=1_980)
    write_case(folder, "beta", defected=0.01, caught=0.02, days=60, agents=1_980)
    db = tmp_path / "r.duckdb"
    post_file = tmp_path / "post.json"
    r = cli(
        "calibrate",
        "--cases",
        str(folder),
        "--particles",
        "8",
        "--generations",
        "2",
        "--workers",
        "1",
        "--check-draws",
        "3",
        "-o",
        str(post_file),
        "--report",
        str(tmp_path / "calibration.html"),
        "--db",
        str(db),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    cal = json.loads(r.stdout)
    # bookkeeping: every ABC simulation and predictive draw simulates each case once; the stored wall time is
    # the command's (the JSON's is read a moment later), and at least the sampler's own
    per_particle = particle_agent_days(load_cases(folder))
    assert per_particle > 0 and cal["agent_days"] == per_particle * (cal["simulations"] + cal["check_draws"])
    stored = json.loads(cli_in_process("runs", "show", cal["run_id"], "--db", str(db), "--json").stdout)
    assert 0 < stored["wall_seconds"] <= cal["wall_seconds"]
    # --report: the calibration's report, with the posterior's marginals and pairwise plots
    report = (tmp_path / "calibration.html").read_text(encoding="utf-8")
    assert cal["report"] == str(tmp_path / "calibration.html") and cal["run_id"] in report
    assert 'id="fig-posterior"' in report and 'id="fig-posterior-pairs"' in report and "<script src" not in report
    assert (
        cal["cases"] == ["alpha", "beta"] and len(cal["parameters"]) == len(CALIBRATED) + 1
    )  # and δ of the one family
    assert {c["case"] for c in cal["check"]} == {"alpha", "beta"}
    assert Posterior.load(post_file).size == 8
    meta = Posterior.load(post_file).meta  # provenance: the case library and the code it was calibrated with
    assert meta["cases_hash"] == library_hash(load_cases(folder)) and meta["code_version"] == code_version()
    # claims uses the shipped posterior by default, and a calibration's file when given it (2 days: only the
    # posterior it names is checked here; tests/test_claims.py checks what it finds)
    r = cli("claims", "--db", str(db), "-r", "2", "-d", "2", "-k", "990", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["settings"]["posterior"].startswith("the shipped posterior")
    r = cli("claims", "--db", str(db), "-r", "2", "-d", "2", "-k", "990", "--json", "--posterior", str(post_file))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["settings"]["posterior"] == f"posterior {post_file}"
    r = cli("claims", "--db", str(db), "-r", "2", "-d", "2", "-k", "990", "--json", "--no-posterior")
    assert json.loads(r.stdout)["settings"]["posterior"].startswith("scenario values")
    # run --posterior propagates parameter uncertainty and records which posterior it used
    r = cli("run", "--posterior", str(post_file), "--db", str(db), "-r", "2", "-d", "10", "-k", "990", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["posterior"] == {
        "hash": Posterior.load(post_file).content_hash(),
        "path": str(post_file.resolve()),
    }
    # backtest: one row per held-out observation, coverage and error, a PNG
    plot = tmp_path / "bt.png"
    r = cli(
        "backtest",
        "--cases",
        str(folder),
        "--particles",
        "6",
        "--generations",
        "1",
        "--workers",
        "1",
        "--draws",
        "3",
        "--temperature-schedule",
        "ess",
        "--kernel-scaling",
        "3",
        "--restarts",
        "2",
        "--plot",
        str(plot),
        "--db",
        str(db),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    bt = json.loads(r.stdout)
    assert bt["settings"]["schedule"] == "ess"  # every fold's calibration takes the schedule, and the run records it
    assert bt["settings"]["kernel_scaling"] == 3.0  # and the proposal kernel's width
    assert bt["settings"]["restarts"] == 2  # and the restarts: each fold pools two runs of 6 particles
    assert all(len(p["particles"]["weights"]) == 12 for p in bt["posteriors"].values())
    assert [(c["case"], c["outcome"]) for c in bt["cases"]] == [
        ("alpha", "defected_share"),
        ("alpha", "caught_share"),
        ("beta", "defected_share"),
        ("beta", "caught_share"),
    ]
    for c in bt["cases"]:
        assert c["p05"] <= c["median"] <= c["p95"]
        assert c["inside"] == (c["p05"] <= c["observed"] <= c["p95"])
        assert c["abs_log_error"] >= 0
    assert 0.0 <= bt["coverage"] <= 1.0
    assert bt["coverage"] == pytest.approx(np.mean([c["inside"] for c in bt["cases"]]))
    assert math.isfinite(bt["median_abs_log_error"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = cli_in_process("runs", "list", "--db", str(db), "--json")
    kinds = [row["kind"] for row in json.loads(r.stdout)]
    assert kinds.count("calibration") == 1 and kinds.count("backtest") == 1


def test_a_claims_variant_that_sets_a_calibrated_parameter_keeps_its_value() -> None:
    """Under a posterior, a variant such as 'credibility first' must not be overwritten by the draws, while the
    other calibrated parameters still follow replicate r's particle (paired with the proposal)."""
    from defection.claims import Lab

    post = Posterior((MORAL.path, CROSSING.path), np.array([[5e4, 0.05], [3e6, 0.3]]), np.array([1.0, 1.0]))
    lab = Lab(scenario(regime__response__mode="static"), replicates=6, days=30, agents=990, seed=4, posterior=post)
    variant = lab.run({MORAL.path: 5e6})
    assert variant.posterior_hash == post.without([MORAL.path]).content_hash()
    by_hand = simulate(lab.variant({MORAL.path: 5e6}), posterior=post.without([MORAL.path]), **lab.settings)
    assert np.array_equal(variant.per_replicate["caught"], by_hand.per_replicate["caught"])
    with_draws = simulate(lab.variant({MORAL.path: 5e6}), posterior=post, **lab.settings)
    assert not np.array_equal(variant.per_replicate["caught"], with_draws.per_replicate["caught"])


def test_two_observations_of_one_outcome_both_count(tmp_path: Path) -> None:
    """A case may observe the same outcome from two sources; each is a separate term of the distance (eq. 40)."""
    from defection.calibrate.abc import CaseModel

    path = write_case(tmp_path, days=10, agents=990)
    path.write_text(path.read_text().replace('outcome = "caught_share"', 'outcome = "defected_share"'))
    case = load_case(path)
    stats = CaseModel([case], [MORAL])({MORAL.key: 5.0})
    assert sorted(stats) == ["synth:0:defected_share", "synth:1:defected_share"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_an_interrupted_calibration_is_recorded_and_writes_no_posterior(tmp_path: Path, sig: signal.Signals) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    write_case(folder, days=60, agents=990)
    db, post_file = tmp_path / "r.duckdb", tmp_path / "post.json"
    with started(
        [
            sys.executable,
            "-m",
            "defection",
            "calibrate",
            "--cases",
            str(folder),
            "--particles",
            "5000",
            "--generations",
            "20",
            "--workers",
            "2",
            "-o",
            str(post_file),
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # the driver and its 2 workers are killed with their process group on leaving
        run_id = wait_for_running(db, proc)
        time.sleep(3.0)  # into the sampling
        os.kill(proc.pid, sig)  # the driver only, as before
        _, stderr = communicate(proc)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert not post_file.exists()
    runs = json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
    assert [(r["run_id"], r["kind"], r["status"]) for r in runs] == [(run_id, "calibration", "interrupted")]


@pytest.mark.slow
def test_backtest_scores_and_validation_report(tmp_path: Path) -> None:
    """The backtest's JSON carries the scores and one scored row per held-out observation; --report writes a
    self-contained validation report, and `defection report` of the stored run shows the same sections."""
    from defection.calibrate.backtest import ROW_KEYS

    folder = tmp_path / "cases"
    folder.mkdir()
    for name, defected, caught in (("alpha", 0.004, 0.01), ("beta", 0.01, 0.02), ("gamma", 0.02, 0.005)):
        write_case(folder, name, defected=defected, caught=caught, days=40, agents=990)
    db, html = tmp_path / "r.duckdb", tmp_path / "validation.html"
    args = ["--cases", str(folder), "--particles", "5", "--generations", "1", "--workers", "1", "--draws", "4"]
    r = cli("backtest", *args, "--plot", str(tmp_path / "bt.png"), "--report", str(html), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    bt = json.loads(r.stdout)
    # off a terminal, progress is plain timestamped lines on stderr, one per fold and stage
    assert "backtest stage: case 3/3: predicting gamma" in r.stderr and "\x1b[" not in r.stderr
    keys = ("code_version", "cases_hash", "observations", "coverage_50", "coverage_90", "median_abs_log_error")
    keys += ("interval_score", "interval_score_naive", "skill", "conformal_coverage_90", "rows")
    assert set(keys) <= set(bt)
    assert bt["observations"] == len(bt["rows"]) == 6 and len(bt["cases_hash"]) == 64
    rows = bt["rows"]
    assert all(set(ROW_KEYS) <= set(row) for row in rows)
    for row in rows:
        assert row["p05"] <= row["p25"] <= row["median"] <= row["p75"] <= row["p95"]
        assert row["inside_90"] == (row["p05"] <= row["observed"] <= row["p95"])
        assert row["inside_50"] == (row["p25"] <= row["observed"] <= row["p75"])
        assert 0.0 <= row["pit"] <= 1.0 and len(row["draws"]) == 4
    assert bt["coverage_90"] == pytest.approx(np.mean([row["inside_90"] for row in rows]))
    assert bt["coverage_50"] == pytest.approx(np.mean([row["inside_50"] for row in rows]))
    assert bt["interval_score"] > 0 and bt["interval_score_naive"] > 0
    assert bt["skill"] == pytest.approx(1 - bt["interval_score"] / bt["interval_score_naive"])
    text = html.read_text()
    for fig in ("fig-validation-predicted", "fig-validation-pit", "fig-validation-folds", "fig-validation-pairs"):
        assert f'id="{fig}"' in text, fig
    # each fold's weighted particles, as its posterior file would hold them, for the pairwise plots
    for fold in bt["posteriors"].values():
        kept = fold["particles"]
        assert kept["parameters"] == [p["parameter"] for p in fold["parameters"]]
        assert len(kept["samples"]) == len(kept["weights"]) == 5 and sum(kept["weights"]) == pytest.approx(1.0)
    assert 'id="scores"' in text and 'id="held-out"' in text
    assert "<script src" not in text and 'src="http' not in text and text.count("Plotly.newPlot") == 1
    # the same report from the stored run
    stored = tmp_path / "stored.html"
    r = cli("report", bt["run_id"], "--db", str(db), "-o", str(stored))
    assert r.returncode == 0, r.stderr
    text = stored.read_text()
    assert 'id="fig-validation-predicted"' in text and 'id="scores"' in text and "<script src" not in text


def test_case_folds_hold_every_case_out_once_and_mix_the_families() -> None:
    """Grouped K-fold: each case is held out exactly once, each group mixes the families, and every training set
    keeps at least two cases of each family (a held-out case needs its family's δ from the others)."""
    from defection.calibrate.backtest import case_folds

    cases = load_cases()
    assert case_folds(cases) == [[c] for c in cases]  # default: leave one case out
    groups = case_folds(cases, 4)
    assert len(groups) == 4 and sorted(c.id for g in groups for c in g) == sorted(c.id for c in cases)
    families = {c.meta.family for c in cases}
    for g in groups:
        assert {c.meta.family for c in g} == families
        rest = [c for c in cases if c not in g]
        assert all(sum(c.meta.family == f for c in rest) >= 2 for f in families)
    with pytest.raises(ValueError, match="folds = 18 must be between 2"):
        case_folds(cases, 18)


def test_backtest_with_folds_holds_out_groups(tmp_path: Path) -> None:
    """`--folds 2` calibrates twice, each time without a group of cases, and predicts every case once."""
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, defected in (("alpha", 0.004), ("beta", 0.01), ("gamma", 0.02)):
        write_case(folder, name, defected=defected, caught=0.01, days=40, agents=990)
    args = ["--cases", str(folder), "--particles", "5", "--generations", "1", "--workers", "1", "--draws", "4"]
    r = cli("backtest", *args, "--folds", "2", "--plot", str(tmp_path / "bt.png"), "--db", str(tmp_path / "r.duckdb"))
    assert r.returncode == 0, r.stderr
    assert "fold 1/2: calibrating without alpha, gamma" in r.stderr and "fold 2/2: predicting beta" in r.stderr
    assert "2-fold (cases held out in groups) predictions" in r.stdout
    r = cli("backtest", *args, "--folds", "4", "--plot", str(tmp_path / "bt.png"), "--db", str(tmp_path / "r.duckdb"))
    assert r.returncode == 2 and "--folds 4: there are only 3 cases" in r.stderr and "Traceback" not in r.stderr


def test_the_proposal_kernels_width_reaches_pyabc_and_is_recorded(tmp_path: Path, monkeypatch) -> None:
    """`kernel_scaling` (`--kernel-scaling`) is the width pyABC's proposal kernel is built with, in the second
    generation (the first samples the prior), and the posterior records it; the default is KERNEL_SCALING; a width
    that is not positive is refused before anything runs."""
    import pyabc

    from defection.calibrate.abc import KERNEL_SCALING

    widths: list[float] = []
    real = pyabc.MultivariateNormalTransition

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, scaling: float = 1.0, **kwargs: object) -> None:
            widths.append(scaling)
            super().__init__(*args, scaling=scaling, **kwargs)

    monkeypatch.setattr(pyabc, "MultivariateNormalTransition", Recorded)
    case = load_case(write_case(tmp_path, days=20, agents=990), calibrated=())
    cal = calibrate([case], parameters=[MORAL], particles=4, generations=2, seed=1, discrepancy=False)
    assert widths == [KERNEL_SCALING] and cal.settings["kernel_scaling"] == KERNEL_SCALING
    cal = calibrate(
        [case], parameters=[MORAL], particles=4, generations=2, seed=1, discrepancy=False, kernel_scaling=4.0
    )
    assert widths == [KERNEL_SCALING, 4.0] and len(cal.populations) == 2
    assert cal.posterior.meta["settings"]["kernel_scaling"] == 4.0
    with pytest.raises(ValueError, match="kernel_scaling must be positive"):
        calibrate([case], parameters=[MORAL], particles=4, generations=2, kernel_scaling=0.0)


def test_pooled_posterior_by_hand() -> None:
    """Eq. 41b: each run's weights normalised, then scaled by 1/(number of runs); the particles stacked."""
    from defection.calibrate.abc import pooled_posterior

    a = Posterior(("x",), np.array([[1.0], [2.0]]), np.array([0.25, 0.75]), {})
    b = Posterior(("x",), np.array([[3.0], [4.0]]), np.array([0.5, 0.5]), {})
    pooled = pooled_posterior([a, b], {"m": 1})
    assert pooled.samples[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert pooled.weights.tolist() == [0.125, 0.375, 0.25, 0.25] and pooled.meta == {"m": 1}
    with pytest.raises(ValueError, match="same parameters"):
        pooled_posterior([a, Posterior(("y",), b.samples, b.weights, {})], {})


def test_restarts_pool_independent_runs_exactly(tmp_path: Path) -> None:
    """`restarts=2` is `calibrate` with seeds 1 and 2, pooled particle for particle (eq. 41b), with both runs'
    generations and simulations; restarts below 1 are refused."""
    from defection.calibrate.abc import pooled_posterior

    case = load_case(write_case(tmp_path, days=20, agents=990), calibrated=())
    kw = {"parameters": [MORAL], "particles": 4, "generations": 2, "discrepancy": False}
    one, two = calibrate([case], seed=1, **kw), calibrate([case], seed=2, **kw)
    both = calibrate([case], seed=1, restarts=2, **kw)
    expected = pooled_posterior([one.posterior, two.posterior], {})
    assert np.array_equal(both.posterior.samples, expected.samples)
    assert np.array_equal(both.posterior.weights, expected.weights)
    assert both.simulations == one.simulations + two.simulations
    assert both.populations["restart"].tolist() == [1, 1, 2, 2]
    assert both.settings["restarts"] == 2 and both.posterior.meta["settings"]["restarts"] == 2
    assert [r["seed"] for r in both.posterior.meta["restarts"]] == [1, 2]
    # Kish's ESS of two runs weighted ½ each: 1/Σ(w/2)² = 4/(1/ESS₁ + 1/ESS₂)
    e1, e2 = (c.posterior.meta["effective_sample_size"] for c in (one, two))
    assert both.posterior.meta["effective_sample_size"] == pytest.approx(4 / (1 / e1 + 1 / e2), rel=1e-12)
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        calibrate([case], restarts=0, **kw)


def test_restarts_that_the_time_limit_cut_are_not_pooled(monkeypatch, tmp_path: Path) -> None:
    """A restart that finished no generation, or stopped hotter than the others, is left out of the pool and the
    notes say so; if the first finishes nothing the calibration fails as a single run would."""
    import pandas as pd

    from defection.calibrate import abc

    def run(seed: int, epsilon: float) -> abc.Calibration:
        post = Posterior(("x",), np.array([[float(seed)], [seed + 0.5]]), np.array([0.5, 0.5]), {})
        post.meta.update({"final_epsilon": epsilon, "effective_sample_size": 2.0})
        pops = pd.DataFrame({"t": [0], "epsilon": [epsilon], "simulations": [10], "particles": [2], "ess": [2.0]})
        return abc.Calibration(post, pops, 10, 0.0, ["c"], {"seed": seed}, agent_days=100)

    outcomes: dict[int, object] = {}

    def fake(cases: object, *, seed: int, **kw: object) -> abc.Calibration:
        out = outcomes[seed]
        if isinstance(out, Exception):
            raise out
        assert isinstance(out, abc.Calibration)
        return out

    monkeypatch.setattr(abc, "calibrate", fake)
    outcomes.update({1: run(1, 1.0), 2: run(2, 1.7), 3: abc.TimeLimitError("no generation")})
    cal = abc.pooled_restarts([], 3, seed=1)
    assert cal.posterior.samples[:, 0].tolist() == [1.0, 1.5]  # the hotter run 2 and the empty run 3 are left out
    assert cal.cut_short and cal.simulations == 20 and cal.agent_days == 200
    assert any("restart 2 of 3 stopped at temperature 1.7" in n for n in cal.notes)
    assert any("restart 3 of 3 finished no generation" in n for n in cal.notes)
    assert [r["pooled"] for r in cal.posterior.meta["restarts"]] == [True, False]
    outcomes[1] = abc.TimeLimitError("no generation")
    with pytest.raises(abc.TimeLimitError):
        abc.pooled_restarts([], 2, seed=1)


def test_temperature_schedules() -> None:
    """`--temperature-schedule`: pyABC's default, or steps that keep half the effective sample size."""
    import math

    import numpy as np
    from pyabc.epsilon.temperature import TemperatureScheme

    from defection.calibrate.abc import ESS_TARGET, next_inverse_temperature, temperature_schedule

    assert temperature_schedule("default").schemes is None  # pyABC fills in its own pair at the first generation
    ess = temperature_schedule("ess")
    assert len(ess.schemes) == 1 and isinstance(ess.schemes[0], TemperatureScheme) and ESS_TARGET == 0.5
    assert ess.enforce_exact_final_temperature  # the last allowed generation is at temperature 1, as by default
    with pytest.raises(ValueError, match="temperature schedule is one of default, ess"):
        temperature_schedule("linear")
    # by hand: two particles of equal weight, log densities 0 and -100. Reweighted from β = 0 to β', the second's
    # weight is x = exp(-100 β'), and ESS = (1 + x)² / (1 + x²), 2 at β' = 0. Keeping 75% (ESS 1.5) gives
    # x² - 4x + 1 = 0, x = 2 - √3, β' = -ln(2 - √3) / 100.
    got = next_inverse_temperature(np.array([0.0, -100.0]), np.array([1.0, 1.0]), 0.0, 0.75)
    assert got == pytest.approx(-math.log(2 - math.sqrt(3)) / 100, rel=1e-9)
    # from β = 0.5 the step is the same length (only β' − β matters), and a flat density goes straight to 1
    assert next_inverse_temperature(np.array([0.0, -100.0]), np.array([1.0, 1.0]), 0.5, 0.75) == pytest.approx(
        0.5 - math.log(2 - math.sqrt(3)) / 100, rel=1e-9
    )
    assert next_inverse_temperature(np.array([-3.0, -3.0]), np.array([2.0, 1.0]), 0.1, 0.5) == 1.0
