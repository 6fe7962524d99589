"""Scenario files: init/check round trip, the parameter registry, and clear errors for bad input."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from defection.scenario import ScenarioError, default_scenario, iter_params, load_scenario, scenario_to_toml

from .conftest import ROOT, cli_in_process


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
        if p.path.startswith("meta.") or p.path.endswith(".name") or isinstance(p.default, bool | str | list):
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
    r = cli_in_process("init", str(target))
    assert r.returncode == 0, r.stderr
    assert cli_in_process("check", str(target)).returncode == 0
    assert cli_in_process("init", str(target)).returncode != 0  # refuses to overwrite


def test_params_json_lists_every_parameter() -> None:
    r = cli_in_process("params", "--json")
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
    r = cli_in_process("check", str(path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert str(path) in r.stderr
    for needle in needles:
        assert needle in r.stderr.replace("\n", " ") or needle in r.stderr, (label, r.stderr)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path, needle in ((tmp_path / "nope.toml", "file not found"), (tmp_path, "is a directory")):
        r = cli_in_process("run", str(path), "--db", str(tmp_path / "x.duckdb"))
        assert r.returncode == 2
        assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_bad_command_line_overrides_are_reported(tmp_path: Path) -> None:
    r = cli_in_process("run", "--agents", "5000000", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    assert "simulation.agents" in r.stderr and "force.soldiers" in r.stderr
    r = cli_in_process("run", "--days", "0", "--db", str(tmp_path / "x.duckdb"))
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


# Spelled in pieces so that this file does not match itself.
OUTSIDE_FILES = ("model" + "-reference", "history" + ".md", "shared" + "/reference")
REFERENCE_KEY = re.compile(r"^[A-Z]\d+[a-z]?$")


def cited_keys(text: str) -> set[str]:
    """Reference keys such as [S5], [C2a] or [S1, S7] in `text`; tags like [S], [D/M] or [S, Time 1967] are not keys."""
    return {
        key
        for inside in re.findall(r"\[([^\[\]\n]+)\]", text)
        for key in (part.strip() for part in inside.split(","))
        if REFERENCE_KEY.match(key)
    }


def test_cited_keys_reads_key_lists_and_skips_tags() -> None:
    assert cited_keys("Watts [C5]; [S1, S7] and [C2a]; tags [S], [D/M], [S, Time 1967], [S2]") == {
        "C5",
        "S1",
        "S7",
        "C2a",
        "S2",
    }


def test_no_citation_of_files_outside_the_repository() -> None:
    roots = [ROOT / "src", ROOT / "docs", ROOT / "tests", ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    files = [f for r in roots for f in ([r] if r.is_file() else r.rglob("*")) if f.is_file()]
    offenders = []
    for f in files:
        if "__pycache__" in f.parts:
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{f.relative_to(ROOT)}: {name}" for name in OUTSIDE_FILES if name in text]
    assert len(files) > 50
    assert offenders == [], "cite docs/model.md sections or its References instead"


def test_every_cited_reference_key_is_in_the_references_list() -> None:
    model = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    references = model.split("\n## References\n", 1)[1]
    listed = set(re.findall(r"^- \[([A-Z]\d+[a-z]?)\] ", references, flags=re.MULTILINE))
    assert {"C1", "S5", "R8", "F1"} <= listed
    sources = [
        ROOT / "src" / "defection" / "scenario" / "schema.py",
        ROOT / "src" / "defection" / "scenario" / "ranges.py",
        *sorted((ROOT / "src" / "defection" / "data" / "cases").glob("*.toml")),
    ]
    for path in sources:
        missing = cited_keys(path.read_text(encoding="utf-8")) - listed
        assert not missing, f"{path.name} cites {sorted(missing)}, which docs/model.md's References do not list"
    registry = cited_keys(" ".join(p.source for p in iter_params()))
    assert {"V5", "R9", "C2a"} <= registry


def test_range_positions_by_hand() -> None:
    from defection.scenario.ranges import Range

    assert Range("offer.cash_usd", 100.0, 300.0).at(0.25) == 150.0
    assert Range("offer.cash_usd", 100.0, 10_000.0, log=True).at(0.5) == pytest.approx(1_000.0)
    # the ends are the range's own, never a rounding error beyond: exp(log(1e8)) is 100000000.00000018, which the
    # registry's limit (cash ≤ 1e8) refused, so a log lever up to the limit could not be swept
    assert Range("offer.cash_usd", 1e6, 1e8, log=True).at(1.0) == 1e8
    assert Range("offer.cash_usd", 1e6, 1e8, log=True).at(0.0) == 1e6


def test_a_soldier_type_given_in_part_keeps_its_own_defaults(tmp_path: Path) -> None:
    """`[force.types.conscript]` with only `share` keeps the conscript's other defaults (hazard ×0.2, rear affinity
    10), not a generic soldier's (×1, 1): before this, a scenario file that changed one type's share silently gave
    that type the generic values."""
    path = tmp_path / "s.toml"
    path.write_text("[force.types.conscript]\nshare = 0.2\n[force.types.contract]\nshare = 0.42\n", encoding="utf-8")
    got = load_scenario(path).force.types
    default = default_scenario().force.types
    assert got.conscript.share == 0.2 and got.contract.share == 0.42
    for name in ("conscript", "contract"):
        mine, theirs = getattr(got, name).model_dump(), getattr(default, name).model_dump()
        assert {k: v for k, v in mine.items() if k != "share"} == {k: v for k, v in theirs.items() if k != "share"}
    assert got.conscript.hazard_multiplier == 0.2 and got.contract.vsl_median_usd == 3.0e5
