"""The offer's effect as the calibrated model sees it: the change in flow per doubling of the reward (eq. 52;
docs/calibration.md, "The offer's effect").

A calibration can fit every observed level and still have a model whose flows barely move with the reward, if the
cases cannot tell a programme's effect from the baseline exit rate. This measures it: each posterior draw simulates
a case (or scenario) with its cash and with twice its cash, with the same seed and particle (common random
numbers), and the effect is log2 of the ratio of the two shares; its median and interval over draws are the
posterior of the effect. The ratio to the same world with no cash at all is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from defection.calibrate.cases import log_floor
from defection.engine import simulate
from defection.scenario import Scenario, with_changes
from defection.scenario.posterior import Posterior


def doubling_effect(share: float, share_doubled: float, floor: float) -> float:
    """Eq. 52: log2(share(2B) / share(B)), each share raised to the log floor: +1 means the flow doubles with the
    reward, 0 that the reward does not matter."""
    return math.log2(max(share_doubled, floor) / max(share, floor))


@dataclass
class OfferEffect:
    """The posterior of the offer's effect on one outcome of one scenario."""

    scenario: str
    outcome: str
    cash_usd: float
    draws: int
    agents: int
    per_doubling: np.ndarray  # eq. 52, one value per draw
    versus_no_cash: np.ndarray  # log2(share(B) / share(0)), one per draw
    share: np.ndarray  # the outcome with the cash, one per draw

    def summary(self) -> dict[str, Any]:
        def q(x: np.ndarray) -> dict[str, float]:
            return {k: float(np.quantile(x, p)) for k, p in (("p05", 0.05), ("median", 0.5), ("p95", 0.95))}

        return {
            "scenario": self.scenario,
            "outcome": self.outcome,
            "cash_usd": self.cash_usd,
            "draws": self.draws,
            "agents": self.agents,
            "log2_change_per_doubling": q(self.per_doubling),
            "log2_change_versus_no_cash": q(self.versus_no_cash),
            "share": q(self.share),
        }


def offer_effect(
    sc: Scenario,
    posterior: Posterior | None,
    outcome: str = "defected_share",
    draws: int = 40,
    seed: int = 1,
    agents: int | None = None,
) -> OfferEffect:
    """Eq. 52 over `draws` posterior draws (replicate r uses the posterior particle of replicate r, as everywhere):
    the scenario with its cash B, with 2B and with none, all with the same seed. A scenario without cash is
    measured at $100,000."""
    cash = sc.offer.cash_usd if sc.offer.cash_usd > 0 else 100_000.0
    doubled: dict[str, Any] = {"offer.cash_usd": 2 * cash}
    if sc.offer.schedule.max_cash_usd < 2 * cash:
        doubled["offer.schedule.max_cash_usd"] = 2 * cash
    if 0 < sc.offer.schedule.budget_cap_usd < 2 * cash:
        doubled["offer.schedule.budget_cap_usd"] = 2 * cash
    variants = {
        "base": with_changes(sc, {"offer.cash_usd": cash}),
        "double": with_changes(sc, doubled),
        "none": with_changes(sc, {"offer.cash_usd": 0.0}),
    }
    n = agents or sc.simulation.agents
    shares = {}
    used = n
    for name, variant in variants.items():
        res = simulate(variant, replicates=draws, seed=seed, agents=n, posterior=posterior, accounting=False)
        shares[name] = res.per_replicate[outcome].to_numpy(dtype=float)
        used = res.agents
    floor = log_floor(used)
    per_doubling = np.array(
        [doubling_effect(b, d, floor) for b, d in zip(shares["base"], shares["double"], strict=True)]
    )
    versus = np.array([doubling_effect(z, b, floor) for z, b in zip(shares["none"], shares["base"], strict=True)])
    return OfferEffect(sc.meta.name, outcome, cash, draws, used, per_doubling, versus, shares["base"])
