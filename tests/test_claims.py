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
    # the stored claims run has a report with the claims table and every verdict
    html = tmp_path / "claims.html"
    r = cli("report", payload["run_id"], "--db", str(db), "-o", str(html))
    assert r.returncode == 0, r.stderr
    page = html.read_text(encoding="utf-8")
    assert 'id="claims"' in page
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
