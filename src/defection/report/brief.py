"""The brief: one page, in HTML and Markdown, for a reader who will not open the rest (issue 15, "The brief").

It states the question and the proposal tested, the verdict on each of the six claims with the parameters that
decide it and the best alternative design, five key numbers with their 90% intervals and the posterior that made
each, how the calibrated model did out of sample (the packaged backtest summary), the limits that matter for this
answer, and three figures. `render_brief(db, run_id)` briefs a stored `claims` run, or a plain `run` with the
verdicts of the newest complete claims run of the same scenario and posterior (none: it says so, and how to make
one). `summary_section` is the short form every run and claims report starts with.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from defection.claims import MIN_REPLICATES
from defection.model.economics import budget_total
from defection.report import figures as rf
from defection.report.backtest_summary import packaged_summary
from defection.report.changes import changed_parameters, scenario_of
from defection.report.claims_text import alternative_text, decided_by_text
from defection.report.errors import ReportError
from defection.report.format import fmt_interval, fmt_signed, fmt_value
from defection.report.html import coarse_run_warning, figure_block, page
from defection.report.numbers import SUMMARY_FORMATS
from defection.report.store import complete_run
from defection.scenario.library import library_names
from defection.store.db import posterior_label

if TYPE_CHECKING:
    from defection.scenario import Scenario
    from defection.store import ResultsDB

BRIEFED_KINDS = ("run", "claims", "numbers")
"""Runs a brief can summarise: simulations of one scenario (`numbers`: the runs `make numbers` stores)."""

QUESTION = (
    "What package of cash, asylum, protection and education would make Russian soldiers in Ukraine lay down their "
    "arms: how many would, how fast, at what cost, and what would it do to their army?"
)
PROPOSAL = (
    "The proposal tested (docs/proposal.md, a blog post of March 2022): $100,000 and a trip to Disneyland, asylum "
    "and a Western education for every soldier who defects; raise the offer until mass defection follows; charge "
    "those who stay as war criminals; pay for it from Russia's frozen assets. Its six claims are tested with paired "
    "simulations (common random numbers); the lab tests the proposal, it does not assume that it works."
)
STRUCTURAL = (
    'The model cannot yet produce a front collapse or civil-war crossings (docs/calibration.md, "What this means")'
)
NOT_FORECASTS = (
    "These are the model's answers under its stated assumptions, for comparing designs, not forecasts "
    "(docs/model.md states every assumption)."
)
FIGURES = {
    "defections": "Defections over time: how many, how fast",
    "funnel": "From awareness to payment: where soldiers drop out",
    "cost": "Programme cost against the budget",
}
NO_PNG = "PNG figures were not written: the figures are in the HTML brief"
CSS = """
.brief h1{margin-bottom:.6rem}.brief .lead{font-size:1.05rem}.brief td,.brief li,.brief p{overflow-wrap:anywhere}
.claim{border-left:4px solid #dee2e6;padding:.2rem .8rem;margin:.6rem 0}.claim p{margin:.15rem 0}
.claim .verdict{padding:0 .3rem}.brief-summary{border:1px solid #dee2e6;background:#f8f9fa;padding:.2rem 1rem;
margin:1rem 0}.brief-summary h2{margin-top:.6rem}.brief-summary ul{margin:.3rem 0;padding-left:1.2rem}
"""


# ----------------------------------------------------------------------------- content
@dataclass(frozen=True)
class KeyNumber:
    """One of the brief's key numbers: its median and 90% interval, and the run and posterior that produced it
    (`missing` says why there is no value)."""

    label: str
    outcome: str  # the outcome whose units it is in (formatting)
    median: float | None
    p05: float | None
    p95: float | None
    run_id: str | None
    posterior: str
    meaning: str = ""
    signed: bool = False  # a difference: shown with its sign
    missing: str = ""

    @property
    def value(self) -> str:
        """The median, formatted ('undefined' where it has none)."""
        if self.missing:
            return "not available"
        if self.median is None or not math.isfinite(self.median):
            return "undefined"
        return fmt_signed(self.outcome, self.median) if self.signed else fmt_value(self.outcome, self.median)

    @property
    def interval(self) -> str:
        """The 90% interval, formatted."""
        if self.missing or self.median is None:
            return "–"
        fmt = fmt_signed if self.signed else fmt_value
        return f"{fmt(self.outcome, self.p05)} to {fmt(self.outcome, self.p95)}"

    @property
    def source(self) -> str:
        """Which run and posterior produced it."""
        if self.missing:
            return self.missing
        return f"run {self.run_id}; posterior {self.posterior}"


@dataclass(frozen=True)
class ClaimLine:
    """One claim's verdict, why, its headline number, what decides it and the best alternative design."""

    number: int
    claim: str
    verdict: str
    reason: str
    headline: str
    decided_by: str
    alternative: str


@dataclass(frozen=True)
class BriefContent:
    """Everything the brief says, before it is laid out as HTML or Markdown."""

    run: dict[str, Any]
    package: str
    claims_run_id: str | None
    claims: list[ClaimLine]
    no_claims: str  # why there are no verdicts, and the command that makes them (empty when there are)
    numbers: list[KeyNumber]
    posterior: str
    backtest: dict[str, str] | None
    limits: list[str] = field(default_factory=list)


def scenario_key(run: dict[str, Any]) -> str | None:
    """The hash of the scenario a run simulated, with `simulation.posterior` left out (which file a posterior was
    read from is not part of the scenario; the posterior itself is compared by its content hash)."""
    try:
        data = json.loads(run.get("scenario_json") or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("simulation"), dict):
        return None
    data["simulation"] = {**data["simulation"], "posterior": ""}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def matching_claims_run(db: ResultsDB, run: dict[str, Any]) -> dict[str, Any] | None:
    """The newest complete claims run of the same scenario (settings and seed included) and posterior, or None."""
    key = scenario_key(run)
    if key is None:
        return None
    runs = db.list_runs()
    candidates = runs[(runs["kind"] == "claims") & (runs["status"] == "complete")]
    for rid in candidates["run_id"]:  # newest first
        other = db.get_run(str(rid))
        if other.get("posterior_hash") == run.get("posterior_hash") and scenario_key(other) == key:
            return other
    return None


def claims_command(run: dict[str, Any], db_path: str) -> str:
    """The `defection claims` command that tests the claims on a run's scenario, settings and posterior."""
    from defection.scenario.posterior import shipped_posterior_path  # lazy: numpy

    sc = scenario_of(run)
    words = ["defection", "claims"]
    if run.get("scenario_name") in library_names():
        words.append(str(run["scenario_name"]))
    elif sc is None or any(not c.path.startswith("simulation.") for c in changed_parameters(sc)):
        words.append("SCENARIO.toml")  # the file this run simulated
    if sc is not None:
        s = sc.simulation
        words += ["--agents", str(s.agents), "--days", str(s.days), "--replicates", str(s.replicates)]
        words += ["--seed", str(s.seed)]
    if not run.get("posterior_hash"):
        words.append("--no-posterior")
    elif run.get("posterior_path") and str(run["posterior_path"]) != str(shipped_posterior_path()):
        words += ["--posterior", str(run["posterior_path"])]
    return " ".join([*words, "--db", db_path])


def package_text(sc: Scenario | None) -> str:
    """The package this run simulated, in one sentence."""
    if sc is None:
        return "The run's scenario could not be read."
    o = sc.offer
    threat = (
        f"war-crimes charges for those who stay (perceived probability {o.threat.prosecution_probability:g}, "
        f"{o.threat.sentence_years:g} years)"
        if o.threat.prosecution_probability > 0
        else "no threat to those who stay"
    )
    return (
        f"This run simulated {sc.meta.name or 'its scenario'}: cash {fmt_value('usd', o.cash_usd)} "
        f"({o.share_on_arrival:.0%} on arrival), a trip worth {fmt_value('usd', o.trip_value_usd)}, asylum with "
        f"probability {o.asylum_probability:g}, {'a Western education' if o.education else 'no education'}, family "
        f"extraction with probability {o.family_extraction_probability:g}, {threat}; the offer is "
        f"{'fixed' if o.schedule.rule == 'flat' else 'changed by rule (' + o.schedule.rule + ')'}; budget sources "
        f"{fmt_value('usd', budget_total(sc))}; {sc.force.soldiers:,} soldiers over {sc.simulation.days} days."
    )


def claim_lines(claims: dict[str, Any] | None) -> list[ClaimLine]:
    """Each stored claim as the brief states it."""
    lines = []
    for c in (claims or {}).get("claims", []):
        first = (c.get("numbers") or [None])[0]
        headline = "–"
        if first is not None:
            name = first["name"] + str(first.get("unit", "")).lower()
            headline = (
                f"{first['name']}: {fmt_value(name, first['median'])} "
                f"(90% interval {fmt_interval(name, first.get('p05'), first.get('p95'))})"
                if _num(first.get("median")) is not None
                else f"{first['name']}: undefined at these settings"
            )
        lines.append(
            ClaimLine(
                int(c.get("number") or 0),
                str(c.get("claim", "")),
                str(c.get("verdict", "")),
                str(c.get("reason", "")),
                headline,
                decided_by_text(c),
                alternative_text(c),
            )
        )
    return lines


def _outcome(db: ResultsDB, run: dict[str, Any], outcome: str, label: str, meaning: str) -> KeyNumber:
    rows = db.outcomes(run["run_id"])
    row = rows[rows["outcome"] == outcome]
    post = posterior_label(run)
    if row.empty:
        return KeyNumber(label, outcome, None, None, None, run["run_id"], post, meaning, missing="not stored")
    r = row.iloc[0]
    return KeyNumber(label, outcome, _num(r["median"]), _num(r["p05"]), _num(r["p95"]), run["run_id"], post, meaning)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def offer_effect(claims_run: dict[str, Any] | None, claims: dict[str, Any] | None, why_not: str) -> KeyNumber:
    """Claim 1's paired difference of the defected share, offer − no offer, from a claims run."""
    label = "crossings added by the offer (paired: offer − no offer, same random numbers)"
    meaning = "Defected share with the offer minus the same world without it, replicate by replicate."
    found = None
    for c in (claims or {}).get("claims", []):
        if c.get("number") == 1:
            found = next((n for n in c.get("numbers", []) if "no offer" in n.get("name", "")), None)
    if claims_run is None or found is None:
        return KeyNumber(label, "defected_share", None, None, None, None, "", meaning, True, why_not)
    return KeyNumber(
        label,
        "defected_share",
        _num(found.get("median")),
        _num(found.get("p05")),
        _num(found.get("p95")),
        claims_run["run_id"],
        posterior_label(claims_run),
        meaning,
        signed=True,
    )


def key_numbers(
    db: ResultsDB, run: dict[str, Any], claims_run: dict[str, Any] | None, claims: dict[str, Any] | None, why: str
) -> list[KeyNumber]:
    """The five key numbers: crossed, lost by any route, the offer's paired effect, cost per genuine defector,
    companies combat-ineffective at worst."""
    return [
        _outcome(db, run, "defected_share", "crossed to Ukraine (share of the force)", "Defected over the horizon."),
        _outcome(db, run, "lost_share", "lost by any route (crossed, deserted home, surrendered)", "Every exit route."),
        offer_effect(claims_run, claims, why),
        _outcome(
            db,
            run,
            "cost_per_genuine_defector_usd",
            "programme cost per paid genuine defector (present value)",
            "Cash, trip, resettlement, education, protection, screening, extraction and fraud.",
        ),
        _outcome(
            db,
            run,
            "units_ineffective_peak_share",
            "companies combat-ineffective at the worst point",
            "Largest daily share of companies below the combat-ineffective threshold.",
        ),
    ]


def backtest_text(summary: dict[str, Any] | None) -> dict[str, str] | None:
    """The out-of-sample record as the README words it: coverage 'N of M', the median error factor, the skill."""
    if not summary or summary.get("coverage_90") is None or not summary.get("observations"):
        return None
    total = float(summary["observations"])
    folds = summary.get("folds")
    how = f"a {folds}-fold backtest" if folds else "a backtest"
    return {
        "coverage": SUMMARY_FORMATS["count_of"](float(summary["coverage_90"]), total),
        "factor": SUMMARY_FORMATS["factor"](float(summary["median_abs_log_error"]), math.nan),
        "log_error": f"{float(summary['median_abs_log_error']):.2f}",
        "skill": SUMMARY_FORMATS["skill_phrase"](float(summary["skill"]), math.nan),
        "how": how,
        "run_id": str(summary.get("run_id") or ""),
        "source": str(summary.get("source") or ""),
    }


def backtest_sentence(b: dict[str, str]) -> str:
    """One sentence on how the calibrated model did out of sample."""
    return (
        f"Out of sample ({b['how']} of the historical case library: each case predicted by a calibration that never "
        f"saw it), the model's 90% intervals covered {b['coverage']} held-out observations, but its median error is "
        f"a factor of {b['factor']} (median |log error| {b['log_error']}), and its interval score is {b['skill']} a "
        f"naive baseline's ({b['source']}, backtest run {b['run_id']})."
    )


def posterior_limit(run: dict[str, Any]) -> str:
    """What the run's posterior does to its intervals: none (hand-tuned values), tempered, or calibrated."""
    from defection.scenario.posterior import Posterior, PosteriorError  # lazy: numpy

    if not run.get("posterior_hash"):
        return (
            "No posterior: the run used the hand-tuned parameter values, so its intervals hold simulation noise only, "
            "not the uncertainty of the parameters."
        )
    path = run.get("posterior_path")
    try:
        post = Posterior.load(path) if path else None
    except PosteriorError:
        post = None
    if post is None or post.content_hash() != run["posterior_hash"]:
        return (
            f"The posterior {run['posterior_hash']} is no longer at {path or 'its recorded path'}, so how far its "
            "calibration went cannot be checked here."
        )
    meta = post.meta or {}
    temperature, ess = meta.get("final_epsilon"), meta.get("effective_sample_size")
    particles = (meta.get("settings") or {}).get("particles")
    if isinstance(temperature, int | float) and temperature > 1.0:
        size = f", effective sample size {ess:.0f} of {particles} particles" if ess and particles else ""
        return (
            f"Tempered posterior: its calibration stopped at temperature {temperature:.1f} (1 is fully calibrated)"
            f"{size}, so the intervals hold a wide spread of parameters, and none of the model's structural error."
        )
    return "The posterior's intervals hold the spread of the calibrated parameters, not the model's structural error."


def structural_limit(summary: dict[str, Any] | None) -> str:
    """The structural misses, with the held-out observations outside their 90% interval."""
    misses = (summary or {}).get("outside_90") or []
    found = [
        f"{m['case']}'s {m['outcome']} ({m['factor']:.0f} times {m['direction']})"
        if m.get("factor")
        else f"{m['case']}'s {m['outcome']}"
        for m in misses
    ]
    return STRUCTURAL + (": out of sample it missed " + ", ".join(found) + "." if found else ".")


def limits(run: dict[str, Any], claims: dict[str, Any] | None, summary: dict[str, Any] | None) -> list[str]:
    """The limits that matter for this answer: the posterior, the structural misses, the run's resolution and the
    claims run's own warnings."""
    found = [posterior_limit(run), structural_limit(summary)]
    coarse = coarse_run_warning(run)
    if coarse:
        found.append(f"Resolution: {coarse}.")
    if (run.get("replicates") or 0) < MIN_REPLICATES:
        found.append(
            f"Only {run.get('replicates')} replicate(s): a 90% interval over so few is the range of the draws, not "
            "a usable interval."
        )
    found += [f"Claims run: {w}." for w in (claims or {}).get("warnings", [])]
    found.append(NOT_FORECASTS)
    return found


def brief_content(db: ResultsDB, run_id: str) -> BriefContent:
    """What the brief of a complete run or claims run says. ReportError for another kind of run or one that is not
    complete; RunNotFound if there is none."""
    run = complete_run(db, run_id)
    kind = run.get("kind")
    if kind not in BRIEFED_KINDS:
        raise ReportError(
            f"run {run['run_id']} is a {kind} run; a brief summarises a simulation: a `run` or a `claims` run "
            f"(kinds: {', '.join(BRIEFED_KINDS)})"
        )
    if kind == "claims":
        claims_run: dict[str, Any] | None = run
        no_claims = "" if db.artifact(run["run_id"], "claims") else "This claims run stored no claims."
    else:
        claims_run = matching_claims_run(db, run)
        no_claims = (
            ""
            if claims_run is not None
            else (
                "No complete claims run of this scenario, settings and posterior is stored, so the claims have no "
                f"verdict here. Make one with `{claims_command(run, str(db.path))}`, then write this brief again."
            )
        )
    claims = db.artifact(claims_run["run_id"], "claims") if claims_run is not None else None
    why_not = "needs a claims run (see above)" if claims_run is None else "the claims run stored no such number"
    summary = packaged_summary()
    return BriefContent(
        run=run,
        package=package_text(scenario_of(run)),
        claims_run_id=None if claims_run is None else str(claims_run["run_id"]),
        claims=claim_lines(claims),
        no_claims=no_claims,
        numbers=key_numbers(db, run, claims_run, claims, why_not),
        posterior=posterior_label(run),
        backtest=backtest_text(summary),
        limits=limits(run, claims, summary),
    )


def brief_figures(db: ResultsDB, run: dict[str, Any]) -> dict[str, go.Figure]:
    """The brief's figures: defections over time, the funnel, cost against the budget."""
    daily = db.daily(run["run_id"])
    if daily.empty:
        return {}
    sc = scenario_of(run)
    return {
        "defections": rf.defections_over_time(daily),
        "funnel": rf.funnel(daily),
        "cost": rf.cost_against_budget(daily, budget_total(sc) if sc is not None else 0.0),
    }


def settings_text(run: dict[str, Any]) -> str:
    """How the key numbers were made: replicates, agents, soldiers, days, seed."""
    return (
        f"Median across replicates and the 90% interval (5th–95th percentile); {run.get('replicates')} replicates of "
        f"{run.get('agents') or 0:,} agents for {run.get('represented') or 0:,} soldiers, {run.get('days')} days, "
        f"seed {run.get('seed')}."
    )


# ----------------------------------------------------------------------------- HTML
def _verdict_span(verdict: str) -> str:
    return f'<span class="verdict" style="background:{rf.verdict_colour(verdict)}">{escape(verdict)}</span>'


def _title(content: BriefContent) -> str:
    run = content.run
    return f"Brief: {run.get('scenario_name') or run['run_id']} ({run.get('kind')} {run['run_id']})"


def _claims_html(content: BriefContent) -> str:
    if not content.claims:
        return f'<p class="note warning" id="brief-no-claims">{escape(content.no_claims)}</p>'
    source = (
        f"From claims run {content.claims_run_id}."
        if content.claims_run_id != content.run["run_id"]
        else "From this claims run."
    )
    blocks = [
        f'<div class="claim" id="brief-claim-{c.number}"><p><b>Claim {c.number}.</b> {escape(c.claim)} '
        f"{_verdict_span(c.verdict)}</p><p>Why: {escape(c.reason)}</p><p>Number: {escape(c.headline)}</p>"
        f"<p>Decided by: {escape(c.decided_by)}</p><p>Best alternative: {escape(c.alternative)}</p></div>"
        for c in content.claims
    ]
    return f'<p class="note">{escape(source)}</p>' + "".join(blocks)


def _numbers_html(content: BriefContent, element_id: str) -> str:
    rows = "".join(
        f"<tr><td title='{escape(n.meaning)}'>{escape(n.label)}</td><td class=\"num\">{escape(n.value)}</td>"
        f'<td class="num">{escape(n.interval)}</td><td>{escape(n.source)}</td></tr>'
        for n in content.numbers
    )
    return (
        f'<div class="scroll"><table id="{element_id}"><thead><tr><th>number</th><th>median</th>'
        f"<th>90% interval</th><th>from</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _backtest_html(content: BriefContent) -> str:
    if content.backtest is None:
        return '<p class="note">This installation has no backtest summary.</p>'
    return f'<p id="brief-backtest">{escape(backtest_sentence(content.backtest))}</p>'


def brief_html(content: BriefContent, figures: Mapping[str, go.Figure]) -> str:
    """The brief as one self-contained HTML document."""
    run = content.run
    body = (
        f'<style>{CSS}</style><main class="brief"><h1>{escape(_title(content))}</h1>'
        f'<section id="brief-question"><h2>The question</h2><p class="lead">{escape(QUESTION)}</p>'
        f"<p>{escape(PROPOSAL)}</p><p>{escape(content.package)}</p></section>"
        f'<section id="brief-claims"><h2>The six claims</h2>{_claims_html(content)}</section>'
        f'<section id="brief-numbers"><h2>Key numbers</h2><p class="note">{escape(settings_text(run))} Posterior: '
        f"{escape(content.posterior)}.</p>{_numbers_html(content, 'brief-numbers-table')}</section>"
        f'<section id="brief-backtest-section"><h2>How well the model does out of sample</h2>'
        f"{_backtest_html(content)}</section>"
        f'<section id="brief-limits"><h2>Limits that matter for this answer</h2><ul>'
        + "".join(f"<li>{escape(x)}</li>" for x in content.limits)
        + "</ul></section>"
    )
    if figures:
        body += '<section id="brief-figures"><h2>Figures</h2>'
        body += "".join(f"<h3>{escape(FIGURES.get(k, k))}</h3>" + figure_block(k, f) for k, f in figures.items())
        body += "</section>"
    body += f'<p class="note">The full report: <code>defection report {escape(run["run_id"])}</code>.</p></main>'
    return page(_title(content), body)


def summary_section(content: BriefContent) -> str:
    """The brief's summary block that every run and claims report starts with: the question, the verdicts if known,
    the key numbers with their intervals, the posterior and the backtest's coverage."""
    if content.claims:
        verdicts = "<ul>" + "".join(
            f"<li>Claim {c.number}: {escape(c.claim)} {_verdict_span(c.verdict)}</li>" for c in content.claims
        )
        verdicts += "</ul>"
        if content.claims_run_id != content.run["run_id"]:
            verdicts = f'<p class="note">Verdicts of claims run {escape(str(content.claims_run_id))}.</p>' + verdicts
    else:
        verdicts = f'<p class="note">{escape(content.no_claims)}</p>'
    backtest = (
        f"Out of sample the model's 90% intervals covered {content.backtest['coverage']} held-out observations; its "
        f"median error is a factor of {content.backtest['factor']}."
        if content.backtest
        else "This installation has no backtest summary."
    )
    return (
        f'<style>{CSS}</style><section id="brief-summary" class="brief brief-summary"><h2>In brief</h2>'
        f"<p>{escape(QUESTION)}</p>{verdicts}{_numbers_html(content, 'brief-summary-numbers')}"
        f'<p class="note">Posterior: {escape(content.posterior)}. {escape(backtest)} '
        f"<code>defection brief {escape(content.run['run_id'])}</code> writes the one-page brief.</p></section>"
    )


# ----------------------------------------------------------------------------- Markdown
def md(text: Any) -> str:
    """Text made safe in Markdown: no HTML, no table or emphasis syntax."""
    out = str(text)
    for ch in ("\\", "|", "*", "`", "[", "]", "<", ">"):
        out = out.replace(ch, "\\" + ch)
    return out


def brief_markdown(
    content: BriefContent, pngs: Mapping[str, str] | None = None, note: str = NO_PNG, html_name: str | None = None
) -> str:
    """The brief in Markdown: the same content; the figures as PNG images if `pngs` (figure id → path relative to
    the Markdown file) is given, else `note` saying why there are none."""
    run = content.run
    lines = [f"# {md(_title(content))}", "", "## The question", "", md(QUESTION), "", md(PROPOSAL), ""]
    lines += [md(content.package), "", "## The six claims", ""]
    if content.claims:
        if content.claims_run_id != run["run_id"]:
            lines += [f"From claims run {md(content.claims_run_id)}.", ""]
        for c in content.claims:
            lines += [
                f"- **Claim {c.number}.** {md(c.claim)} **Verdict: {md(c.verdict)}.**",
                f"  - Why: {md(c.reason)}",
                f"  - Number: {md(c.headline)}",
                f"  - Decided by: {md(c.decided_by)}",
                f"  - Best alternative: {md(c.alternative)}",
            ]
        lines.append("")
    else:
        lines += [md(content.no_claims), ""]
    lines += [
        "## Key numbers",
        "",
        f"{md(settings_text(run))} Posterior: {md(content.posterior)}.",
        "",
        "| number | median | 90% interval | from |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {md(n.label)} | {md(n.value)} | {md(n.interval)} | {md(n.source)} |" for n in content.numbers]
    lines += ["", "## How well the model does out of sample", ""]
    lines += [md(backtest_sentence(content.backtest)) if content.backtest else "No backtest summary.", ""]
    lines += ["## Limits that matter for this answer", ""]
    lines += [f"- {md(x)}" for x in content.limits]
    lines += ["", "## Figures", ""]
    if pngs:
        for key, path in pngs.items():
            lines += [f"![{md(FIGURES.get(key, key))}]({path})", ""]
    else:
        where = f" ({html_name})" if html_name else ""
        lines += [f"{md(note)}{md(where)}.", ""]
    lines.append(f"The full report: `defection report {run['run_id']}`.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the document
@dataclass(frozen=True)
class Brief:
    """A run's brief: its content, figures, HTML document and Markdown text (figures noted, not linked; see
    `markdown_with`)."""

    content: BriefContent
    figures: dict[str, go.Figure]
    html: str
    markdown: str

    def markdown_with(self, pngs: Mapping[str, str] | None, note: str = NO_PNG, html_name: str | None = None) -> str:
        """The Markdown with the figures as PNG images (figure id → relative path), or `note` on why there are
        none and the HTML file's name."""
        return brief_markdown(self.content, pngs, note, html_name)


def render_brief(db: ResultsDB, run_id: str) -> Brief:
    """The brief of a complete run or claims run (see the module's docstring). ReportError for another kind of run
    or one that is not complete; RunNotFound if there is none."""
    content = brief_content(db, run_id)
    figures = brief_figures(db, content.run)
    return Brief(content, figures, brief_html(content, figures), brief_markdown(content))


def summary_for(db: ResultsDB, run: dict[str, Any]) -> str:
    """The summary block of a report of `run`: empty for kinds a brief does not summarise."""
    if run.get("kind") not in BRIEFED_KINDS:
        return ""
    return summary_section(brief_content(db, run["run_id"]))
