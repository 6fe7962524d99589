"""HTML reports, PNG export and run comparison (`defection report`, `defection compare`, `run --report`).

A few small real runs are stored once per module; exploration runs (sweep, sensitivity, optimize, discover) and a
claims run carry synthetic artifacts in exactly the format their commands store."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from defection.cli.app import app
from defection.engine import simulate
from defection.explore.spec import spec_from_dict
from defection.explore.sweep import part_schema
from defection.report import ReportError, render_compare, render_report, report_figures
from defection.report.compare import paired_differences, pairing, unpaired_differences
from defection.scenario import default_scenario
from defection.store import ResultsDB, RunMeta, RunNotFound
from tests.conftest import check_paired_baseline, plain, scenario

EVIL = '<script>alert("x")</script> & co'
RUN_FIGURES = {"defections", "funnel", "offer", "counter-measures", "cost", "unit-strength", "units-ineffective"}
SPEC = {
    "experiment": {"name": "t", "sampler": "sobol", "samples": 8, "replicates": 2, "days": 20, "agents": 990},
    "uncertainties": [{"path": "regime.monitors_per_soldier", "low": 0.02, "high": 0.1}],
    "levers": [{"path": "offer.cash_usd", "low": 0.0, "high": 1_000_000.0}],
    "outcomes": [{"name": "defected_share", "direction": "max"}],
}
CLAIMS = {
    "settings": {"replicates": 3},
    "simulations": 12,
    "claims": [
        {
            "number": 1,
            "claim": "Mass <defection>",
            "test": "paired runs",
            "verdict": "not supported",
            "reason": "too few",
            "numbers": [{"name": "defected share", "median": 0.01, "p05": 0.005, "p95": 0.02, "unit": ""}],
            "deciding": [
                {
                    "parameter": "credibility.prior_alpha",
                    "low": 1.0,
                    "high": 6.0,
                    "metric_at_low": 0.0034,
                    "metric_at_high": 0.0061,
                    "swing": 0.0027,
                }
            ],
            "alternative": {
                "name": "credibility first",
                "description": "publicised resettlements <first>",
                "metric": 0.0061,
                "proposal_metric": 0.0034,
                "all": {"credibility first": 0.0061},
            },
        },
        {
            "number": 2,
            "claim": "It is affordable",
            "test": "cost",
            "verdict": "supported",
            "reason": "cheap",
            "numbers": [{"name": "cost", "median": 2e9, "p05": 1e9, "p95": 3e9, "unit": "USD"}],
            "deciding": [],
            "alternative": None,
        },
        {
            "number": 3,
            "claim": "Threats work",
            "test": "threat",
            "verdict": "depends on credibility.prior_alpha",
            "reason": "within noise",
            "numbers": [],
            "deciding": [],
            "alternative": None,
        },
    ],
}


# ----------------------------------------------------------------------------- fixtures
def _explore_run(db: ResultsDB, kind: str, artifacts: dict[str, Any], options: dict[str, Any] | None = None) -> str:
    """A complete exploration run stored the way search_cli stores one (spec + options + base scenario)."""
    spec = spec_from_dict(SPEC, "<test>").model_dump(mode="json")
    base = json.loads(scenario(offer__cash_usd=50_000.0).canonical_json())
    text = json.dumps({"spec": spec, "options": options or {}, "base_scenario": base}, sort_keys=True)
    rid = db.begin_run(
        RunMeta(
            kind=kind,
            scenario_name="t",
            scenario_json=text,
            seed=1,
            agents=990,
            represented=700_000,
            days=20,
            replicates=2,
        )
    )
    outcomes = pd.DataFrame([{"outcome": "defected_share", "median": 0.01, "p05": 0.001, "p95": 0.05, "mean": 0.02}])
    db.complete_artifacts(rid, artifacts, outcomes, 1.0)
    return rid


def _sweep_run(db: ResultsDB, folder: Path, log: bool = False) -> str:
    """A complete sweep of 6 experiments over two parameters, ingested from a synthetic Parquet part. `log`: the
    monitors are sampled on a log scale, and a lever and an outcome have one value in every experiment."""
    spec_dict: dict[str, Any] = {**SPEC, "experiment": {**SPEC["experiment"], "sampler": "lhs"}}
    if log:
        spec_dict |= {
            "uncertainties": [{**SPEC["uncertainties"][0], "log": True}],
            "levers": [*SPEC["levers"], {"path": "offer.asylum_probability", "values": [0.5]}],
            "outcomes": [*SPEC["outcomes"], {"name": "lost_share"}],
        }
    spec = spec_from_dict(spec_dict, "<t>")
    rid = db.begin_run(
        RunMeta(
            kind="sweep",
            scenario_name="t",
            scenario_json=default_scenario().canonical_json(),
            seed=1,
            agents=990,
            represented=700_000,
            days=20,
            replicates=2,
        )
    )
    cash = [0.0, 2e5, 4e5, 6e5, 8e5, 1e6]
    mon = [0.1, 0.02, 0.08, 0.04, 0.06, 0.03]
    rows = {
        "experiment": list(range(6)),
        "status": ["ok"] * 6,
        "error": [None] * 6,
        "traceback": [None] * 6,
        "params_json": [
            json.dumps(
                {"offer.cash_usd": c, "regime.monitors_per_soldier": m}
                | ({"offer.asylum_probability": 0.5} if log else {})
            )
            for c, m in zip(cash, mon, strict=True)
        ],
        "wall_seconds": [0.1] * 6,
    }
    med = [c / 1e8 for c in cash]
    rows |= {
        "defected_share_mean": med,
        "defected_share_median": med,
        "defected_share_p05": [v / 2 for v in med],
        "defected_share_p95": [v * 2 for v in med],
    }
    outcomes = ["defected_share"]
    if log:  # the same share lost in every experiment
        outcomes.append("lost_share")
        rows |= {f"lost_share_{stat}": [0.02] * 6 for stat in ("mean", "median", "p05", "p95")}
    part = folder / f"part-{rid}.parquet"
    pq.write_table(pa.Table.from_pydict(rows, schema=part_schema(outcomes)), part)
    db.complete_sweep(rid, [part], outcomes, 6, {"spec": spec.model_dump(mode="json")})
    return rid


SENSITIVITY = {
    "spec": "t",
    "method": "sobol",
    "points": 24,
    "factors": ["regime.monitors_per_soldier", "offer.cash_usd"],
    "outcomes": ["defected_share"],
    "plot": None,
    "wall_seconds": 1.0,
    "indices": {
        "defected_share": [
            {"rank": 1, "factor": "offer.cash_usd", "S1": 0.6, "S1_conf": 0.05, "ST": 0.7, "ST_conf": 0.06},
            {
                "rank": 2,
                "factor": "regime.monitors_per_soldier",
                "S1": 0.2,
                "S1_conf": 0.03,
                "ST": 0.3,
                "ST_conf": None,
            },
        ]
    },
}
TRIALS = [
    {
        "trial": k,
        "package": {"offer.cash_usd": c},
        "feasible": True,
        "summary": {},
        "metrics": {"programme_cost_usd": cost, "defected_share": d, "days_to_target": 100.0 + k},
    }
    for k, (c, cost, d) in enumerate([(1e5, 1e6, 0.01), (2e5, 3e6, 0.008), (5e5, 5e6, 0.03), (9e5, 9e6, 0.02)])
]
OPTIMIZE = {
    "spec": "t",
    "study": "t.pareto.x",
    "storage": None,
    "mode": "pareto",
    "sampler": "nsga2",
    "target": None,
    "worlds": 2,
    "replicates": 2,
    "fixed_counter_measures": {},
    "reused": 0,
    "evaluated": 4,
    "complete": 4,
    "failed": 0,
    "best": None,
    "closest": None,
    "wall_seconds": 1.0,
    "pareto": [{k: v for k, v in TRIALS[i].items() if k != "summary"} for i in (0, 2)],
}
DISCOVER = {
    "spec": "t",
    "outcome": "defected_share",
    "threshold": 0.01,
    "direction": "below",
    "cases": 10,
    "cases_of_interest": 4,
    "fixed_counter_measures": {},
    "density_threshold": 0.8,
    "wall_seconds": 1.0,
    "boxes": [
        {
            "coverage": 0.75,
            "density": 0.9,
            "mass": 0.3,
            "n": 3,
            "chosen": 2,
            "restricted": {"regime.monitors_per_soldier": {"low": 0.06, "high": None, "qp": [0.01, None]}},
            "trajectory": [
                {"coverage": 1.0, "density": 0.4, "mass": 1.0, "res_dim": 0.0},
                {"coverage": 0.9, "density": 0.6, "mass": 0.6, "res_dim": 1.0},
                {"coverage": 0.75, "density": 0.9, "mass": 0.3, "res_dim": 1.0},
            ],
        }
    ],
}
CASES = [
    {
        "regime.monitors_per_soldier": 0.02 + 0.008 * k,
        "defected_share_mean": 0.02 - 0.002 * k,
        "of_interest": 0.02 - 0.002 * k < 0.01,
    }
    for k in range(10)
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultsDB, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("report")
    db = ResultsDB(tmp / "r.duckdb")
    small = {"replicates": 3, "days": 20, "agents": 5000}
    res_a = simulate(scenario(meta__name=EVIL, offer__cash_usd=250_000.0), **small)
    ids = {
        "a": db.store(res_a),
        "b": db.store(simulate(scenario(offer__cash_usd=2_000_000.0), **small)),
        "c": db.store(simulate(scenario(simulation__seed=7), **small)),
        "claims": db.store(res_a, kind="claims", artifacts={"claims": CLAIMS}),
        "sensitivity": _explore_run(db, "sensitivity", {"sensitivity": SENSITIVITY}, {"method": "sobol"}),
        "optimize": _explore_run(db, "optimize", {"optimize": OPTIMIZE, "trials": TRIALS}),
        "discover": _explore_run(db, "discover", {"discover": DISCOVER, "cases": CASES}),
        "sweep": _sweep_run(db, tmp),
        "log-sweep": _sweep_run(db, tmp, log=True),
    }
    failed = db.begin_run(RunMeta(kind="run", scenario_name="broken"))
    db.mark_run(failed, "failed", "RuntimeError: boom")
    ids["failed"] = failed
    ids["running"] = db.begin_run(RunMeta(kind="run", scenario_name="busy"))  # this process is alive: stays running
    return db, ids


def figure_json(html: str) -> dict[str, dict[str, Any]]:
    """Every embedded figure's JSON, by element id."""
    found = re.findall(r'<script type="application/json" data-figure="([^"]+)">(.*?)</script>', html, re.S)
    return {fid: json.loads(text) for fid, text in found}


def trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in fig["data"] if t.get("name") == name)


class Links(HTMLParser):
    """Collects every src/href attribute and the ids of elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.urls.append(v)
            if k == "id" and v:
                self.ids.add(v)


def parsed(html: str) -> Links:
    p = Links()
    p.feed(html)
    return p


# ----------------------------------------------------------------------------- the report of a simulation run
def test_run_report_is_self_contained_with_every_figure(store: tuple[ResultsDB, dict[str, str]]) -> None:
    from plotly.offline import get_plotlyjs

    db, ids = store
    html = render_report(db, ids["a"][:6])  # a prefix is enough
    links = parsed(html)
    assert {f"fig-{k}" for k in RUN_FIGURES} <= links.ids
    assert set(figure_json(html)) == {f"fig-{k}" for k in RUN_FIGURES}
    assert html.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    assert not [u for u in links.urls if re.match(r"\s*(https?:)?//", u)], links.urls
    assert "<script src" not in html.lower() and "<link" not in html.lower()
    assert "mathjax" not in html[html.index("</head>") :].lower()
    assert '"displaylogo": false' in html and '"responsive": true' in html
    assert html.count("Plotly.newPlot") == 1  # one loop draws every figure


def test_report_escapes_user_text(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["a"])
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    assert ids["a"] in html and "complete" in html and "20220302" in html


def test_changed_parameters_are_listed_with_unit_and_source(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["a"])
    section = html[html.index('id="scenario"') : html.index("</section>", html.index('id="scenario"'))]
    rows = re.findall(r'<tr class="param">(.*?)</tr>', section, re.S)
    by_path = {re.search(r"<td[^>]*>([^<]*)</td>", r).group(1): r for r in rows}
    assert set(by_path) == {"offer.cash_usd", "simulation.days", "simulation.replicates", "simulation.agents"}
    cash = by_path["offer.cash_usd"]
    assert 'title="proposal (docs/proposal.md)"' in cash  # the source on hover…
    assert "<td>proposal (docs/proposal.md)</td>" in cash  # …and in its column
    assert "250,000" in cash and "100,000" in cash and "<td>USD</td>" in cash


def test_figure_data_match_the_stored_numbers(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    figs = figure_json(render_report(db, ids["a"]))
    out = db.outcomes(ids["a"]).set_index("outcome")
    daily = db.daily(ids["a"])
    defected = trace(figs["fig-defections"], "defected: median")["y"]
    assert defected[-1] == pytest.approx(out.loc["defected", "median"], rel=1e-9)
    assert len(defected) == 20
    cost = trace(figs["fig-cost"], "programme cost (PV): median")["y"]
    assert cost[-1] == pytest.approx(out.loc["programme_cost_usd", "median"], rel=1e-9)
    assert trace(figs["fig-cost"], "budget")["y"] == [2.8e11, 2.8e11]
    funnel = figs["fig-funnel"]["data"][0]
    stage = dict(zip(funnel["customdata"], funnel["x"], strict=True))
    assert stage["arrived"] == pytest.approx(out.loc["defected", "median"], rel=1e-9)
    assert stage["attempts"] == pytest.approx(out.loc["attempts", "median"], rel=1e-9)
    assert stage["paid"] == pytest.approx(out.loc["paid_defectors", "median"], rel=1e-9)
    assert stage["aware"] == pytest.approx(np.median(daily.groupby("replicate")["aware"].max()), rel=1e-9)
    ineffective = trace(figs["fig-units-ineffective"], "ineffective companies: median")["y"]
    assert ineffective[-1] == pytest.approx(out.loc["units_ineffective_share", "median"], abs=1e-12)
    strength = trace(figs["fig-unit-strength"], "median company")["y"]
    expected = daily.pivot(index="day", columns="replicate", values="unit_strength_p50").median(axis=1)
    assert strength == pytest.approx(expected.tolist())
    assert trace(figs["fig-offer"], "offer: median")["y"][0] == 250_000.0
    panels = {a["text"] for a in figs["fig-counter-measures"]["layout"]["annotations"]}
    assert "monitors (monitors per soldier)" in panels and "pay_usd_month (USD/month)" in panels


def test_report_figures_returns_plotly_figures(store: tuple[ResultsDB, dict[str, str]]) -> None:
    import plotly.graph_objects as go

    db, ids = store
    figs = report_figures(db, ids["a"])
    assert set(figs) == RUN_FIGURES and all(isinstance(f, go.Figure) for f in figs.values())


@pytest.mark.parametrize("which, status", [("failed", "failed"), ("running", "running")])
def test_incomplete_run_is_refused(store: tuple[ResultsDB, dict[str, str]], which: str, status: str) -> None:
    db, ids = store
    with pytest.raises(ReportError, match=f"is {status}.*not complete"):
        render_report(db, ids[which])
    with pytest.raises(ReportError, match="not complete"):
        render_compare(db, [ids["a"], ids[which]])
    with pytest.raises(RunNotFound):
        render_report(db, "zzz-no-such-run")


# ----------------------------------------------------------------------------- other kinds
def test_claims_report_has_the_coloured_claims_table(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["claims"])
    table = html[html.index('id="claims-table"') : html.index("</table>", html.index('id="claims-table"'))]
    assert '<td class="verdict" style="background:#f8d7da">not supported</td>' in table
    assert '<td class="verdict" style="background:#d4edda">supported</td>' in table
    assert '<td class="verdict" style="background:#fff3cd">depends on credibility.prior_alpha</td>' in table
    assert "Mass &lt;defection&gt;" in table and "$2.00bn ($1.00bn – $3.00bn)" in table
    assert "fig-defections" in html  # the proposal's own run is reported too
    # what `defection claims` prints under each table: the deciding parameters and the best alternative design
    head = html[html.index('id="claims-table"') : html.index("</thead>", html.index('id="claims-table"'))]
    assert "<th>decided by</th>" in head and "<th>best alternative</th>" in head
    assert "<td>credibility.prior_alpha (1 → 6: median defected share 0.34% → 0.61%)</td>" in table
    assert (
        "<td>credibility first: publicised resettlements &lt;first&gt; (median defected share 0.34% with the "
        "proposal → 0.61%)</td>"
    ) in table
    assert "<td>not needed: the claim is supported</td>" in table  # claim 2
    assert table.count("<td>none of the tested parameters moves it</td>") == 2  # claims 2 and 3
    assert "<td>none tested for this claim</td>" in table  # claim 3
    figs = report_figures(db, ids["claims"])
    assert "claims" in figs and list(figs["claims"].data[0].cells.values[2]) == [c["verdict"] for c in CLAIMS["claims"]]
    assert figs["claims"].data[0].cells.values[1][0] == "Mass &lt;defection&gt;"  # plotly renders some HTML


def test_sensitivity_report_has_index_bars(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["sensitivity"])
    fig = figure_json(html)["fig-sensitivity-defected_share"]
    s1, st = trace(fig, "first order S1"), trace(fig, "total ST")
    assert s1["y"] == ["regime.monitors_per_soldier", "offer.cash_usd"]  # most influential drawn on top
    assert s1["x"] == [0.2, 0.6] and s1["error_x"]["array"] == [0.03, 0.05] and st["x"] == [0.3, 0.7]
    assert 'id="factors"' in html and "regime.monitors_per_soldier" in html
    assert "offer.cash_usd" in html[html.index('id="changes"') :]  # the spec's base scenario changed the offer
    assert "fig-defections" not in html


def test_morris_bars_show_mu_star_and_sigma() -> None:
    from defection.report.explore_figures import sensitivity_bars

    fig = sensitivity_bars(
        [{"rank": 1, "factor": "a", "mu_star": 2.0, "mu_star_conf": 0.5, "mu": 1.0, "sigma": 3.0}], "morris", "defected"
    )
    assert [t.name for t in fig.data] == ["mu* (mean |elementary effect|)", "sigma (interactions)"]
    assert list(fig.data[0].x) == [2.0] and list(fig.data[1].x) == [3.0]


def test_optimize_report_has_the_pareto_front(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["optimize"])
    fig = figure_json(html)["fig-pareto"]
    assert trace(fig, "trials")["x"] == [1e6, 3e6, 5e6, 9e6]
    front = trace(fig, "Pareto front")
    assert front["x"] == [1e6, 5e6] and front["y"] == [0.01, 0.03]
    assert 'id="packages-table"' in html and "Pareto front (2 packages)" in html


def test_discover_report_has_prim_boxes(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_report(db, ids["discover"])
    figs = figure_json(html)
    box = trace(figs["fig-prim-boxes"], "box 1")
    lo, hi = 0.02, 0.02 + 0.008 * 9  # the range the cases sampled
    assert box["y"] == ["regime.monitors_per_soldier"]
    assert box["base"][0] == pytest.approx((0.06 - lo) / (hi - lo)) and box["x"][0] == pytest.approx(
        (hi - 0.06) / (hi - lo)
    )
    assert trace(figs["fig-prim-trajectory"], "box 1 chosen")["x"] == [0.75]
    table = html[html.index('id="prim-table"') :]
    assert "0.75" in table and "0.90" in table and "0.06 ≤ regime.monitors_per_soldier" in table


def test_sweep_report_has_scatter_matrix_and_outcome_panels(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    figs = figure_json(render_report(db, ids["sweep"]))
    dims = figs["fig-sweep-matrix"]["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == ["monitors_<br>per_soldier", "cash_usd", "defected_share<br>(median)"]
    panel = figs["fig-sweep-outcome-defected_share"]["data"]
    cash = next(t for t in panel if t["name"] == "offer.cash_usd")
    assert cash["x"] == [0.0, 2e5, 4e5, 6e5, 8e5, 1e6] and cash["y"] == pytest.approx([c / 1e8 for c in cash["x"]])


def test_sweep_matrix_has_log_axes_short_labels_and_drops_constant_columns(
    store: tuple[ResultsDB, dict[str, str]],
) -> None:
    db, ids = store
    fig = figure_json(render_report(db, ids["log-sweep"]))["fig-sweep-matrix"]
    splom = fig["data"][0]
    labels = [d["label"] for d in splom["dimensions"]]
    # short labels: the last path component, wrapped; the full paths are in each point's hover text
    assert labels == ["monitors_<br>per_soldier", "cash_usd", "defected_share<br>(median)"]
    assert all("." not in label for label in labels)
    assert "regime.monitors_per_soldier = " in splom["text"][0] and "offer.cash_usd = $" in splom["text"][0]
    # the log-sampled monitors (dimension 1: axes x and y) are on log axes, the cash (dimension 2) is not
    layout = fig["layout"]
    assert layout["xaxis"]["type"] == "log" and layout["yaxis"]["type"] == "log"
    assert layout["xaxis2"].get("type") != "log" and layout["yaxis2"].get("type") != "log"
    assert splom["dimensions"][0]["axis"]["type"] == "log" and "axis" not in splom["dimensions"][1]
    # the lever and the outcome with one value in every experiment are dropped, and the title names them
    assert not any("asylum" in label or "lost_share" in label for label in labels)
    title = plain(layout["title"]["text"])
    assert "one value in every experiment" in title
    assert "offer.asylum_probability (0.5)" in title and "lost_share (median) (2.0%)" in title
    # the outcome panels use a log x axis for the log-sampled factor too
    panels = figure_json(render_report(db, ids["log-sweep"]))["fig-sweep-outcome-defected_share"]["layout"]
    assert panels["xaxis"]["type"] == "log" and panels["xaxis2"].get("type") != "log"


def test_units_ineffective_without_a_baseline_says_it_shows_the_total(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    fig = report_figures(db, ids["a"])["units-ineffective"]
    title = plain(fig.layout.title.text)
    assert "no paired no-offer baseline" in title and title.index("Total only") < title.index("no paired")
    assert not any("no offer" in (t.name or "") for t in fig.data)


def test_units_ineffective_shows_the_offers_paired_difference(tmp_cwd: Path) -> None:
    r = _invoke(
        "run", "--days", 8, "--replicates", 2, "--agents", 990, "--seed", 5, "--db", "r.duckdb", "--paired-baseline"
    )
    assert r.exit_code == 0, r.stderr
    db = ResultsDB(tmp_cwd / "r.duckdb")
    rid = db.list_runs()["run_id"].iloc[0]
    daily, baseline, fig = check_paired_baseline(db, rid, days=8)
    # the right panel's median is, day by day, the median over replicates of (with the offer − without it)
    run = daily.pivot(index="day", columns="replicate", values="units_ineffective_share")
    base = baseline.pivot(index="day", columns="replicate", values="units_ineffective_share")
    diff = next(t for t in fig.data if t.name == "offer − no offer (paired): median")
    assert list(diff.y) == pytest.approx(np.median((run - base).to_numpy(), axis=1).tolist())
    assert diff.xaxis == "x2"


def test_calibration_and_backtest_reports(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, _ = store
    check = [
        {
            "case": "<case>",
            "outcome": "defected_share",
            "observed": 0.01,
            "median": 0.02,
            "p05": 0.005,
            "p95": 0.05,
            "inside": True,
            "abs_log_error": 0.69,
        }
    ]
    params = [
        {"parameter": "information.bass_p", "prior_lo": 0.0, "prior_hi": 2.0, "median": 1.0, "p05": 0.5, "p95": 1.5}
    ]
    text = json.dumps({"cases": ["<case>"], "settings": {"particles": 8, "seed": 1}})
    figs = {}
    for kind, artifacts in (
        ("calibration", {"calibration": {"parameters": params, "check": check}}),
        ("backtest", {"backtest": {"cases": check}}),
    ):
        rid = db.begin_run(RunMeta(kind=kind, scenario_name="1 cases", scenario_json=text, seed=1))
        db.complete_artifacts(rid, artifacts)
        html = render_report(db, rid)
        assert "&lt;case&gt;" in html and "<case>" not in html and "no scenario of its own" in html
        figs |= figure_json(html)
    assert set(figs) == {"fig-posterior", "fig-predictive-check", "fig-backtest"}
    post = figs["fig-posterior"]["data"][0]
    assert post["x"] == [0.5] and post["error_x"]["arrayminus"] == [0.25] and post["error_x"]["array"] == [0.25]
    cases = trace(figs["fig-backtest"], "cases")
    assert cases["x"] == [0.01] and cases["y"] == [0.02] and cases["text"] == ["&lt;case&gt;: defected_share"]


# ----------------------------------------------------------------------------- a posterior's pairwise plots
PAIR_PARAMS = ["preferences.peer_weight", "preferences.logit_scale", "credibility.prior_alpha"]
PAIR_SAMPLES = [[0.1, 0.05, 1.0], [0.55, 0.2, 2.0], [1.05, 0.5, 3.0], [1.9, 0.9, 5.5]]


def _particles(weights: list[float]) -> dict[str, Any]:
    return {"parameters": PAIR_PARAMS, "samples": PAIR_SAMPLES, "weights": weights}


def _panels(fig: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The visible pair panels (markers) and diagonal histograms (lines) of a posterior_pairs figure."""
    shown = [t for t in fig["data"] if t.get("visible", True) is True]
    return [t for t in shown if t["mode"] == "markers"], [t for t in shown if t["mode"] == "lines"]


def test_posterior_pairs_has_one_panel_per_pair_and_uses_the_weights() -> None:
    from defection.report.explore_figures import posterior_pairs

    weighted = json.loads(posterior_pairs({"fold": _particles([7.0, 1.0, 1.0, 1.0])}, "t").to_json())
    pairs, diagonal = _panels(weighted)
    # one scatter panel per pair of parameters, each on its own axes; one histogram per parameter on the diagonal
    assert len(pairs) == 3 and len({(t["xaxis"], t["yaxis"]) for t in pairs}) == 3
    assert len(diagonal) == 3 and len({(t["xaxis"], t["yaxis"]) for t in diagonal}) == 3
    assert sorted(t["name"] for t in pairs) == sorted(
        f"fold: {a} against {b}" for k, a in enumerate(PAIR_PARAMS) for b in PAIR_PARAMS[:k]
    )
    alpha_vs_peer = trace(weighted, "fold: credibility.prior_alpha against preferences.peer_weight")
    assert alpha_vs_peer["x"] == [0.1, 0.55, 1.05, 1.9] and alpha_vs_peer["y"] == [1.0, 2.0, 3.0, 5.5]
    # the weights (normalised): in the hover, in the markers' size, and in the diagonal's weighted histogram
    assert alpha_vs_peer["customdata"] == pytest.approx([0.7, 0.1, 0.1, 0.1])
    sizes = alpha_vs_peer["marker"]["size"]
    assert sizes[0] > sizes[1] == sizes[2] == sizes[3]
    peer = trace(weighted, "fold: preferences.peer_weight")  # 12 bins of 1/6 over the prior range [0, 2]
    assert peer["x"] == pytest.approx(np.linspace(0, 2, 13).tolist())
    heights = peer["y"][:-1]  # a step line repeats its last height
    assert heights == pytest.approx([0.7, 0, 0, 0.1, 0, 0, 0.1, 0, 0, 0, 0, 0.1])
    logit = trace(weighted, "fold: preferences.logit_scale")  # log-uniform prior: log-spaced bins and a log axis
    assert logit["x"][0] == pytest.approx(0.03) and logit["x"][-1] == pytest.approx(1.0)
    assert logit["x"][1] / logit["x"][0] == pytest.approx(logit["x"][-1] / logit["x"][-2])
    assert sum(logit["y"][:-1]) == pytest.approx(1.0)
    assert weighted["layout"][logit["xaxis"].replace("x", "xaxis")]["type"] == "log"
    # the same particles, equally weighted, draw differently
    equal = json.loads(posterior_pairs({"fold": _particles([1.0, 1.0, 1.0, 1.0])}, "t").to_json())
    assert len(set(trace(equal, alpha_vs_peer["name"])["marker"]["size"])) == 1
    assert trace(equal, "fold: preferences.peer_weight")["y"][0] == pytest.approx(0.25)


def _backtest_summary(with_particles: bool) -> dict[str, Any]:
    """A scored backtest summary of two folds, with or without the folds' particles (hand-made weights)."""
    row = {
        "case": "<a>",
        "outcome": "defected_share",
        "observed": 0.01,
        "median": 0.02,
        "p05": 0.005,
        "p25": 0.01,
        "p75": 0.03,
        "p95": 0.05,
        "inside_50": True,
        "inside_90": True,
        "abs_log_error": 0.69,
        "pit": 0.3,
        "conformal_lo": 0.001,
        "conformal_hi": 0.1,
    }
    return {
        "rows": [row, {**row, "case": "b"}],
        "posteriors": {
            case: {
                "parameters": [{"parameter": p, "median": 1.0, "p05": 0.5, "p95": 1.5} for p in PAIR_PARAMS],
                **({"particles": _particles(w)} if with_particles else {}),
            }
            for case, w in (("<a>", [1.0, 1.0, 1.0, 1.0]), ("b", [0.0, 0.0, 0.0, 1.0]))
        },
    }


def test_validation_report_draws_each_folds_pairs_when_the_summary_has_particles() -> None:
    from defection.report.validation import validation_report

    html, figs = validation_report(_backtest_summary(True))
    assert 'id="fig-validation-pairs"' in html and 'id="no-particles"' not in html
    fig = figure_json(html)["fig-validation-pairs"]
    assert len(fig["data"]) == 2 * (3 + 3)  # per fold: 3 pairs and 3 histograms
    pairs, diagonal = _panels(fig)  # the first fold shown, the other behind the menu
    assert len(pairs) == 3 and len(diagonal) == 3 and all(t["name"].startswith("without &lt;a&gt;") for t in pairs)
    buttons = fig["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"].split(" (")[0] for b in buttons] == ["without &lt;a&gt;", "without b"]
    assert "effective sample size 1.0 of 4" in buttons[1]["label"]
    second = buttons[1]["args"][0]["visible"]
    assert second == [t["name"].startswith("without b") for t in fig["data"]]
    b_peer = trace(fig, "without b: preferences.peer_weight")
    assert b_peer["y"][11] == pytest.approx(1.0) and sum(b_peer["y"][:-1]) == pytest.approx(1.0)
    assert "<a>" not in html.split("<script", 1)[0]  # the case id is escaped in the document
    # a summary written before the particles were kept: the marginals, no pairs, and a note saying why
    html, figs = validation_report(_backtest_summary(False))
    assert "validation-folds" in figs and "validation-pairs" not in figs and 'id="no-particles"' in html


def test_backtest_summary_keeps_each_folds_particles() -> None:
    """The backtest stores each fold's weighted particles beside its posterior summary, in the posterior file's
    own fields, so that the validation report can draw them (and a fold's posterior can be read back)."""
    from defection.calibrate.backtest import Backtest, particles
    from defection.scenario.posterior import POSTERIOR_FORMAT, Posterior

    post = Posterior(tuple(PAIR_PARAMS), np.array(PAIR_SAMPLES), np.array([7.0, 1.0, 1.0, 1.0]))
    kept = particles(post)
    assert kept == {"parameters": PAIR_PARAMS, "samples": PAIR_SAMPLES, "weights": pytest.approx([0.7, 0.1, 0.1, 0.1])}
    back = Posterior.from_dict(json.loads(json.dumps({"format": POSTERIOR_FORMAT, **kept})))
    assert back.parameters == post.parameters and np.array_equal(back.samples, post.samples)
    assert np.allclose(back.weights, post.weights)
    row = _backtest_summary(False)["rows"][0]
    rows = pd.DataFrame([{**row, "case": c, "observed": v} for c, v in (("<a>", 0.01), ("b", 0.02), ("c", 0.04))])
    rows = rows.assign(draws=[[0.01, 0.02]] * 3, log_floor=-10.0, inside=True, tolerance=0.5, tag="S")
    folds = {"<a>": {"parameters": post.summary().to_dict("records"), "particles": kept}}
    summary = json.loads(json.dumps(Backtest(rows, {"seed": 1}, 1.0, folds).to_dict()))
    assert summary["posteriors"]["<a>"]["particles"]["samples"] == PAIR_SAMPLES
    assert [p["parameter"] for p in summary["posteriors"]["<a>"]["parameters"]] == PAIR_PARAMS


def test_calibration_report_draws_the_posteriors_pairs(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, _ = store
    post = {"format": "defection-posterior/1", **_particles([3.0, 1.0, 0.0, 0.0]), "meta": {}}
    params = [
        {"parameter": p, "prior_lo": 0.0, "prior_hi": 6.0, "median": 1.0, "p05": 0.5, "p95": 1.5} for p in PAIR_PARAMS
    ]
    text = json.dumps({"cases": ["x"], "settings": {"particles": 4, "seed": 1}})
    rid = db.begin_run(RunMeta(kind="calibration", scenario_name="1 cases", scenario_json=text, seed=1))
    db.complete_artifacts(rid, {"calibration": {"parameters": params}, "posterior": post})
    fig = figure_json(render_report(db, rid))["fig-posterior-pairs"]
    pairs, diagonal = _panels(fig)
    assert len(pairs) == 3 and len(diagonal) == 3 and "updatemenus" not in fig["layout"]
    assert trace(fig, "posterior: preferences.logit_scale against preferences.peer_weight")["customdata"] == (
        pytest.approx([0.75, 0.25, 0.0, 0.0])
    )


# ----------------------------------------------------------------------------- paired differences
def test_paired_differences_by_hand() -> None:
    a = pd.DataFrame({"replicate": [0, 1, 2, 3, 4], "x": [1.0, 2, 3, 4, 5], "y": [1.0, np.nan, 1, 1, 1]})
    b = pd.DataFrame({"replicate": [4, 3, 2, 1, 0], "x": [10.0, 4, 5, 2, 2], "y": [3.0, 1, 0, 2, 2]})  # any order
    d = paired_differences(a, b).set_index("outcome")
    # x: B − A = [1, 0, 2, 0, 5] → sorted [0, 0, 1, 2, 5]
    assert d.loc["x", "median"] == 1.0 and d.loc["x", "p05"] == pytest.approx(0.0)
    assert d.loc["x", "p95"] == pytest.approx(2 + 0.8 * 3)  # linear interpolation at position 3.8
    assert d.loc["x", "share_b_greater"] == pytest.approx(0.6) and d.loc["x", "n"] == 5
    # y: replicate 1 is NaN in A and is left out: [1, −1, 0, 2] → sorted [−1, 0, 1, 2]
    assert d.loc["y", "n"] == 4 and d.loc["y", "median"] == pytest.approx(0.5)
    assert d.loc["y", "p05"] == pytest.approx(-0.85) and d.loc["y", "p95"] == pytest.approx(1.85)
    assert d.loc["y", "share_b_greater"] == pytest.approx(0.5) and bool(d.loc["y", "paired"])


def test_unpaired_differences_by_hand() -> None:
    a = pd.DataFrame({"replicate": [0, 1], "x": [1.0, 3.0]})
    b = pd.DataFrame({"replicate": [0, 1], "x": [2.0, 6.0]})
    d = unpaired_differences(a, b).iloc[0]  # all pairs: 1, 5, −1, 3 → sorted [−1, 1, 3, 5]
    assert d["median"] == pytest.approx(2.0) and d["p05"] == pytest.approx(-0.7) and d["p95"] == pytest.approx(4.7)
    assert d["share_b_greater"] == pytest.approx(0.75) and d["n"] == 4 and not d["paired"]


def test_pairing_needs_same_seed_and_replicates() -> None:
    reps3 = pd.DataFrame({"replicate": [0, 1, 2], "x": [1.0, 2, 3]})
    assert pairing({"seed": 1}, {"seed": 1}, reps3, reps3)[0]
    paired, why = pairing({"seed": 1}, {"seed": 2}, reps3, reps3)
    assert not paired and "different seeds" in why
    paired, why = pairing({"seed": 1}, {"seed": 1}, reps3, reps3.iloc[:2])
    assert not paired and "different replicates" in why


def test_compare_document(store: tuple[ResultsDB, dict[str, str]]) -> None:
    db, ids = store
    html = render_compare(db, [ids["a"], ids["b"], ids["c"]])
    links = parsed(html)
    assert {"compare-table", "fig-compare-defections", "fig-compare-cost", "fig-compare-differences"} <= links.ids
    assert not [u for u in links.urls if re.match(r"\s*(https?:)?//", u)]
    notes = html[html.index('id="pairing"') : html.index("</ul>", html.index('id="pairing"'))]
    assert f"{ids['b']} − {ids['a']}: paired" in notes and f"{ids['c']} − {ids['a']}: not paired" in notes
    reps_a, reps_b = db.replicate_outcomes(ids["a"]), db.replicate_outcomes(ids["b"])
    diffs = (reps_b.set_index("replicate")["defected"] - reps_a.set_index("replicate")["defected"]).tolist()
    fig = figure_json(html)["fig-compare-differences"]
    assert fig["data"][0]["y"] == pytest.approx(diffs)
    overlay = figure_json(html)["fig-compare-defections"]
    assert len([t for t in overlay["data"] if t["name"].endswith(": median")]) == 3
    assert not [t["name"] for t in overlay["data"] if "<" in t["name"]]  # user text escaped for plotly, too
    with pytest.raises(ReportError, match="at least two"):
        render_compare(db, [ids["a"]])
    with pytest.raises(ReportError, match="more than once"):
        render_compare(db, [ids["a"], ids["a"]])


# ----------------------------------------------------------------------------- command line
def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_report_writes_the_html(store: tuple[ResultsDB, dict[str, str]], tmp_cwd: Path) -> None:
    db, ids = store
    r = _invoke("report", ids["a"][:7], "--db", db.path)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == f"report-{ids['a']}.html" and (tmp_cwd / f"report-{ids['a']}.html").exists()
    r = _invoke("report", ids["a"], "--db", db.path, "-o", tmp_cwd / "x.html")
    assert r.exit_code == 0 and "fig-defections" in (tmp_cwd / "x.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, message",
    [
        (("report", "nope"), "run 'nope' not found"),
        (("report", "{failed}"), "is failed (RuntimeError: boom), not complete"),
        (("report", "{a}", "-o", "missing/x.html"), "folder missing does not exist"),
        (("compare", "{a}"), "at least two run ids"),
        (("compare", "{a}", "nope"), "run 'nope' not found"),
        (("compare", "{a}", "{running}"), "is running"),
    ],
)
def test_cli_errors_are_clean(
    store: tuple[ResultsDB, dict[str, str]], tmp_cwd: Path, args: tuple[str, ...], message: str
) -> None:
    db, ids = store
    r = _invoke(*(a.format(**ids) for a in args), "--db", db.path)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_cli_bad_database_is_a_clean_error(tmp_cwd: Path) -> None:
    for command in (("report", "r1"), ("compare", "r1", "r2")):
        r = _invoke(*command, "--db", tmp_cwd / "none.duckdb")
        assert r.exit_code == 2 and "no results database" in r.stderr


def test_cli_compare_json_and_html(store: tuple[ResultsDB, dict[str, str]], tmp_cwd: Path) -> None:
    db, ids = store
    r = _invoke("compare", ids["a"], ids["b"], ids["c"], "--db", db.path, "--json", "-o", "c.html")
    assert r.exit_code == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["reference"] == ids["a"] and payload["html"] == "c.html" and (tmp_cwd / "c.html").exists()
    first, second = payload["differences"]
    assert first["paired"] and not second["paired"]
    reps_a, reps_b = db.replicate_outcomes(ids["a"]), db.replicate_outcomes(ids["b"])
    diffs = reps_b["attempts"].to_numpy() - reps_a["attempts"].to_numpy()
    assert first["outcomes"]["attempts"]["median"] == pytest.approx(float(np.median(diffs)))
    assert first["outcomes"]["attempts"]["share_b_greater"] == pytest.approx(float(np.mean(diffs > 0)))
    assert payload["outcomes"]["defected"][ids["b"]]["median"] == pytest.approx(
        db.outcomes(ids["b"]).set_index("outcome").loc["defected", "median"]
    )
    r = _invoke("compare", ids["a"], ids["b"], "--db", db.path)
    assert r.exit_code == 0 and "B − A: paired" in r.stdout and "defected" in r.stdout


def test_png_without_a_browser_is_a_clean_error(
    store: tuple[ResultsDB, dict[str, str]], tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from defection.report import png

    db, ids = store
    monkeypatch.setattr(png, "find_chrome", lambda: None)
    r = _invoke("report", ids["a"], "--db", db.path, "--png", "figs")
    assert r.exit_code == 2 and "install" in r.stderr and "chromium" in r.stderr.lower()
    assert not (tmp_cwd / f"report-{ids['a']}.html").exists()  # refused before any work
    with pytest.raises(ReportError, match="Chromium"):
        png.write_pngs({}, tmp_cwd / "figs")


def test_run_writes_its_report(tmp_cwd: Path) -> None:
    small = ("run", "--days", 5, "--replicates", 2, "--agents", 990, "--db", "r.duckdb")
    r = _invoke(*small, "--report", "missing/r.html")
    assert r.exit_code == 2 and "--report missing/r.html" in r.stderr and not (tmp_cwd / "r.duckdb").exists()
    r = _invoke(*small, "--report", "r.html")
    assert r.exit_code == 0, r.stderr
    rid = ResultsDB(tmp_cwd / "r.duckdb").list_runs()["run_id"].iloc[0]
    html = (tmp_cwd / "r.html").read_text(encoding="utf-8")
    assert rid in html and "fig-defections" in html


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"),
    reason="PNG export needs Chromium (/usr/bin/chromium); required in CI",
)
def test_png_export(store: tuple[ResultsDB, dict[str, str]], tmp_cwd: Path) -> None:
    db, ids = store
    r = _invoke("report", ids["a"], "--db", db.path, "--png", "figs")
    assert r.exit_code == 0, r.stderr
    files = sorted((tmp_cwd / "figs").glob("*.png"))
    assert {f.stem for f in files} == RUN_FIGURES
    for f in files:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_a_hung_png_export_is_a_clean_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """kaleido waits on its Chromium without a limit (a test run hung on it for minutes on a loaded machine): the
    export is given up after the time limit with a ReportError that says why, and an export that fails says how."""
    import threading

    from defection.report.png import PNG_TIMEOUT_SECONDS, png_timeout, within_time_limit

    release = threading.Event()
    with pytest.raises(ReportError, match=r"did not finish in 0\.2 s"):
        within_time_limit(lambda: release.wait(60), 0.2)
    release.set()

    def broken() -> None:
        raise RuntimeError("browser failed to start")

    with pytest.raises(ReportError, match="PNG export failed: RuntimeError: browser failed to start"):
        within_time_limit(broken, 60)
    within_time_limit(lambda: None, 60)  # a quick export returns
    monkeypatch.setenv("DEFECTION_PNG_TIMEOUT", "12.5")
    assert png_timeout() == 12.5
    for bad in ("", "soon", "-1", "0"):
        monkeypatch.setenv("DEFECTION_PNG_TIMEOUT", bad)
        assert png_timeout() == PNG_TIMEOUT_SECONDS
