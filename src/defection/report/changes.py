"""Which scenario parameters a run changed from the defaults, with unit and source from the registry."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from defection.scenario import Scenario, ScenarioError, default_scenario, iter_params, scenario_from_dict

_ITEM = re.compile(r"^(.*?\[\d+\])\.")


@dataclass(frozen=True)
class Change:
    """One parameter whose value differs from the default scenario's."""

    path: str
    value: Any
    default: Any
    unit: str
    source: str
    description: str


def scenario_of(run: dict[str, Any]) -> Scenario | None:
    """The scenario a run simulated (for exploration runs: the spec's base scenario); None if it has none."""
    try:
        data = json.loads(run.get("scenario_json") or "{}")
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("base_scenario"), dict):
        data = data["base_scenario"]
    if not isinstance(data, dict) or "simulation" not in data or "force" not in data:
        return None
    try:
        return scenario_from_dict(data, f"run {run.get('run_id', '')}")
    except ScenarioError:
        return None


def changed_parameters(scenario: Scenario, base: Scenario | None = None) -> list[Change]:
    """Every leaf parameter whose value differs from `base` (default: the default scenario), in registry order.
    A list entry the base has and the scenario lacks is one row with value '(removed)'; meta.* is left out."""
    base = base if base is not None else default_scenario()
    defaults = {p.path: p for p in iter_params(instance=base) if "[]" not in p.path}
    changes: list[Change] = []
    seen: set[str] = set()
    for p in iter_params(instance=scenario):
        if "[]" in p.path or p.path.startswith("meta."):
            continue
        seen.add(p.path)
        d = defaults.get(p.path)
        if d is None:
            changes.append(Change(p.path, p.default, None, p.unit, p.source, p.description))
        elif p.default != d.default:
            changes.append(Change(p.path, p.default, d.default, p.unit, p.source, p.description))
    removed: dict[str, Change] = {}
    for path, d in defaults.items():
        if path in seen or path.startswith("meta."):
            continue
        m = _ITEM.match(path)
        item = m.group(1) if m else path
        removed.setdefault(item, Change(item, "(removed)", "(present)", "", d.source, "list entry removed"))
    return changes + list(removed.values())


def shown(value: Any) -> str:
    """A parameter value as text ('–' for none)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
