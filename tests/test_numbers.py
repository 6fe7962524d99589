"""The documents' numbers are generated and reproduce (issue 15, "Numbers that reproduce"): every figure marked in
README.md and docs/*.md is what `make numbers` wrote from docs/validation/numbers.json, that file matches
docs/numbers.toml and the shipped posterior, and a fresh run of each world lands inside the recorded Monte Carlo
interval of each quoted median."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from defection.engine import simulate
from defection.report.numbers import (
    documents,
    json_path,
    leaf_value,
    load_spec,
    markers,
    median_interval_ranks,
    median_monte_carlo_interval,
    render_key,
    rewrite,
)
from defection.scenario import default_scenario, with_changes
from defection.scenario.posterior import Posterior, shipped_posterior_path

from .conftest import ROOT, cli

SPEC = load_spec(ROOT / "docs" / "numbers.toml")
NUMBERS = json.loads((ROOT / "docs" / "validation" / "numbers.json").read_text(encoding="utf-8"))


def test_median_interval_ranks_by_hand() -> None:
    """P(Bin(10, 1/2) <= 1) = 11/1024 = 0.011 <= 0.05 < P(<= 2) = 56/1024: ranks 2 and 9 (97.9%); for 12, P(<= 2) =
    79/4096 = 0.019 and P(<= 3) = 299/4096 = 0.073: ranks 3 and 10 (96.1%); three values cannot reach 90%."""
    assert median_interval_ranks(10) == (2, 9)
    assert median_interval_ranks(12) == (3, 10)
    assert median_interval_ranks(3) == (1, 3)
    lo, hi = median_monte_carlo_interval(np.array([5.0, 1, 9, 3, 7, 2, 8, 4, 6, 10]))
    assert (lo, hi) == (2.0, 9.0)
    assert all(math.isnan(v) for v in median_monte_carlo_interval(np.array([math.nan])))


def test_every_marked_figure_is_what_make_numbers_wrote() -> None:
    """Each marker's text in README.md and docs/*.md renders from numbers.json exactly: a figure typed by hand, or a
    numbers.json regenerated without rewriting the documents, fails here (run `make numbers`)."""
    found = []
    for doc in documents(ROOT):
        text = doc.read_text(encoding="utf-8")
        for key, shown in markers(text):
            found.append(key)
            assert shown == render_key(SPEC, key, NUMBERS, ROOT), f"{doc.name}: n:{key} is stale; run `make numbers`"
        assert rewrite(text, SPEC, NUMBERS, ROOT) == text
    assert "table:default_worlds" in found and "proposal.defected_share.median" in found
    assert "claims:table" in found and "claims:detail" in found  # docs/claims.md, from docs/validation/claims.json
    assert "opt.ten.verdict" in found  # README's examples paragraph, from docs/validation/optimize-ten.json
    assert "backtest:rows" in found and "backtest:scores" in found  # docs/calibration.md, from backtest.json
    assert len(found) >= 8


def test_numbers_json_matches_its_spec_and_the_shipped_posterior() -> None:
    """numbers.json was made from docs/numbers.toml's settings and worlds and from the posterior the package ships
    now (a recalibration without `make numbers` fails here)."""
    assert NUMBERS["settings"] == SPEC.settings
    assert sorted(NUMBERS["worlds"]) == sorted(w.key for w in SPEC.worlds)
    for w in SPEC.worlds:
        assert NUMBERS["worlds"][w.key]["changes"] == w.changes
    assert NUMBERS["posterior"]["hash"] == Posterior.load(shipped_posterior_path()).content_hash()
    for w in NUMBERS["worlds"].values():
        for stats in w["outcomes"].values():
            if stats["median"] is not None and stats["mc_lo"] is not None:
                assert stats["mc_lo"] <= stats["median"] <= stats["mc_hi"]


@pytest.mark.slow
@pytest.mark.parametrize("world", [w.key for w in SPEC.worlds])
def test_a_fresh_run_reproduces_each_quoted_median(world: str) -> None:
    """The world simulated now, at the recorded settings and seed, gives medians inside the recorded Monte Carlo
    intervals of every outcome a table quotes (bit-identical while the model is unchanged; a model change that
    moves a quoted figure beyond its Monte Carlo error fails here until `make numbers` is rerun)."""
    w = SPEC.world(world)
    sc = with_changes(default_scenario(), w.changes, "docs/numbers.toml")
    s = SPEC.settings
    posterior = Posterior.load(shipped_posterior_path())
    res = simulate(
        sc, posterior=posterior, agents=s["agents"], replicates=s["replicates"], days=s["days"], seed=s["seed"]
    )
    fresh = res.outcomes().set_index("outcome")
    recorded = NUMBERS["worlds"][world]["outcomes"]
    quoted = {o for t in SPEC.tables for o, _ in t.columns}
    for outcome in quoted:
        r = recorded[outcome]
        assert r["mc_lo"] <= float(fresh.loc[outcome, "median"]) <= r["mc_hi"], (world, outcome)


def test_json_paths_take_keys_that_hold_dots_and_values_show_by_their_name() -> None:
    data = {
        "best": {"package": {"offer.cash_usd": 6334709.9, "offer.cash": 1.0}, "metrics": {"defected_share": 0.0945}}
    }
    assert json_path(data, "best.package.offer.cash_usd") == 6334709.9
    assert json_path(data, "best.package.offer.cash") == 1.0
    with pytest.raises(KeyError):
        json_path(data, "best.package.offer.nothing")
    assert leaf_value("offer.cash_usd", 6334709.9) == "$6.33M"
    assert leaf_value("defected_share", 0.0945) == "9.4%"  # two significant digits under 10%
    assert leaf_value("programme.extraction_capacity_per_day", 2166.05) == "2,170"
    assert leaf_value("offer.family_extraction_probability", 0.7402) == "0.74"


def test_the_examples_answers_were_made_by_the_commands_the_spec_names() -> None:
    """Each committed optimize output is the run docs/numbers.toml declares: its spec, target and probability."""
    for run in SPEC.optimizations:
        data = json.loads((ROOT / run.file).read_text(encoding="utf-8"))
        args = dict(zip(run.args[::2], run.args[1::2], strict=True))
        assert (ROOT / run.spec).is_file()
        assert data["target"]["value"] == float(args["--target"])
        assert data["target"]["probability"] == float(args["--probability"])
        assert data["evaluated"] + data["reused"] == int(args["--trials"])


@pytest.mark.slow
def test_a_fresh_claims_run_reproduces_every_claims_quoted_numbers(tmp_path: Path) -> None:
    """Every claim's figures (README's headline and docs/claims.md: verdicts, reasons, numbers with their intervals,
    deciding parameters, best alternatives) are what a fresh `defection claims --json` gives at the committed settings
    and the shipped posterior, exactly: the claims are deterministic for a seed, so a model change that moves any of
    them fails here until `make numbers` is rerun. The six claims share their variants (about 2 CPU-minutes).

    The command runs as a user runs it, in a process of its own, on one worker and one Numba thread: the results are
    the same at any thread count, one thread costs 120 CPU-seconds where two cost 158 (measured quiet), and the
    suite's other worker keeps the second core busy anyway."""
    claims = json.loads((ROOT / "docs" / "validation" / "claims.json").read_text(encoding="utf-8"))
    s = claims["settings"]
    assert claims["adaptive"] is None  # every variant ran all its replicates: a fixed-count fresh run is comparable
    out = cli(
        "claims",
        *("-r", str(s["replicates"]), "-d", str(s["days"]), "-k", str(s["agents"]), "-s", str(s["seed"])),
        *("--workers", "1", "--json", "--db", str(tmp_path / "claims.duckdb")),
        env={"NUMBA_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout)
    assert (fresh["simulations"], fresh["agent_days"]) == (claims["simulations"], claims["agent_days"])
    assert [c["number"] for c in fresh["claims"]] == [1, 2, 3, 4, 5, 6]
    for new, old in zip(fresh["claims"], claims["claims"], strict=True):
        for key in ("verdict", "reason", "numbers", "deciding", "alternative"):
            assert new[key] == old[key], (new["number"], key)


@pytest.mark.slow
@pytest.mark.parametrize("key", [o.key for o in SPEC.optimizations])
def test_a_fresh_optimize_run_reproduces_each_worked_examples_answer(key: str, tmp_path: Path) -> None:
    """Each worked example (README's examples paragraph: the package found, or the closest one, with its metrics) is
    what `defection optimize` gives afresh with the arguments docs/numbers.toml names: seeded sequential trials
    make it deterministic, so only the run's id and its wall time may differ from the committed output."""
    run = next(o for o in SPEC.optimizations if o.key == key)
    out = cli("optimize", str(ROOT / run.spec), *run.args, "--json", "--db", str(tmp_path / "opt.duckdb"))
    assert out.returncode == 0, out.stderr[-2000:]
    fresh, recorded = json.loads(out.stdout), json.loads((ROOT / run.file).read_text(encoding="utf-8"))
    volatile = {"run_id", "wall_seconds"}
    assert portable({k: v for k, v in fresh.items() if k not in volatile}) == portable(
        {k: v for k, v in recorded.items() if k not in volatile}
    )


def portable(data: Any) -> Any:
    """`data` with the checkout's location taken out of the shipped posterior's path (make numbers ran in another
    checkout than the tests may)."""
    if isinstance(data, dict):
        return {k: portable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [portable(v) for v in data]
    return re.sub(r"\S*/src/defection/data/posterior/", "<package>/posterior/", data) if isinstance(data, str) else data
