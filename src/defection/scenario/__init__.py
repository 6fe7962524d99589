"""Scenarios: the schema of every parameter (unit, default, range, source), loading and validation with
clear errors, the parameter registry and its TOML/Markdown forms, and posterior files.

This is the bottom layer of the package: it imports nothing else from `defection`.
"""

from defection.scenario.build import default_scenario, scenario_from_dict, with_changes, with_overrides
from defection.scenario.errors import Problem, ScenarioError, problems_from_file_errors, problems_from_validation
from defection.scenario.load import load_scenario, with_posterior
from defection.scenario.registry import ParamInfo, iter_params, registry_markdown, scenario_to_toml
from defection.scenario.schema import ROUTE_NAMES, TYPE_NAMES, Scenario

__all__ = [
    "ROUTE_NAMES",
    "TYPE_NAMES",
    "ParamInfo",
    "Problem",
    "Scenario",
    "ScenarioError",
    "default_scenario",
    "iter_params",
    "load_scenario",
    "problems_from_file_errors",
    "problems_from_validation",
    "registry_markdown",
    "scenario_from_dict",
    "scenario_to_toml",
    "with_changes",
    "with_overrides",
    "with_posterior",
]
