"""defection-lab: what package of cash, asylum, protection and education would make soldiers of an
invading army lay down their arms, how many would, how fast, and at what cost.

The names below are imported on first use (PEP 562), so that importing a submodule such as ``defection.cli``
does not load the engine (numba, pandas, scipy): ``defection --help`` and ``defection check`` start in well under
a second (docs/performance.md, "Start-up").
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {
    "RunResult": "defection.engine",
    "simulate": "defection.engine",
    "Scenario": "defection.scenario",
    "ScenarioError": "defection.scenario",
    "default_scenario": "defection.scenario",
    "load_scenario": "defection.scenario",
    "scenario_to_toml": "defection.scenario",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (and keep it, so the next access is direct)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'defection' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
