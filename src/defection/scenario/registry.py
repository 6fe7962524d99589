"""The parameter registry: every leaf parameter with unit, range and source; TOML and Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from defection.scenario.build import default_scenario
from defection.scenario.schema import Scenario, SoldierTypes


# The parameter registry
@dataclass(frozen=True)
class ParamInfo:
    path: str
    unit: str
    default: Any
    lo: float | None
    hi: float | None
    source: str
    description: str


def iter_params(
    model: type[BaseModel] = Scenario, prefix: str = "", instance: BaseModel | None = None
) -> Iterator[ParamInfo]:
    """Every leaf parameter of the schema, in declaration order, with its metadata."""
    inst = instance if instance is not None else model()
    for name, info in model.model_fields.items():
        value = getattr(inst, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from iter_params(type(value), path + ".", value)
            continue
        item_model = _list_item_model(info.annotation)
        if item_model is not None:
            if value:
                for i, item in enumerate(value):
                    yield from iter_params(type(item), f"{path}[{i}].", item)
            else:  # an empty list: document the fields of one entry
                yield from iter_params(item_model, f"{path}[].", item_model())
            continue
        # param() stores unit/source (str) and lo/hi (number or None) here; pydantic types it as JSON.
        extra: dict[str, Any] = dict(info.json_schema_extra) if isinstance(info.json_schema_extra, dict) else {}
        source = extra.get("source", "design")
        if source == "see type":
            owner = type(inst).__name__
            source = f"see {prefix.rstrip('.')} ({owner})"
            parent_doc = None
            if prefix.startswith("force.types."):
                tname = prefix.split(".")[2]
                parent_doc = SoldierTypes.model_fields[tname].description
            if parent_doc:
                source = parent_doc
        yield ParamInfo(
            path, extra.get("unit", ""), value, extra.get("lo"), extra.get("hi"), source, info.description or ""
        )


@cache
def registry() -> dict[str, ParamInfo]:
    """Every leaf parameter of the default scenario by dotted path (computed once; the schema never changes)."""
    return {p.path: p for p in iter_params()}


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    """X for a field annotated list[X] with X a pydantic model, else None."""
    if get_origin(annotation) is not list:
        return None
    (item,) = get_args(annotation)
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


def registry_markdown() -> str:
    """docs/parameters.md: the registry as a Markdown table (`defection params --markdown`)."""

    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("\n", " ").replace("|", "\\|")

    lines = [
        "# Parameters",
        "",
        "Generated from `src/defection/scenario/schema.py` (the parameter registry) by "
        "`defection params --markdown > docs/parameters.md`; do not edit by hand. A test fails if it is stale.",
        "",
        "| parameter | default | unit | range | source | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for p in iter_params():
        rng = "" if p.lo is None else f"[{p.lo}, {p.hi}]"
        cells = (f"`{p.path}`", p.default, p.unit, rng, p.source, p.description)
        lines.append("| " + " | ".join(cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:_}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e7):
            return repr(v)
        if v.is_integer() and abs(v) >= 10_000:
            return f"{int(v):_}.0"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _comment(info: ParamInfo) -> str:
    rng = "" if info.lo is None else f"; range [{info.lo}, {info.hi}]"
    unit = info.unit or "-"
    text = f"{info.description} [{unit}{rng}] Source: {info.source}"
    return text.replace("\n", " ")


def scenario_to_toml(sc: Scenario | None = None) -> str:
    """The scenario as a commented TOML file: every parameter with unit, range and source."""
    sc = sc or default_scenario()
    lines = [
        "# defection-lab scenario. Every parameter is listed with its unit, allowed range and source.",
        "# Validate with `defection check FILE`; run with `defection run FILE`.",
        "",
    ]

    def emit(model: BaseModel, table: str, array: bool = False) -> None:
        header = f"[[{table}]]" if array else f"[{table}]"
        doc = type(model).__doc__
        lines.append(header)
        if doc and not array and not doc.startswith("A complete"):
            lines.append(f"# {doc.strip().splitlines()[0]}")
        subs: list[tuple[str, Any]] = []
        for info in iter_params(type(model), "", model):
            if "." in info.path or "[" in info.path:
                continue
            lines.append(f"# {_comment(info)}")
            lines.append(f"{info.path} = {_toml_value(info.default)}")
        for name, field_info in type(model).model_fields.items():
            value = getattr(model, name)
            item_model = _list_item_model(field_info.annotation)
            if item_model is not None and not value:
                lines.append(f"# {field_info.description} None by default; an entry looks like:")
                lines.append(f"# [[{table}.{name}]]")
                for info in iter_params(item_model, "", item_model()):
                    lines.append(f"# {info.path} = {_toml_value(info.default)}    # {_comment(info)}")
                lines.append("")
            elif isinstance(value, BaseModel) or item_model is not None:
                subs.append((name, value))
        lines.append("")
        for name, value in subs:
            if isinstance(value, list):
                for item in value:
                    emit(item, f"{table}.{name}", array=True)
            else:
                emit(value, f"{table}.{name}")

    for name in Scenario.model_fields:
        emit(getattr(sc, name), name)
    return "\n".join(lines).rstrip() + "\n"
