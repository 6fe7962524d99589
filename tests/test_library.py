"""The scenario library (issue 15): ready scenarios shipped beside the default, and the historical cases run as
scenarios (`defection scenarios list|show`, `defection run NAME`, `defection run --case ID`)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from defection.calibrate.cases import library_dir, load_cases
from defection.scenario import ScenarioError, default_scenario, load_scenario
from defection.scenario.library import library_names, library_path, library_scenarios

from .conftest import cli, cli_in_process
from .test_scenarios import cited_keys

SHIPPED = ("force-2022", "force-2024-25", "proposal-as-published")
# A value line of a shipped file: `key = value  # source or "assumption"`.
VALUE_LINE = re.compile(r"^\s*[a-z_]+\s*=")


def test_the_library_ships_the_issue_s_scenarios() -> None:
    assert library_names() == sorted(SHIPPED)
    for s in library_scenarios():
        assert s.path.is_file()
        assert 20 < len(s.description) <= 200 and "\n" not in s.description


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_scenario_validates_and_sources_every_value(name: str) -> None:
    """Loaded by name; meta.name is the file's name; every value it sets carries a comment with a reference key or
    the word 'assumption' (the default's values have their sources in the registry)."""
    sc = load_scenario(name)
    assert sc.meta.name == name
    path = library_path(name)
    assert path is not None
    text = path.read_text(encoding="utf-8")
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        if section == "meta" or not VALUE_LINE.match(line):
            continue
        comment = line.split("#", 1)[1] if "#" in line else ""
        assert cited_keys(comment) or "assumption" in comment or "proposal" in comment or "default" in comment, (
            f"{path.name}: {line.strip()!r} says neither a source nor 'assumption'"
        )


def test_the_shipped_forces_differ_where_history_says() -> None:
    """2022: a smaller force with conscripts and without mobilised men or convicts; 2024-25: the default's force;
    as published: the offer raised until a target, within the frozen assets."""
    f22, f25, pub, default = (load_scenario(n) for n in (*SHIPPED, None))  # type: ignore[arg-type]
    types = f22.force.types
    assert f22.force.soldiers < 200_000 and types.mobilised.share == 0.0 and types.convict.share == 0.0
    assert types.conscript.share > default.force.types.conscript.share
    assert f25.force.model_dump() == default.force.model_dump()
    assert pub.offer.schedule.rule == "adaptive" and pub.offer.schedule.growth_per_step > 0
    assert pub.offer.schedule.budget_cap_usd > 1e11
    assert pub.offer.cash_usd == default.offer.cash_usd == 100_000.0


def test_a_file_wins_over_a_library_name_and_an_unknown_name_lists_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "force-2022").write_text('[meta]\nname = "mine"\n', encoding="utf-8")
    assert load_scenario("force-2022").meta.name == "mine"
    with pytest.raises(ScenarioError) as e:
        load_scenario("no-such-scenario")
    assert "not a shipped scenario" in e.value.render() and "force-2022" in e.value.render()
    assert library_path("../force-2022") is None and library_path("force-2022.toml") is None


def test_scenarios_list_names_every_runnable_scenario() -> None:
    r = cli_in_process("scenarios", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    names = [row["name"] for row in rows]
    cases = [c.id for c in load_cases()]
    assert names == ["(default)", *sorted(SHIPPED), *cases]
    assert all(row["description"] and row["run"].startswith("defection run") for row in rows)
    assert {row["run"] for row in rows if row["kind"] == "case"} == {f"defection run --case {c}" for c in cases}
    table = cli_in_process("scenarios", "list")
    assert table.returncode == 0 and "force-2022" in table.stdout and "chieu-hoi-1966" in table.stdout


def test_scenarios_show_prints_the_file() -> None:
    r = cli_in_process("scenarios", "show", "force-2022")
    assert r.returncode == 0
    assert tomllib.loads(r.stdout)["meta"]["name"] == "force-2022"
    case = cli_in_process("scenarios", "show", "gulf-1991")
    assert case.returncode == 0 and case.stdout == (library_dir() / "gulf-1991.toml").read_text(encoding="utf-8")
    bad = cli_in_process("scenarios", "show", "../gulf-1991")
    assert bad.returncode == 2 and "no such scenario or case" in bad.stderr and "Traceback" not in bad.stderr


def test_run_case_refuses_an_unknown_id_and_a_scenario_beside_it(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    r = cli_in_process("run", "--case", "atlantis-1900", "--db", db)
    assert r.returncode == 2 and "atlantis-1900" in r.stderr and "gulf-1991" in r.stderr
    both = cli_in_process("run", "force-2022", "--case", "gulf-1991", "--db", db)
    assert both.returncode == 2 and "not both" in both.stderr
    assert not Path(db).exists()


@pytest.mark.slow
def test_run_case_simulates_the_case_and_sets_history_beside_it(tmp_path: Path) -> None:
    """`run --case` runs the case's scenario at its calibration size and horizon, with the shipped posterior, and
    reports each observation of its first period beside the simulated share as its source would have counted it."""
    (case,) = load_cases(only=["uganda-lra-amnesty-2000s"])
    r = cli("run", "--case", case.id, "-r", "2", "--json", "--db", str(tmp_path / "c.duckdb"))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["days"] == case.scenario.simulation.days
    assert case.meta.calibration_agents <= d["agents"] < case.meta.calibration_agents + case.scenario.force.company_size
    assert d["posterior"]["hash"]
    got = d["case"]
    first = [o for k, o in enumerate(case.observed) if case.variant(k) == 0]
    assert [row["outcome"] for row in got["observed"]] == [o.outcome for o in first]
    for row, o in zip(got["observed"], first, strict=True):
        assert row["observed"] == o.value
        median = d["outcomes"][o.outcome]["median"]
        assert row["simulated_median"] == pytest.approx(median * o.capture)
        assert row["simulated_p05"] <= row["simulated_median"] <= row["simulated_p95"]
    stored = cli_in_process("runs", "show", d["run_id"], "--db", str(tmp_path / "c.duckdb"), "--json")
    assert stored.returncode == 0 and case.id in stored.stdout


def test_the_default_is_not_in_the_library_files() -> None:
    """The default stays embedded (`defection run` with no file); the library only adds scenarios beside it."""
    assert default_scenario().meta.name not in library_names()
