"""Parameters with a plausible range, and the calibrated ones with their priors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from defection.scenario.registry import registry


@dataclass(frozen=True)
class Range:
    """A scenario parameter with a plausible range: uniform on [lo, hi], on log10 if `log`, and why it is uncertain.

    One type for every parameter-with-a-range: calibration priors (`CALIBRATED`), exploration uncertainties and
    levers, and the claims' sensitivity checks."""

    path: str
    lo: float
    hi: float
    log: bool = False
    why: str = ""

    def at(self, u: float) -> float:
        """The value at position u ∈ [0, 1] of the range: linear, or geometric when `log`; never outside the range
        (exp(log(hi)) can exceed hi by a rounding error, which a range that ends at its parameter's limit refuses)."""
        lo, hi = self.lo, self.hi
        x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log else lo + u * (hi - lo)
        return min(max(x, min(lo, hi)), max(lo, hi))

    def problems(self) -> list[str]:
        """Why this range cannot be used for its parameter (empty if it can)."""
        return range_problems(self.path, self.lo, self.hi, self.log)

    @property
    def key(self) -> str:
        """The name pyABC sees (no dots)."""
        return self.path.replace(".", "__")

    def to_model(self, x: float) -> float:
        return float(10.0**x) if self.log else float(x)

    def from_model(self, v: float) -> float:
        return float(math.log10(v)) if self.log else float(v)

    @property
    def prior_bounds(self) -> tuple[float, float]:
        return (math.log10(self.lo), math.log10(self.hi)) if self.log else (self.lo, self.hi)


CALIBRATED: tuple[Range, ...] = (
    Range(
        "preferences.moral_cost_median_usd",
        3e4,
        3e6,
        True,
        "m0: latent moral/identity cost (Kuran [C3]); wide prior, docs/model.md Calibration status",
    ),
    Range("preferences.moral_cost_log_sd", 0.3, 2.0, False, "heterogeneity of m0 (Kuran [C3])"),
    Range("preferences.logit_scale", 0.03, 1.0, True, "σ, logit scale (McFadden [T1])"),
    Range("preferences.peer_weight", 0.0, 2.0, False, "φ, peer effect (Albrecht et al. [S5])"),
    Range("preferences.precedent_weight", 0.0, 8.0, False, "ψ, precedent (Lehmann & Zhukov [S6])"),
    Range("information.reach_multiplier", 0.1, 10.0, True, "Bass p scale on channel reach [I1, I2]"),
    Range("information.peer_imitation", 0.0, 0.5, False, "Bass q, per day (design range 0.02–0.5; [I1, I2])"),
    Range("credibility.prior_alpha", 0.5, 6.0, False, "credibility prior Beta(α, 2) (design range (1,4)–(4,1))"),
    Range("crossing.killed_crossing_base", 0.02, 0.4, False, "p^x_0, base crossing risk (design range; [S1, S7])"),
    Range(
        "routes.home.daily_opportunity",
        1e-4,
        0.05,
        True,
        "π^H, a squad's daily chance to walk away unseen in the reference war (eq. 42, 50); wide prior",
    ),
    Range(
        "routes.surrender.daily_opportunity",
        1e-4,
        0.05,
        True,
        "π^S, a squad's daily chance of a position where surrender is possible (eq. 42, 51); wide prior",
    ),
    Range(
        "routes.surrender.overrun_probability",
        3e-3,
        0.5,
        True,
        "ε_0, a company's chance to be overrun on a day the front is broken (eq. 53a); wide prior",
    ),
)


FAMILIES: tuple[str, ...] = ("conventional", "insurgency")
"""Families of historical cases; each has its own structural-error (model-discrepancy) standard deviation."""

DISCREPANCY: tuple[Range, ...] = tuple(
    Range(
        f"discrepancy.{family}",
        0.05,
        2.5,
        False,
        f"δ_{family}: SD of the model's structural error on log shares for {family} cases (docs/calibration.md)",
    )
    for family in FAMILIES
)
"""Calibrated, but not scenario parameters: a posterior carries them and `Posterior.apply` leaves them out."""


def discrepancy_path(family: str) -> str:
    """The posterior's name for family `family`'s discrepancy SD."""
    return f"discrepancy.{family}"


def range_problems(path: str, lo: float, hi: float, log: bool = False) -> list[str]:
    """What makes [lo, hi] unusable for scenario parameter `path`: an unknown or non-numeric parameter, an empty range,
    a range that leaves the parameter's allowed range, or a log scale over values that are not all positive."""
    info = registry().get(path)
    if info is None:
        return [f"path = {path!r} is not a scenario parameter (see `defection params`)"]
    if not isinstance(info.default, int | float) or isinstance(info.default, bool):
        return [f"{path} is not numeric; list its values instead"]
    problems = []
    if lo >= hi:
        problems.append(f"low = {lo:g} must be below high = {hi:g}")
    if (info.lo is not None and lo < info.lo) or (info.hi is not None and hi > info.hi):
        problems.append(
            f"range [{lo:g}, {hi:g}] leaves the parameter's allowed range [{info.lo}, {info.hi}] {info.unit}"
        )
    if log and lo <= 0:
        problems.append(f"log = true needs low > 0, not {lo:g}")
    return problems
