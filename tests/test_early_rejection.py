"""Early rejection (calibrate/early.py): the bound is a bound, the decision is the acceptor's; in the last generation
only, a calibration gives the same posterior with fewer case simulations, and in every generation fewer still."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import defection.calibrate.early as early
from defection.calibrate.abc import calibrate
from defection.calibrate.cases import load_case
from defection.calibrate.likelihood import ObservationTerms
from defection.scenario.ranges import CALIBRATED

from .test_calibration import write_case

MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")


LOG_SHARES = ObservationTerms({"a": "lognormal", "b": "lognormal", "c": "lognormal"}, dict.fromkeys("abc", 1e5))


def test_log_density_terms_sum_to_pyabcs_kernel() -> None:
    """The terms, summed, are pyABC's IndependentNormalKernel density; by hand for one term."""
    import pyabc

    keys = ["a", "b", "c"]
    var = np.array([0.25, 0.5, 1.0])
    x, x0 = {"a": -3.0, "b": -5.5, "c": 0.0}, {"a": -3.5, "b": -5.0, "c": 2.0}
    terms = LOG_SHARES.log_terms(x, x0, keys, var)
    assert terms[0] == pytest.approx(-0.5 * (math.log(2 * math.pi * 0.25) + 0.25 / 0.25))
    kernel = pyabc.IndependentNormalKernel(var=list(var), keys=keys)
    kernel.initialize(t=0, get_sample=None, x_0=x0, total_sims=0)
    assert terms.sum() == pytest.approx(kernel(x, x0, 0, {}))


def test_the_bound_is_never_below_the_density() -> None:
    """For any simulated values, a perfect fit's term is at least the actual term, so the bound holds: for log
    shares, counts (zeros included) and upper bounds alike."""
    rng = np.random.default_rng(1)
    keys = [str(k) for k in range(6)]
    kinds = ["lognormal", "lognormal", "count", "count", "upper_bound", "upper_bound"]
    terms = ObservationTerms(dict(zip(keys, kinds, strict=True)), dict.fromkeys(keys, 1e4))
    for _ in range(200):
        var = rng.uniform(0.05, 4.0, 6)
        x = dict(zip(keys, rng.normal(-6, 3, 6), strict=True))
        counts = rng.choice([0.0, 1.0, 3.0, 40.0, 500.0], 4)
        x0 = dict(zip(keys, [*rng.normal(-6, 3, 2), *counts], strict=True))
        assert np.all(terms.perfect_fit(x0, keys, var) >= terms.log_terms(x, x0, keys, var))


def test_rejected_early_by_hand() -> None:
    """exp((known + rest − c)/T) against u: log(0.5) = −0.693; a bound 1 below c at T = 1 is rejected, at T = 2
    (exp(−0.5) = 0.61 ≥ 0.5) it is not; u = 0 never rejects (the acceptor would accept)."""
    assert early.rejected_early(known=-4.0, rest=-1.0, pdf_norm=-4.0, temperature=1.0, u=0.5)
    assert not early.rejected_early(known=-4.0, rest=-1.0, pdf_norm=-4.0, temperature=2.0, u=0.5)
    assert not early.rejected_early(known=-40.0, rest=-1.0, pdf_norm=-4.0, temperature=1.0, u=0.0)


@pytest.mark.slow
def test_a_calibration_is_identical_with_and_without_early_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three synthetic cases whose observations disagree (so the last generation rejects most particles): the same
    posterior, samples and weights, with early rejection in the last generation and without it, and fewer case
    simulations with it. In every generation: fewer simulations again, every decision still the acceptor's, and
    (here, where the temperature schedule is not moved by the bounds) the same posterior."""
    cases = [
        load_case(write_case(tmp_path, f"c{k}", defected=d, caught=c, days=60, agents=990), calibrated=())
        for k, (d, c) in enumerate([(0.002, 0.01), (0.05, 0.002), (0.01, 0.05)])
    ]
    simulated: list[int] = []
    original = early.EarlyRejectionModel.accept

    def counting(self: early.EarlyRejectionModel, *args: object) -> object:
        before = self.cases_simulated
        result = original(self, *args)  # type: ignore[arg-type]
        simulated.append(self.cases_simulated - before)
        return result

    monkeypatch.setattr(early.EarlyRejectionModel, "accept", counting)
    kwargs = dict(parameters=[MORAL], particles=12, generations=3, workers=1, seed=4)
    counted = {}
    runs = {}
    for mode in ("last", "every", "off"):
        simulated.clear()
        runs[mode] = calibrate(cases, early_rejection=mode, **kwargs)  # type: ignore[arg-type]
        counted[mode] = list(simulated)
    last, every, full = runs["last"], runs["every"], runs["off"]
    assert np.array_equal(last.posterior.samples, full.posterior.samples)
    assert np.array_equal(last.posterior.weights, full.posterior.weights)
    assert last.simulations == full.simulations
    assert list(last.populations["epsilon"]) == list(full.populations["epsilon"])
    final = last.populations["simulations"].iloc[-1]
    assert sum(counted["last"]) < len(counted["last"]) * len(
        cases
    )  # some particles were rejected before their last case
    assert sum(counted["last"][-final:]) < final * len(cases)
    assert sum(counted["last"][:-final]) == (len(counted["last"]) - final) * len(cases)  # earlier ones: every case
    assert counted["off"] == []  # the plain model: no early rejection at all
    assert sum(counted["every"]) < sum(counted["last"])  # earlier generations reject early too
    assert list(every.populations["epsilon"]) == pytest.approx(list(full.populations["epsilon"]), rel=1e-6)
    assert np.array_equal(every.posterior.samples, full.posterior.samples)
    assert np.allclose(every.posterior.weights, full.posterior.weights, rtol=1e-6)
    assert [r.settings["early_rejection"] for r in (last, every, full)] == ["last", "every", "off"]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="'every', 'last' or 'off'"):
        calibrate([object()], early_rejection="sometimes")  # type: ignore[list-item]
