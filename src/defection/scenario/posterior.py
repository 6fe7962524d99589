"""A posterior: a weighted sample of calibrated parameter sets, its file format and checks."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defection.scenario.build import with_changes
from defection.scenario.errors import Problem, ScenarioError
from defection.scenario.ranges import CALIBRATED
from defection.scenario.schema import Scenario

POSTERIOR_FORMAT = "defection-posterior/1"


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

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=float).reshape(-1, len(self.parameters))
        w = np.asarray(self.weights, dtype=float)
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
        return Posterior(tuple(self.parameters[j] for j in keep), self.samples[:, keep], self.weights, self.meta)

    def changes(self, k: int) -> dict[str, float]:
        return {p: float(v) for p, v in zip(self.parameters, self.samples[k], strict=True)}

    def apply(self, sc: Scenario, k: int) -> Scenario:
        """The scenario with particle k's parameter values."""
        return with_changes(sc, self.changes(k), "<posterior>")

    def summary(self) -> pd.DataFrame:
        """Weighted median and 90% interval of every parameter, with its prior range."""
        priors = {u.path: u for u in CALIBRATED}
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
        problems: list[Problem] = []
        if not isinstance(data, dict) or data.get("format") != POSTERIOR_FORMAT:
            raise PosteriorError(
                source,
                [
                    Problem(
                        "format",
                        data.get("format") if isinstance(data, dict) else data,
                        f"expected '{POSTERIOR_FORMAT}'",
                    )
                ],
            )
        raw_params = data.get("parameters")
        params: list[Any] = raw_params if isinstance(raw_params, list) else []
        known = {u.path for u in CALIBRATED}
        if not params:
            problems.append(Problem("parameters", raw_params, "expected a non-empty list of scenario paths"))
        else:
            problems += [
                Problem("parameters", p, "not a calibrated parameter; known: " + ", ".join(sorted(known)))
                for p in params
                if p not in known
            ]
        try:
            samples = np.asarray(data.get("samples"), dtype=float)
            weights = np.asarray(data.get("weights"), dtype=float)
        except (TypeError, ValueError):
            samples, weights = np.zeros((0, 0)), np.zeros(0)
            problems.append(Problem("samples", "…", "expected numbers"))
        if not problems:
            if samples.ndim != 2 or samples.shape[1] != len(params) or samples.shape[0] == 0:
                problems.append(
                    Problem("samples", f"shape {samples.shape}", f"expected (particles, {len(params)}) numbers")
                )
            elif weights.shape != (samples.shape[0],) or not np.all(weights >= 0) or weights.sum() <= 0:
                problems.append(
                    Problem(
                        "weights",
                        f"shape {weights.shape}",
                        f"expected {samples.shape[0]} non-negative weights with a positive sum",
                    )
                )
            elif not np.all(np.isfinite(samples)):
                problems.append(Problem("samples", "non-finite", "every sample must be a finite number"))
        if problems:
            raise PosteriorError(source, problems)
        return cls(tuple(params), samples, weights, dict(data.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        p = Path(path)
        if not p.is_file():
            raise PosteriorError(str(p), [Problem("(file)", str(p), "posterior file not found")])
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PosteriorError(str(p), [Problem("(file)", str(p), f"not JSON: {e}")]) from None
        return cls.from_dict(data, str(p))


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
