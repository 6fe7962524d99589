"""Scenario errors: every problem with its file, field path, value and allowed range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from defection.scenario.schema import Scenario


# Errors
@dataclass(frozen=True)
class Problem:
    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        shown = "" if self.value is _MISSING else f" = {self.value!r}"
        return f"{self.path}{shown}: {self.message}"


_MISSING = object()


class ScenarioError(Exception):
    """A scenario could not be loaded; carries the file and every problem found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        return render_problems(self.source, "invalid scenario", self.problems)


MAX_LISTED = 20
"""The most problems listed for one file; the rest are counted ("… and 399,980 more"), so a file of a million
mistakes gives a screenful, not megabytes."""


def render_problems(source: str, what: str, problems: list[Problem]) -> str:
    """`source: what (N problems)` and one line per problem, at most `MAX_LISTED` of them and a count of the rest."""
    n = len(problems)
    lines = [f"{source}: {what} ({n:,} problem{'s' if n != 1 else ''})"]
    lines += [f"  - {p}" for p in problems[:MAX_LISTED]]
    if n > MAX_LISTED:
        lines.append(f"  … and {n - MAX_LISTED:,} more")
    return "\n".join(lines)


def _field_meta(path: tuple[str | int, ...]) -> tuple[dict[str, Any], str] | None:
    """Registry metadata for a field path such as ('offer', 'cash_usd')."""
    model: type[BaseModel] | None = Scenario
    info = None
    for part in path:
        if model is None or isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        ann = info.annotation
        inner = getattr(ann, "__args__", (ann,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None and isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    if info is None:
        return None
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return extra, str(info.annotation)


def _allowed_keys(path: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        ann = info.annotation
        inner = getattr(ann, "__args__", (ann,))
        nxt = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def problems_from_validation(err: ValidationError) -> list[Problem]:
    out: list[Problem] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        value = e.get("input", _MISSING)
        kind = e["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            msg = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        elif kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
            meta = _field_meta(loc)
            if meta:
                extra, _ = meta
                msg = f"out of range; allowed range is [{extra.get('lo')}, {extra.get('hi')}] {extra.get('unit', '')}"
            else:
                msg = e["msg"]
        elif kind == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            value = _MISSING
            if not loc:
                path = "(scenario)"
        else:
            meta = _field_meta(loc)
            expected = meta[1].replace("<class '", "").replace("'>", "") if meta else ""
            msg = e["msg"] + (f" (expected {expected})" if expected else "")
        out.append(Problem(path, value, msg.strip()))
    return out


def problems_from_file_errors(
    err: ValidationError, top: str = "(top level)", keep_dict_values: bool = True
) -> list[Problem]:
    """Problems for a file that is not a scenario (a case file, an exploration spec): path in TOML form
    (`levers[1].low`), the offending value, and pydantic's message made plain."""
    problems = []
    for e in err.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        value = e.get("input", _MISSING)
        msg = e["msg"]
        if e["type"] == "value_error":
            msg = str(e.get("ctx", {}).get("error", msg))
            value = value if keep_dict_values and not isinstance(value, dict) else _MISSING
        elif e["type"] == "missing":
            msg, value = "required field is missing", _MISSING
        elif e["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(Problem(path or top, value, msg))
    return problems
