"""Counter-based random numbers keyed by (seed, replicate, day, agent, stream).

Every draw is a pure function of its key, so results do not depend on thread count, chunking or the
order in which agents are visited, and two policy variants that share a seed see the same numbers for
the same soldier on the same day (common random numbers). The mixer is SplitMix64's finaliser
(Steele, Lea & Flood 2014), a bijection on 64-bit integers; a draw is the finaliser applied to a
per-(seed, replicate, day, stream) key plus the agent's index times the golden-ratio increment, which
is exactly the SplitMix64 sequence started at that key.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from defection.scenario.posterior import Posterior

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT_REP = np.uint64(0xD1B54A32D192ED03)
_SALT_DAY = np.uint64(0xABC98388FB8FAC03)
_SALT_STREAM = np.uint64(0x8CB92BA72F3D8DD7)
_SALT_SECOND = np.uint64(0x5851F42D4C957F2D)
_DAY_OFFSET = 1 << 20  # days may be negative (population synthesis uses day -1)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53

# Streams: one per kind of random event, so adding a draw for one purpose never shifts another.
POP_TYPE, POP_VSL, POP_INCOME, POP_MORAL, POP_THRESHOLD, POP_FAMILY, POP_NOISE = 1, 2, 3, 4, 5, 6, 7
POP_NETWORK, POP_COMPANY_TYPE, POP_COMPANY_CLASS, POP_REWIRE, POP_MIXED_TYPE = 8, 9, 10, 11, 12
AWARENESS, OPPORTUNITY, SHOCK, REVEAL = 20, 22, 23, 24
CATCH, CROSSING, EXECUTION, ATTRITION, REPLACEMENT = 25, 26, 27, 28, 29
QUEUE_DETECTION, SCREENING, EVENTS = 30, 31, 32
POSTERIOR = 40  # which posterior particle a replicate uses (posterior_particle)
OPPORTUNITY_HOME, OPPORTUNITY_SURRENDER, ROUTE_SHOCK, RETURN_TO_UNIT = 42, 43, 44, 45  # exit routes (§7.5b)
OVERRUN = 46  # a company overrun on a day the front is broken (eq. 53)


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a fast, well-tested 64-bit bijective mixer."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def stream_key(seed: int, replicate: int, day: int, stream: int) -> np.uint64:
    """The key shared by all agents' draws of one stream on one day of one replicate."""
    h = mix64(np.uint64(seed) ^ _GOLDEN)
    h = mix64(h ^ (np.uint64(replicate) * _SALT_REP))
    h = mix64(h ^ (np.uint64(day + _DAY_OFFSET) * _SALT_DAY))
    return mix64(h ^ (np.uint64(stream) * _SALT_STREAM))


@njit(cache=True, inline="always")
def uniform(key: np.uint64, agent: int) -> float:
    """U(0,1), open at both ends, for one agent under one key."""
    z = mix64(key + np.uint64(agent + 1) * _GOLDEN)
    return (float(z >> np.uint64(11)) + 0.5) * _INV53


@njit(cache=True, inline="always")
def normal(key: np.uint64, agent: int) -> float:
    """Standard normal by Box–Muller from two independent uniforms of the same key and agent."""
    u1 = uniform(key, agent)
    u2 = uniform(key ^ _SALT_SECOND, agent)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, inline="always")
def logistic(key: np.uint64, agent: int, scale: float) -> float:
    """A logistic(0, scale) shock: the random-utility error whose choice probability is the logit."""
    u = uniform(key, agent)
    return scale * math.log(u / (1.0 - u))


@njit(cache=True, inline="always")
def gumbel(key: np.uint64, agent: int, scale: float) -> float:
    """A Gumbel(0, scale) shock: the multinomial logit's random-utility error (the difference of two is logistic)."""
    return -scale * math.log(-math.log(uniform(key, agent)))


@njit(cache=True)
def keyed_uniform(seed: int, replicate: int, day: int, stream: int, agent: int) -> float:
    """One U(0,1) draw for a full key, callable from Python (the 64-bit key stays inside compiled code)."""
    return uniform(stream_key(seed, replicate, day, stream), agent)


def posterior_particle(posterior: Posterior, seed: int, replicate: int) -> int:
    """The posterior particle replicate `replicate` uses: weighted, from a counter-based uniform (eq. 41)."""
    return posterior.particle_at(keyed_uniform(seed, replicate, -2, POSTERIOR, 0))


def latin_hypercube(d: int, n: int, seed: int) -> np.ndarray:
    """n points of a scrambled Latin hypercube in [0, 1)^d, bit-identical to SciPy's
    ``qmc.LatinHypercube(d=d, seed=seed).random(n)`` (its base algorithm, strength 1, no optimisation:
    each dimension's n strata in a random order, one uniform point inside each). Written out here because
    importing ``scipy.stats`` costs a command 0.6–1.6 s, more than a small sweep simulates (docs/performance.md);
    `tests/test_sweep.py` checks it against SciPy."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(size=(n, d))
    strata = np.tile(np.arange(1, n + 1), (d, 1))
    for i in range(d):
        rng.shuffle(strata[i, :])
    return np.asarray((strata.T - jitter) / n, dtype=float)
