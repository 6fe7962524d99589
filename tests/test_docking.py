"""Docking against published results: Granovetter (1978) threshold model."""

from __future__ import annotations

import pytest
from scipy.stats import norm

from defection import simulate

from .conftest import scenario


def granovetter_equilibrium(sigma: float, mu: float = 0.25) -> float:
    """Granovetter's equilibrium share r* = F(r*) reached from r = 0 (normal thresholds)."""
    r = 0.0
    for _ in range(100_000):
        nxt = float(norm.cdf((r - mu) / sigma))
        if abs(nxt - r) < 1e-12:
            break
        r = nxt
    return r


def final_share(sigma: float) -> float:
    sc = scenario(simulation__mode="threshold", preferences__threshold_mean=0.25, preferences__threshold_sd=sigma)
    res = simulate(sc, replicates=1, days=300, agents=49_995, seed=7)
    return float(res.per_replicate["defected_share"].iloc[0])


def test_reference_curve_has_the_published_jump() -> None:
    # Granovetter: with mean 0.25 the outcome jumps from near zero to near everyone at σ ≈ 0.12
    assert granovetter_equilibrium(0.12) < 0.05
    assert granovetter_equilibrium(0.125) > 0.99


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.05, 0.08, 0.10, 0.115])
def test_below_critical_spread_participation_stays_near_zero(sigma: float) -> None:
    sim = final_share(sigma)
    assert sim < 0.05
    assert sim == pytest.approx(granovetter_equilibrium(sigma), abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.135, 0.15, 0.2, 0.3])
def test_above_critical_spread_nearly_everyone_joins(sigma: float) -> None:
    assert final_share(sigma) > 0.95
