"""Scenario files: init/check round trip, the parameter registry, and clear errors for bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from defection.scenario import ScenarioError, default_scenario, iter_params, load_scenario, scenario_to_toml

from .conftest import cli


def test_default_toml_round_trips() -> None:
    text = scenario_to_toml()
    data = tomllib.loads(text)
    assert load_scenario_from_text(text) == default_scenario()
    assert data["offer"]["cash_usd"] == 100_000.0
    assert "# " in text and "Source:" in text


def load_scenario_from_text(text: str):
    from defection.scenario import scenario_from_dict

    return scenario_from_dict(tomllib.loads(text))


def test_every_parameter_has_unit_range_and_source() -> None:
    params = list(iter_params())
    assert len(params) > 80
    for p in params:
        if p.path.startswith("meta.") or p.path.endswith(".name") or isinstance(p.default, bool | str):
            continue
        assert p.unit, p.path
        assert p.lo is not None and p.hi is not None, p.path
        assert p.lo <= p.default <= p.hi, p.path
        assert (p.source and p.source != "design") or p.path.startswith("simulation."), p.path
    labelled = [p for p in params if "calibrated" in p.source or "assumption" in p.source]
    assert labelled, "calibrated/assumption parameters must say so"


def test_parameters_doc_is_current() -> None:
    from defection.scenario import registry_markdown

    from .conftest import ROOT

    assert (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8") == registry_markdown(), (
        "docs/parameters.md is stale: run `defection params --markdown > docs/parameters.md`"
    )


def test_init_writes_a_file_that_checks(tmp_path: Path) -> None:
    target = tmp_path / "s.toml"
    r = cli("init", str(target))
    assert r.returncode == 0, r.stderr
    assert cli("check", str(target)).returncode == 0
    assert cli("init", str(target)).returncode != 0  # refuses to overwrite


def test_params_json_lists_every_parameter() -> None:
    r = cli("params", "--json")
    assert r.returncode == 0
    rows = json.loads(r.stdout)
    paths = {row["path"] for row in rows}
    assert {"offer.cash_usd", "regime.monitors_per_soldier", "preferences.present_bias"} <= paths
    cash = next(row for row in rows if row["path"] == "offer.cash_usd")
    assert cash["unit"] == "USD" and cash["min"] == 0.0 and "proposal" in cash["source"]


BAD = [
    ("unknown key", "[offer]\ncash_usdd = 5\n", ["offer.cash_usdd", "unknown key", "cash_usd"]),
    ("unknown section", "[offre]\ncash_usd = 5\n", ["offre", "unknown key"]),
    ("wrong type", '[offer]\ncash_usd = "lots"\n', ["offer.cash_usd", "'lots'", "valid number"]),
    ("out of range", "[offer]\nasylum_probability = 1.5\n", ["offer.asylum_probability", "1.5", "[0.0, 1.0]"]),
    ("negative size", "[force]\nsoldiers = -5\n", ["force.soldiers", "-5", "[1, 20000000]"]),
    ("zero size", "[force]\nsquad_size = 0\n", ["force.squad_size", "0", "[2, 30]"]),
    ("shares", "[force.types.contract]\nshare = 0.9\n", ["force.types", "sum to 1", "1.33"]),
    ("class shares", "[force]\nrear_share = 0.5\n", ["force", "sum to 1"]),
    (
        "more agents than soldiers",
        "[force]\nsoldiers = 1000\n[simulation]\nagents = 5000\n",
        ["simulation.agents", "5000", "force.soldiers"],
    ),
    ("malformed", "[offer\ncash_usd = 5\n", ["malformed TOML", "line 1"]),
    (
        "channel",
        "[[information.channels]]\nname='x'\ndaily_reach = 2\n",
        ["information.channels.0.daily_reach", "[0.0, 1.0]"],
    ),
]


@pytest.mark.parametrize(("label", "text", "needles"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_get_clear_errors(tmp_path: Path, label: str, text: str, needles: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, (label, message)
    r = cli("check", str(path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert str(path) in r.stderr
    for needle in needles:
        assert needle in r.stderr.replace("\n", " ") or needle in r.stderr, (label, r.stderr)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path, needle in ((tmp_path / "nope.toml", "file not found"), (tmp_path, "is a directory")):
        r = cli("run", str(path), "--db", str(tmp_path / "x.duckdb"))
        assert r.returncode == 2
        assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_bad_command_line_overrides_are_reported(tmp_path: Path) -> None:
    r = cli("run", "--agents", "5000000", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    assert "simulation.agents" in r.stderr and "force.soldiers" in r.stderr
    r = cli("run", "--days", "0", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and "simulation.days" in r.stderr and "[1, 3650]" in r.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_every_shared_range_fits_its_parameter() -> None:
    """Calibration priors and the claims' sensitivity ranges are one type, checked against the registry."""
    from defection.claims import SENSITIVE
    from defection.scenario.ranges import CALIBRATED, Range

    for r in (*CALIBRATED, *SENSITIVE):
        assert r.problems() == [], r
    assert Range("offer.cash_usd", 10.0, 1.0).problems() == ["low = 10 must be below high = 1"]
    assert "is not a scenario parameter" in Range("offer.nothing", 0.0, 1.0).problems()[0]
    assert "needs low > 0" in Range("offer.cash_usd", 0.0, 1.0, log=True).problems()[0]
    assert "leaves the parameter's allowed range" in Range("crossing.killed_crossing_base", 0.1, 2.0).problems()[0]
