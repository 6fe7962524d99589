"""Exploration specs: what we do not know (uncertainties), what the programme chooses (levers) and what we
measure (outcomes), in EMA Workbench's vocabulary, read from a TOML file and validated by pydantic.

A spec looks like::

    [experiment]
    name = "cash-vs-credibility"
    scenario = "my.toml"         # optional base scenario, relative to the spec file (default: the proposal)
    sampler = "lhs"              # lhs | sobol | morris | factorial
    samples = 64                 # design points (lhs/sobol: N; morris: trajectories; factorial: levels per factor)
    replicates = 4               # per design point, with common random numbers across points
    seed = 1
    days = 180
    agents = 4_950

    [[uncertainties]]
    path = "preferences.moral_cost_median_usd"
    low = 100_000.0
    high = 1_000_000.0
    log = true

    [[levers]]
    path = "offer.cash_usd"
    low = 10_000.0
    high = 1_000_000.0

    [[levers]]
    path = "offer.schedule.rule"
    values = ["flat", "ratchet_topup"]   # a categorical lever

    [[outcomes]]
    name = "defected_share"
    direction = "max"

Every path must be a numeric (or, with `values`, any) scenario parameter; ranges must sit inside the
parameter's registry range. Errors name the spec file, the field path, the value and what is allowed.

The commands draw each replicate's calibrated parameters from a posterior (`explore.design.exploration_posterior`:
the shipped one unless told otherwise); a calibrated parameter listed here as an uncertainty or a lever is set by
the design instead.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from defection.model.outputs import OUTCOMES
from defection.scenario import Scenario, ScenarioError, load_scenario, problems_from_file_errors
from defection.scenario.errors import render_problems
from defection.scenario.files import InputFileError, read_toml
from defection.scenario.ranges import Range
from defection.scenario.registry import registry

SAMPLERS = ("lhs", "sobol", "morris", "factorial")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Factor(_Strict):
    """An uncertainty or a lever: a scenario parameter with a range (or a list of values)."""

    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> Factor:
        info = registry().get(self.path)
        if info is None:
            raise ValueError(f"path = {self.path!r} is not a scenario parameter (see `defection params`)")
        if self.values is not None:
            if not self.values:
                raise ValueError("values must list at least one value")
            if self.low is not None or self.high is not None:
                raise ValueError("give either values or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a numeric factor needs low and high (or a list of values)")
        problems = self.range.problems()
        if problems:
            raise ValueError(problems[0])
        return self

    @property
    def range(self) -> Range:
        """A numeric factor as the shared parameter-with-a-range type (a categorical one has none)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.path} is categorical: it has values, not a range")
        return Range(self.path, self.low, self.high, self.log)

    @property
    def categorical(self) -> bool:
        return self.values is not None

    @property
    def integer(self) -> bool:
        return isinstance(registry()[self.path].default, int) and not isinstance(registry()[self.path].default, bool)

    def value(self, u: float) -> Any:
        """The parameter value at position u ∈ [0, 1] of the factor's range (or its list of values)."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        x = self.range.at(u)
        return round(x) if self.integer else float(x)


class Outcome(_Strict):
    name: str
    direction: Literal["max", "min", "info"] = "info"

    @model_validator(mode="after")
    def _known(self) -> Outcome:
        if self.name not in OUTCOMES:
            raise ValueError(f"name = {self.name!r} is not an outcome; allowed: {', '.join(OUTCOMES)}")
        return self


class Experiment(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    scenario: str | None = None
    sampler: Literal["lhs", "sobol", "morris", "factorial"] = "lhs"
    samples: int = Field(16, ge=1, le=1_000_000)
    replicates: int = Field(4, ge=1, le=10_000)
    seed: int = Field(1, ge=0, le=2**62)
    days: int = Field(180, ge=1, le=3650)
    agents: int = Field(4_950, ge=1, le=50_000_000)


class Spec(_Strict):
    experiment: Experiment
    uncertainties: list[Factor] = Field(default_factory=list)
    levers: list[Factor] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=lambda: [Outcome(name="defected_share", direction="max")])

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        factors = self.uncertainties + self.levers
        if not factors:
            raise ValueError("a spec needs at least one uncertainty or lever")
        paths = [f.path for f in factors]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"parameters listed twice: {', '.join(dupes)}")
        if self.experiment.sampler in ("sobol", "morris") and any(f.categorical for f in factors):
            bad = next(f.path for f in factors if f.categorical)
            raise ValueError(
                f"sampler '{self.experiment.sampler}' cannot take the categorical factor {bad}; "
                "use 'lhs' or 'factorial', or give it a numeric range"
            )
        return self

    @property
    def factors(self) -> list[Factor]:
        return self.uncertainties + self.levers

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def design_size(spec: Spec) -> int:
    """How many experiments the spec's design has, without building it."""
    ex, d = spec.experiment, len(spec.factors)
    if ex.sampler == "sobol":
        return ex.samples * (d + 2)
    if ex.sampler == "morris":
        return ex.samples * (d + 1)
    if ex.sampler == "factorial":
        return math.prod(len(f.values) if f.values is not None else ex.samples for f in spec.factors)
    return ex.samples


def design_agent_days(spec: Spec, experiments: int | None = None) -> float:
    """Agent-days of `experiments` of the design (default: all of them): experiments × replicates × agents × days."""
    ex = spec.experiment
    n = design_size(spec) if experiments is None else experiments
    return float(n) * ex.replicates * ex.agents * ex.days


class SpecError(ScenarioError):
    """A spec file could not be loaded."""

    def render(self) -> str:
        return render_problems(self.source, "invalid spec", self.problems)


def spec_from_dict(data: dict[str, Any], source: str = "<spec>") -> Spec:
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, problems_from_file_errors(err, "(spec)", keep_dict_values=False)) from None


def load_spec(path: str | Path, *, posterior: bool = True) -> tuple[Spec, Scenario]:
    """The validated spec and its base scenario (the spec's `experiment.scenario`, else the default);
    `posterior=False` ignores a posterior file the base scenario names (`load_scenario`)."""
    p = Path(path)
    try:
        data = read_toml(p)
    except InputFileError as e:
        raise SpecError(str(p), [e.problem]) from None
    spec = spec_from_dict(data, str(p))
    scenario = p.parent / spec.experiment.scenario if spec.experiment.scenario else None
    base = load_scenario(scenario, posterior=posterior)
    return spec, base
