"""The historical case library: programmes that did or did not move soldiers, as scenario files with an
observed outcome.

A case file is TOML with three parts::

    [case]          id, title, period, sources, calibration_agents, family (conventional | insurgency)
    [[observed]]    outcome (an outcome of `defection run`), value, tolerance (log units), tag, note,
                    recorded, capture, capture_source (the observation model)
    [scenario]      overrides of the default scenario that map the historical context onto the model

The observed value refers to the simulated horizon (``scenario.simulation.days``); a case longer than the
horizon states its observed flow scaled to it. ``tolerance`` is the standard deviation of the observation
error on the natural-log scale; it may not be smaller than the floor for the source's reliability tag
(``TAG_MIN_TOLERANCE``). A case may not set a parameter that calibration estimates: those are shared across
cases.

The observation model: ``recorded`` says what the source counted (prosecutions, registered ralliers, prisoners
taken), and ``capture`` ∈ (0, 1] the share of the true flow that record catches (default 1, which needs no source;
any other value needs ``capture_source``: a source, or the word "assumption"). A simulated share is multiplied by
``capture`` before it is compared with, or reported against, the observed figure.

Before/after and dose pairs: an observation's ``changes`` (dotted scenario paths) make it observe another period of
the case, simulated with the same seed as the others (``Case.scenarios()``, ``Case.variant(k)``).

Zeros and bounds (eq. 40b): ``likelihood = "count"`` compares the number of soldiers the record counted,
value × ``force.soldiers`` (value may be 0), with the simulated count under a negative binomial;
``likelihood = "upper_bound"`` says the record counted fewer than value × ``force.soldiers``
(`calibrate.likelihood`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from defection.model.outputs import OUTCOMES
from defection.scenario import (
    Problem,
    Scenario,
    ScenarioError,
    default_scenario,
    problems_from_file_errors,
    scenario_from_dict,
    with_changes,
)
from defection.scenario.errors import _MISSING, render_problems
from defection.scenario.files import InputFileError, read_toml
from defection.scenario.ranges import CALIBRATED

# Floor on the log-scale tolerance by the reliability tag (docs/model.md, References): [S] sourced, [S2] secondary,
# [D] derived from sourced figures, [M] unverified. A factor of e^0.25 ≈ 1.3 is the best any source gets.
TAG_MIN_TOLERANCE = {"S": 0.25, "S2": 0.5, "D": 0.4, "M": 0.75}
# Observations are shares of the force, so one number compares across force sizes and agent counts.
SHARE_OUTCOMES = tuple(
    name
    for name in OUTCOMES
    if name.startswith("defected_share")
    or name
    in (
        "caught_share",
        "defected_programme_share",
        "deserted_share",
        "surrendered_share",
        "caught_deserting_share",
        "lost_share",
    )
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseMeta(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Short identifier, e.g. 'gulf-1991'.")
    title: str
    period: str
    description: str = ""
    sources: list[str] = Field(min_length=1)
    calibration_agents: int = Field(
        9_900, ge=99, le=2_000_000, description="Agents simulated for this case during calibration."
    )
    family: Literal["conventional", "insurgency"] = Field(
        "conventional", description="Family of war; each family has its own calibrated model discrepancy."
    )


class Observation(_Strict):
    outcome: str
    likelihood: Literal["lognormal", "count", "upper_bound"] = Field(
        "lognormal",
        description="How it is compared (eq. 40, 40b): a positive share on the log scale; a count of soldiers "
        "(value × force, may be 0) under a negative binomial; or an upper bound, fewer than value × force.",
    )
    value: float = Field(
        ge=0.0,
        description="Observed share of the force over the simulated horizon (> 0 for a lognormal observation, "
        "compared in logs; a count may be 0).",
    )
    tolerance: float = Field(gt=0.0, le=5.0, description="SD of the observation error, natural-log scale.")
    tag: Literal["S", "S2", "D", "M"]
    note: str = ""
    recorded: str = Field("", description="What the source counted, e.g. 'prosecutions for AWOL'.")
    capture: float = Field(1.0, gt=0.0, le=1.0, description="Share of the true flow the record catches.")
    capture_source: str = Field("", description="A source for `capture`, or the word 'assumption'.")
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description="Scenario changes for the period this observation covers, as dotted paths (e.g. "
        '{"offer.cash_usd" = 0} for the flow before a programme started): a before/after or dose pair in one '
        "case, simulated with common random numbers.",
    )

    @field_validator("value")
    @classmethod
    def _positive_unless_count(cls, v: float, info: ValidationInfo) -> float:
        kind = info.data.get("likelihood", "lognormal")
        if kind != "count" and v <= 0:
            raise ValueError(f'must be positive for a {kind} observation; a zero is a count: likelihood = "count"')
        return v

    @field_validator("outcome")
    @classmethod
    def _share_outcome(cls, v: str) -> str:
        if v not in SHARE_OUTCOMES:
            raise ValueError(f"not a share outcome of `defection run`; allowed: {', '.join(SHARE_OUTCOMES)}")
        return v

    @model_validator(mode="after")
    def _tolerance_for_tag(self) -> Observation:
        floor = TAG_MIN_TOLERANCE[self.tag]
        if self.tolerance < floor:
            raise ValueError(f"tolerance = {self.tolerance} is below {floor}, the floor for a [{self.tag}] source")
        if self.capture != 1.0 and not self.capture_source.strip():
            raise ValueError(
                f"capture = {self.capture} needs capture_source: a source for it, or the word 'assumption'"
            )
        return self

    def recorded_share(self, simulated: float) -> float:
        """The simulated share as the source would have recorded it: the true flow times `capture`."""
        return simulated * self.capture


class CaseFile(_Strict):
    case: CaseMeta
    observed: list[Observation] = Field(min_length=1)
    scenario: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """A validated historical case: its metadata, observations and scenario."""

    meta: CaseMeta
    observed: tuple[Observation, ...]
    scenario: Scenario
    path: str
    variants: tuple[Scenario, ...] = ()  # the scenario of each period: [0] is `scenario`, then each `changes`
    variant_of: tuple[int, ...] = ()  # the variant each observation is simulated in

    @property
    def id(self) -> str:
        return self.meta.id

    def scenarios(self) -> tuple[Scenario, ...]:
        """The scenario of each period the observations cover (one unless an observation has `changes`)."""
        return self.variants or (self.scenario,)

    def variant(self, k: int) -> int:
        """The index in `scenarios()` of observation k's period."""
        return self.variant_of[k] if self.variant_of else 0


class CaseError(ScenarioError):
    """A case file could not be loaded; carries the file and every problem found."""

    def render(self) -> str:
        return render_problems(self.source, "invalid case file", self.problems)


def _leaf_paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_leaf_paths(value, path + "."))
        else:
            out.append(path)
    return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def case_from_dict(data: dict[str, Any], source: str, calibrated: tuple[str, ...] = ()) -> Case:
    """Validate a parsed case file. `calibrated` lists scenario paths the case may not set."""
    try:
        cf = CaseFile.model_validate(data)
    except ValidationError as err:
        raise CaseError(source, problems_from_file_errors(err)) from None
    problems = [
        Problem(
            f"scenario.{path}", _MISSING, "is estimated by calibration and shared across cases; a case may not set it"
        )
        for path in _leaf_paths(cf.scenario)
        if path in calibrated
    ]
    if problems:
        raise CaseError(source, problems)
    merged = _deep_merge(default_scenario().model_dump(mode="json"), cf.scenario)
    merged.setdefault("meta", {})["name"] = cf.scenario.get("meta", {}).get("name", cf.case.id)
    try:
        sc = scenario_from_dict(merged, source)
    except ScenarioError as e:
        raise CaseError(source, [Problem(f"scenario.{p.path}", p.value, p.message) for p in e.problems]) from None
    if sc.war.kind not in (cf.case.family, "mixed"):
        raise CaseError(
            source,
            [
                Problem(
                    "scenario.war.kind",
                    sc.war.kind,
                    f'contradicts case.family = "{cf.case.family}": a case\'s war is of its family, or "mixed"',
                )
            ],
        )
    tiny = [
        Problem(
            f"observed[{k}].value",
            o.value,
            f"an upper bound of fewer than {o.value * sc.force.soldiers:.3g} soldiers (value × force.soldiers) "
            "cannot be recorded; a bound must be at least one soldier",
        )
        for k, o in enumerate(cf.observed)
        if o.likelihood == "upper_bound" and o.value * sc.force.soldiers < 1.0
    ]
    if tiny:
        raise CaseError(source, tiny)
    variants, variant_of = _variants(cf, sc, source, calibrated)
    return Case(cf.case, tuple(cf.observed), sc, source, variants, variant_of)


def _variants(
    cf: CaseFile, sc: Scenario, source: str, calibrated: tuple[str, ...]
) -> tuple[tuple[Scenario, ...], tuple[int, ...]]:
    """The scenario of each distinct `changes` among the observations (the case's own first), and each observation's
    index into them. Changes are validated as the scenario is; a calibrated parameter may not be changed."""
    keys: list[str] = [json.dumps({}, sort_keys=True)]
    scenarios = [sc]
    variant_of = []
    problems = []
    for k, o in enumerate(cf.observed):
        key = json.dumps(o.changes, sort_keys=True)
        if key not in keys:
            bad = [p for p in o.changes if p in calibrated]
            if bad:
                problems += [
                    Problem(
                        f"observed[{k}].changes.{p}", o.changes[p], "is estimated by calibration; a case may not set it"
                    )
                    for p in bad
                ]
                continue
            try:
                scenarios.append(with_changes(sc, o.changes, source))
            except (KeyError, TypeError):
                problems.append(
                    Problem(f"observed[{k}].changes", o.changes, "names a scenario field that does not exist")
                )
                continue
            except ScenarioError as e:
                problems += [Problem(f"observed[{k}].changes: {p.path}", p.value, p.message) for p in e.problems]
                continue
            keys.append(key)
        variant_of.append(keys.index(key))
    if problems:
        raise CaseError(source, problems)
    if len(scenarios) == 1:
        return (), ()
    return tuple(scenarios), tuple(variant_of)


def load_case(path: str | Path, calibrated: tuple[str, ...] | None = None) -> Case:
    """Load and validate one case file."""
    if calibrated is None:
        calibrated = tuple(u.path for u in CALIBRATED)
    p = Path(path)
    try:
        data = read_toml(p)
    except InputFileError as e:
        raise CaseError(str(p), [e.problem]) from None
    return case_from_dict(data, str(p), calibrated)


def library_dir() -> Path:
    """The folder of case files shipped with the package."""
    return Path(str(resources.files("defection") / "data" / "cases"))


def load_cases(folder: str | Path | None = None, only: list[str] | None = None) -> list[Case]:
    """Every case in a folder (default: the shipped library), sorted by id; `only` keeps the given ids."""
    root = Path(folder) if folder is not None else library_dir()
    if not root.is_dir():
        raise CaseError(str(root), [Problem("(folder)", _MISSING, "case folder not found")])
    cases = [load_case(f) for f in sorted(root.glob("*.toml"))]
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CaseError(str(root), [Problem("case.id", d, "used by more than one file") for d in dupes])
    if only:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise CaseError(
                str(root), [Problem("--case", u, "no such case; known: " + ", ".join(ids)) for u in unknown]
            )
        cases = [c for c in cases if c.id in only]
    if not cases:
        raise CaseError(str(root), [Problem("(folder)", _MISSING, "no case files (*.toml) found")])
    return sorted(cases, key=lambda c: c.id)


def observation_key(case: Case, k: int) -> str:
    """A unique name for observation k of a case (a case may observe one outcome twice, from two sources)."""
    return f"{case.id}:{k}:{case.observed[k].outcome}"


def log_floor(agents: int) -> float:
    """Half the smallest positive share that `agents` agents can show: a zero is compared as this value so
    its logarithm is finite."""
    return 0.5 / max(agents, 1)


def log_error(simulated: float, observed: float, floor: float) -> float:
    """log(simulated) − log(observed), with simulated values below `floor` raised to it."""
    return math.log(max(simulated, floor)) - math.log(observed)


def library_hash(cases: Sequence[Case]) -> str:
    """Which case library a calibration or backtest used: SHA-256 over the bytes of its case files, in sorted path
    order (a case not read from a file counts by its path)."""
    h = hashlib.sha256()
    for path in sorted(c.path for c in cases):
        p = Path(path)
        h.update(p.read_bytes() if p.is_file() else path.encode())
    return h.hexdigest()
