"""CONTRIBUTING.md stays true: every file or folder it names exists, and every code name its recipes rely on is
defined where it says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "defection"
TEXT = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")


def named_paths() -> set[str]:
    """Backticked tokens that look like repository paths (`model/outputs.py`, `src/defection/data/cases/`)."""
    tokens = set(re.findall(r"`([A-Za-z0-9_./-]+)`", TEXT))
    return {t for t in tokens if ("/" in t or t.endswith(".py") or t.endswith(".md")) and " " not in t}


def exists(token: str) -> bool:
    token = token.rstrip("/")
    candidates = [
        ROOT / token,
        PKG / token,
        *(PKG / d / token for d in ("model", "scenario", "store", "report", "cli")),
    ]
    return any(c.exists() for c in candidates)


def test_every_path_in_contributing_exists() -> None:
    paths = named_paths()
    assert len(paths) > 20  # the map names the layers; the recipes name the files to touch
    missing = sorted(p for p in paths if not exists(p))
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {missing}"


def test_recipe_names_are_defined() -> None:
    from defection.model import outcomes, outputs, parameters
    from defection.report import figures, html, series

    for module, names in (
        (outputs, ("OUTCOMES", "OPEN_ENDED", "add_outcome", "SERIES", "COUNT_SERIES")),
        (outcomes, ("replicate_outcomes",)),
        (parameters, ("EngineParams", "engine_params")),
        (series, ("bands",)),
        (html, ("CAPTIONS", "simulation_figures")),
        (figures, ()),
    ):
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name} is named in CONTRIBUTING.md but does not exist"
