"""Outcome shares do not depend on how many agents simulate the force (issue 11, part 0).

Each agent stands for N/n soldiers. Before eq. 28b the regime reacted to the realised exits of the agents,
whose noise grows as n shrinks, and its ratchet turned that noise into repression: with a $10M offer the
defected share was 0.44% at 4,950 agents and 0.64% at 99,000. The regime now sees the expected flow, and
the two resolutions agree within Monte Carlo error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from defection import simulate
from defection.model.decision import (
    NO_ROUTE,
    Squad,
    SquadRisks,
    squad_cascade,
    squad_expected_departures,
    squad_params,
)
from defection.model.parameters import engine_params
from defection.model.population import min_resolved_agents, resolution_warning
from defection.model.programme import expected_queue_step
from defection.scenario import default_scenario
from defection.scenario.build import with_changes
from defection.web.jobs import Job
from tests.conftest import cli


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


@pytest.mark.slow
def test_the_defected_share_and_the_regime_agree_across_agent_counts() -> None:
    sc = with_changes(default_scenario(), {"offer": {"cash_usd": 1e7}, "simulation": {"days": 365}})
    small = simulate(sc, agents=4_950, replicates=24, seed=11)
    large = simulate(sc, agents=49_500, replicates=6, seed=12)
    for outcome in ("defected_share", "strength_remaining_share"):
        (m1, s1), (m2, s2) = (
            _mean_se(small.per_replicate[outcome].to_numpy()),
            _mean_se(large.per_replicate[outcome].to_numpy()),
        )
        assert abs(m1 - m2) <= 3.0 * np.hypot(s1, s2), (outcome, m1, s1, m2, s2)
    final = {r.agents: r.daily[r.daily.day == r.days - 1]["monitors"].to_numpy() for r in (small, large)}
    (m1, s1), (m2, s2) = _mean_se(final[small.agents]), _mean_se(final[large.agents])
    assert abs(m1 - m2) <= 3.0 * np.hypot(s1, s2) + 1e-9, ("monitors", m1, s1, m2, s2)


def test_the_queue_in_expectation_by_hand() -> None:
    """Eq. 34c: 100 waiting with summed q 50, detection 10%, capacity 30, 20 joining with summed q 8."""
    waiting, success, arrivals = expected_queue_step(100.0, 50.0, 20.0, 8.0, 0.1, 30.0)
    # 90 survive detection (q mass 45); 30 of them (a third) are extracted, bringing 15 expected arrivals
    assert arrivals == pytest.approx(15.0)
    assert waiting == pytest.approx(90.0 - 30.0 + 20.0)
    assert success == pytest.approx(45.0 - 15.0 + 8.0)
    assert expected_queue_step(0.0, 0.0, 5.0, 2.0, 0.1, 30.0) == (5.0, 2.0, 0.0)


def _squad(ss: int, z0: float, eps: np.ndarray, reveals: bool) -> Squad:
    """A squad whose members' propensity is z0 plus the peer terms (everything else zero)."""
    f = np.zeros(ss)
    shocks = np.full((ss, 3), NO_ROUTE)  # only crossing is open: its shock is eq. 17's logistic ε
    shocks[:, 0] = eps
    return Squad(
        np.ones(ss, np.bool_),
        np.zeros(ss, np.bool_),
        np.full(ss, reveals),
        np.zeros(ss, np.bool_),
        shocks,
        f.copy(),
        f.copy(),
        f.copy(),
        f.copy(),
        f.copy(),
        np.full(ss, -z0),  # z = −τ = z0 with no payoffs
        f.copy(),
        f.copy(),
        f.copy(),
        f.copy(),
        np.array([True, False, False]),
        np.zeros(ss, np.int8),
        np.zeros(3),
        np.zeros(3),
    )


def test_expected_departures_integrate_each_members_own_shock() -> None:
    """Eq. 28b: the average over a member's own shock of whether he goes equals Λ(z(D_−j)/σ), cascade included.

    Draw many shock vectors for a squad with strong peer effects; the mean realised number of members going
    must equal the mean of the Rao–Blackwellised sum (both estimate the same expectation), while the latter
    varies less.
    """
    sc = with_changes(
        default_scenario(),
        {"preferences": {"peer_weight": 3.0, "complex_contagion_contacts": 1}},
    )
    p = engine_params(sc)
    ss = p.squad_size
    rk = SquadRisks(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    sp = squad_params(p)
    rng = np.random.default_rng(3)
    realised, expected = [], []
    for _ in range(4000):
        u = rng.uniform(size=ss)
        eps = p.logit_scale * np.log(u / (1 - u))
        sq = _squad(ss, -1.5 * p.logit_scale, eps, reveals=True)
        n_rev = squad_cascade(-1, sq.willing, sq, rk, sp)
        n_go = int(sq.willing.sum())
        out = np.zeros(5)
        squad_expected_departures(n_rev, n_go, sq, rk, sp, out)
        realised.append(n_go)
        expected.append(out[0] / (1.0 - p.catch_base) if p.catch_base < 1 else out[0])
    realised_a, expected_a = np.asarray(realised, float), np.asarray(expected)
    assert realised_a.mean() > 0.3  # the cascade matters in this squad
    se = np.hypot(realised_a.std() / np.sqrt(realised_a.size), expected_a.std() / np.sqrt(expected_a.size))
    assert abs(realised_a.mean() - expected_a.mean()) < 4 * se
    assert expected_a.std() < realised_a.std()


def test_commands_state_the_smallest_resolved_agent_count_and_warn_below_it(tmp_path: Path) -> None:
    """`run` warns below 50 companies (4,950 agents by default) and states the count in its JSON; the run's report
    carries the warning; a run at the count does not warn."""
    db = tmp_path / "r.duckdb"
    coarse = cli("run", "--agents", "990", "--days", "5", "--replicates", "1", "--db", str(db), "--json")
    assert coarse.returncode == 0, coarse.stderr
    assert "warning:" in coarse.stderr and "4,950" in coarse.stderr
    payload = json.loads(coarse.stdout)
    assert payload["min_resolved_agents"] == 4_950 == min_resolved_agents(99)
    html = tmp_path / "r.html"
    rep = cli("report", payload["run_id"], "--db", str(db), "--output", str(html))
    assert rep.returncode == 0, rep.stderr
    assert 'id="resolution-warning"' in html.read_text(encoding="utf-8")
    fine = cli("run", "--agents", "4950", "--days", "2", "--replicates", "1", "--db", str(db), "--json")
    assert fine.returncode == 0 and "warning:" not in fine.stderr, fine.stderr


def test_the_warning_names_the_count_and_the_dashboard_job_carries_it() -> None:
    assert resolution_warning(4_950, 99) is None
    message = resolution_warning(990, 99)
    assert message is not None and "990 agents" in message and "50 companies" in message
    assert resolution_warning(4_800, 96) is None  # a case with companies of 96
    sc = with_changes(default_scenario(), {"simulation": {"agents": 990}})
    assert Job("j", sc, 1).to_json()["resolution_warning"] == resolution_warning(990, 99)
