"""Honest bookkeeping (issue 14): every command records its own wall time (from its start to its end, all its
simulations included) and the agent-days it simulated; `claims` counts its variants with an estimate of the time
left, warns at settings too small to decide, and never shows NaN as a number or a verdict."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from defection.claims import NO_OFFER, UNDECIDED, Lab, claim_cheap_and_paid_by_frozen_assets, plan_claims
from defection.cli.claims import _g, _money_or_share
from defection.model.population import simulated_agents

from .conftest import cli, cli_in_process, scenario
from .test_progress import LINE


def test_run_json_reports_agent_days_and_the_commands_wall_time(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    r = cli("run", "-r", "2", "-d", "10", "-k", "990", "--seed", "3", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["agent_days"] == 2 * 10 * 990
    stored = json.loads(cli_in_process("runs", "show", payload["run_id"], "--db", str(db), "--json").stdout)
    assert 0 < stored["wall_seconds"] <= payload["wall_seconds"]  # stored just before the JSON is printed


def test_a_claim_resting_on_no_defectors_is_undecided_not_nan() -> None:
    """With no offer at all nobody is paid: the cost per defector is undefined, and the verdict says so instead of
    '300,000 defectors cost nan% of the budget sources'."""
    lab = Lab(scenario(), replicates=2, days=10, agents=990, seed=1)
    lab.base = lab.variant(NO_OFFER)
    claim = claim_cheap_and_paid_by_frozen_assets(lab)
    assert claim.verdict == UNDECIDED
    assert "nan" not in claim.reason.lower() and "undefined" in claim.reason and "no defector" in claim.reason
    assert lab.agent_days == lab.runs * 2 * 10 * 990  # every variant's simulations are counted


def test_undefined_numbers_print_as_words() -> None:
    nan = float("nan")
    assert _g(nan) == "undefined" and _g(None) == "undefined" and _g(0.5) == "0.5"
    shown = _money_or_share({"name": "cost of absorbing 300,000 defectors", "unit": "USD", "median": nan,
                             "p05": nan, "p95": nan})  # fmt: skip
    assert "undefined" in shown and "nan" not in shown.lower()


@pytest.mark.slow
def test_claims_records_its_own_wall_time_counts_variants_and_warns_at_small_settings(tmp_path: Path) -> None:
    """The issue's example of settings too small to decide (-r 2 -k 990 -d 30): warnings that say why, no NaN,
    'variant k of N' log lines with the time left, agent-days of every variant, and a stored wall time that
    covers every variant's simulation (it used to be the proposal's alone)."""
    db = tmp_path / "c.duckdb"
    r = cli("claims", "-r", "2", "-k", "990", "-d", "30", "--seed", "3", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    n = payload["simulations"]
    assert n == plan_claims(scenario(), 2, 30, 990, 3)  # the count the progress announces is the count simulated
    assert payload["agent_days"] == n * 2 * 30 * simulated_agents(990, scenario().force.company_size)
    stored = json.loads(cli_in_process("runs", "show", payload["run_id"], "--db", str(db), "--json").stdout)
    assert payload["simulate_seconds"] <= stored["wall_seconds"] <= payload["wall_seconds"]
    # why these settings cannot decide, on stderr and in the JSON
    assert "too small to decide" in r.stderr and "2 replicate(s)" in r.stderr and "30 day(s)" in r.stderr
    assert any("replicate" in w for w in payload["warnings"])
    # progress off a terminal: plain lines, one per variant, "k of N" and (after the first) the time left
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("warning:")]
    assert lines and all(LINE.match(ln) for ln in lines), r.stderr
    variants = [ln for ln in lines if re.search(rf"variant \d+ of {n}\b", ln)]
    assert len(variants) == n, r.stderr
    assert all(re.search(r"about \S+ left", ln) for ln in variants[1:]), r.stderr
    # no NaN reaches the user: verdicts and reasons are words, numbers are finite or null
    for c in payload["claims"]:
        assert not re.search(r"\bnan\b|nan%", c["reason"] + c["verdict"], re.IGNORECASE), c
        for number in c["numbers"]:
            assert all(v is None or math.isfinite(v) for v in (number["median"], number["p05"], number["p95"]))
