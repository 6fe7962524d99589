"""`defection brief`: the one-page summary of a run or a claims run, in HTML and Markdown (issue 15, "The brief").

One tiny claims run (`defection brief` on the default scenario: 990 agents, 2 days, 2 replicates) and two plain runs
are stored once per module: one with the claims run's scenario, settings and posterior, one with another seed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pytest

from defection.report.backtest_summary import backtest_summary, packaged_summary
from defection.report.brief import md, render_brief
from defection.report.claims_text import alternative_text, decided_by_text
from defection.report.numbers import SUMMARY_FORMATS
from defection.store import ResultsDB, RunMeta

from .conftest import ROOT, cli_in_process

BACKTEST = ROOT / "docs" / "validation" / "backtest.json"
TINY = ["--agents", "990", "--days", "2", "--replicates", "2"]


@dataclass
class Stored:
    db: Path
    claims: str  # the claims run `defection brief` made and briefed
    html: Path
    markdown: Path
    same: str  # a plain run of the same scenario, settings and posterior
    other: str  # a plain run with another seed: no claims run matches it
    failed: str  # a run that failed


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    folder = tmp_path_factory.mktemp("brief")
    db, html = folder / "b.duckdb", folder / "brief.html"
    r = cli_in_process("brief", *TINY, "--seed", "3", "--db", db, "-o", html)
    assert r.returncode == 0, r.stderr
    claims = ResultsDB(db).latest("claims")
    assert claims is not None
    ids = []
    for seed in ("3", "4"):
        r = cli_in_process("run", *TINY, "--seed", seed, "--db", db, "--json")
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["run_id"])
    store = ResultsDB(db)
    failed = store.begin_run(RunMeta(kind="run", scenario_name="broken"))
    store.mark_run(failed, "failed", "RuntimeError: boom")
    return Stored(db, claims, html, folder / "brief.md", ids[0], ids[1], failed)


def verdicts_in_html(html: str) -> list[str]:
    section = html[html.index('id="brief-claims"') : html.index('id="brief-numbers"')]
    return re.findall(r'<span class="verdict"[^>]*>(.*?)</span>', section)


def verdicts_in_markdown(text: str) -> list[str]:
    return re.findall(r"\*\*Verdict: (.*?)\.\*\*", text)


def test_packaged_backtest_summary_matches_the_committed_backtest() -> None:
    """The installed package's copy is what `backtest_summary` makes of docs/validation/backtest.json (after a new
    backtest: `python -m defection.report.backtest_summary`, which `make validate` runs)."""
    full = json.loads(BACKTEST.read_text(encoding="utf-8"))
    assert packaged_summary() == json.loads(json.dumps(backtest_summary(full)))
    packaged = packaged_summary()
    assert packaged is not None and packaged["source"] == "docs/validation/backtest.json"
    assert {m["case"] for m in packaged["outside_90"]} == {r["case"] for r in full["rows"] if not r["inside_90"]}


def test_the_committed_backtest_is_scored_as_the_code_scores_today() -> None:
    """docs/validation/backtest.json holds the scores today's `scored_rows` gives its predictions (a change of the
    scores without `python -m defection.report.backtest_summary --rescore` fails here), and each of its upper
    bounds says so in its row."""
    from defection.report.backtest_summary import rescored

    full = json.loads(BACKTEST.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(rescored(full))) == full
    kinds = {(r["case"], r["outcome"]): r["likelihood"] for r in full["rows"]}
    assert kinds[("caporetto-1917", "defected_share")] == "upper_bound"


def test_brief_of_a_claims_run_holds_every_verdict_and_number(stored: Stored) -> None:
    html, text = stored.html.read_text(encoding="utf-8"), stored.markdown.read_text(encoding="utf-8")
    db = ResultsDB(stored.db)
    claims = db.artifact(stored.claims, "claims")["claims"]
    assert [c["number"] for c in claims] == [1, 2, 3, 4, 5, 6]
    for c in claims:
        assert f"<b>Claim {c['number']}.</b> {escape(c['claim'])}" in html
        assert f"**Claim {c['number']}.** {md(c['claim'])}" in text
        first = c["numbers"][0]["name"]  # the claim's headline number, with its interval (or why it has none)
        assert re.search(re.escape(f"Number: {escape(first)}: ") + r"[^<]*(90% interval|undefined)", html), first
        assert f"Decided by: {escape(decided_by_text(c))}</p>" in html
        assert f"Decided by: {md(decided_by_text(c))}" in text
        assert f"Best alternative: {escape(alternative_text(c))}</p>" in html
        assert f"Best alternative: {md(alternative_text(c))}" in text
    assert any(c["alternative"] for c in claims)  # claims 1, 2 and 5 name one
    assert verdicts_in_html(html) == verdicts_in_markdown(text) == [c["verdict"] for c in claims]
    run = db.get_run(stored.claims)
    assert run["posterior_hash"] and run["posterior_hash"] in html and run["posterior_hash"] in text
    assert html.count(f"posterior {run['posterior_hash']} (") >= 5  # each key number says which posterior
    full = json.loads(BACKTEST.read_text(encoding="utf-8"))
    coverage = SUMMARY_FORMATS["count_of"](full["coverage_90"], full["observations"])
    assert f"90% intervals covered {coverage} held-out observations" in html
    assert f"90% intervals covered {coverage} held-out observations" in text
    assert "Tempered posterior" in html  # limits: the posterior ...
    missed = [r["case"] for r in full["rows"] if not r["inside_90"]]
    assert missed and all(escape(f"{case}'s") in html for case in missed)  # ... and every miss
    assert "Resolution: 990 agents" in html  # a small run says so
    assert 'id="fig-defections"' in html and 'id="fig-funnel"' in html and 'id="fig-cost"' in html
    from plotly.offline import get_plotlyjs

    assert html.count(get_plotlyjs()[:300]) == 1 and "<script src" not in html.lower()  # self-contained


def test_markdown_refers_to_pngs_only_when_they_were_written(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    from defection.cli.brief import write_pngs_for
    from defection.report import png

    text = stored.markdown.read_text(encoding="utf-8")
    if png.find_chrome() is not None:  # the module's brief wrote them
        for name in ("defections", "funnel", "cost"):
            assert f"](brief-figures/{name}.png)" in text
            assert (stored.markdown.parent / "brief-figures" / f"{name}.png").stat().st_size > 0
    b = render_brief(ResultsDB(stored.db), stored.claims)
    monkeypatch.setattr(png, "find_chrome", lambda: None)
    pngs, why = write_pngs_for(b, stored.markdown.parent / "other.md")
    assert pngs is None and "Chrome or Chromium" in why
    without = b.markdown_with(pngs, why, "brief.html")
    assert ".png" not in without and "Chrome or Chromium" in without and "(brief.html)" in without
    assert verdicts_in_markdown(without) == verdicts_in_html(b.html)


def test_brief_of_a_plain_run_takes_the_matching_claims_runs_verdicts(stored: Stored, tmp_path: Path) -> None:
    target = tmp_path / "plain.html"
    r = cli_in_process("brief", stored.same[:6], "--db", stored.db, "-o", target, "--markdown", tmp_path / "p.md")
    assert r.returncode == 0, r.stderr
    html = target.read_text(encoding="utf-8")
    assert f"From claims run {stored.claims}." in html
    assert verdicts_in_html(html) == [
        c["verdict"] for c in ResultsDB(stored.db).artifact(stored.claims, "claims")["claims"]
    ]
    assert f"run {stored.same}; posterior" in html  # its own numbers
    assert f"run {stored.claims}; posterior" in html  # the offer's paired effect, from the claims run
    assert (tmp_path / "p.md").is_file()


def test_brief_of_a_plain_run_without_a_claims_run_says_so(stored: Stored) -> None:
    b = render_brief(ResultsDB(stored.db), stored.other)
    assert b.content.claims == [] and b.content.claims_run_id is None
    for text in (b.html, b.markdown):
        assert "No complete claims run of this scenario, settings and posterior is stored" in text
        assert "defection claims --agents 990 --days 2 --replicates 2 --seed 4 --db " in text
        assert "needs a claims run" in text  # the offer's paired effect has none
    assert verdicts_in_html(b.html) == [] and verdicts_in_markdown(b.markdown) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rnothere99"], "rnothere99: no run 'rnothere99' in"),
        (["missing.toml"], "no scenario file of that name"),
        (["bad.toml"], "bad.toml"),
        (["RUN", "--agents", "990"], "--agents: only for a scenario"),
        (["FAILED"], "not complete"),
        (["RUN", "-o", "nowhere/brief.html"], "folder nowhere does not exist"),
    ],
)
def test_bad_input_is_a_clean_error_and_writes_nothing(
    stored: Stored, tmp_cwd: Path, args: list[str], message: str
) -> None:
    (tmp_cwd / "bad.toml").write_text("[offer]\ncash_usd = -5\n", encoding="utf-8")
    db = ResultsDB(stored.db)
    args = [{"RUN": stored.same, "FAILED": stored.failed}.get(a, a) for a in args]
    runs_before = len(db.list_runs())
    r = cli_in_process("brief", *args, "--db", stored.db)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_cwd.iterdir()) == ["bad.toml"]  # no brief.html, brief.md or figures
    assert len(db.list_runs()) == runs_before  # nothing simulated or stored


def test_reports_start_with_the_brief_summary(stored: Stored) -> None:
    from defection.report import render_report

    db = ResultsDB(stored.db)
    for rid in (stored.claims, stored.same, stored.other):
        page = render_report(db, rid)
        assert page.index('id="brief-summary"') < page.index("<header>")
        summary = page[page.index('id="brief-summary"') : page.index("</section>", page.index('id="brief-summary"'))]
        assert "crossed to Ukraine" in summary and "90% interval" in summary
        assert db.get_run(rid)["posterior_hash"] in summary
        full = json.loads(BACKTEST.read_text(encoding="utf-8"))
        assert SUMMARY_FORMATS["count_of"](full["coverage_90"], full["observations"]) in summary
        if rid == stored.other:
            assert "No complete claims run" in summary
        else:
            assert summary.count('class="verdict"') == 6
    claims = db.artifact(stored.claims, "claims")["claims"]
    page = render_report(db, stored.claims)  # the claims table shows what `defection claims` prints under each claim
    assert "<th>decided by</th>" in page and "<th>best alternative</th>" in page
    for c in claims:
        assert f"<td>{escape(decided_by_text(c))}</td>" in page and f"<td>{escape(alternative_text(c))}</td>" in page
