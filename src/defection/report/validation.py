"""The validation report of a leave-one-case-out backtest: a self-contained HTML document (plotly.js inlined once,
nothing loaded from elsewhere, the run reports' CSS) built from the backtest's summary (`Backtest.to_dict()`, also
stored as the `backtest` artifact of a run of kind backtest).

It shows predicted against observed (log–log, median with its 50% and 90% intervals, the 1:1 line), the per-case
table, the scores (model against the naive baseline, and the jackknife+ conformal interval beside the model's
own), the PIT histogram, each fold's posterior marginals and, for a summary that stores the folds' particles, their
pairwise plots (a corner plot per fold, particles sized by weight). docs/calibration.md says how each score is
computed.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from defection.report.explore_figures import posterior_pairs, predicted_vs_observed
from defection.report.figures import BLUE, GREY, LAYOUT, ORANGE, RED, rgba
from defection.report.html import cell, figure_block, page, table


def _finite_or_nan(x: Any) -> float:
    """A number from the summary (None, a missing or non-finite value become nan)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _fmt(x: Any, digits: int = 3) -> str:
    v = _finite_or_nan(x)
    return "–" if math.isnan(v) else f"{v:.{digits}g}"


def _pct(x: Any) -> str:
    v = _finite_or_nan(x)
    if x is not None and not isinstance(x, str) and math.isinf(float(x)):
        return "∞"
    return "–" if math.isnan(v) else f"{100 * v:.3g}%"


def _share_interval(lo: Any, hi: Any) -> str:
    return f"{_pct(0.0 if lo is None else lo)} – {_pct(math.inf if hi is None else hi)}"


# ----------------------------------------------------------------------------- figures
def predicted_against_observed(rows: list[dict[str, Any]], how: str = "leave-one-case-out") -> go.Figure:
    """Predicted median with 50% and 90% intervals against observed, log–log, with the line of perfect prediction;
    `how` names how the backtest held cases out (in the title)."""
    obs = np.array([_finite_or_nan(r["observed"]) for r in rows])
    q = {k: np.array([_finite_or_nan(r.get(k)) for r in rows]) for k in ("p05", "p25", "median", "p75", "p95")}
    positive = np.concatenate([obs, *q.values()])
    positive = positive[np.isfinite(positive) & (positive > 0)]
    floor = float(positive.min()) / 2 if positive.size else 1e-6
    med = np.maximum(q["median"], floor)
    text = [escape(f"{r['case']}: {r['outcome']}") for r in rows]
    colours = [BLUE if r.get("inside_90", r.get("inside")) else RED for r in rows]

    def bars(lo: np.ndarray, hi: np.ndarray) -> dict[str, Any]:
        return {
            "type": "data",
            "symmetric": False,
            "array": (np.maximum(hi, floor) - med).tolist(),
            "arrayminus": (med - np.maximum(lo, floor)).tolist(),
        }

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=obs.tolist(),
            y=med.tolist(),
            mode="markers",
            name="90% interval",
            marker={"size": 1, "color": rgba(BLUE, 0.0)},
            error_y={**bars(q["p05"], q["p95"]), "thickness": 1, "width": 4, "color": GREY},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=obs.tolist(),
            y=med.tolist(),
            mode="markers",
            name="median and 50% interval",
            text=text,
            marker={"size": 9, "color": colours},
            error_y={**bars(q["p25"], q["p75"]), "thickness": 4, "width": 0, "color": rgba(BLUE, 0.6)},
            customdata=np.column_stack([q["p05"], q["p25"], q["p75"], q["p95"]]).tolist(),
            hovertemplate="%{text}<br>observed %{x:.3g}, predicted %{y:.3g}<br>50%: %{customdata[1]:.3g} – "
            "%{customdata[2]:.3g}; 90%: %{customdata[0]:.3g} – %{customdata[3]:.3g}<extra></extra>",
        )
    )
    if positive.size:
        lo, hi = floor, float(positive.max()) * 2
        fig.add_trace(
            go.Scatter(
                x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = observed", line={"color": GREY, "dash": "dash"}
            )
        )
    fig.update_layout(
        **{**LAYOUT, "hovermode": "closest", "height": 520},
        title={"text": f"{how.capitalize()} predictions against history"},
    )
    fig.update_xaxes(type="log", title_text="observed (share of the force)")
    fig.update_yaxes(type="log", title_text="predicted (share of the force)")
    return fig


def pit_histogram(rows: list[dict[str, Any]], bins: int = 10) -> go.Figure:
    """Histogram of the PIT values on [0, 1], with the flat line a calibrated model would give."""
    pit = [v for v in (_finite_or_nan(r.get("pit")) for r in rows) if not math.isnan(v)]
    fig = go.Figure(
        go.Histogram(
            x=pit, xbins={"start": 0.0, "end": 1.0, "size": 1.0 / bins}, marker_color=BLUE, name="observations"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0.0, 1.0],
            y=[len(pit) / bins] * 2,
            mode="lines",
            name="uniform (calibrated)",
            line={"color": ORANGE, "dash": "dash"},
        )
    )
    fig.update_layout(**{**LAYOUT, "hovermode": "closest"}, title={"text": "PIT histogram"}, bargap=0.05)
    fig.update_xaxes(title_text="PIT value", range=[0, 1])
    fig.update_yaxes(title_text="observations")
    return fig


def fold_marginals(posteriors: dict[str, dict[str, Any]]) -> go.Figure:
    """Per calibrated parameter (one panel each): each fold's posterior median and 90% interval."""
    folds = list(posteriors)
    names: list[str] = []
    for f in folds:
        for p in posteriors[f].get("parameters", []):
            if p["parameter"] not in names:
                names.append(p["parameter"])
    fig = make_subplots(rows=max(1, len(names)), cols=1, subplot_titles=[escape(n) for n in names] or None)
    for k, name in enumerate(names, start=1):
        mid, lo, hi = [], [], []
        for f in folds:
            p = next((p for p in posteriors[f].get("parameters", []) if p["parameter"] == name), None)
            m = _finite_or_nan(p["median"]) if p else math.nan
            mid.append(m)
            lo.append(m - _finite_or_nan(p["p05"]) if p else math.nan)
            hi.append(_finite_or_nan(p["p95"]) - m if p else math.nan)
        fig.add_trace(
            go.Scatter(
                x=[escape(f) for f in folds],
                y=mid,
                mode="markers",
                marker={"size": 8, "color": BLUE},
                error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                name=escape(name),
                showlegend=False,
                hovertemplate="without %{x}: median %{y:.3g}<extra></extra>",
            ),
            row=k,
            col=1,
        )
    fig.update_layout(
        **{**LAYOUT, "hovermode": "closest", "height": max(300, 220 * len(names))},
        title={"text": "Each fold's posterior marginals (median, 90% interval)"},
    )
    return fig


def fold_particles(posteriors: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each fold's weighted particles, labelled by the case it left out (folds of a summary written before the
    particles were kept have none and are left out)."""
    return {f"without {case}": p["particles"] for case, p in posteriors.items() if p.get("particles")}


def held_out(summary: dict[str, Any]) -> str:
    """How the backtest held cases out: "leave-one-case-out", or "K-fold" when it held out groups of cases."""
    folds = (summary.get("settings") or {}).get("folds")
    return "leave-one-case-out" if not folds else f"{folds}-fold"


def validation_figures(summary: dict[str, Any]) -> dict[str, go.Figure]:
    """The report's figures, keyed by figure id; a backtest stored before the scores gets its one old figure."""
    if "rows" not in summary:
        return {"backtest": predicted_vs_observed(summary.get("cases", []), "Backtest: leave-one-case-out predictions")}
    figs = {
        "validation-predicted": predicted_against_observed(summary["rows"], held_out(summary)),
        "validation-pit": pit_histogram(summary["rows"]),
    }
    if summary.get("posteriors"):
        figs["validation-folds"] = fold_marginals(summary["posteriors"])
        if particles := fold_particles(summary["posteriors"]):
            figs["validation-pairs"] = posterior_pairs(particles, "Each fold's posterior, pairwise")
    return figs


# ----------------------------------------------------------------------------- sections
def scores_section(summary: dict[str, Any]) -> str:
    """The scores: the model against the naive baseline, and the conformal interval beside the model's own."""
    n = summary.get("observations", 0)
    rows = [
        ("observations", str(n), "", "", "held-out observations, each predicted by a fold that never saw its case"),
        ("coverage of the 50% intervals", _pct(summary.get("coverage_50")), "", "", "calibrated: 50%"),
        ("coverage of the 90% intervals", _pct(summary.get("coverage_90")), "", "", "calibrated: 90%"),
        (
            "coverage of the 90% intervals",
            "",
            "",
            _pct(summary.get("conformal_coverage_90")),
            "jackknife+ (CV+ with folds) from the other cases' held-out residuals (Barber et al. 2021)",
        ),
        (
            "median |log error| of the median",
            _fmt(summary.get("median_abs_log_error"), 3),
            "",
            "",
            "natural log; 1.0 is a factor of 2.7",
        ),
        (
            "weighted interval score (log shares)",
            _fmt(summary.get("interval_score")),
            _fmt(summary.get("interval_score_naive")),
            "",
            "mean over observations, 50% and 90% intervals and the median; lower is better",
        ),
        ("skill (1 − WIS model/WIS naive)", _fmt(summary.get("skill")), "0", "", "above 0: beats the baseline"),
    ]
    body = [
        "<tr>" + cell(a) + cell(b, numeric=True) + cell(c, numeric=True) + cell(d, numeric=True) + cell(e) + "</tr>"
        for a, b, c, d, e in rows
    ]
    return (
        '<section id="scores"><h2>Scores</h2>'
        + table(["score", "model", "naive baseline", "conformal", "note"], body)
        + '<p class="note">Naive baseline: each observation predicted log-normal from the other cases\' observed '
        'shares alone (mean and standard deviation of their logs). docs/calibration.md, "How the backtest is '
        'scored", gives every definition.</p></section>'
    )


CASE_COLUMNS = (
    ("case", "the case left out: its fold calibrated on all the other cases"),
    ("outcome", "the observed outcome"),
    ("observed", "the share of the force the sources record"),
    ("median", "the fold's predicted median"),
    ("50% interval", "the predicted 50% interval (p25–p75)"),
    ("90% interval", "the predicted 90% interval (p05–p95)"),
    ("in 50%", "whether the observed share lies inside the 50% interval"),
    ("in 90%", "whether it lies inside the 90% interval"),
    ("|log err|", "|log observed − log median|, natural log"),
    ("PIT", "the share of predictive draws below the observed share (ties randomised)"),
    ("conformal 90%", "the jackknife+ 90% interval from the other cases' residuals"),
)
"""The per-case table's short column headers and what each means (the legend under the table)."""


def _breakable(text: Any) -> str:
    """Escaped text that may wrap after each underscore (long outcome names in a narrow column)."""
    return escape(str(text)).replace("_", "_<wbr>")


def _interval(lo: Any, hi: Any) -> str:
    """A share interval that wraps, if it must, after its dash rather than before it."""
    return _share_interval(lo, hi).replace(" – ", "\u00a0– ")


def cases_section(rows: list[dict[str, Any]]) -> str:
    """One row per held-out observation; short headers, explained in a legend under the table, and cells that
    wrap, so that the table fits a laptop's width."""
    body = [
        "<tr>"
        + cell(r["case"])
        + f"<td>{_breakable(r['outcome'])}</td>"
        + cell(_pct(r["observed"]), numeric=True)
        + cell(_pct(r["median"]), numeric=True)
        + cell(_interval(r.get("p25"), r.get("p75")), numeric=True)
        + cell(_interval(r.get("p05"), r.get("p95")), numeric=True)
        + cell("yes" if r.get("inside_50") else "no")
        + cell("yes" if r.get("inside_90") else "no")
        + cell(_fmt(r.get("abs_log_error"), 2), numeric=True)
        + cell(_fmt(r.get("pit"), 2), numeric=True)
        + cell(_interval(r.get("conformal_lo"), r.get("conformal_hi")), numeric=True)
        + "</tr>"
        for r in rows
    ]
    legend = "; ".join(f"<b>{escape(h)}</b>: {escape(what)}" for h, what in CASE_COLUMNS)
    return (
        '<section id="held-out"><h2>Held-out observations</h2>'
        + table([h for h, _ in CASE_COLUMNS], body, "held-out-table")
        + f'<p class="note">{legend}.</p></section>'
    )


def validation_sections(summary: dict[str, Any]) -> str:
    """The scores and per-case tables (empty for a backtest stored before the scores)."""
    if "rows" not in summary:
        return ""
    note = ""
    if summary.get("posteriors") and not fold_particles(summary["posteriors"]):
        note = (
            '<p class="note" id="no-particles">This summary stores each fold\'s posterior summary but not its '
            "particles (it was written before the backtest kept them), so the posterior's pairwise plots cannot be "
            "drawn; a new <code>defection backtest</code> stores them.</p>"
        )
    return scores_section(summary) + cases_section(summary["rows"]) + note


def figures_section(figs: dict[str, go.Figure]) -> str:
    """The figures, each with its caption."""
    blocks = "".join(figure_block(key, fig) for key, fig in figs.items())  # captions: html.CAPTIONS
    return f'<section id="validation-figures"><h2>Figures</h2>{blocks}</section>'


def validation_report(summary: dict[str, Any], run_id: str | None = None) -> tuple[str, dict[str, go.Figure]]:
    """The whole validation report of a backtest summary, and its figures."""
    figs = validation_figures(summary)
    settings = ", ".join(f"{k} {v}" for k, v in (summary.get("settings") or {}).items())
    ident = [
        ("run", run_id or "not stored"),
        ("code version", summary.get("code_version", "unknown")),
        ("case library (sha256)", summary.get("cases_hash", "unknown")),
        ("cases", ", ".join(map(str, summary.get("posteriors", {}) or {}))),
        ("settings", settings),
        ("wall time", f"{_finite_or_nan(summary.get('wall_seconds')):.0f} s"),
    ]
    header = (
        f"<header><h1>Validation: {held_out(summary)} backtest</h1>"
        + table(["", ""], ["<tr>" + cell(k) + cell(v) + "</tr>" for k, v in ident])
        + "</header>"
    )
    body = header + validation_sections(summary) + figures_section(figs)
    return page(f"defection-lab validation {run_id or ''}".strip(), body), figs
