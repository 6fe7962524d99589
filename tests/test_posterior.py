"""Posterior files: a bad one is refused before a run starts (its file, field and value named, exit code 2), and every
run says which posterior it used (the printed JSON, the results store, `runs show`, the HTML report)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from defection.calibrate.cases import library_hash, load_cases
from defection.engine import code_version, package_version
from defection.scenario import ScenarioError, load_scenario
from defection.scenario.posterior import MAX_BYTES, MAX_DEPTH, POSTERIOR_FORMAT, Posterior, PosteriorError
from defection.scenario.ranges import CALIBRATED
from defection.store import ResultsDB

from .conftest import cli_in_process

MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")  # prior [3e4, 3e6], log
PEER = next(u for u in CALIBRATED if u.path == "preferences.peer_weight")  # prior [0, 2]
RUN = ("run", "--agents", "990", "--days", "2", "--replicates", "1")


def payload(**changes: Any) -> str:
    """A valid two-particle posterior file's JSON, with some fields changed (None removes a field)."""
    data: dict[str, Any] = {
        "format": POSTERIOR_FORMAT,
        "parameters": [MORAL.path, PEER.path],
        "samples": [[1e5, 0.5], [2e5, 1.5]],
        "weights": [0.25, 0.75],
        "meta": {"method": "by hand"},
    }
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None})


# (id, file contents, the problem's path, text the message must contain)
BAD: list[tuple[str, str | bytes, str, str]] = [
    ("format-missing", payload(format=None), "format", "expected 'defection-posterior/1'"),
    ("format-wrong", payload(format="defection-posterior/0"), "format", "'defection-posterior/0'"),
    ("not-an-object", "[1, 2]", "(top level)", "expected a JSON object"),
    ("parameters-missing", payload(parameters=None), "parameters", "non-empty list"),
    ("parameter-unknown", payload(parameters=["offer.cash_usd", PEER.path]), "parameters[0]", "'offer.cash_usd'"),
    ("parameter-not-text", payload(parameters=[MORAL.path, 3]), "parameters[1]", "a string"),
    (
        "parameter-duplicate",
        payload(parameters=[MORAL.path, MORAL.path]),
        "parameters[1]",
        "duplicate of parameters[0]",
    ),
    ("samples-wrong-width", payload(samples=[[1e5], [2e5]]), "samples", "shape (2, 1)"),
    ("samples-flat", payload(samples=[1e5, 0.5]), "samples[0]", "expected a list of 2 numbers"),
    ("samples-ragged", payload(samples=[[1e5, 0.5], [2e5]]), "samples[1]", "1 values"),
    ("samples-empty", payload(samples=[]), "samples", "non-empty list of particles"),
    ("sample-text", payload(samples=[[1e5, "0.5"], [2e5, 1.5]]), "samples[0][1]", "expected a number"),
    ("sample-bool", payload(samples=[[1e5, True], [2e5, 1.5]]), "samples[0][1]", "expected a number"),
    ("sample-nan", payload(samples=[[1e5, 0.5], [float("nan"), 1.5]]), "samples[1][0]", "not a finite number"),
    ("sample-infinite", payload(samples=[[1e5, float("inf")], [2e5, 1.5]]), "samples[0][1]", "not a finite number"),
    ("sample-huge-integer", payload(samples=[[10**400, 0.5], [2e5, 1.5]]), "samples[0][0]", "not a finite number"),
    ("sample-above-prior", payload(samples=[[1e5, 0.5], [2e7, 1.5]]), "samples[1][0]", "20000000.0: outside the prior"),
    (
        "sample-below-prior",
        payload(samples=[[1e5, -0.1], [2e5, 1.5]]),
        "samples[0][1]",
        "outside the prior range [0, 2]",
    ),
    ("weights-missing", payload(weights=None), "weights", "expected a list of 2 numbers"),
    ("weights-too-few", payload(weights=[1.0]), "weights", "expected 2: one per particle"),
    ("weight-negative", payload(weights=[-0.5, 1.0]), "weights[0]", "negative"),
    ("weight-nan", payload(weights=[0.5, float("nan")]), "weights[1]", "not a finite number"),
    ("weight-text", payload(weights=["1", 1.0]), "weights[0]", "expected a number"),
    ("weights-all-zero", payload(weights=[0.0, 0.0]), "weights", "positive sum"),
    ("meta-not-object", payload(meta=[1]), "meta", "expected an object"),
    ("not-json", '{"format": "defection-posterior/1",', "(file)", "not JSON"),
    ("not-utf8", b'{"format": "\xff\xfe"}', "(file)", "not UTF-8"),
    ("nested-too-deep-to-parse", "[" * 200_000 + "]" * 200_000, "(file)", "nested too deeply"),
    ("nested-deeper-than-needed", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "(file)", "depth 33"),
    # issue 13, item 4: the files it tried, and the rest of the file checked as a whole
    ("issue-meta-text", payload(meta="abc"), "meta", "expected an object"),
    ("issue-parameter-list", payload(parameters=[["x"], PEER.path]), "parameters[0]", "a string"),
    ("issue-nested-10000", "[" * 10_000 + "]" * 10_000, "(file)", "nested too deeply"),
    ("issue-weight-infinite", payload(weights=[float("inf"), 1.0]), "weights[0]", "inf: not a finite number"),
    ("issue-parameter-duplicate", payload(parameters=[PEER.path, PEER.path]), "parameters[1]", "duplicate"),
    ("issue-sample-out-of-range", payload(samples=[[1e5, 0.5], [2e5, 2.5]]), "samples[1][1]", "[0, 2]"),
    ("meta-number-as-text", payload(meta={"effective_sample_size": "12"}), "meta.effective_sample_size", "number"),
    ("meta-negative-ess", payload(meta={"effective_sample_size": -1.0}), "meta.effective_sample_size", "or equal to 0"),
    ("meta-cases-text", payload(meta={"cases": "gulf-1991"}), "meta.cases", "valid list"),
    (
        "meta-prior-bound-text",
        payload(meta={"priors": {PEER.path: {"lo": "0", "hi": 2}}}),
        f"meta.priors.{PEER.path}.lo",
        "number",
    ),
    ("member-unknown", payload(weight=[0.5, 0.5]), "weight", "unknown key; allowed keys: format, parameters"),
    ("member-twice", payload()[:-1] + ', "weights": [0.5, 0.5]}', "(file)", "key 'weights' appears twice"),
]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_posterior_is_refused_by_the_api_with_the_problems_path(
    tmp_path: Path, content: str | bytes, field: str, message: str
) -> None:
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(PosteriorError) as exc:
        Posterior.load(path)
    assert field in [p.path for p in exc.value.problems]
    assert exc.value.source == str(path)
    assert message in exc.value.render()


@pytest.mark.parametrize(("content", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_posterior_is_refused_by_the_command_line_before_the_run(
    tmp_path: Path, content: str | bytes, field: str, message: str
) -> None:
    path = write(tmp_path / "bad.json", content)
    db = tmp_path / "r.duckdb"
    r = cli_in_process(*RUN, "--posterior", str(path), "--db", str(db))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert message in r.stderr and str(path) in r.stderr
    assert field == "(file)" or field in r.stderr  # a problem with the whole file is named by the file
    assert not db.exists() or ResultsDB(db).list_runs().empty  # refused before a run was recorded


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: the check must look at the size, not read 50 MB of zeros
    with pytest.raises(PosteriorError) as exc:
        Posterior.load(path)
    assert exc.value.problems[0].path == "(file)" and "larger than the 50,000,000 bytes" in exc.value.render()
    r = cli_in_process(*RUN, "--posterior", str(path), "--db", str(tmp_path / "r.duckdb"))
    assert r.returncode == 2 and "larger than" in r.stderr and "Traceback" not in r.stderr


def test_samples_at_a_prior_bound_pass_within_round_off_only(tmp_path: Path) -> None:
    at_hi = 10.0 ** np.log10(MORAL.hi)  # what a calibration on the log10 scale writes at the upper bound
    ok = Posterior.load(write(tmp_path / "ok.json", payload(samples=[[at_hi * (1 + 1e-12), 2.0], [MORAL.lo, 0.0]])))
    assert ok.samples[1, 0] == MORAL.lo and ok.samples[0, 1] == PEER.hi
    with pytest.raises(PosteriorError, match=r"samples\[0\]\[0\]"):
        Posterior.load(write(tmp_path / "bad.json", payload(samples=[[MORAL.hi * (1 + 1e-6), 1.0], [1e5, 1.0]])))


def test_many_problems_are_listed_up_to_a_limit(tmp_path: Path) -> None:
    rows = [[float("nan"), 0.5]] * 100
    with pytest.raises(PosteriorError) as exc:
        Posterior.load(write(tmp_path / "bad.json", payload(samples=rows, weights=[1.0] * 100)))
    assert [p.path for p in exc.value.problems[:20]] == [f"samples[{i}][0]" for i in range(20)]
    assert len(exc.value.problems) == 21 and exc.value.problems[-1].message == "more problems not shown"


def test_the_content_hash_survives_a_round_trip_and_ignores_where_the_file_lies(tmp_path: Path) -> None:
    post = Posterior.load(write(tmp_path / "a.json", payload()))
    assert post.source == str(tmp_path / "a.json")
    copy = Posterior.load(post.save(tmp_path / "b.json"))
    assert copy.content_hash() == post.content_hash()
    assert np.allclose(copy.weights, [0.25, 0.75])
    other = Posterior.load(write(tmp_path / "c.json", payload(weights=[0.5, 0.5])))
    assert other.content_hash() != post.content_hash()


def test_cases_hash_is_sha256_over_the_sorted_case_files() -> None:
    cases = load_cases()[:3]
    by_hand = hashlib.sha256(b"".join(Path(p).read_bytes() for p in sorted(c.path for c in cases))).hexdigest()
    assert library_hash(cases) == by_hand == library_hash(cases[::-1])
    assert library_hash(cases[:2]) != by_hand
    assert code_version().startswith(package_version())


# ----------------------------------------------------------------------------- which posterior a run used
def row_of(table: str, key: str) -> str:
    """The first line of a printed table whose first cell is `key`."""
    return next(line for line in table.splitlines() if line.strip("│ ").startswith(f"{key} "))


def test_a_run_says_which_posterior_it_used_in_json_store_show_and_report(tmp_path: Path) -> None:
    post_file = write(tmp_path / "post.json", payload())
    want = {"hash": Posterior.load(post_file).content_hash(), "path": str(post_file.resolve())}
    db = tmp_path / "r.duckdb"
    report = tmp_path / "report.html"
    r = cli_in_process(*RUN, "--posterior", str(post_file), "--db", str(db), "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["posterior"] == want
    info = ResultsDB(db).get_run(printed["run_id"])
    assert (info["posterior_hash"], info["posterior_path"]) == (want["hash"], want["path"])
    shown = cli_in_process("runs", "show", printed["run_id"], "--db", str(db))
    assert shown.returncode == 0 and want["hash"] in row_of(shown.stdout, "posterior")
    shown = json.loads(cli_in_process("runs", "show", printed["run_id"], "--db", str(db), "--json").stdout)
    assert (shown["posterior_hash"], shown["posterior_path"]) == (want["hash"], want["path"])
    assert f"{want['hash']} ({want['path']})" in report.read_text()
    # without a posterior: null, NULL, and the defaults named
    r = cli_in_process(*RUN, "--no-posterior", "--db", str(db), "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr
    plain = json.loads(r.stdout)
    assert plain["posterior"] is None
    assert ResultsDB(db).get_run(plain["run_id"])["posterior_hash"] is None
    shown = cli_in_process("runs", "show", plain["run_id"], "--db", str(db))
    assert "hand-tuned defaults (no posterior)" in row_of(shown.stdout, "posterior")
    assert "hand-tuned defaults (no posterior)" in report.read_text()


def test_no_posterior_ignores_the_scenarios_posterior_without_reading_it(tmp_path: Path) -> None:
    write(tmp_path / "bad.json", payload(weights=[0.0, 0.0]))
    scen = tmp_path / "s.toml"
    scen.write_text('[simulation]\nposterior = "bad.json"\n')
    with pytest.raises(ScenarioError, match="weights"):
        load_scenario(scen)
    assert load_scenario(scen, posterior=False).simulation.posterior == ""
    r = cli_in_process(*RUN, str(scen), "--db", str(tmp_path / "r.duckdb"))
    assert r.returncode == 2 and "weights" in r.stderr
    r = cli_in_process(*RUN, str(scen), "--no-posterior", "--db", str(tmp_path / "r.duckdb"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["posterior"] is None


@pytest.mark.parametrize("command", [RUN, ("claims", "-r", "1", "-d", "2", "-k", "990")], ids=["run", "claims"])
def test_posterior_and_no_posterior_together_is_an_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    post_file = write(tmp_path / "post.json", payload())
    r = cli_in_process(*command, "--posterior", str(post_file), "--no-posterior", "--db", str(tmp_path / "r.duckdb"))
    assert r.returncode == 2 and "--no-posterior" in r.stderr and "Traceback" not in r.stderr


def test_an_older_store_gains_the_posterior_columns_on_opening(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    ResultsDB(db)
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO runs (run_id, kind, status) VALUES ('rold', 'run', 'complete')")
    con.execute("ALTER TABLE runs DROP COLUMN posterior_hash")
    con.execute("ALTER TABLE runs DROP COLUMN posterior_path")
    con.close()
    info = ResultsDB(db).get_run("rold")
    assert info["posterior_hash"] is None and info["posterior_path"] is None


PARAMS = ("preferences.logit_scale", "preferences.peer_weight")  # both accept 0.1-0.9


def test_a_calibrations_recorded_hash_is_the_one_commands_print_for_its_file(tmp_path: Path) -> None:
    """Loading renormalises the weights, which can change some in the last bit (as it did for the posterior shipped
    on 2026-12-05, afternoon): the hash a calibration records (`loaded_hash`) is that of its file as loaded."""
    rng = np.random.default_rng(3)
    changed = 0
    for k in range(50):
        post = Posterior(PARAMS, rng.uniform(0.1, 0.9, size=(32, 2)), rng.exponential(size=32) ** 3, {"k": k})
        path = post.save(tmp_path / f"p{k}.json")
        loaded = Posterior.load(path)
        changed += not np.array_equal(loaded.weights, post.weights)
        assert post.loaded_hash() == loaded.content_hash()
    assert changed > 0  # the case the method exists for occurred
