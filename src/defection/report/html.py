"""Self-contained HTML documents: one run's report, and a comparison of runs.

Each document inlines plotly.js once and embeds every figure as a `<div id="fig-NAME">` with its JSON in a
`<script type="application/json" data-figure="fig-NAME">`; one small script draws them all with `Plotly.newPlot`.
Nothing is loaded from elsewhere (no CDN, no web fonts, no MathJax), so a report opens offline. All text from the
database (scenario names, claims, parameter sources) is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from defection.claims import PAIRED_BASELINE
from defection.engine import package_version
from defection.model.economics import budget_total
from defection.model.outputs import OUTCOMES
from defection.model.population import resolution_warning
from defection.report import explore_figures as ef
from defection.report import figures as rf
from defection.report import optimize_text as ot
from defection.report.changes import Change, changed_parameters, scenario_of, shown
from defection.report.claims_text import alternative_text, decided_by_text
from defection.report.comparison import Comparison, load_comparison
from defection.report.errors import ReportError
from defection.report.format import fmt_interval, fmt_short, fmt_short_interval, fmt_signed, fmt_value
from defection.report.series import stored_baseline
from defection.report.store import complete_run
from defection.scenario import iter_params
from defection.store.db import posterior_label

if TYPE_CHECKING:
    from defection.store import ResultsDB

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
SIMULATION_KINDS = ("run", "claims")

CAPTIONS = {
    "defections": "Soldiers who reached the other side, cumulated over days. Line: median across replicates; "
    "dark band: the middle 50% of replicates (p25–p75); light band: 90% (p05–p95).",
    "funnel": "Totals over the whole run. Aware is the largest number of serving soldiers who knew the offer on any "
    "day; the rest are cumulative counts. Bars: median across replicates; whiskers: 90% interval. Caught "
    "includes those caught while waiting for extraction and those executed.",
    "offer": "The cash offer on each day (0 while the programme is closed). Median and bands across replicates.",
    "counter-measures": "The regime's counter-measures on each day (they only tighten). Median and bands across "
    "replicates.",
    "cost": "Cumulative programme cost as a present value at day 0 (what `programme_cost_usd` reports at the end), "
    "against the total of the budget sources (dashed). A log scale is used when the cost stays under 1% of "
    "the budget.",
    "unit-strength": "Company strength (soldiers present over establishment). Bands: the spread across companies "
    "(p10–p90 light, p25–p75 dark), line: the median company; each is the median across "
    "replicates. Dotted: the force as a whole.",
    "units-ineffective": "Share of companies below the combat-ineffective threshold on each day. Median and bands "
    "across replicates. Combat losses and the offer both push it up: when the run stored a paired no-offer baseline "
    "(`defection run --paired-baseline`; every claims run), the dashed line is the same world with no offer and the "
    "second panel the paired difference, each replicate with the offer minus the same replicate without it (same "
    "seed, common random numbers): the offer's own effect. Without one, the figure shows the total alone and says "
    "so.",
    "claims": "The proposal's claims, each tested with paired simulations; verdict colour: green supported, red not "
    "supported, amber depends.",
    "pareto": "Every optimisation trial's mean cost against the outcome it pursued.",
    "cost-share": "Every trial's mean cost against the mean share it achieved over worlds × replicates (bars: 90% of "
    "them); blue: feasible (reached the target with the required probability), grey: not. The line joins the "
    "packages no other trial beats on both cost and share; dashed: the target.",
    "prim-boxes": "The limits of each PRIM box on the uncertainties it restricts, within the range the design sampled.",
    "prim-trajectory": "Coverage (share of all cases of interest inside the box) against density (share of the box's "
    "cases that are of interest) as PRIM peels; the star is the box reported.",
    "sweep-matrix": "Each experiment's parameters and median outcomes (over its replicates). Axes are named by the "
    "last part of each parameter's path (hover a point for the full paths and values); parameters sampled on a log "
    "scale have log axes; a parameter or outcome with one value in every experiment is left out, and the title "
    "says which.",
    "posterior": "Posterior medians and 90% intervals of the calibrated parameters, placed within their prior ranges.",
    "posterior-pairs": "The posterior's particles, pairwise: below the diagonal each pair of calibrated parameters, "
    "one dot per particle, its area growing with the particle's weight; on the diagonal each parameter's weighted "
    "histogram (share of the total weight in each bin). Axes span the prior ranges (log scales for log-uniform "
    "priors).",
    "predictive-check": "Posterior predictive check (in sample): predicted median and 90% interval against the "
    "observed value; red: the observation falls outside the interval.",
    "backtest": "Leave-one-case-out predictions (out of sample) against the observed values; red: outside the 90% "
    "interval.",
    "validation-predicted": "Each held-out observation: the model's predicted median (dot), 50% interval (thick bar) "
    "and 90% interval (thin bar), from a calibration that never saw its case, against the observed share; log "
    "scales. Dashed: predicted = observed. Red: outside the 90% interval.",
    "validation-pit": "Probability integral transform of each observation under its predictive draws (ties "
    "randomised). Calibrated intervals give a flat histogram (dashed); a U shape means intervals too narrow, a "
    "hump too wide, a slope a biased median.",
    "validation-folds": "Each fold's posterior (calibrated without the case named on the axis): median and 90% "
    "interval of every calibrated parameter. Folds that disagree show which case pulls a parameter.",
    "validation-pairs": "Each fold's posterior particles, pairwise (the menu picks the fold, named by the case it "
    "left out): below the diagonal each pair of calibrated parameters, one dot per particle, its area growing with "
    "the particle's weight; on the diagonal each parameter's weighted histogram (share of the total weight per bin). "
    "Axes span the prior ranges (log scales for log-uniform priors); ridges and clouds show which parameters trade "
    "off against each other.",
    "curve": "Each outcome against the lever's level: the line is the median across replicates, the band the 90% "
    "interval (p05–p95). Every level used the same seed and replicates (common random numbers): hover a point for "
    "the paired difference from the first level, replicate by replicate, whose interval is narrower than the bands.",
    "compare-defections": "Each run's median (line) and 90% band of replicates.",
    "compare-cost": "Each run's median (line) and 90% band of replicates, present value at day 0.",
    "compare-differences": "Each dot is one replicate's paired difference (run − reference) under common random "
    "numbers; the box spans the middle 50%.",
}
CAPTION_PREFIXES = {
    "sensitivity-": "Bars: the index of each factor; error bars: 95% bootstrap interval. S1 is the share of the "
    "outcome's variance a factor explains alone, ST including its interactions (Morris: mu* the mean "
    "absolute elementary effect, sigma their spread).",
    "sweep-outcome-": "Each point is an experiment: the outcome's median over its replicates, with error bars from "
    "the 5th to the 95th percentile of the replicates.",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#212529;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{padding:.25rem .6rem;text-align:left;
vertical-align:top;border-bottom:1px solid #e9ecef}th{background:#f1f3f5}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}
[title]{text-decoration:underline dotted #adb5bd}figure{margin:1.5rem 0}.plot{width:100%;min-height:300px}
.scroll{overflow-x:auto}figcaption{color:#495057;font-size:.9rem}.note{color:#495057}.warning{color:#664d03;background:#fff3cd;padding:.5rem}.error{color:#842029;background:#f8d7da;padding:.5rem}
.verdict{font-weight:600}footer{margin-top:3rem;color:#868e96;font-size:.8rem}
#compare-table{font-size:.82rem}#compare-table td.num{white-space:normal}
#held-out-table{font-size:.85rem}#held-out-table td.num{white-space:normal}
"""

BOOT = (
    "(function(){var cfg=%s;var s=document.querySelectorAll('script[type=\"application/json\"][data-figure]');"
    "for(var i=0;i<s.length;i++){var f=JSON.parse(s[i].textContent);"
    "Plotly.newPlot(document.getElementById(s[i].getAttribute('data-figure')),f.data,f.layout,cfg);}})();"
)


# ----------------------------------------------------------------------------- building blocks
def caption(key: str) -> str:
    """The caption of a figure, by its id."""
    if key in CAPTIONS:
        return CAPTIONS[key]
    return next((text for prefix, text in CAPTION_PREFIXES.items() if key.startswith(prefix)), "")


def script_json(payload: str) -> str:
    """JSON text made safe inside a <script> element (no '<', '>' or '&' left that could end it)."""
    return payload.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def figure_block(key: str, fig: go.Figure) -> str:
    """A figure as a div, its JSON and its caption."""
    fid = f"fig-{key}"
    data = script_json(fig.to_json(validate=False, engine="json"))
    cap = caption(key)
    return (
        f'<figure><div id="{escape(fid)}" class="plot"></div>'
        f'<script type="application/json" data-figure="{escape(fid)}">{data}</script>'
        + (f"<figcaption>{escape(cap)}</figcaption>" if cap else "")
        + "</figure>"
    )


def cell(text: Any, title: str | None = None, numeric: bool = False) -> str:
    """One escaped table cell, optionally with hover text."""
    attrs = (' class="num"' if numeric else "") + (f' title="{escape(title)}"' if title else "")
    return f"<td{attrs}>{escape(str(text))}</td>"


def table(headers: list[str], rows: list[str], element_id: str | None = None) -> str:
    """A table from escaped header names and pre-rendered rows of cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    ident = f' id="{escape(element_id)}"' if element_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def page(title: str, body: str) -> str:
    """The whole document: plotly.js inlined once, the body, and the script that draws the figures."""
    js = get_plotlyjs().replace("</script", "<\\/script")
    boot = BOOT % json.dumps(PLOTLY_CONFIG)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{js}</script></head>\n<body>{body}'
        f"<footer>defection-lab {escape(package_version())}: model outputs under stated assumptions, "
        f"not forecasts.</footer><script>{boot}</script></body></html>\n"
    )


# ----------------------------------------------------------------------------- sections
def coarse_run_warning(run: dict[str, Any]) -> str | None:
    """The resolution warning of a simulation run with too few agents (None for other kinds of run)."""
    if run.get("kind") not in ("run", "claims") or not run.get("agents"):
        return None
    try:
        force = json.loads(run["scenario_json"])["force"]
        company_size = int(force["squad_size"]) * int(force["squads_per_company"])
    except (KeyError, TypeError, ValueError):
        return None
    return resolution_warning(int(run["agents"]), company_size)


def header_section(run: dict[str, Any], description: str = "") -> str:
    """The run's identity and settings."""
    libs = ", ".join(f"{k} {v}" for k, v in (run.get("library_versions") or {}).items())
    agents = f"{run.get('agents') or 0:,} agents for {run.get('represented') or 0:,} soldiers"
    rows = [
        ("run id", run["run_id"]),
        ("kind", run.get("kind")),
        ("status", run.get("status")),
        ("scenario", run.get("scenario_name")),
        ("scenario hash", run.get("scenario_hash")),
        ("seed", run.get("seed")),
        ("agents", agents),
        ("days", run.get("days")),
        ("replicates", run.get("replicates")),
        ("posterior", posterior_label(run)),
        ("created (UTC)", run.get("created_at")),
        ("finished (UTC)", run.get("finished_at")),
        ("wall time", f"{run['wall_seconds']:.1f} s" if run.get("wall_seconds") is not None else "–"),
        ("defection-lab", run.get("package_version")),
        ("libraries", libs),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th>{cell('–' if v is None or v == '' else v)}</tr>" for k, v in rows)
    desc = f'<p class="note">{escape(description)}</p>' if description else ""
    coarse = coarse_run_warning(run)
    if coarse:
        desc += f'<p class="note warning" id="resolution-warning">Warning: {escape(coarse)}.</p>'
    return (
        f"<header><h1>{escape(str(run.get('scenario_name') or run['run_id']))}: {escape(str(run.get('kind')))} "
        f'{escape(run["run_id"])}</h1>{desc}<table id="run">{body}</table></header>'
    )


def outcomes_section(outcomes: Any, note: str | None = None, empty: str = "This run stored no outcomes.") -> str:
    """Median and 90% interval of every outcome, with what it means; `note` says whose outcomes they are, `empty` what
    to say when the run stored none."""
    if outcomes is None or len(outcomes) == 0:
        return f'<section id="outcomes"><h2>Outcomes</h2><p class="note">{escape(empty)}</p></section>'
    rows = []
    for r in outcomes.to_dict("records"):
        name = r["outcome"]
        meaning = OUTCOMES.get(name.split(":", 1)[-1] if name.startswith("sweep:") else name.split(" @ ", 1)[0], "")
        rows.append(
            f"<tr>{cell(name, meaning or None)}{cell(fmt_value(name, r['median']), numeric=True)}"
            f"{cell(fmt_interval(name, r['p05'], r['p95']), numeric=True)}{cell(meaning)}</tr>"
        )
    whose = f'<p class="note" id="outcomes-of">{escape(note)}</p>' if note else ""
    return (
        f'<section id="outcomes"><h2>Outcomes</h2>{whose}<p class="note">Median across replicates and the 90% interval '
        "(5th–95th percentile).</p>" + table(["outcome", "median", "90% interval", "meaning"], rows) + "</section>"
    )


def optimize_outcomes_notes(result: dict[str, Any] | None) -> tuple[str | None, str]:
    """Whose outcomes an optimize run's outcome table holds (the cheapest package reaching the target, or the closest
    when none did), and what to say when it holds none (a Pareto front has no single package)."""
    if not result:
        return None, "This run stored no outcomes."
    where = "over the run's worlds × replicates"
    if result.get("best"):
        trial = result["best"]["trial"]
        return f"The outcomes of the cheapest package reaching the target (trial {trial}), {where}.", ""
    if result.get("closest"):
        return (
            f"No package reached the target: these are the outcomes of the closest (trial "
            f"{result['closest']['trial']}), {where}.",
            "",
        )
    if result.get("mode") == "pareto":
        return None, (
            "A Pareto front has no single package to give outcomes for: the trials table and the figures below give "
            "every package's cost, defections and time to effect."
        )
    return None, "No trial completed, so no package has outcomes."


def changes_section(
    changes: list[Change] | None, title: str = "Scenario: parameters changed from the defaults", suffix: str = ""
) -> str:
    """The parameters that differ from the default scenario, each with unit and source (hover on the value)."""
    head = f'<section id="scenario{escape(suffix)}"><h2>{escape(title)}</h2>'
    if changes is None:
        return head + '<p class="note">This run has no scenario of its own.</p></section>'
    if not changes:
        return head + '<p class="note">None: the run used the default scenario.</p></section>'
    rows = [
        f'<tr class="param">{cell(c.path, c.description or None)}{cell(shown(c.value), c.source, True)}'
        f"{cell(shown(c.default), numeric=True)}{cell(c.unit)}{cell(c.source)}</tr>"
        for c in changes
    ]
    return head + table(["parameter", "value", "default", "unit", "source"], rows, f"changes{suffix}") + "</section>"


def spec_section(spec: dict[str, Any] | None, options: dict[str, Any] | None = None) -> str:
    """An exploration spec's uncertainties, levers and outcomes (and the command's options)."""
    if not spec:
        return ""
    registry = {p.path: p for p in iter_params()}
    rows = []
    for role in ("uncertainties", "levers"):
        for f in spec.get(role, []):
            info = registry.get(f["path"])
            rng = (
                ", ".join(map(str, f["values"]))
                if f.get("values") is not None
                else f"{f.get('low')} – {f.get('high')}" + (" (log)" if f.get("log") else "")
            )
            rows.append(
                f"<tr>{cell(role[:-1] if role == 'levers' else 'uncertainty')}"
                f"{cell(f['path'], info.source if info else None)}{cell(rng)}"
                f"{cell(info.unit if info else '')}</tr>"
            )
    outcomes = ", ".join(o["name"] for o in spec.get("outcomes", []))
    ex = spec.get("experiment", {})
    note = (
        f"sampler {ex.get('sampler')}, {ex.get('samples')} samples × {ex.get('replicates')} replicates, "
        f"{ex.get('days')} days, {ex.get('agents')} agents; outcomes: {outcomes}"
    )
    opts = "" if not options else f'<p class="note">options: {escape(json.dumps(options, default=str))}</p>'
    return (
        '<section id="spec"><h2>Exploration spec</h2>'
        + f'<p class="note">{escape(note)}</p>'
        + table(["role", "parameter", "range or values", "unit"], rows, "factors")
        + opts
        + "</section>"
    )


def claims_section(claims: dict[str, Any]) -> str:
    """The claims with verdict (coloured), reason and numbers."""
    rows = []
    for c in claims.get("claims", []):
        numbers = "; ".join(
            f"{n['name']}: {fmt_value(n['name'] + n.get('unit', '').lower(), n['median'])} "
            f"({fmt_interval(n['name'] + n.get('unit', '').lower(), n['p05'], n['p95'])})"
            for n in c.get("numbers", [])
        )
        colour = rf.verdict_colour(c.get("verdict", ""))
        rows.append(
            f"<tr>{cell(c.get('number', ''))}{cell(c.get('claim', ''), c.get('test') or None)}"
            f'<td class="verdict" style="background:{colour}">{escape(c.get("verdict", ""))}</td>'
            f"{cell(c.get('reason', ''))}{cell(decided_by_text(c))}{cell(alternative_text(c))}{cell(numbers)}</tr>"
        )
    settings = claims.get("settings", {})
    note = f"{claims.get('simulations', '?')} simulations; settings: {json.dumps(settings, default=str)}"
    headers = ["#", "claim", "verdict", "reason", "decided by", "best alternative", "numbers (median, 90% interval)"]
    return (
        '<section id="claims"><h2>The proposal\'s claims</h2>'
        + f'<p class="note">{escape(note)}</p>'
        + '<p class="note">Decided by: the tested parameters (at most three) whose low and high ends move the '
        "claim's metric the most, one at a time under common random numbers. Best alternative: the programme design "
        "that does best on the metric of a claim that is not supported.</p>"
        + table(headers, rows, "claims-table")
        + "</section>"
    )


def curve_section(curve: dict[str, Any]) -> str:
    """A response curve: the lever, its levels and spacing, the levers held or varied, and per level each outcome's
    median, 90% interval and paired difference from the first level."""
    by = curve.get("by")
    rows = []
    for line in curve.get("curves", []):
        for p in line.get("points", []):
            for name in curve.get("outcomes", []):
                s, d = p["outcomes"][name], p["outcomes"][name]["difference"]
                rows.append(
                    "<tr>"
                    + (cell(line.get("by")) if by else "")
                    + cell(f"{p['level']:,.6g}", numeric=True)
                    + cell(name, OUTCOMES.get(name))
                    + cell(fmt_value(name, s["median"]), numeric=True)
                    + cell(fmt_interval(name, s["p05"], s["p95"]), numeric=True)
                    + cell(f"{fmt_signed(name, d['median'])} ({fmt_interval(name, d['p05'], d['p95'])})", numeric=True)
                    + "</tr>"
                )
    held = curve.get("held") or {}
    notes = [
        f"lever: {curve.get('lever')} ({curve.get('unit') or 'no unit'}), {len(curve.get('levels', []))} levels; "
        f"{curve.get('spacing') or ('log spacing' if curve.get('log') else 'even spacing')}",
        "held: " + (", ".join(f"{k} = {v}" for k, v in held.items()) if held else "the scenario's values"),
    ]
    if by:
        notes.append(f"one curve per value of {by['path']}: {', '.join(map(str, by['values']))}")
    post = curve.get("posterior")
    if post and post.get("set_by_the_curve"):
        notes.append("set by the curve rather than drawn from the posterior: " + ", ".join(post["set_by_the_curve"]))
    headers = [*(["by"] if by else []), "level", "outcome", "median", "90% interval", "paired difference (90%)"]
    return (
        '<section id="curve"><h2>Response curve</h2>'
        + "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
        + table(headers, rows, "curve-table")
        + "</section>"
    )


def _no_box_note(result: dict[str, Any]) -> str:
    """Why a discovery found no box: a threshold that no case (or every case) meets, or no box dense enough."""
    split = result.get("meets_threshold")
    if split not in ("none", "all"):
        return "PRIM found no box reaching the density threshold."
    who = "No case meets" if split == "none" else "Every case meets"
    reached = result.get("outcome_range")
    spread = (
        f"; the outcome ranged from {reached['min']:.4g} to {reached['max']:.4g} (median {reached['median']:.4g})"
        if isinstance(reached, dict)
        else ""
    )
    return f"{who} the threshold, so it does not split the cases and there is no region to discover{spread}."


def boxes_section(result: dict[str, Any]) -> str:
    """PRIM boxes with coverage, density, mass and limits."""
    rows = [
        "<tr>"
        + cell(b["box"])
        + "".join(cell(format(b[k], ".2f"), numeric=True) for k in ("coverage", "density", "mass"))
        + cell("–" if b["cases"] is None else b["cases"], numeric=True)
        + cell("; ".join(b["limits"]))
        + "</tr>"
        for b in ef.box_rows(result)
    ]
    sign = "below" if result.get("direction") == "below" else "above"
    note = (
        f"{result.get('cases_of_interest')} of {result.get('cases')} cases have {result.get('outcome')} "
        f"{sign} {result.get('threshold')}; density threshold {result.get('density_threshold')}."
    )
    body = (
        table(["box", "coverage", "density", "mass", "cases", "limits"], rows, "prim-table")
        if rows
        else f'<p class="note">{escape(_no_box_note(result))}</p>'
    )
    return f'<section id="prim"><h2>Scenario discovery (PRIM)</h2><p class="note">{escape(note)}</p>{body}</section>'


def packages_section(result: dict[str, Any]) -> str:
    """The optimisation's answer: the cheapest package reaching the target (or, when none did, a plain sentence
    saying so and the closest package), or the Pareto front."""
    said = ot.verdict(result)
    if result.get("mode") == "target":
        picked = [result["best"]] if result.get("best") else ([result["closest"]] if result.get("closest") else [])
        goal = ot.goal_text(result.get("target") or {})
        title = f"Cheapest package with {goal}" if result.get("best") else f"No package reached {goal}: the closest"
    else:
        picked = result.get("pareto", [])
        title = f"Pareto front ({len(picked)} packages)"
    names = list(picked[0]["metrics"]) if picked else []
    rows = [
        f"<tr>{cell(p['trial'])}{cell(ot.package_text(p['package']))}"
        + "".join(cell(fmt_short(m, p["metrics"].get(m)), numeric=True) for m in names)
        + "</tr>"
        for p in picked
    ]
    css = "note" if result.get("best") or result.get("mode") != "target" else "note warning"
    return (
        f'<section id="packages"><h2>{escape(title)}</h2>'
        + (f'<p class="{css}" id="verdict">{escape(said[0].upper() + said[1:])}.</p>' if said else "")
        + table(["trial", "package", *names], rows, "packages-table")
        + "</section>"
    )


def sensitivity_warnings_section(result: dict[str, Any]) -> str:
    """The warnings a sensitivity analysis gave about its sample size (nothing when it gave none)."""
    cautions = result.get("warnings") or []
    if not cautions:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in cautions)
    return (
        '<section id="sensitivity-warnings"><h2>Is the sample large enough?</h2>'
        f'<div class="note warning"><p>Read these indices with care:</p><ul>{items}</ul></div></section>'
    )


def trials_section(result: dict[str, Any], trials: list[dict[str, Any]]) -> str:
    """Every complete trial of an optimisation, cheapest first: its package, mean cost, the target outcome's mean and
    90% interval over worlds × replicates, the share reaching the target, days to target, and whether it is feasible
    (target) or on the Pareto front."""
    goal = ef.target_outcome(result, trials)
    target_mode = result.get("mode") == "target"
    front = {r["trial"] for r in result.get("pareto", [])}
    rows = []
    for t in sorted(trials, key=lambda t: (t.get("metrics", {}).get(ef.COST, float("inf")), t.get("trial", 0))):
        m, span = t.get("metrics", {}), (t.get("summary") or {}).get(goal) or {}
        mark = ("yes" if t.get("feasible") else "no") if target_mode else ("yes" if t.get("trial") in front else "")
        rows.append(
            f"<tr>{cell(t.get('trial'))}{cell(ot.package_text(t.get('package', {})))}"
            + cell(fmt_short(ef.COST, m.get(ef.COST)), numeric=True)
            + cell(fmt_short(goal, m.get(goal)), numeric=True)
            + cell(fmt_short_interval(goal, span.get("p05"), span.get("p95")), numeric=True)
            + (cell(fmt_short("probability", m.get("probability")), numeric=True) if target_mode else "")
            + cell(fmt_short(ef.DAYS, m.get(ef.DAYS)), numeric=True)
            + cell(mark)
            + "</tr>"
        )
    headers = [
        "trial",
        "package",
        "mean cost",
        f"{goal} (mean)",
        f"{goal} (90% of worlds × replicates)",
        *(["reached the target"] if target_mode else []),
        "days to target (mean; never counts as the horizon + 1)",
        "feasible" if target_mode else "on the front",
    ]
    note = (
        f"{len(trials)} complete trials, cheapest first; each package simulated in {result.get('worlds')} worlds × "
        f"{result.get('replicates')} replicates on the same seeds (common random numbers)."
    )
    return (
        '<section id="trials"><h2>Trials</h2>'
        + f'<p class="note">{escape(note)}</p>'
        + table(headers, rows, "trials-table")
        + "</section>"
    )


# ----------------------------------------------------------------------------- figures by kind
def simulation_figures(daily: Any, budget_usd: float, paired: dict[str, Any] | None = None) -> dict[str, go.Figure]:
    """The figures of a simulation's daily series; `paired`: the run's stored paired no-offer baseline (artifact
    `claims.PAIRED_BASELINE`), if any, for the offer's paired effect on the companies combat-ineffective."""
    if daily is None or daily.empty:
        return {}
    baseline = stored_baseline(paired)
    definition = str((paired or {}).get("definition") or "no offer")
    return {
        "defections": rf.defections_over_time(daily),
        "funnel": rf.funnel(daily),
        "offer": rf.offer_over_time(daily),
        "counter-measures": rf.counter_measures_over_time(daily),
        "cost": rf.cost_against_budget(daily, budget_usd),
        "unit-strength": rf.unit_strength(daily),
        "units-ineffective": rf.units_ineffective(daily, baseline, definition),
    }


def _figures(db: ResultsDB, run: dict[str, Any]) -> dict[str, go.Figure]:
    rid, kind = run["run_id"], run.get("kind")
    figs: dict[str, go.Figure] = {}
    if kind in SIMULATION_KINDS or kind not in (
        "sweep",
        "sensitivity",
        "optimize",
        "discover",
        "calibration",
        "backtest",
        "curve",
    ):
        sc = scenario_of(run)
        budget = budget_total(sc) if sc is not None else 0.0
        figs.update(simulation_figures(db.daily(rid), budget, db.artifact(rid, PAIRED_BASELINE)))
    if kind == "claims" and (claims := db.artifact(rid, "claims")):
        figs["claims"] = rf.claims_table(claims)
    elif kind == "sensitivity" and (res := db.artifact(rid, "sensitivity")):
        for outcome, records in res.get("indices", {}).items():
            figs[f"sensitivity-{outcome}"] = ef.sensitivity_bars(records, res.get("method", "sobol"), outcome)
    elif kind == "curve" and (curve := db.artifact(rid, "curve")):
        figs["curve"] = ef.response_curve(curve)
    elif kind == "optimize" and (res := db.artifact(rid, "optimize")):
        trials = db.artifact(rid, "trials") or []
        if res.get("mode") == "target":
            figs["cost-share"] = ef.cost_against_achieved(res, trials)
        figs["pareto"] = ef.pareto_front(res, trials)
    elif kind == "discover" and (res := db.artifact(rid, "discover")):
        if res.get("boxes"):
            figs["prim-boxes"] = ef.prim_box_limits(res, db.artifact(rid, "cases") or [])
            figs["prim-trajectory"] = ef.prim_trajectory(res)
    elif kind == "sweep":
        experiments = db.experiments(rid)
        spec = db.artifact(rid, "spec")
        params, outs = ef.sweep_parameters(experiments, spec), ef.sweep_outcomes(experiments, spec)
        log = ef.log_factors(spec)
        if params and outs:
            figs["sweep-matrix"] = ef.sweep_matrix(experiments, ef.sweep_factors(experiments, spec), outs, log)
            for o in outs:
                figs[f"sweep-outcome-{o}"] = ef.sweep_outcome_vs_parameters(experiments, params, o, log)
    elif kind == "calibration" and (cal := db.artifact(rid, "calibration")):
        figs["posterior"] = ef.posterior_intervals(cal.get("parameters", []))
        if (post := db.artifact(rid, "posterior")) and post.get("samples"):
            figs["posterior-pairs"] = ef.posterior_pairs({"posterior": post}, "The posterior, pairwise")
        if cal.get("check"):
            figs["predictive-check"] = ef.predicted_vs_observed(cal["check"], "Posterior predictive check")
    elif kind == "backtest" and (bt := db.artifact(rid, "backtest")):
        from defection.report.validation import validation_figures  # lazy: validation.py builds on this module

        figs.update(validation_figures(bt))
    return figs


def report_figures(db: ResultsDB, run_id: str) -> dict[str, go.Figure]:
    """The figures of a complete run's report, keyed by figure id (the HTML element is `fig-<id>`)."""
    return _figures(db, complete_run(db, run_id))


# ----------------------------------------------------------------------------- documents
def _scenario_json(run: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(run.get("scenario_json") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _kind_sections(db: ResultsDB, run: dict[str, Any]) -> str:
    rid, kind = run["run_id"], run.get("kind")
    data = _scenario_json(run)
    if kind in ("sensitivity", "optimize", "discover"):
        out = spec_section(data.get("spec"), data.get("options"))
    elif kind == "sweep":
        out = spec_section(db.artifact(rid, "spec"))
    elif kind in ("calibration", "backtest"):
        cases = ", ".join(map(str, data.get("cases", [])))
        settings = json.dumps(data.get("settings", {}), default=str)
        out = (
            f'<section id="cases"><h2>Cases and settings</h2><p class="note">cases: {escape(cases)}</p>'
            f'<p class="note">settings: {escape(settings)}</p></section>'
        )
    else:
        out = ""
    if kind == "claims" and (claims := db.artifact(rid, "claims")):
        out += claims_section(claims)
    elif kind == "curve" and (curve := db.artifact(rid, "curve")):
        out += curve_section(curve)
    elif kind == "optimize" and (res := db.artifact(rid, "optimize")):
        out += packages_section(res) + trials_section(res, db.artifact(rid, "trials") or [])
    elif kind == "sensitivity" and (res := db.artifact(rid, "sensitivity")):
        out += sensitivity_warnings_section(res)
    elif kind == "discover" and (res := db.artifact(rid, "discover")):
        out += boxes_section(res)
    elif kind == "backtest" and (bt := db.artifact(rid, "backtest")):
        from defection.report.validation import validation_sections  # lazy: as in _figures

        out += validation_sections(bt)
    return out


def _outcomes_notes(db: ResultsDB, run: dict[str, Any]) -> tuple[str | None, str]:
    """Whose outcomes the run's outcome table holds, and what to say if it holds none."""
    if run.get("kind") == "optimize":
        return optimize_outcomes_notes(db.artifact(run["run_id"], "optimize"))
    return None, "This run stored no outcomes."


def render_report(db: ResultsDB, run_id: str) -> str:
    """One self-contained HTML document reporting a complete run: for a run or claims run the brief's summary block
    first (`defection.report.brief.summary_section`), then header, outcomes, changed parameters, the sections and
    figures of its kind. ReportError if the run is not complete; RunNotFound if there is none."""
    return report_with_figures(db, run_id)[0]


def report_with_figures(db: ResultsDB, run_id: str) -> tuple[str, dict[str, go.Figure]]:
    """The report's HTML document and its figures (as `report_figures` gives them), computed once."""
    run = complete_run(db, run_id)
    rid = run["run_id"]
    sc = scenario_of(run)
    figs = _figures(db, run)
    html_figs = {k: v for k, v in figs.items() if k != "claims"}  # the claims are an HTML table instead
    from defection.report.brief import summary_for  # lazy: brief.py builds on this module

    body = (
        summary_for(db, run)  # the brief's summary block starts every run and claims report
        + header_section(run, sc.meta.description if sc is not None else "")
        + outcomes_section(db.outcomes(rid), *_outcomes_notes(db, run))
        + changes_section(changed_parameters(sc) if sc is not None else None)
        + _kind_sections(db, run)
    )
    if html_figs:
        body += '<section id="figures"><h2>Figures</h2>' + "".join(figure_block(k, f) for k, f in html_figs.items())
        body += "</section>"
    return page(f"defection-lab report {rid}: {run.get('scenario_name') or ''}", body), figs


def _label(run: dict[str, Any]) -> str:
    """A run's name in figure legends (escaped: plotly renders a subset of HTML in labels)."""
    return escape(f"{run['run_id']} ({run.get('scenario_name') or run.get('kind')})")


def compare_figures(db: ResultsDB, cmp: Comparison) -> dict[str, go.Figure]:
    """Overlaid defections and cost of the runs with daily series, and the per-replicate paired differences of
    defections from the first run."""
    dailies = {_label(r): db.daily(r["run_id"]) for r in cmp.runs}
    dailies = {k: v for k, v in dailies.items() if not v.empty}
    figs: dict[str, go.Figure] = {}
    if dailies:
        figs["compare-defections"] = rf.defections_compared(dailies)
        figs["compare-cost"] = rf.cost_compared(dailies)
    ref = cmp.replicates[0]
    diffs = {}
    for d, reps in zip(cmp.differences, cmp.replicates[1:], strict=True):
        if d.paired and "defected" in ref and "defected" in reps:
            joined = (
                ref.set_index("replicate")["defected"]
                .to_frame("a")
                .join(reps.set_index("replicate")["defected"].to_frame("b"), how="inner")
            )
            diffs[d.run_id] = (joined["b"] - joined["a"]).to_numpy(dtype=float).tolist()
    if diffs:
        figs["compare-differences"] = rf.differences_by_replicate(diffs, "defected")
    return figs


def _compare_table(cmp: Comparison) -> str:
    ids = cmp.run_ids
    headers = ["outcome"] + [f"{i}: median [90%]" for i in ids]
    for d in cmp.differences:
        kind = "paired" if d.paired else "unpaired"
        headers += [f"{d.run_id} − {ids[0]} ({kind}): median [90%]", f"P({d.run_id} > {ids[0]})"]
    rows = [
        f"<tr>{cell(name, OUTCOMES.get(name) or None)}"
        f"{''.join(cell(text, numeric=True) for text in cmp.row_texts(name))}</tr>"
        for name in cmp.outcome_names()
    ]
    return table(headers, rows, "compare-table")


def render_compare(db: ResultsDB, run_ids: list[str]) -> str:
    """One self-contained HTML document comparing complete runs: their settings, outcomes side by side with the
    differences of each from the first run (paired where they share random numbers), and overlaid figures.
    ReportError for fewer than two runs, a repeated run or one that is not complete."""
    return compare_with_figures(db, load_comparison(db, run_ids))[0]


def compare_with_figures(db: ResultsDB, cmp: Comparison) -> tuple[str, dict[str, go.Figure]]:
    """The comparison's HTML document and its figures, computed once."""
    keys = ("run_id", "kind", "scenario_name", "seed", "agents", "represented", "days", "replicates", "created_at")
    runs_rows = [f"<tr>{''.join(cell('–' if r.get(k) is None else r.get(k)) for k in keys)}</tr>" for r in cmp.runs]
    notes = "".join(
        f"<li>{escape(d.run_id)} − {escape(cmp.run_ids[0])}: {escape(d.explanation)}</li>" for d in cmp.differences
    )
    body = (
        f"<header><h1>Comparison of {len(cmp.runs)} runs</h1>"
        + table(list(keys), runs_rows, "runs")
        + "</header>"
        + '<section id="outcomes"><h2>Outcomes side by side</h2><p class="note">Each run: median across '
        "replicates [90% interval]. Differences are taken from the first run (the reference).</p>"
        + f'<ul class="note" id="pairing">{notes}</ul>'
        + _compare_table(cmp)
        + "</section>"
    )
    for r in cmp.runs:
        sc = scenario_of(r)
        if sc is not None:
            body += changes_section(
                changed_parameters(sc), f"Run {r['run_id']}: parameters changed from the defaults", f"-{r['run_id']}"
            )
    figs = compare_figures(db, cmp)
    if figs:
        body += '<section id="figures"><h2>Figures</h2>' + "".join(figure_block(k, f) for k, f in figs.items())
        body += "</section>"
    return page(f"defection-lab comparison: {', '.join(cmp.run_ids)}", body), figs


__all__ = [
    "ReportError",
    "compare_figures",
    "compare_with_figures",
    "render_compare",
    "render_report",
    "report_figures",
    "report_with_figures",
]
