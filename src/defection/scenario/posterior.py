"""A posterior: a weighted sample of calibrated parameter sets, its file format and checks."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from defection.scenario.build import with_changes
from defection.scenario.errors import _MISSING, Problem, ScenarioError, problems_from_file_errors
from defection.scenario.files import MAX_DEPTH, MAX_JSON_BYTES, InputFileError, read_json
from defection.scenario.ranges import CALIBRATED, DISCREPANCY, discrepancy_path
from defection.scenario.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd  # imported in `summary`: loading a scenario needs no pandas (0.6 s of `defection check`)

POSTERIOR_FORMAT = "defection-posterior/1"
_PRIORS = (*CALIBRATED, *DISCREPANCY)  # every parameter a posterior may carry, with its prior range
_NON_SCENARIO = frozenset(u.path for u in DISCREPANCY)  # carried by a posterior, never set in a scenario


# ----------------------------------------------------------------------------- the posterior
class PosteriorError(ScenarioError):
    """A posterior file could not be read."""

    def render(self) -> str:
        return "\n".join([f"{self.source}: invalid posterior file", *(f"  - {p}" for p in self.problems)])


@dataclass
class Posterior:
    """A weighted sample of calibrated parameter sets (natural units, one row per particle)."""

    parameters: tuple[str, ...]
    samples: np.ndarray  # (particles, parameters)
    weights: np.ndarray  # (particles,), sums to 1
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)  # where it was read from (a file, a stored calibration)

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=float).reshape(-1, len(self.parameters))
        w = np.asarray(self.weights, dtype=float)
        if w.size and np.max(w) > 0:
            w = w / np.max(w)  # first scaled to at most 1, so that the sum of very large weights cannot overflow
        self.weights = w / w.sum()

    @property
    def size(self) -> int:
        return int(self.samples.shape[0])

    def particle_at(self, u: float) -> int:
        """The particle whose weighted cumulative share first exceeds u ∈ (0, 1) (inverse CDF, eq. 41)."""
        k = int(np.searchsorted(np.cumsum(self.weights), u, side="right"))
        return min(k, self.size - 1)

    def without(self, paths: Sequence[str]) -> Posterior:
        """The same particles and weights without some parameters: a variant that sets a calibrated parameter
        itself keeps its value, and replicate r still draws particle k(r) for the rest (paired comparisons)."""
        keep = [j for j, p in enumerate(self.parameters) if p not in set(paths)]
        return Posterior(
            tuple(self.parameters[j] for j in keep), self.samples[:, keep], self.weights, self.meta, self.source
        )

    def changes(self, k: int) -> dict[str, float]:
        """Particle k's scenario parameter values (the discrepancy SDs, which are not scenario parameters, left out)."""
        return {p: float(v) for p, v in zip(self.parameters, self.samples[k], strict=True) if p not in _NON_SCENARIO}

    def discrepancy(self, k: int, family: str) -> float | None:
        """Particle k's structural-error SD (log scale) for a family of cases; None if the posterior has none."""
        path = discrepancy_path(family)
        return float(self.samples[k, self.parameters.index(path)]) if path in self.parameters else None

    def apply(self, sc: Scenario, k: int) -> Scenario:
        """The scenario with particle k's parameter values."""
        return with_changes(sc, self.changes(k), "<posterior>")

    def summary(self) -> pd.DataFrame:
        """Weighted median and 90% interval of every parameter, with its prior range."""
        import pandas as pd

        priors = {u.path: u for u in _PRIORS}
        rows = []
        for j, path in enumerate(self.parameters):
            med, lo, hi = weighted_quantiles(self.samples[:, j], self.weights, (0.5, 0.05, 0.95))
            u = priors.get(path)
            rows.append(
                {
                    "parameter": path,
                    "median": med,
                    "p05": lo,
                    "p95": hi,
                    "prior_lo": u.lo if u else math.nan,
                    "prior_hi": u.hi if u else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": POSTERIOR_FORMAT,
            "parameters": list(self.parameters),
            "samples": self.samples.tolist(),
            "weights": self.weights.tolist(),
            "meta": self.meta,
        }

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def loaded_hash(self) -> str:
        """The content hash of this posterior as a command will see it once saved and loaded again: loading
        renormalises the weights (`__post_init__`), which can change some of them in the last bit, so a fresh
        calibration's own `content_hash` may differ from the one every command prints for its file."""
        return Posterior.from_dict(json.loads(json.dumps(self.to_dict()))).content_hash()

    def save(self, path: str | Path) -> Path:
        """Write the posterior as JSON (atomically: a temporary file renamed into place)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")
        os.replace(tmp, target)
        return target

    @classmethod
    def from_dict(cls, data: Any, source: str = "<posterior>") -> Posterior:
        """A checked posterior from a parsed file; every problem is named by its path in the file (`samples[3][1]`)."""
        if not isinstance(data, dict):
            raise PosteriorError(source, [Problem("(top level)", type(data).__name__, "expected a JSON object")])
        if data.get("format") != POSTERIOR_FORMAT:
            raise PosteriorError(
                source, [Problem("format", data.get("format", _MISSING), f"expected '{POSTERIOR_FORMAT}'")]
            )
        problems = [
            Problem(str(key), _MISSING, "unknown key; allowed keys: " + ", ".join(FIELDS))
            for key in data
            if key not in FIELDS
        ]
        problems += parameter_problems(data.get("parameters"))
        if not problems:
            problems = sample_problems(data.get("samples"), tuple(data["parameters"]))
        if isinstance(data.get("samples"), list) and data["samples"]:  # the particle count is known
            problems += weight_problems(data.get("weights"), len(data["samples"]))
        problems += meta_problems(data.get("meta"))
        if problems:
            raise PosteriorError(source, _shortened(problems))
        return cls(
            tuple(data["parameters"]),
            np.array(data["samples"], dtype=float),
            np.array(data["weights"], dtype=float),
            dict(data.get("meta") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        """Read and check a posterior file as a whole (`from_dict`); refuses a file that is missing or not a regular
        file, larger than `MAX_BYTES`, not UTF-8 JSON, with a key given twice in one object, or nested deeper than
        `MAX_DEPTH` (`scenario.files.read_json`)."""
        p = Path(path)
        try:
            data = read_json(p, MAX_BYTES, MAX_DEPTH)
        except InputFileError as e:
            raise PosteriorError(str(p), [e.problem]) from None
        post = cls.from_dict(data, str(p))
        post.source = str(p)
        return post


# ----------------------------------------------------------------------------- checks of a posterior file
MAX_BYTES = MAX_JSON_BYTES
"""The largest posterior file read: 50 MB is about a million particles of nine parameters."""
FIELDS = ("format", "parameters", "samples", "weights", "meta")
"""The members of a posterior file; any other is refused (a misspelt `weight` would otherwise be ignored)."""
MAX_PROBLEMS = 20
"""The most problems listed for one file; the rest are counted."""
RANGE_TOLERANCE = 1e-9
"""Relative slack on a prior range's bounds, for float round-off in a sample written at a bound (e.g. 10**log10(hi))."""


def _shortened(found: list[Problem]) -> list[Problem]:
    """At most `MAX_PROBLEMS` of `found` (the checks stop early once they have more), and a note that there are more."""
    if len(found) <= MAX_PROBLEMS:
        return found
    return [*found[:MAX_PROBLEMS], Problem("…", _MISSING, "more problems not shown")]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_finite_number(v: int | float) -> bool:
    """Whether a number is finite as a float (an integer beyond float range is not)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer beyond float range
        return False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # strict: "3" is not a number, 1 is not true


class PriorMeta(_Strict):
    """One parameter's prior, as a calibration records it in `meta.priors`."""

    lo: float
    hi: float
    log: bool = False
    why: str = ""


class PosteriorMeta(_Strict):
    """A posterior's `meta` object: what `defection calibrate` records (all optional: a posterior written by hand
    may carry none). Other keys are kept as they are; a known key must have its type."""

    created: str | None = None
    method: str | None = None
    error_model: str | None = None
    cases: list[str] | None = None
    observations: list[str] | None = None
    final_epsilon: float | None = Field(None, ge=0)  # may be +inf for a calibration stopped in its first generation
    effective_sample_size: float | None = Field(None, ge=0, allow_inf_nan=False)
    settings: dict[str, Any] | None = None
    priors: dict[str, PriorMeta] | None = None
    cases_hash: str | None = None
    code_version: str | None = None
    run_id: str | None = None


def meta_problems(raw: Any) -> list[Problem]:
    """`meta`, if present, must be an object whose known keys have their types (`PosteriorMeta`)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Problem("meta", type(raw).__name__, "expected an object")]
    try:
        PosteriorMeta.model_validate(raw)
    except ValidationError as err:
        return [Problem(f"meta.{p.path}", p.value, p.message) for p in problems_from_file_errors(err)]
    return []


def parameter_problems(raw: Any) -> list[Problem]:
    """`parameters` must list distinct calibrated parameters (`ranges.CALIBRATED`, by scenario path, and the
    discrepancy SDs `ranges.DISCREPANCY`)."""
    known = {u.path for u in _PRIORS}
    if not isinstance(raw, list) or not raw:
        return [
            Problem("parameters", raw if raw is not None else _MISSING, "expected a non-empty list of scenario paths")
        ]
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            problems.append(Problem(f"parameters[{i}]", name, "expected a scenario path (a string)"))
        elif name not in known:
            problems.append(
                Problem(f"parameters[{i}]", name, "not a calibrated parameter; known: " + ", ".join(sorted(known)))
            )
        elif name in first:
            problems.append(Problem(f"parameters[{i}]", name, f"duplicate of parameters[{first[name]}]"))
        else:
            first[name] = i
    return problems


def sample_problems(raw: Any, params: tuple[str, ...]) -> list[Problem]:
    """`samples` must be a (particles × parameters) list of lists of finite numbers inside each parameter's prior
    range (natural units, with `RANGE_TOLERANCE`)."""
    n = len(params)
    if not isinstance(raw, list) or not raw:
        return [
            Problem(
                "samples",
                _MISSING if raw is None else raw,
                f"expected a non-empty list of particles, each a list of {n} numbers",
            )
        ]
    widths = {len(row) if isinstance(row, list) else -1 for row in raw}
    if -1 not in widths and len(widths) == 1 and n not in widths:
        return [
            Problem(
                "samples",
                f"shape ({len(raw)}, {widths.pop()})",
                f"expected (particles, {n}) numbers: one column per parameter",
            )
        ]
    problems = []
    for i, row in enumerate(raw):
        if not isinstance(row, list):
            problems.append(Problem(f"samples[{i}]", row, f"expected a list of {n} numbers (one per parameter)"))
        elif len(row) != n:
            problems.append(Problem(f"samples[{i}]", f"{len(row)} values", f"expected {n} (one per parameter)"))
        else:
            problems += [
                Problem(f"samples[{i}][{j}]", v, "expected a number" if not _is_number(v) else "not a finite number")
                for j, v in enumerate(row)
                if not _is_number(v) or not _is_finite_number(v)
            ]
        if len(problems) > MAX_PROBLEMS:
            return problems
    if problems:
        return problems
    priors = {u.path: u for u in _PRIORS}
    for j, path in enumerate(params):
        u = priors.get(path)
        if u is None:
            continue
        slack = RANGE_TOLERANCE * max(abs(u.lo), abs(u.hi))
        problems += [
            Problem(f"samples[{i}][{j}]", row[j], f"outside the prior range [{u.lo:g}, {u.hi:g}] of {path}")
            for i, row in enumerate(raw)
            if not u.lo - slack <= row[j] <= u.hi + slack
        ]
    return problems


def weight_problems(raw: Any, particles: int) -> list[Problem]:
    """`weights` must be one finite, non-negative number per particle, not all zero."""
    if not isinstance(raw, list):
        return [Problem("weights", raw if raw is not None else _MISSING, f"expected a list of {particles} numbers")]
    if len(raw) != particles:
        return [Problem("weights", f"{len(raw)} values", f"expected {particles}: one per particle (row of samples)")]
    problems = [
        Problem(
            f"weights[{i}]",
            w,
            "expected a number"
            if not _is_number(w)
            else "not a finite number"
            if not _is_finite_number(w)
            else "negative; weights must be ≥ 0",
        )
        for i, w in enumerate(raw)
        if not _is_number(w) or not _is_finite_number(w) or w < 0
    ]
    if not problems and not any(w > 0 for w in raw):
        problems.append(Problem("weights", "all zero", "expected a positive sum"))
    return problems


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of a weighted sample, (Σw)²/Σw²."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2))


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Quantiles of a weighted sample (inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cdf = np.cumsum(w) / w.sum()
    return [float(v[min(int(np.searchsorted(cdf, q, side="left")), v.size - 1)]) for q in qs]


def shipped_posterior_path() -> Path:
    """The calibrated model that the commands use by default: `defection/data/posterior/default.json`, written by
    `make calibrate` (docs/calibration.md, "The shipped posterior")."""
    return Path(str(resources.files("defection") / "data" / "posterior" / "default.json"))
