"""The kernels' compiled entry points, resolved once per argument types (`dynamics.DirectCall`) and shared by the
replicates of a run: the same numbers, and arguments that cannot be fingerprinted are simply not cached."""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit

from defection.model.dynamics import DirectCall, EntryPoints, argument_types_key, run_replicate
from defection.model.parameters import engine_params
from defection.scenario import default_scenario, with_overrides


class Pair(NamedTuple):
    a: float
    b: np.ndarray


@njit(cache=False)
def _total(x: float, p: Pair) -> float:
    return x + p.a + p.b.sum()


def _samples() -> list[tuple[object, ...]]:
    arr = np.arange(4.0)
    readonly = np.arange(4.0)
    readonly.flags.writeable = False
    return [
        (1.0, Pair(2.0, arr)),
        (1, Pair(2.0, arr)),
        (np.float64(1.0), Pair(2.0, arr)),
        (True, Pair(2.0, arr)),
        (1.0, Pair(2.0, readonly)),
        (1.0, Pair(2.0, np.arange(4))),
        (1.0, Pair(2.0, np.arange(8.0)[::2])),
        (1.0, Pair(2.0, np.zeros((2, 2)))),
        (1.0, (2.0, arr)),
    ]


def test_equal_keys_mean_equal_numba_types() -> None:
    samples = _samples()
    for x in samples:
        for y in samples:
            if argument_types_key(x) == argument_types_key(y):  # (a finer key only means less sharing)
                assert tuple(numba.typeof(v) for v in x) == tuple(numba.typeof(v) for v in y), (x, y)
    assert len({argument_types_key(x) for x in samples}) == len(samples)


def test_unknown_arguments_are_not_cached() -> None:
    assert argument_types_key((1.0, [1.0, 2.0])) is None
    assert argument_types_key((1.0, (2.0, None))) is None
    assert argument_types_key((2**70,)) is None
    entry_points: EntryPoints = {}
    call = DirectCall(njit(cache=False)(lambda x, xs: x + len(xs)), entry_points)
    assert call(1.0, numba.typed.List([1.0, 2.0])) == 3.0
    assert call(2.0, numba.typed.List([1.0])) == 3.0
    assert entry_points == {}


def test_entry_points_are_shared_and_give_the_same_result() -> None:
    entry_points: EntryPoints = {}
    p = Pair(2.0, np.arange(4.0))
    first = DirectCall(_total, entry_points)
    assert first(1.0, p) == 9.0
    assert len(entry_points) == 1
    second = DirectCall(_total, entry_points)
    assert second(0.5, p) == 8.5
    assert second.call is first.call  # found in the cache: the dispatcher was not asked again


def test_replicates_sharing_entry_points_are_unchanged() -> None:
    sc = with_overrides(default_scenario(), days=20, agents=990)
    p = engine_params(sc)
    shared: EntryPoints = {}
    for rep in range(3):
        alone = run_replicate(sc, p, rep, 990)
        cached = run_replicate(sc, p, rep, 990, entry_points=shared)
        assert np.array_equal(alone.daily, cached.daily, equal_nan=True)
    assert shared  # the kernels' entry points were recorded
