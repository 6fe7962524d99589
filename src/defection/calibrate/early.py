"""Exact early rejection for the stochastic acceptor (docs/calibration.md, "Method": early rejection).

pyABC's stochastic acceptor accepts a particle when a uniform u ≤ exp((log p(x|θ) − c)/T), where log p is eq. 40's
log density (and eq. 40b's count and bound terms, `likelihood`) summed over every observation of every case, c the
density normalisation and T the temperature. Each observation's term is at most its value at a perfect fit:
−½·log(2π·var) for a log share, the pmf at μ = k for a count, 0 for a bound. So after some cases
are simulated, log p is bounded above by the terms found so far plus the perfect-fit terms of the rest; once that
bound gives exp((bound − c)/T) < u the particle would be rejected whatever the other cases show, and they are not
simulated. The decision is the one the full simulation would give, with u drawn from the same stream at the same
point (after the particle's seed, as the acceptor would draw it), so a calibration is identical with and without
early rejection (`tests/test_early_rejection.py`).

Where it applies (`abc.EARLY_REJECTION`): in every generation (the default), or in the last one only. In the last
generation (at temperature 1, or the last one allowed) the calibration is identical with and without it. In earlier
ones every decision is still the acceptor's, but pyABC's temperature schedule chooses the next temperature from the
densities of every particle of the generation, rejected ones included, and an early-rejected particle reports
only its upper bound: the schedule may then choose a slightly different temperature. The sampler stays exact for
its target (each generation samples the tempered posterior at the temperature it was given, and the last one is
at temperature 1 whatever the path), so the posterior is a sample from the same distribution, not necessarily the
same sample (docs/calibration.md, "Early rejection", measured there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyabc
from pyabc.model import ModelResult

from defection.calibrate.abc import CaseModel, ErrorVariance
from defection.calibrate.cases import Case, observation_key
from defection.calibrate.likelihood import ObservationTerms

BOUND_SLACK = 1e-9  # relative slack on the bound, so that rounding never rejects a particle the full density keeps


def case_cost(case: Case) -> float:
    """Agent-days of one simulation of a case: the order in which early rejection simulates them (cheapest first)."""
    return float(sum(case.meta.calibration_agents * sc.simulation.days for sc in case.scenarios()))


def rejected_early(known: float, rest: float, pdf_norm: float, temperature: float, u: float) -> bool:
    """True when even a perfect fit of the cases not yet simulated (`rest`, their perfect-fit terms) leaves the
    acceptance probability exp((known + rest − c)/T) below the uniform u: the particle is rejected."""
    bound = known + rest
    bound += BOUND_SLACK * (abs(bound) + 1.0)
    return (bound - pdf_norm) / temperature < math.log(u) if u > 0 else False


class EarlyRejectionModel(pyabc.Model):  # type: ignore[misc]
    """`CaseModel` for pyABC with early rejection (module docstring) in every generation, or in the last one only
    (`where`); a generation without it simulates every case and leaves the decision to pyABC's acceptor."""

    def __init__(
        self,
        model: CaseModel,
        variance: ErrorVariance,
        generations: int,
        stop_temperature: float,
        where: str = "every",
    ) -> None:
        super().__init__(name="cases")
        if where not in ("every", "last"):
            raise ValueError(f"early rejection applies in 'every' generation or the 'last' one, not {where!r}")
        self.model = model
        self.variance = variance
        self.generations = generations
        self.stop_temperature = stop_temperature
        self.where = where
        self.order = sorted(model.cases, key=case_cost)
        self.keys = {c.id: [observation_key(c, k) for k in range(len(c.observed))] for c in self.order}
        self.cases_simulated = 0  # case simulations in this process (for the benchmark)
        self.terms = ObservationTerms.from_cases(model.cases)

    def sample(self, pars: dict[str, float]) -> dict[str, float]:
        return self.model(pars)

    def last_generation(self, t: int, temperature: float) -> bool:
        """Whether generation t, at `temperature`, is the calibration's last (so no schedule reads its records)."""
        return t >= self.generations - 1 or temperature <= self.stop_temperature

    def accept(
        self,
        t: int,
        pars: Any,
        sum_stat_calculator: Callable[..., Any],
        distance_calculator: Any,
        eps_calculator: Any,
        acceptor: Any,
        x_0: dict[str, float],
    ) -> ModelResult:
        temperature = float(eps_calculator(t))
        if self.where == "last" and not self.last_generation(t, temperature):
            self.cases_simulated += len(self.order)
            return super().accept(t, pars, sum_stat_calculator, distance_calculator, eps_calculator, acceptor, x_0)
        seed = self.model.draw_seed()
        u = float(np.random.uniform(low=0, high=1))  # the acceptor's uniform, drawn where it would draw it
        pdf_norm = float(acceptor.pdf_norms[t])
        var = dict(zip(self.variance.keys, self.variance(pars), strict=True))
        changes = self.model.changes(pars)
        stats: dict[str, float] = {}
        known = 0.0
        rest = float(sum(self.terms.perfect_fit(x_0, list(var), np.array(list(var.values())))))
        for case in self.order:
            keys = self.keys[case.id]
            case_var = np.array([var[k] for k in keys])
            stats.update(self.model.case_stats(case, changes, seed))
            self.cases_simulated += 1
            known += float(self.terms.log_terms(stats, x_0, keys, case_var).sum())
            rest -= float(self.terms.perfect_fit(x_0, keys, case_var).sum())
            if len(stats) < len(var) and rejected_early(known, rest, pdf_norm, temperature, u):
                # the density pyABC records is an upper bound: only the temperature schedule reads it
                return ModelResult(sum_stat=stats, distance=known + rest, accepted=False)
        sum_stat = sum_stat_calculator(stats)
        density = float(distance_calculator(sum_stat, x_0, t, pars))  # pyABC's own density, as its acceptor uses
        acc_prob = float(np.exp((density - pdf_norm) * (1 / temperature)))  # the acceptor's own expression
        weight = 0.0 if acc_prob == 0.0 else acc_prob / min(1.0, acc_prob)
        return ModelResult(sum_stat=sum_stat, distance=density, accepted=bool(acc_prob >= u), weight=weight)
