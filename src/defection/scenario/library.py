"""The scenario library: ready scenarios shipped beside the default, each a readable TOML file
(`src/defection/data/scenarios/`) that `defection run NAME` and `load_scenario("NAME")` accept by name.

The historical cases are runnable too (`defection run --case ID`), from the case library (`defection.calibrate`);
`defection scenarios list` shows both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from defection.scenario.files import read_toml

# A library name: lower-case words, digits and hyphens; never a path (a name with a slash or a suffix is a file).
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class LibraryScenario:
    """One shipped scenario: its name (the file's stem), its one-line description and its file."""

    name: str
    description: str
    path: Path


def library_folder() -> Path:
    """The folder of shipped scenario files."""
    return Path(str(resources.files("defection") / "data" / "scenarios"))


def _description(path: Path) -> str:
    """The `meta.description` of a shipped file, read without validating it (the tests validate every file)."""
    meta = read_toml(path).get("meta", {})
    return str(meta.get("description", "")).strip()


def library_scenarios() -> list[LibraryScenario]:
    """Every shipped scenario, sorted by name."""
    return [LibraryScenario(p.stem, _description(p), p) for p in sorted(library_folder().glob("*.toml"))]


def library_names() -> list[str]:
    """The names of the shipped scenarios, sorted."""
    return [s.name for s in library_scenarios()]


def library_path(name: str) -> Path | None:
    """The file of the shipped scenario called `name`, or None when `name` is not one (or looks like a path)."""
    if not _NAME.match(name):
        return None
    path = library_folder() / f"{name}.toml"
    return path if path.is_file() else None
