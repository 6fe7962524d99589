"""Scenarios from plain data: the default, a validated dict, dotted-path changes and simulation overrides."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from defection.scenario.errors import ScenarioError, problems_from_validation
from defection.scenario.schema import Scenario


def default_scenario() -> Scenario:
    """The embedded default scenario: the proposal, offered to Russian forces in Ukraine."""
    return Scenario()


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(source, problems_from_validation(err)) from None


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
