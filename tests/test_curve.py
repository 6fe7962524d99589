"""`defection curve` (issue 15): the levels and their spacing, refusals of a bad lever or range, common random numbers
(the first level's paired difference is exactly 0, the same level gives the same numbers twice), a monotone response
in a world where money matters, the --json object, the stored run and its figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from defection.explore.curve import (
    CurveError,
    curve_levels,
    default_log,
    parse_assignment,
    parse_by,
    parse_value,
    response_curve,
    spacing_note,
)
from defection.scenario import default_scenario
from defection.scenario.posterior import Posterior, shipped_posterior_path

from .conftest import SALIENT, cli_in_process, scenario

COST = "cost_per_genuine_defector_usd"
TINY = {"agents": 2_000, "days": 30}  # 4 companies of 495: a toy, fast run
TINY_ARGS = ["--agents", "2000", "--days", "30", "--replicates", "3", "--seed", "1"]


# ----------------------------------------------------------------------------- levels
def test_linear_levels_are_evenly_spaced() -> None:
    assert curve_levels(0.0, 0.6, 4, log=False) == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert curve_levels(10.0, 20.0, 3, log=False) == [10.0, 15.0, 20.0]


def test_log_levels_are_geometric_and_end_exactly_where_asked() -> None:
    assert curve_levels(1e4, 1e7, 4, log=True) == pytest.approx([1e4, 1e5, 1e6, 1e7])
    cash = curve_levels(1e4, 2e7, 7, log=True)  # the README's example: $10k to $20M
    assert cash[0] == 1e4 and cash[-1] == 2e7
    ratios = np.diff(np.log10(cash))
    assert ratios == pytest.approx(np.full(6, math.log10(2e7 / 1e4) / 6))


def test_integer_levels_are_whole_and_not_repeated() -> None:
    assert curve_levels(1, 4, 7, log=False, integer=True) == [1.0, 2.0, 3.0, 4.0]


def test_log_by_default_only_for_positive_ranges_over_two_decades() -> None:
    assert default_log(1e4, 2e7)  # 3.3 decades
    assert not default_log(1e4, 1e6)  # exactly two decades: linear
    assert not default_log(0.0, 1e8)  # zero cannot sit on a log axis
    assert "3.3 decades" in spacing_note(1e4, 2e7, True, chosen=False)
    assert spacing_note(1e4, 2e7, False, chosen=True) == "even spacing (--linear)"
    with pytest.raises(CurveError, match="--log needs --from > 0"):
        curve_levels(0.0, 10.0, 3, log=True)


def test_values_on_the_command_line() -> None:
    assert parse_value("0.02") == 0.02 and parse_value("250_000") == 250_000 and parse_value("true") is True
    assert parse_value("ratchet_topup") == "ratchet_topup"
    assert parse_assignment("regime.monitors_per_soldier=0.02") == ("regime.monitors_per_soldier", 0.02)
    assert parse_by("offer.asylum_probability=0.2, 0.8") == ("offer.asylum_probability", [0.2, 0.8])
    with pytest.raises(CurveError, match="expected PATH=VALUE"):
        parse_assignment("regime.monitors_per_soldier")
    with pytest.raises(CurveError, match="listed twice"):
        parse_by("offer.asylum_probability=0.2,0.2")


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["offer.cash"], "LEVER 'offer.cash': not a scenario parameter (did you mean offer.cash_usd"),
        (
            ["offer.cash_usd", "--from", "1e4", "--to", "2e9"],
            "--to 2e+09: outside offer.cash_usd's allowed range [0, 1e+08] USD",
        ),
        (["offer.cash_usd", "--from", "-5"], "--from -5: outside offer.cash_usd's allowed range [0, 1e+08] USD"),
        (["offer.cash_usd", "--from", "5e5", "--to", "1e4"], "--from 500000 must be below --to 10000"),
        (
            ["regime.monitors_per_soldier", "--to", "2"],
            "--to 2: outside regime.monitors_per_soldier's allowed range [0, 1]",
        ),
        (["offer.education"], "LEVER 'offer.education': not numeric"),
        (["simulation.days"], "a simulation setting, not a lever"),
        (["offer.cash_usd", "--from", "0", "--to", "1e6", "--log"], "--log needs --from > 0, not 0"),
        (["offer.cash_usd", "--set", "regime.monitors=0.1"], "--set 'regime.monitors': not a scenario parameter"),
        (["offer.cash_usd", "--set", "regime.monitors_per_soldier=5"], "regime.monitors_per_soldier = 5: out of range"),
        (["offer.cash_usd", "--set", "offer.cash_usd=5"], "--set offer.cash_usd: the curve varies it"),
        (
            ["offer.cash_usd", "--by", "offer.asylum_probability=0.2,1.5"],
            "offer.asylum_probability = 1.5: out of range",
        ),
        (["offer.cash_usd", "--outcome", "defected_shares"], "--outcome 'defected_shares': not an outcome"),
        (["offer.cash_usd", "--points", "1"], "--points"),
    ],
)
def test_bad_lever_range_or_value_is_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "c.duckdb"
    proc = cli_in_process("curve", *args, *TINY_ARGS, "--db", str(db), env={"COLUMNS": "200"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not db.exists()  # refused before anything was recorded


# ----------------------------------------------------------------------------- common random numbers
def test_levels_are_paired_under_common_random_numbers() -> None:
    """Every level shares replicate r's random numbers and posterior particle: the first level's paired difference
    is exactly 0 in every replicate, and a level simulated again (in another curve) gives identical numbers."""
    post = Posterior.load(shipped_posterior_path())
    sc = default_scenario()
    a = response_curve(sc, "offer.cash_usd", [1e4, 1e6], 3, 7, posterior=post, **TINY)
    b = response_curve(sc, "offer.cash_usd", [1e6, 1e7], 3, 7, posterior=post, **TINY)
    for name in a.outcomes:
        first = a.differences(name, 1e4)
        assert np.array_equal(first[np.isfinite(first)], np.zeros(np.isfinite(first).sum()))
        np.testing.assert_array_equal(a.values(name, 1e6), b.values(name, 1e6))  # bit-identical, NaN included
    table = a.table().set_index(["level", "outcome"])
    assert table.loc[(1e4, "defected_share"), ["diff_median", "diff_p05", "diff_p95"]].tolist() == [0.0, 0.0, 0.0]
    assert a.posterior_hash == post.content_hash() and a.agent_days == 2 * 3 * 30 * a.agents


def test_more_cash_never_lowers_the_median_defected_share_where_money_matters() -> None:
    salient = scenario(**SALIENT)
    levels = curve_levels(1e4, 1e7, 4, log=True)
    res = response_curve(salient, "offer.cash_usd", levels, 3, 3, agents=3_000, days=40)
    medians = res.table().query("outcome == 'defected_share'")["median"].to_numpy()
    assert (np.diff(medians) >= 0).all(), medians
    assert medians[-1] > medians[0], medians  # and the lever does move it here


# ----------------------------------------------------------------------------- the command end to end
def test_json_stored_run_and_report(tmp_path: Path) -> None:
    db, html = tmp_path / "c.duckdb", tmp_path / "curve.html"
    proc = cli_in_process(
        "curve", "offer.cash_usd", "--from", "1e4", "--to", "2e7", "--points", "3", *TINY_ARGS,
        "--db", str(db), "--json", "--report", str(html), "--set", "regime.monitors_per_soldier=0.02",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert {"run_id", "lever", "levels", "log", "outcomes", "curves", "posterior", "agent_days", "wall_seconds"} <= set(
        payload
    )
    assert payload["log"] is True and "log spacing" in payload["spacing"]  # 3.3 decades: log without --log
    assert payload["levels"] == pytest.approx([1e4, math.sqrt(1e4 * 2e7), 2e7])
    assert payload["outcomes"] == ["defected_share", "cost_per_genuine_defector_usd"]
    assert payload["held"] == {"regime.monitors_per_soldier": 0.02}
    assert payload["posterior"]["hash"] and payload["agent_days"] > 0 and payload["wall_seconds"] > 0
    (line,) = payload["curves"]
    assert [p["level"] for p in line["points"]] == payload["levels"]
    for point in line["points"]:
        share = point["outcomes"]["defected_share"]
        assert share["p05"] <= share["median"] <= share["p95"]
        assert len(share["replicates"]) == len(share["differences"]) == 3
        assert set(share["difference"]) == {"median", "p05", "p95"}
    assert line["points"][0]["outcomes"]["defected_share"]["differences"] == [0.0, 0.0, 0.0]

    shown = cli_in_process("runs", "show", payload["run_id"], "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert (
        run["kind"] == "curve" and run["status"] == "complete" and run["posterior_hash"] == payload["posterior"]["hash"]
    )
    assert run["scenario"]["regime"]["monitors_per_soldier"] == 0.02
    assert "defected_share @ level 1 = 10,000" in run["outcomes"]
    listed = cli_in_process("runs", "list", "--db", str(db), "--json")
    assert payload["run_id"] in {r["run_id"] for r in json.loads(listed.stdout)}

    text = html.read_text(encoding="utf-8")
    assert 'id="fig-curve"' in text and 'id="curve-table"' in text
    assert '<script src="http' not in text  # self-contained: plotly.js inlined


def test_table_and_one_curve_per_by_value(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    proc = cli_in_process(
        "curve", "regime.monitors_per_soldier", "--from", "0", "--to", "0.1", "--points", "2", *TINY_ARGS,
        "--by", "offer.asylum_probability=0.2,0.9", "--no-posterior", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "defected_share against regime.monitors_per_soldier" in proc.stdout
    assert "paired difference from 0" in proc.stdout and "offer.asylum_probability" in proc.stdout
    assert "calibrated parameters: none" in proc.stdout
    assert "even spacing" in proc.stderr


# ----------------------------------------------------------------------------- the figure
def _curve_payload(log: bool, by: list[float] | None = None) -> dict[str, object]:
    def stats(v: float) -> dict[str, object]:
        return {
            "median": v,
            "p05": v * 0.5,
            "p95": v * 1.5,
            "difference": {"median": v - 0.01, "p05": 0.0, "p95": v},
        }

    values = by or [None]
    return {
        "lever": "offer.cash_usd",
        "unit": "USD",
        "log": log,
        "outcomes": ["defected_share", "cost_per_genuine_defector_usd"],
        "by": None if by is None else {"path": "offer.asylum_probability", "values": by},
        "curves": [
            {
                "by": b,
                "points": [
                    {
                        "level": x,
                        "outcomes": {"defected_share": stats(0.01 * k), "cost_per_genuine_defector_usd": stats(x)},
                    }
                    for k, x in enumerate([1e4, 1e5, 1e6], start=1)
                ],
            }
            for b in values
        ],
    }


@pytest.mark.parametrize("log", [True, False])
def test_figure_has_a_panel_per_outcome_and_bands_of_two_traces(log: bool) -> None:
    from defection.report.explore_figures import response_curve as figure

    fig = figure(_curve_payload(log, by=[0.2, 0.8]))
    traces = list(fig.data)
    assert len(traces) == 2 * 2 * 3  # 2 curves × 2 outcomes × (band low, band high, median)
    for k, t in enumerate(traces):
        if t.fill == "tonexty":  # the band's upper edge fills down to its lower edge, the trace just before
            low = traces[k - 1]
            assert (low.xaxis, low.yaxis) == (t.xaxis, t.yaxis) and low.fill is None
            assert all(lo <= hi for lo, hi in zip(low.y, t.y, strict=True))
    assert sum(t.fill == "tonexty" for t in traces) == 4
    assert {t.yaxis for t in traces} == {"y", "y2"}
    axis_type = "log" if log else "linear"
    assert fig.layout.xaxis.type == axis_type and fig.layout.xaxis2.type == axis_type


def test_the_worked_example_runs(tmp_path: Path) -> None:
    """examples/cash-curve.sh's command, as written (cash from $10k to $20M on a log axis), on a toy run: the
    options that follow it (the last given wins) shrink it."""
    from .conftest import ROOT

    script = (ROOT / "examples" / "cash-curve.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [s for s in script.splitlines() if s.startswith("defection curve ")]
    db, report = tmp_path / "c.duckdb", tmp_path / "cash-curve.html"
    words = line.replace('"$DB"', str(db)).replace('"$REPORT"', str(report)).split()[1:]
    assert words[:6] == ["curve", "offer.cash_usd", "--from", "10000", "--to", "20000000"] and "--log" in words
    proc = cli_in_process(*words, "--points", "2", *TINY_ARGS, "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["levels"] == [1e4, 2e7] and payload["log"] is True and report.is_file()
