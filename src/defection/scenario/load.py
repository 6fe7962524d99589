"""Loading, changing and validating scenarios."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from defection.scenario.errors import _MISSING, Problem, ScenarioError, problems_from_validation
from defection.scenario.schema import Scenario


# Loading and writing
def default_scenario() -> Scenario:
    """The embedded default scenario: the proposal, offered to Russian forces in Ukraine."""
    return Scenario()


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(source, problems_from_validation(err)) from None


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load and validate a scenario TOML file; ``None`` gives the default scenario."""
    if path is None:
        return default_scenario()
    p = Path(path)
    if not p.exists():
        raise ScenarioError(str(p), [Problem("(file)", _MISSING, "file not found")])
    if p.is_dir():
        raise ScenarioError(str(p), [Problem("(file)", _MISSING, "is a directory, expected a TOML file")])
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError(str(p), [Problem("(file)", _MISSING, "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(p), [Problem("(file)", _MISSING, f"malformed TOML: {err}")]) from None
    sc = scenario_from_dict(data, str(p))
    if sc.simulation.posterior:
        sc = with_posterior(sc, sc.simulation.posterior, str(p), base=p.parent)
    return sc


def with_posterior(
    sc: Scenario, posterior: str | Path, source: str = "<command line>", base: Path | None = None
) -> Scenario:
    """The scenario with `simulation.posterior` set to a checked, absolute path of a posterior file (a relative
    path is taken from `base`, the scenario file's folder)."""
    from defection.scenario.posterior import Posterior, PosteriorError

    path = ((base or Path.cwd()) / posterior).resolve()
    try:
        Posterior.load(path)
    except PosteriorError as e:
        why = "; ".join(q.message if q.path == "(file)" else f"{q.path}: {q.message}" for q in e.problems)
        raise ScenarioError(source, [Problem("simulation.posterior", str(posterior), f"{why} ({path})")]) from None
    sc = sc.model_copy(deep=True)
    sc.simulation.posterior = str(path)
    return sc


def with_changes(sc: Scenario, changes: dict[str, Any], source: str = "<changes>") -> Scenario:
    """A validated copy of the scenario with dotted-path changes, e.g. {"offer.cash_usd": 0}."""
    data = sc.model_dump(mode="json")
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return scenario_from_dict(data, source)


def with_overrides(sc: Scenario, source: str = "<command line>", **simulation: Any) -> Scenario:
    """A copy of the scenario with simulation settings replaced (None values are ignored)."""
    data = sc.model_dump(mode="json")
    for key, value in simulation.items():
        if value is not None:
            data["simulation"][key] = value
    return scenario_from_dict(data, source)
