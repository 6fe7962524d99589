"""The pyABC stochastic kernel of eq. 40 and 40b (`likelihood`), in its own module because it subclasses a pyABC
class: pyABC is imported only when a calibration runs (as `early` is)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyabc
from pyabc.distance import SCALE_LOG, StochasticKernel

from defection.calibrate.cases import Case
from defection.calibrate.likelihood import ObservationTerms


class CountKernel(StochasticKernel):  # type: ignore[misc]
    """Eq. 40 and 40b summed over every observation, on the log scale: log shares, counts and upper bounds."""

    def __init__(self, terms: ObservationTerms, var: Callable[[dict[str, float]], np.ndarray]) -> None:
        super().__init__(ret_scale=SCALE_LOG, keys=terms.keys, pdf_max=None)
        self.terms = terms
        self.var = var

    def __call__(
        self, x: dict[str, float], x_0: dict[str, float], t: int | None = None, par: dict[str, float] | None = None
    ) -> float:
        var = np.asarray(self.var(par or {}), dtype=float)
        return float(self.terms.log_terms(x, x_0, self.terms.keys, var).sum())


def observation_kernel(cases: Sequence[Case], var: Callable[[dict[str, float]], np.ndarray]) -> Any:
    """pyABC's own `IndependentNormalKernel` when every observation is a log share (eq. 40 alone), else
    `CountKernel`, which adds the count and bound terms of eq. 40b."""
    terms = ObservationTerms.from_cases(cases)
    if terms.only_lognormal:
        return pyabc.IndependentNormalKernel(var=var, keys=terms.keys)
    return CountKernel(terms, var)
