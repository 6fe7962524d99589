"""`defection claims`: structure of the report, verdict rules, and storage (scaled down for CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from defection.claims import Lab, claim_mass_defection, claim_threats_help, patch
from defection.store import ResultsDB

from .conftest import cli, scenario

SMALL = ["--agents", "1980", "--days", "120", "--replicates", "4", "--seed", "3"]


@pytest.mark.slow
def test_claims_command_reports_every_claim(tmp_path: Path) -> None:
    db = tmp_path / "claims.duckdb"
    r = cli("claims", *SMALL, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    claims = payload["claims"]
    assert [c["number"] for c in claims] == [1, 2, 3, 4, 5, 6]
    for c in claims:
        assert c["claim"] and c["test"] and c["reason"]
        assert c["verdict"] in ("supported", "not supported", "undecided") or c["verdict"].startswith("depends")
        assert c["numbers"], c["number"]
        for n in c["numbers"]:
            if None not in (n["median"], n["p05"], n["p95"]):
                assert n["p05"] <= n["median"] <= n["p95"], n
        assert len(c["deciding"]) <= 3
        for d in c["deciding"]:
            assert d["swing"] > 0 and d["parameter"]
    assert claims[0]["alternative"]["name"]
    stored = ResultsDB(db)
    runs = stored.list_runs()
    assert runs.iloc[0]["kind"] == "claims" and runs.iloc[0]["status"] == "complete"
    assert stored.artifact(payload["run_id"], "claims")["claims"][0]["number"] == 1
    # claim 1's no-offer variant is stored as the run's paired baseline (the report's paired differences)
    baseline = stored.artifact(payload["run_id"], "paired_baseline")
    assert baseline["seed"] == 3 and len(baseline["daily"]["units_ineffective_share"]) == 4 * 120
    # the stored claims run has a report with the claims table and every verdict
    html = tmp_path / "claims.html"
    r = cli("report", payload["run_id"], "--db", str(db), "-o", str(html))
    assert r.returncode == 0, r.stderr
    page = html.read_text(encoding="utf-8")
    assert 'id="claims"' in page and "the offer's paired effect" in page
    for c in claims:
        assert c["verdict"] in page
    # the human-readable table (a 2-day run: only the layout is checked here)
    text = cli("claims", "--agents", "990", "--days", "2", "--replicates", "2", "--seed", "3", "--db", str(db))
    assert text.returncode == 0 and "Claim 6" in text.stdout and "median (90% interval)" in text.stdout


def test_verdict_follows_the_evidence() -> None:
    """The same test says 'not supported' for the proposal and 'supported' in a world built to tip."""
    settings = {"replicates": 4, "days": 150, "agents": 4_950, "seed": 2}
    proposal = claim_mass_defection(Lab(scenario(), **settings))
    assert proposal.verdict == "not supported"
    tipping = scenario(
        offer__cash_usd=1e7,
        regime__monitors_per_soldier=0.0,
        regime__response__mode="static",
        programme__extraction_capacity_per_day=1e5,
        credibility__prior_alpha=9.0,
        credibility__prior_beta=1.0,
        information__initial_aware_share=1.0,
    )
    tipped = claim_mass_defection(Lab(tipping, **settings))
    assert tipped.verdict in ("supported", "depends") and tipped.numbers[0].median >= 0.10
    assert tipped.numbers[1].p05 > 0  # the paired uplift over no offer is positive


def test_threat_certainty_matters_more_than_severity() -> None:
    """Deterrence through certainty (Nagin [D2]): ×10 certainty beats ×2 severity at equal simulation noise."""
    sc = scenario(
        credibility__prior_alpha=9.0,
        credibility__prior_beta=1.0,
        information__initial_aware_share=1.0,
        offer__threat__prosecution_probability=0.02,
        regime__response__mode="static",
        programme__extraction_capacity_per_day=5000.0,
        preferences__moral_cost_median_usd=100_000.0,
    )
    result = claim_threats_help(Lab(sc, replicates=6, days=120, agents=9_900, seed=5))
    effect, certainty, severity = result.numbers
    assert certainty.median > severity.median
    assert effect.median > 0


def test_patch_changes_only_what_it_names() -> None:
    sc = scenario()
    changed = patch(sc, {"offer.cash_usd": 5.0, "regime.response.mode": "static"})
    assert changed.offer.cash_usd == 5.0 and changed.regime.response.mode == "static"
    assert changed.force == sc.force and sc.offer.cash_usd == 100_000.0


@pytest.mark.slow
def test_adaptive_replicates_stop_early_without_changing_a_verdict() -> None:
    """On a case decided early (990 agents, 60 days, seed 7: every verdict the same with 4 and 8 replicates), the
    adaptive run stops at 8 of 12 replicates per variant, says so, and gives the verdicts of the full fixed count;
    its numbers are those of a fixed run of 8 replicates (each round extends the variants by replicates 4…7, under
    common random numbers, rather than redrawing)."""
    from defection.claims import run_claims
    from defection.scenario import default_scenario
    from defection.workers import replicate_workers

    base = default_scenario()
    with replicate_workers(2) as pool:
        adaptive = run_claims(base, 12, 60, 990, 7, workers=pool, adaptive=True)
        full = run_claims(base, 12, 60, 990, 7, workers=pool)
        eight = run_claims(base, 8, 60, 990, 7, workers=pool)
    assert adaptive.adaptive is not None and adaptive.adaptive["stopped_early"]
    assert adaptive.adaptive["rounds"] == [4, 8] and adaptive.settings["replicates"] == 8
    assert "same with 4 and 8" in adaptive.adaptive["why"]
    assert [c.verdict for c in adaptive.claims] == [c.verdict for c in full.claims]
    assert [c.to_dict() for c in adaptive.claims] == [c.to_dict() for c in eight.claims]
    assert adaptive.agent_days == eight.agent_days < full.agent_days
    assert full.adaptive is None and len(adaptive.proposal.per_replicate) == 8


def test_replicate_rounds() -> None:
    from defection.claims import replicate_rounds

    assert replicate_rounds(12, adaptive=True) == [4, 8, 12]
    assert replicate_rounds(10, adaptive=True) == [4, 8, 10]
    assert replicate_rounds(12, adaptive=False) == [12]
    assert replicate_rounds(7, adaptive=True) == [7]  # too few to stop early


def test_a_run_extended_by_replicates_equals_one_longer_run() -> None:
    """`extended(first 3, next 2)` is the 5-replicate run: every daily value and outcome, the numbering included."""
    import pandas as pd

    from defection.engine import extended, simulate
    from defection.scenario import default_scenario

    sc = default_scenario()
    whole = simulate(sc, replicates=5, days=20, agents=990)
    parts = extended(
        simulate(sc, replicates=3, days=20, agents=990),
        simulate(sc, replicates=2, days=20, agents=990, first_replicate=3),
    )
    pd.testing.assert_frame_equal(parts.daily, whole.daily, check_exact=True)
    pd.testing.assert_frame_equal(parts.per_replicate, whole.per_replicate, check_exact=True)
    assert parts.replicates == 5 and parts.scenario.simulation.replicates == 5
    with pytest.raises(ValueError, match="next replicate"):
        extended(whole, simulate(sc, replicates=1, days=20, agents=990))
