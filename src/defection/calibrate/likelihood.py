"""The observation model's likelihood, observation by observation (eq. 40 and 40b; docs/calibration.md, "Zeros and
bounds").

Most observations are positive shares, compared on the log scale with a normal error of variance tolerance² + δ²
(eq. 40). Some of history's most telling results are zeros, or only an upper bound ("fewer than N"): a share's
logarithm cannot hold them. An observation with ``likelihood = "count"`` is the number of soldiers the record
counted, k = value × force (value may be 0), and ``"upper_bound"`` says the record counted fewer than
N = value × force. Both are compared with the simulated count μ = recorded share × force under a negative
binomial whose overdispersion carries the same error as eq. 40: size r = 1/(e^{var} − 1), so that its squared
coefficient of variation beyond Poisson, 1/r, is a lognormal error's e^{var} − 1 (eq. 40b).

The model reports every observation as its log recorded share (the summary statistic of eq. 40); the observed data
(`observed_data`) hold log shares for lognormal observations and counts for the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from defection.calibrate.cases import Case, observation_key

LOGNORMAL, COUNT, UPPER_BOUND = "lognormal", "count", "upper_bound"


def negative_binomial_size(var: float) -> float:
    """Eq. 40b: r = 1/(e^{var} − 1), the size whose extra-Poisson variance matches a lognormal error of `var`."""
    return 1.0 / math.expm1(var)


def count_log_pmf(k: float, mu: float, r: float) -> float:
    """Eq. 40b: log NB(k; mean μ, size r) = log Γ(k+r) − log Γ(r) − log k! + r·log(r/(r+μ)) + k·log(μ/(r+μ))."""
    if mu <= 0.0:
        return 0.0 if k == 0 else -math.inf
    log_p = math.log(r / (r + mu))
    tail = k * math.log(mu / (r + mu)) if k > 0 else 0.0
    return float(special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1.0) + r * log_p + tail)


def bound_log_probability(bound: float, mu: float, r: float) -> float:
    """Eq. 40b: log P(X < N) for X ~ NB(μ, r), the chance of recording fewer than `bound` soldiers."""
    below = math.ceil(bound) - 1  # X < N ⇔ X ≤ ⌈N⌉ − 1
    if below < 0:
        return -math.inf
    if mu <= 0.0:
        return 0.0
    # P(X ≤ n) = I_{r/(r+μ)}(r, n + 1), the regularised incomplete beta function
    return float(math.log(max(special.betainc(r, below + 1.0, r / (r + mu)), 1e-300)))


class ObservationTerms:
    """Each observation's likelihood kind and force (so that a share becomes a count), by observation key."""

    def __init__(self, kind: dict[str, str], force: dict[str, float]):
        self.keys = list(kind)
        self.kind = kind
        self.force = force
        self.only_lognormal = all(v == LOGNORMAL for v in kind.values())

    @classmethod
    def from_cases(cls, cases: Sequence[Case]) -> ObservationTerms:
        keyed = [(observation_key(c, k), o, c, k) for c in cases for k, o in enumerate(c.observed)]
        return cls(
            {key: o.likelihood for key, o, _, _ in keyed},
            {key: float(c.scenarios()[c.variant(k)].force.soldiers) for key, _, c, k in keyed},
        )

    def perfect_fit(self, x_0: dict[str, float], keys: Sequence[str], var: np.ndarray) -> np.ndarray:
        """Each observation's largest possible log density: at a perfect fit, −½·log(2π·var) for a log share; the
        pmf at μ = k for a count (0 for k = 0); 0 for a bound."""
        out = np.asarray(-0.5 * np.log(2 * np.pi * var), dtype=float)
        for j, key in enumerate(keys):
            if self.kind[key] == COUNT:
                k = x_0[key]
                out[j] = count_log_pmf(k, k, negative_binomial_size(float(var[j])))
            elif self.kind[key] == UPPER_BOUND:
                out[j] = 0.0
        return out

    def log_terms(self, x: dict[str, float], x_0: dict[str, float], keys: Sequence[str], var: np.ndarray) -> np.ndarray:
        """Eq. 40 / 40b: each observation's log density given the simulated log recorded shares `x`."""
        diff = np.array([x[k] - x_0[k] if self.kind[k] == LOGNORMAL else 0.0 for k in keys])
        out = np.asarray(-0.5 * np.log(2 * np.pi * var) - 0.5 * diff**2 / var, dtype=float)
        for j, key in enumerate(keys):
            if self.kind[key] == LOGNORMAL:
                continue
            mu = math.exp(x[key]) * self.force[key]
            r = negative_binomial_size(float(var[j]))
            out[j] = (
                count_log_pmf(x_0[key], mu, r) if self.kind[key] == COUNT else bound_log_probability(x_0[key], mu, r)
            )
        return out


def observed_data(cases: Sequence[Case]) -> dict[str, float]:
    """The kernel's data: the log observed share of a lognormal observation, the count (value × force) of a count
    or upper bound."""
    out = {}
    for c in cases:
        for k, o in enumerate(c.observed):
            key = observation_key(c, k)
            force = c.scenarios()[c.variant(k)].force.soldiers
            out[key] = math.log(o.value) if o.likelihood == LOGNORMAL else o.value * force
    return out
