"""defection-lab: what package of cash, asylum, protection and education would make soldiers of an
invading army lay down their arms, how many would, how fast, and at what cost."""

from defection.engine import RunResult, simulate
from defection.scenario import Scenario, ScenarioError, default_scenario, load_scenario, scenario_to_toml

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "default_scenario",
    "load_scenario",
    "scenario_to_toml",
    "simulate",
]
