"""Backtest scores (defection.calibrate.scores), each checked against a value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from defection.calibrate import scores as sc


def test_interval_coverage_counts_closed_intervals() -> None:
    observed = [1.0, 2.0, 3.0, 4.0]
    assert list(sc.inside(observed, [0, 2.5, 3, 0], [1, 3, 3, 3])) == [True, False, True, False]
    assert sc.interval_coverage(observed, [0, 2.5, 3, 0], [1, 3, 3, 3]) == 0.5
    assert math.isnan(sc.interval_coverage([], [], []))


def test_weighted_interval_score_by_hand() -> None:
    """y = 2, median 0, 50% interval [−1, 1], 90% interval [−2, 1.5]:
    IS_0.5 = 2 + (2/0.5)(2 − 1) = 6; IS_0.1 = 3.5 + (2/0.1)(2 − 1.5) = 13.5;
    WIS = (0.5·|2 − 0| + 0.25·6 + 0.05·13.5)/(2 + 0.5) = 3.175/2.5 = 1.27. Inside both: width terms only."""
    lower, upper = np.array([[-1.0, -2.0], [-1.0, -2.0]]), np.array([[1.0, 1.5], [1.0, 1.5]])
    wis = sc.weighted_interval_score([2.0, 0.0], [0.0, 0.0], lower, upper)
    assert wis == pytest.approx([1.27, (0.25 * 2 + 0.05 * 3.5) / 2.5])


def test_a_bound_is_scored_at_the_value_it_allows_that_each_term_would_choose() -> None:
    """Eq. 54. "Fewer than e^1" (y = 1), median 0, 50% [−1, 0.5], 90% [−2, 0.8]: y* = min(1, 0) = 0, inside both
    intervals, so only the widths count: (0 + 0.25·1.5 + 0.05·2.8)/2.5 = 0.206, where scoring y = 1 as a point adds
    0.5·1 + 0.25·4·0.5 + 0.05·20·0.2 = 1.2 (WIS 0.686). A bound below the whole prediction, "fewer than e^−3",
    scores like the point −3 (y* = −3): the bound lies below the interval's lower end, a real miss. A point
    observation is scored at itself."""
    lower, upper = np.array([[-1.0, -2.0]] * 3), np.array([[0.5, 0.8]] * 3)
    y_star = sc.scored_value([1.0, -3.0, 1.0], [0.0, 0.0, 0.0], [True, True, False])
    assert list(y_star) == [0.0, -3.0, 1.0]
    wis = sc.weighted_interval_score(y_star, [0.0] * 3, lower, upper)
    assert wis[0] == pytest.approx((0.25 * 1.5 + 0.05 * 2.8) / 2.5)
    assert wis[2] == pytest.approx((0.5 + 0.25 * (1.5 + 4 * 0.5) + 0.05 * (2.8 + 20 * 0.2)) / 2.5)
    assert wis[1] == pytest.approx(sc.weighted_interval_score([-3.0], [0.0], lower[:1], upper[:1])[0])
    # no other value the bound allows scores lower: y* is the minimum over y ≤ 1
    grid = np.linspace(-6.0, 1.0, 141)
    each = sc.weighted_interval_score(
        grid, np.zeros(grid.size), np.repeat(lower[:1], grid.size, 0), np.repeat(upper[:1], grid.size, 0)
    )
    assert wis[0] <= each.min() + 1e-12


def test_log_shares_raise_zeros_to_the_floor() -> None:
    assert sc.log_shares([0.0, 0.01], 1e-3) == pytest.approx([math.log(1e-3), math.log(0.01)])


def test_median_abs_log_error_by_hand() -> None:
    """|log errors| ln 2, 0, ln 10 → median ln 2; a zero median counts as the floor."""
    assert sc.median_abs_log_error([0.01, 0.1, 0.5], [0.02, 0.1, 0.05], 1e-4) == pytest.approx(math.log(2))
    assert sc.median_abs_log_error([0.01], [0.0], 1e-3) == pytest.approx(math.log(10))


def test_pit_values_by_hand_and_uniform_with_ties() -> None:
    rng = np.random.default_rng(0)
    assert 0.5 <= sc.pit_value(2.5, [1, 2, 3], rng) < 0.75  # 2 draws below, none equal: (2 + U[0, 1])/4
    assert 0.0 <= sc.pit_value(0.0, [0, 0, 0, 1], rng) <= 0.8  # none below, 3 equal: U[0, 4]/5
    assert sc.pit_value(9.0, [1, 2, 3], rng) >= 0.75
    # an observation exchangeable with its draws gives uniform PIT values, even when most values tie at zero
    gen = np.random.default_rng(1)
    draws = [gen.binomial(3, 0.1, size=20).astype(float) for _ in range(4000)]
    observed = list(gen.binomial(3, 0.1, size=4000).astype(float))
    pit = sc.pit_values(observed, draws, seed=2)
    counts = np.histogram(pit, bins=5, range=(0, 1))[0] / pit.size
    assert np.all(np.abs(counts - 0.2) < 0.03), counts
    assert np.array_equal(pit, sc.pit_values(observed, draws, seed=2))  # seeded


def test_naive_baseline_by_hand() -> None:
    """Log values 0, 2, 4: observation 0 is predicted from 2 and 4: mean 3, sd √2."""
    q = sc.naive_quantiles([0.0, 2.0, 4.0])
    assert q[0, 2] == pytest.approx(3.0)
    assert q[0, 4] == pytest.approx(3.0 + 1.6448536 * math.sqrt(2))
    assert q[0, 0] == pytest.approx(3.0 - 1.6448536 * math.sqrt(2))
    assert q[1, 2] == pytest.approx(2.0) and q[2, 2] == pytest.approx(1.0)
    # observations of the same case do not predict each other: only one other observation left → no baseline
    grouped = sc.naive_quantiles([0.0, 2.0, 4.0], groups=["a", "a", "b"])
    assert np.isnan(grouped[0]).all() and grouped[2, 2] == pytest.approx(1.0)


def test_skill_by_hand() -> None:
    assert sc.skill(1.0, 4.0) == pytest.approx(0.75)
    assert sc.skill(4.0, 2.0) == pytest.approx(-1.0)
    assert math.isnan(sc.skill(1.0, 0.0))


def test_jackknife_plus_by_hand() -> None:
    """Residuals 1..10, centres 0, level 0.8: for observation 0 the others' residuals are 2..10 (m = 9); the
    upper end is the ⌈0.8·10⌉ = 8th smallest of 0 + R_j = 9, the lower the ⌊0.2·10⌋ = 2nd smallest of −R_j = −9."""
    lo, hi = sc.jackknife_plus(np.zeros(10), np.arange(1.0, 11.0), level=0.8)
    assert (lo[0], hi[0]) == (-9.0, 9.0)
    assert (lo[9], hi[9]) == (-8.0, 8.0)  # others 1..9
    lo, hi = sc.jackknife_plus([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], level=0.9)  # m = 2: rank 3 of 2 → unbounded
    assert np.all(np.isinf(hi)) and np.all(np.isinf(lo))


def test_jackknife_plus_covers_as_designed_on_exchangeable_residuals() -> None:
    """Observations = predictions + exchangeable errors (heavy-tailed, grouped in pairs that share a case): the
    90% conformal interval covers at least 90% of them on average (Barber et al. 2021), and not far more,
    while a ±1.645·sd interval that assumes normal errors does not."""
    gen = np.random.default_rng(7)
    covered, normal_covered = [], []
    for _ in range(1500):
        centre = gen.normal(0.0, 3.0, size=24)
        errors = gen.standard_t(2, size=24)
        y = centre + errors
        groups = [str(k // 2) for k in range(24)]
        lo, hi = sc.jackknife_plus(centre, np.abs(y - centre), 0.9, groups)
        covered.append(sc.interval_coverage(y, lo, hi))
        normal_covered.append(sc.interval_coverage(y, centre - 1.645, centre + 1.645))
    assert 0.895 <= np.mean(covered) <= 0.95, np.mean(covered)
    assert np.mean(normal_covered) < 0.85
