"""Figures of one simulation run, each a pure function from data to a `plotly.graph_objects.Figure`.

Time series show the median across replicates as a line, with the 50% (p25–p75) and 90% (p05–p95) bands of the
replicates around it. Counts are in represented soldiers; money in USD.
"""

from __future__ import annotations

import math
import textwrap
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from defection.model.outputs import COUNTER_MEASURES
from defection.report.claims_text import alternative_text, decided_by_text
from defection.report.format import fmt_interval, fmt_value
from defection.report.series import (
    bands,
    median_across,
    paired_difference,
    replicate_peaks,
    replicate_totals,
    summarise,
)

BLUE, ORANGE, GREEN, RED, PURPLE, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f"
PALETTE = (BLUE, ORANGE, GREEN, RED, PURPLE, "#8c564b", "#e377c2", "#17becf", "#bcbd22", GREY)
LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 420,
    "margin": {"l": 70, "r": 30, "t": 60, "b": 50},
    "hovermode": "x unified",
    "font": {"family": "system-ui, sans-serif", "size": 12},
}

COUNTER_MEASURE_UNITS = {
    "monitors": "monitors per soldier",
    "blocking": "share of channels blocked",
    "propaganda": "negative evidence per day",
    "family_reprisal": "USD",
    "execution": "probability",
    "sentence": "years",
    "infiltration": "infiltrators per defector",
    "pay_usd_month": "USD/month",
}

FUNNEL_STAGES = (
    ("aware (peak, serving)", "aware", "peak"),
    ("joined the programme's queue", "contacts", "total"),
    ("attempted to cross", "attempts", "total"),
    ("caught by own side", "caught", "total"),
    ("killed crossing", "killed_crossing", "total"),
    ("arrived (defected)", "arrived", "total"),
    ("verified and paid", "paid", "total"),
)
"""(label, daily series, how a replicate's value is taken): the stages from awareness to payment."""

VERDICT_COLOURS = {"supported": "#d4edda", "not supported": "#f8d7da"}
DEPENDS_COLOUR = "#fff3cd"


def rgba(colour: str, alpha: float) -> str:
    """A '#rrggbb' colour as an 'rgba(…)' string with the given opacity."""
    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def verdict_colour(verdict: str) -> str:
    """Background colour of a claim's verdict: green supported, red not supported, amber depends."""
    return VERDICT_COLOURS.get(verdict, DEPENDS_COLOUR)


def band_trace(
    x: list[float],
    lo: list[float],
    hi: list[float],
    colour: str,
    name: str,
    alpha: float,
    group: str,
    showlegend: bool = True,
) -> go.Scatter:
    """A filled band between two curves, as one closed polygon (no hover)."""
    return go.Scatter(
        x=x + x[::-1],
        y=hi + lo[::-1],
        fill="toself",
        fillcolor=rgba(colour, alpha),
        line={"width": 0},
        hoverinfo="skip",
        name=name,
        legendgroup=group,
        showlegend=showlegend,
    )


def median_trace(
    b: pd.DataFrame, colour: str, name: str, group: str, showlegend: bool = True, dash: str | None = None
) -> go.Scatter:
    """The median line of a band frame, with the 50% and 90% intervals in its hover text."""
    custom = np.column_stack([b[c].to_numpy(dtype=float) for c in ("p05", "p25", "p75", "p95")]).tolist()
    return go.Scatter(
        x=b["day"].tolist(),
        y=b["p50"].tolist(),
        mode="lines",
        name=name,
        legendgroup=group,
        showlegend=showlegend,
        line={"color": colour, "width": 2, "dash": dash},
        customdata=custom,
        hovertemplate=(
            f"{name}: %{{y:,.4~g}}<br>50%: %{{customdata[1]:,.4~g}} – "
            "%{customdata[2]:,.4~g}<br>90%: %{customdata[0]:,.4~g} – "
            "%{customdata[3]:,.4~g}<extra></extra>"
        ),
    )


def banded_traces(
    b: pd.DataFrame, colour: str, name: str, group: str | None = None, showlegend: bool = True
) -> list[go.Scatter]:
    """90% band, 50% band and median line of one series."""
    g = group or name
    x = b["day"].tolist()
    return [
        band_trace(x, b["p05"].tolist(), b["p95"].tolist(), colour, f"{name}: 90% of replicates", 0.15, g, showlegend),
        band_trace(x, b["p25"].tolist(), b["p75"].tolist(), colour, f"{name}: 50% of replicates", 0.3, g, showlegend),
        median_trace(b, colour, f"{name}: median", g, showlegend),
    ]


def _layout(fig: go.Figure, title: str, xaxis: str, yaxis: str, **extra: Any) -> go.Figure:
    fig.update_layout(**{**LAYOUT, **extra}, title={"text": title})
    fig.update_xaxes(title_text=xaxis)
    fig.update_yaxes(title_text=yaxis)
    return fig


def defections_over_time(daily: pd.DataFrame) -> go.Figure:
    """Cumulative soldiers who reached the other side, by day: median and 50%/90% bands across replicates."""
    fig = go.Figure(banded_traces(bands(daily, "arrived", cumulative=True), BLUE, "defected"))
    return _layout(fig, "Defections over time (cumulative)", "day", "soldiers who reached the other side")


def funnel_values(daily: pd.DataFrame) -> pd.DataFrame:
    """Per funnel stage: its label, series, and median, p05, p95 across replicates of the final value."""
    flows = [s for _, s, how in FUNNEL_STAGES if how == "total"]
    stocks = [s for _, s, how in FUNNEL_STAGES if how == "peak"]
    per_rep = pd.concat([replicate_totals(daily, flows), replicate_peaks(daily, stocks)], axis=1)
    rows = [{"stage": label, "series": s, **summarise(per_rep[s])} for label, s, _ in FUNNEL_STAGES]
    return pd.DataFrame(rows)


def funnel(daily: pd.DataFrame) -> go.Figure:
    """From awareness to payment: median over replicates of each stage's total, with the 90% interval."""
    f = funnel_values(daily)
    med = f["median"].to_numpy(dtype=float)
    colours = [GREY, PURPLE, ORANGE, RED, RED, BLUE, GREEN]
    hover = [
        f"{r.stage}: {fmt_value('count', r.median)} (90%: {fmt_interval('count', r.p05, r.p95)})"
        for r in f.itertuples()
    ]
    labels = [f"{r.stage}: {fmt_value('count', r.median)}" for r in f.itertuples()]
    trace = go.Bar(
        x=med.tolist(),
        y=labels,
        customdata=f["series"].tolist(),
        orientation="h",
        marker_color=colours,
        hovertext=hover,
        hoverinfo="text",
        name="median",
        error_x={
            "type": "data",
            "symmetric": False,
            "array": (f["p95"] - f["median"]).tolist(),
            "arrayminus": (f["median"] - f["p05"]).tolist(),
            "color": "#444",
            "thickness": 1,
        },
    )
    fig = go.Figure(trace)
    positive = med[med > 0]
    log = positive.size > 0 and positive.max() / max(positive.min(), 1e-9) > 100
    _layout(
        fig,
        "From awareness to payment (whole run; bars: median, whiskers: 90% interval)",
        "represented soldiers" + (" (log scale)" if log else ""),
        "",
        hovermode="closest",
        showlegend=False,
    )
    fig.update_yaxes(autorange="reversed")
    if log:
        fig.update_xaxes(type="log")
    return fig


def offer_over_time(daily: pd.DataFrame) -> go.Figure:
    """The cash offer by day (0 while the programme is closed): median and bands across replicates."""
    fig = go.Figure(banded_traces(bands(daily, "offer_usd"), GREEN, "offer"))
    _layout(fig, "Cash offer over time", "day", "USD per defector")
    fig.update_yaxes(rangemode="tozero")
    return fig


def counter_measures_over_time(daily: pd.DataFrame, levers: tuple[str, ...] = COUNTER_MEASURES) -> go.Figure:
    """The regime's counter-measures by day, one panel each: median and bands across replicates."""
    cols = 2
    rows = math.ceil(len(levers) / cols)
    titles = [f"{name} ({COUNTER_MEASURE_UNITS.get(name, '')})" for name in levers]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_xaxes=True, vertical_spacing=0.08)
    for k, name in enumerate(levers):
        for trace in banded_traces(bands(daily, name), PALETTE[k % len(PALETTE)], name, showlegend=False):
            fig.add_trace(trace, row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(
        **{**LAYOUT, "height": 220 * rows + 80, "showlegend": False},
        title={"text": "The regime's counter-measures over time (median, 50% and 90% bands)"},
    )
    fig.update_xaxes(title_text="day", row=rows)
    fig.update_yaxes(rangemode="tozero")
    return fig


def cost_against_budget(daily: pd.DataFrame, budget_usd: float) -> go.Figure:
    """Cumulative programme cost (present value at day 0) against the budget sources (dashed line)."""
    b = bands(daily, "programme_cost_pv", cumulative=True)
    fig = go.Figure(banded_traces(b, ORANGE, "programme cost (PV)"))
    days = b["day"].tolist()
    log = False
    if budget_usd > 0 and days:
        fig.add_trace(
            go.Scatter(
                x=[days[0], days[-1]],
                y=[budget_usd, budget_usd],
                mode="lines",
                name="budget",
                line={"color": RED, "dash": "dash"},
                hovertemplate=f"budget: {fmt_value('usd', budget_usd)}<extra></extra>",
            )
        )
        top = float(b["p95"].max()) if len(b) else 0.0
        log = top < budget_usd / 100
    _layout(
        fig, "Programme cost against the budget", "day", "USD, present value at day 0" + (" (log scale)" if log else "")
    )
    if log:
        fig.update_yaxes(type="log")
    return fig


def unit_strength(daily: pd.DataFrame) -> go.Figure:
    """Company strength (present over establishment) by day: the p10–p90 and p25–p75 ranges across companies
    and the median company, each the median across replicates; dotted: the force as a whole."""
    q = {p: median_across(daily, f"unit_strength_p{p}")["median"].tolist() for p in (10, 25, 50, 75, 90)}
    days = median_across(daily, "unit_strength_p50")["day"].tolist()
    whole = median_across(daily, "strength_share")["median"].tolist()
    fig = go.Figure(
        [
            band_trace(days, q[10], q[90], BLUE, "companies p10–p90", 0.15, "p10"),
            band_trace(days, q[25], q[75], BLUE, "companies p25–p75", 0.3, "p25"),
            go.Scatter(
                x=days,
                y=q[50],
                mode="lines",
                name="median company",
                line={"color": BLUE, "width": 2},
                hovertemplate="median company: %{y:.1%}<extra></extra>",
            ),
            go.Scatter(
                x=days,
                y=whole,
                mode="lines",
                name="whole force",
                line={"color": GREY, "dash": "dot"},
                hovertemplate="whole force: %{y:.1%}<extra></extra>",
            ),
        ]
    )
    _layout(fig, "Strength of companies over time", "day", "present over establishment")
    fig.update_yaxes(tickformat=".0%")
    return fig


UNITS_INEFFECTIVE = "units_ineffective_share"
NO_BASELINE_NOTE = (
    "Total only: offer and combat losses together. This run stored no paired no-offer baseline, so the offer's own "
    "effect is not shown (defection run --paired-baseline stores one; claims runs always do)."
)


def top_for(fig: go.Figure, title: str) -> go.Figure:
    """Room at the top for a title of several lines (`subtitled`): the title pinned to the top edge, the top margin
    grown by a line's height for each line under it, so it never runs into the panels' own titles."""
    lines = title.count("<br>")
    fig.update_layout(title={"y": 1.0, "yanchor": "top", "yref": "container", "pad": {"t": 28}})
    fig.update_layout(margin={**LAYOUT["margin"], "t": 70 + 18 * lines})
    return fig


def subtitled(title: str, note: str, width: int = 120) -> str:
    """A figure title with smaller lines under it saying what it shows (`note` escaped and wrapped at `width`
    characters, since plotly does not wrap titles)."""
    lines = textwrap.wrap(note, width) or [""]
    return title + "".join(f"<br><sup>{escape(line, quote=False)}</sup>" for line in lines)


def units_ineffective(
    daily: pd.DataFrame, baseline: pd.DataFrame | None = None, definition: str = "no offer"
) -> go.Figure:
    """Share of companies below the combat-ineffective threshold by day, median and bands across replicates.

    With a paired baseline (the same seed and replicates with the offer switched off, `definition` saying how), the
    no-offer median is dashed beside the total, and a second panel shows the paired difference, each replicate with
    the offer minus the same replicate without it on the same day: the offer's effect, apart from combat losses.
    Without one the figure shows the total alone and says so in its title."""
    total = banded_traces(bands(daily, UNITS_INEFFECTIVE), RED, "ineffective companies")
    if baseline is None or UNITS_INEFFECTIVE not in baseline:
        fig = go.Figure(total)
        title = subtitled("Companies combat-ineffective over time", NO_BASELINE_NOTE)
        top_for(_layout(fig, title, "day", "share of companies", height=460), title)
        fig.update_yaxes(tickformat=".1%", rangemode="tozero")
        return fig
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=["total: with the offer, and no offer (dashed)", "the offer's effect: with − without (paired)"],
    )
    for trace in total:
        fig.add_trace(trace, row=1, col=1)
    fig.add_trace(
        median_trace(bands(baseline, UNITS_INEFFECTIVE), GREY, "no offer: median", "no offer", dash="dash"),
        row=1,
        col=1,
    )
    diff = paired_difference(daily, baseline, UNITS_INEFFECTIVE)
    for trace in banded_traces(bands(diff, UNITS_INEFFECTIVE), PURPLE, "offer − no offer (paired)"):
        fig.add_trace(trace, row=1, col=2)
    fig.add_hline(y=0, line_dash="dot", line_color=GREY, row=1, col=2)
    note = (
        "Right: the offer's effect, each replicate minus the same replicate with the offer switched off (same seed, "
        f"common random numbers). Switched off means {definition}."
    )
    title = subtitled("Companies combat-ineffective over time: the total and the offer's paired effect", note)
    top_for(_layout(fig, title, "day", "", height=520), title)
    fig.update_yaxes(title_text="share of companies", tickformat=".1%", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="difference in the share of companies", tickformat=".1%", row=1, col=2)
    return fig


def claims_table(claims: dict[str, Any]) -> go.Figure:
    """The proposal's claims with their verdicts (a table; the verdict cell coloured by verdict). Text from the
    artifact is HTML-escaped, since plotly renders a subset of HTML in table cells."""
    rows = claims.get("claims", [])
    numbers = [
        "<br>".join(
            escape(
                f"{n['name']}: {fmt_value(n['name'] + n.get('unit', '').lower(), n['median'])} "
                f"({fmt_interval(n['name'] + n.get('unit', '').lower(), n['p05'], n['p95'])})"
            )
            for n in c.get("numbers", [])
        )
        for c in rows
    ]
    verdicts = [c.get("verdict", "") for c in rows]
    white = ["white"] * len(rows)
    cells = [
        [str(c.get("number", "")) for c in rows],
        [escape(c.get("claim", "")) for c in rows],
        [escape(v) for v in verdicts],
        [
            "<br>".join(
                escape(line)
                for line in (
                    c.get("reason", ""),
                    f"decided by: {decided_by_text(c)}",
                    f"best alternative: {alternative_text(c)}",
                )
            )
            for c in rows
        ],
        numbers,
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=[30, 260, 110, 260, 320],
            header={
                "values": [
                    "#",
                    "claim",
                    "verdict",
                    "reason; decided by; best alternative",
                    "numbers (median, 90% interval)",
                ],
                "fill_color": "#e9ecef",
                "align": "left",
            },
            cells={
                "values": cells,
                "align": "left",
                "height": 28,
                "fill_color": [white, white, [verdict_colour(v) for v in verdicts], white, white],
            },
        )
    )
    fig.update_layout(**{**LAYOUT, "height": 160 + 170 * len(rows)}, title={"text": "The proposal's claims"})
    return fig


# ----------------------------------------------------------------------------- comparisons
def series_compared(dailies: dict[str, pd.DataFrame], column: str, title: str, ylabel: str) -> go.Figure:
    """One cumulative flow of several runs overlaid: each run's median line and 90% band."""
    fig = go.Figure()
    for k, (label, daily) in enumerate(dailies.items()):
        b = bands(daily, column, cumulative=True)
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(
            band_trace(
                b["day"].tolist(),
                b["p05"].tolist(),
                b["p95"].tolist(),
                colour,
                f"{label}: 90% of replicates",
                0.15,
                label,
            )
        )
        fig.add_trace(median_trace(b, colour, f"{label}: median", label))
    return _layout(fig, title, "day", ylabel)


def defections_compared(dailies: dict[str, pd.DataFrame]) -> go.Figure:
    """Cumulative defections of several runs overlaid (median and 90% band of each)."""
    return series_compared(
        dailies, "arrived", "Defections over time (cumulative)", "soldiers who reached the other side"
    )


def cost_compared(dailies: dict[str, pd.DataFrame]) -> go.Figure:
    """Cumulative programme cost (present value) of several runs overlaid (median and 90% band of each)."""
    return series_compared(
        dailies, "programme_cost_pv", "Programme cost over time (cumulative)", "USD, present value at day 0"
    )


def differences_by_replicate(diffs: dict[str, list[float]], outcome: str) -> go.Figure:
    """Each replicate's paired difference B_r − A_r of one outcome, per compared run, with a box of their
    spread; 0 (no difference) dashed."""
    fig = go.Figure()
    for k, (label, values) in enumerate(diffs.items()):
        fig.add_trace(
            go.Box(
                y=values,
                name=label,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                marker_color=PALETTE[(k + 1) % len(PALETTE)],
                hovertemplate=f"{label}: %{{y:,.4~g}}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dash", line_color=GREY)
    _layout(
        fig,
        f"Paired differences of {outcome}, one point per replicate",
        "",
        f"{outcome}, run − reference",
        hovermode="closest",
        showlegend=False,
    )
    return fig
