"""The new-run form: scenario schema → field descriptions, and form values → a validated scenario.

The form is generated from the parameter registry (`defection.scenario.iter_params`), so every field shows its
unit, range, default and source. Values are checked by the same code as a scenario file or the command line
(`scenario_from_dict`, the function behind `with_changes`), so a problem reads exactly as the CLI prints it.

Nothing here reads or writes a file: `simulation.posterior`, the one field that names a file, is not offered and
is refused, and a value is only ever handed to pydantic as data (never evaluated).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from defection.scenario import Problem, Scenario, ScenarioError, default_scenario, iter_params, scenario_from_dict

SOURCE = "<dashboard form>"
PATH_FIELDS = frozenset({"simulation.posterior"})  # fields that name a file: never offered, always refused
MAX_TEXT = 2000  # characters in a text field (meta.name, meta.description, channel names)

# The levers people change first, shown at the top of the form in this order, then the simulation settings.
COMMON = (
    "offer.cash_usd",
    "offer.share_on_arrival",
    "offer.asylum_probability",
    "offer.education",
    "offer.family_extraction_probability",
    "offer.protection",
    "offer.threat.prosecution_probability",
    "offer.schedule.rule",
    "offer.schedule.growth_per_step",
    "regime.monitors_per_soldier",
    "regime.response.mode",
    "information.reach_multiplier",
)
SIMULATION = (
    "simulation.agents",
    "simulation.days",
    "simulation.replicates",
    "simulation.seed",
    "simulation.mode",
    "meta.name",
    "meta.description",
)

GROUP_TITLES = {
    "common": "Common levers",
    "simulation": "Simulation",
    "force": "Force",
    "preferences": "Preferences",
    "combat": "Combat",
    "crossing": "Crossing",
    "regime": "Regime",
    "information": "Information",
    "credibility": "Credibility",
    "offer": "Offer",
    "programme": "Programme",
    "units": "Units",
    "routes": "Exit routes",
    "war": "The kind of war",
}

_INDEX = re.compile(r"^([a-z_]+)\[(\d+)\]$")
FieldKind = Literal["int", "float", "bool", "str", "choice", "text"]  # how a FormField is rendered and parsed


class FormError(Exception):
    """A request the form cannot accept: HTTP status, a message, and the problems behind it (if any)."""

    def __init__(self, status: int, detail: str, problems: list[Problem] | None = None, field: str | None = None):
        self.status = status
        self.detail = detail
        self.problems = problems or []
        self.field = field
        super().__init__(detail)


@dataclass(frozen=True)
class FormField:
    """One input of the form."""

    path: str  # dotted path as in `defection params`; list entries as information.channels[0].name
    group: str  # key of GROUP_TITLES
    label: str  # the path relative to its group
    kind: FieldKind
    default: Any
    unit: str
    lo: float | None
    hi: float | None
    source: str
    doc: str
    choices: tuple[str, ...] = ()

    @property
    def loc(self) -> str:
        """The path as a validation problem names it (list indices as `.0.`)."""
        return re.sub(r"\[(\d+)\]", r".\1", self.path)

    @property
    def range_text(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        if self.lo is None and self.hi is None:
            return ""
        return f"[{_num(self.lo)}, {_num(self.hi)}]"

    @property
    def default_text(self) -> str:
        return shown(self.default)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "group": self.group,
            "label": self.label,
            "kind": self.kind,
            "default": self.default,
            "unit": self.unit,
            "lo": self.lo,
            "hi": self.hi,
            "range": self.range_text,
            "source": self.source,
            "doc": self.doc,
            "choices": list(self.choices),
        }


def shown(value: Any) -> str:
    """A value as it appears in an input box."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _num(v: float | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return repr(v)


def _annotation(path: str) -> Any:
    """The type annotation of a leaf field, following nested models and list entries."""
    model: type[BaseModel] = Scenario
    ann: Any = None
    for part in path.split("."):
        name = _INDEX.sub(r"\1", part)
        info = model.model_fields[name]
        ann = info.annotation
        if get_origin(ann) is list:
            (ann,) = get_args(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    return ann


def _is_list(path: str) -> bool:
    """Whether a leaf field holds a list of choices (offer.rewards): the form shows it as comma-separated text."""
    model: type[BaseModel] = Scenario
    ann: Any = None
    for part in path.split("."):
        ann = model.model_fields[_INDEX.sub(r"\1", part)].annotation
        item = get_args(ann)[0] if get_origin(ann) is list else ann
        if isinstance(item, type) and issubclass(item, BaseModel):
            model = item
    return get_origin(ann) is list and not (isinstance(item, type) and issubclass(item, BaseModel))


def _kind(path: str, ann: Any) -> tuple[FieldKind, tuple[str, ...]]:
    if _is_list(path):
        return "str", tuple(str(a) for a in get_args(ann)) if get_origin(ann) is Literal else ()
    if get_origin(ann) is Literal:
        return "choice", tuple(str(a) for a in get_args(ann))
    if ann is bool:
        return "bool", ()
    if ann is int:
        return "int", ()
    if ann is float:
        return "float", ()
    return ("text" if path == "meta.description" else "str"), ()


def _build_fields() -> tuple[FormField, ...]:
    fields: dict[str, FormField] = {}
    for info in iter_params():
        if info.path in PATH_FIELDS or "[]" in info.path:  # a file path; or an entry of an empty list
            continue
        top = info.path.split(".")[0]
        group = top if top in GROUP_TITLES else "simulation"
        label = info.path.split(".", 1)[1] if "." in info.path else info.path
        kind, choices = _kind(info.path, _annotation(info.path))
        default = ", ".join(info.default) if isinstance(info.default, list) else info.default
        fields[info.path] = FormField(
            info.path,
            group,
            label,
            kind,
            default,
            info.unit,
            info.lo,
            info.hi,
            info.source,
            info.description,
            choices,
        )
    out: list[FormField] = []
    for path in COMMON:
        f = fields.pop(path)
        out.append(
            FormField(f.path, "common", f.path, f.kind, f.default, f.unit, f.lo, f.hi, f.source, f.doc, f.choices)
        )
    for path in SIMULATION:
        f = fields.pop(path)
        out.append(
            FormField(f.path, "simulation", f.path, f.kind, f.default, f.unit, f.lo, f.hi, f.source, f.doc, f.choices)
        )
    for group in GROUP_TITLES:
        out.extend(f for f in fields.values() if f.group == group)
    return tuple(out)


FIELDS: tuple[FormField, ...] = _build_fields()
FIELD_BY_PATH: dict[str, FormField] = {f.path: f for f in FIELDS}
LIST_FIELDS = frozenset(f.path for f in FIELDS if _is_list(f.path))
"""Fields that hold a list of choices, entered as comma-separated text."""


def groups() -> list[tuple[str, str, list[FormField]]]:
    """(key, title, fields) of every group, in form order."""
    return [
        (key, title, [f for f in FIELDS if f.group == key])
        for key, title in GROUP_TITLES.items()
        if any(f.group == key for f in FIELDS)
    ]


def check_changes(changes: dict[str, Any]) -> None:
    """Refuse field names that the form does not offer and values that are not plain scalars (FormError)."""
    for path, value in changes.items():
        if path in PATH_FIELDS:
            raise FormError(
                422,
                f"field '{path}' names a file and cannot be set from the dashboard; use "
                "`defection run --posterior FILE` on the command line",
                field=path,
            )
        if path not in FIELD_BY_PATH:
            shown_path = path if len(path) <= 100 and path.isprintable() else repr(path[:100]) + "…"
            raise FormError(
                422, f"unknown field '{shown_path}'; see GET /api/schema for the fields of the form", field=path
            )
        if isinstance(value, bool | int | str):
            if isinstance(value, str) and len(value) > MAX_TEXT:
                raise FormError(422, f"field '{path}': text of {len(value)} characters; at most {MAX_TEXT}", field=path)
            continue
        if isinstance(value, float):
            continue
        raise FormError(
            422,
            f"field '{path}': value must be a number, text or true/false, not "
            f"{'null' if value is None else type(value).__name__}",
            field=path,
        )


def scenario_for(changes: dict[str, Any], base: Scenario | None = None) -> Scenario:
    """The default scenario (or `base`) with the form's changes, validated exactly as a scenario file is.

    Raises FormError (unknown field, path field, non-scalar value) or ScenarioError (the CLI's messages)."""
    check_changes(changes)
    data = (base or default_scenario()).model_dump(mode="json")
    for path, value in changes.items():
        node: Any = data
        *parents, leaf = path.split(".")
        for part in parents:
            m = _INDEX.match(part)
            node = node[m.group(1)][int(m.group(2))] if m else node[part]
        if path in LIST_FIELDS and isinstance(value, str):  # "cross, surrender" → ["cross", "surrender"]
            value = [v.strip() for v in value.split(",") if v.strip()]
        node[leaf] = value
    return scenario_from_dict(data, SOURCE)


def problem_json(p: Problem) -> dict[str, Any]:
    """A problem for the browser: the field it belongs to (if one), and the CLI's text of it."""
    field = next((f.path for f in FIELDS if f.loc == p.path), None)
    return {"path": p.path, "field": field, "message": p.message, "text": str(p)}


__all__ = [
    "FIELDS",
    "FIELD_BY_PATH",
    "SOURCE",
    "FormError",
    "FormField",
    "ScenarioError",
    "check_changes",
    "groups",
    "problem_json",
    "scenario_for",
]
