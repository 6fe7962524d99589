"""Figures of exploration and calibration runs (sweep, sensitivity, optimize, discover, calibration, backtest),
each a pure function from the stored artifacts to a `plotly.graph_objects.Figure`."""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from defection.report.figures import BLUE, GREY, LAYOUT, ORANGE, PALETTE, RED, rgba, subtitled, top_for
from defection.report.format import fmt_value
from defection.scenario.posterior import effective_sample_size
from defection.scenario.ranges import CALIBRATED, DISCREPANCY, Range

COST = "programme_cost_usd"
DAYS = "days_to_target"


def _titled(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    fig.update_layout(**{**LAYOUT, "hovermode": "closest", **extra}, title={"text": title})
    return fig


# ----------------------------------------------------------------------------- sensitivity
def sensitivity_bars(records: list[dict[str, Any]], method: str, outcome: str) -> go.Figure:
    """Sobol' first-order (S1) and total (ST) indices, or Morris mu* and sigma, per factor, with the 95%
    bootstrap intervals as error bars; the most influential factor on top."""
    rows = sorted(records, key=lambda r: r.get("rank", 0), reverse=True)
    factors = [r["factor"] for r in rows]

    def col(name: str) -> list[float | None]:
        return [r.get(name) for r in rows]

    if method == "sobol":
        pairs = (("S1", "first order S1", BLUE), ("ST", "total ST", ORANGE))
        xlabel = "Sobol' index (error bars: 95% bootstrap interval)"
    else:
        pairs = (("mu_star", "mu* (mean |elementary effect|)", BLUE), ("sigma", "sigma (interactions)", ORANGE))
        xlabel = "elementary effect per unit of the factor's range"
    traces = []
    for key, label, colour in pairs:
        conf = col(key + "_conf")
        error = {"type": "data", "array": conf, "visible": True} if any(c is not None for c in conf) else None
        traces.append(
            go.Bar(
                x=col(key),
                y=factors,
                orientation="h",
                name=label,
                marker_color=colour,
                error_x=error,
                hovertemplate=f"%{{y}}: {key} %{{x:.3g}}<extra></extra>",
            )
        )
    fig = go.Figure(traces)
    _titled(fig, f"Sensitivity of {outcome} ({method})", barmode="group", height=max(300, 40 * len(factors) + 160))
    fig.update_xaxes(title_text=xlabel)
    return fig


# ----------------------------------------------------------------------------- response curve
def _axis_format(outcome: str) -> dict[str, Any]:
    """Tick format of an outcome's axis: shares as percentages, money in dollars."""
    if "share" in outcome:
        return {"tickformat": ".2~%"}
    if "usd" in outcome:
        return {"tickprefix": "$", "tickformat": ",.3~s"}
    return {"tickformat": ",.3~g"}


def _curve_label(by: dict[str, Any] | None, value: Any) -> str:
    """A curve's name in the legend: the second lever's value, or the outcome's name alone."""
    return "" if by is None else escape(f"{by['path']} = {value}")


def response_curve(curve: dict[str, Any]) -> go.Figure:
    """A response curve (`defection curve`'s stored artifact): one panel per outcome, each outcome's median across
    replicates against the lever's level, its 90% band (p05–p95) as a filled area between two traces, and the paired
    difference against the first level in the hover; one curve per value of the second lever (`by`), if any; a log x
    axis when the levels are log-spaced."""
    outcomes = list(curve.get("outcomes", []))
    by = curve.get("by")
    lever = str(curve.get("lever", "lever"))
    unit = str(curve.get("unit") or "")
    fig = make_subplots(
        rows=max(len(outcomes), 1),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[escape(o) for o in outcomes],
    )
    for c, line in enumerate(curve.get("curves", [])):
        colour = PALETTE[c % len(PALETTE)]
        label = _curve_label(by, line.get("by"))
        points = line.get("points", [])
        x = [p["level"] for p in points]
        for row, name in enumerate(outcomes, start=1):
            stats = [p["outcomes"][name] for p in points]
            group = f"{label or 'curve'}-{name}"
            prefix = f"{label}: " if label else ""
            first = row == 1
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[s["p05"] for s in stats],
                    mode="lines",
                    line={"width": 0, "color": colour},
                    hoverinfo="skip",
                    name=f"{prefix}90% of replicates (p05)",
                    legendgroup=group,
                    showlegend=False,
                ),
                row=row,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[s["p95"] for s in stats],
                    mode="lines",
                    line={"width": 0, "color": colour},
                    fill="tonexty",
                    fillcolor=rgba(colour, 0.2),
                    hoverinfo="skip",
                    name=f"{prefix}90% of replicates",
                    legendgroup=group,
                    showlegend=first,
                ),
                row=row,
                col=1,
            )
            custom = [
                [
                    fmt_value(name, s["p05"]),
                    fmt_value(name, s["p95"]),
                    fmt_value(name, s["difference"]["median"]),
                    fmt_value(name, s["difference"]["p05"]),
                    fmt_value(name, s["difference"]["p95"]),
                    fmt_value(name, s["median"]),
                ]
                for s in stats
            ]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[s["median"] for s in stats],
                    mode="lines+markers",
                    line={"color": colour, "width": 2},
                    marker={"size": 7},
                    name=f"{prefix}median",
                    legendgroup=group,
                    showlegend=first,
                    customdata=custom,
                    hovertemplate=(
                        f"{prefix}{escape(lever)} = %{{x:,.4~g}}<br>{escape(name)}: %{{customdata[5]}} "
                        "(90%: %{customdata[0]} – %{customdata[1]})<br>paired difference from the first level: "
                        "%{customdata[2]} (90%: %{customdata[3]} – %{customdata[4]})<extra></extra>"
                    ),
                ),
                row=row,
                col=1,
            )
    for row, name in enumerate(outcomes, start=1):
        fig.update_yaxes(title_text=escape(name), row=row, col=1, **_axis_format(name))
        fig.update_xaxes(type="log" if curve.get("log") else "linear", row=row, col=1)
    fig.update_xaxes(title_text=escape(f"{lever}" + (f" ({unit})" if unit else "")), row=max(len(outcomes), 1))
    title = f"Response of {', '.join(outcomes)} to {lever}"
    _titled(fig, escape(title), height=max(420, 320 * len(outcomes)), hovermode="closest")
    return fig


# ----------------------------------------------------------------------------- optimize
def _package_text(package: dict[str, Any]) -> str:
    return "<br>".join(f"{k} = {fmt_value(k, v) if isinstance(v, int | float) else v}" for k, v in package.items())


def target_outcome(result: dict[str, Any], trials: list[dict[str, Any]]) -> str:
    """The outcome an optimisation aimed at (the target's, or the front's 'defections' objective)."""
    if result.get("target"):
        return str(result["target"]["outcome"])
    for t in trials:
        for name in t.get("metrics", {}):
            if name not in (COST, DAYS, "probability"):
                return str(name)
    return "defected_share"


def pareto_front(result: dict[str, Any], trials: list[dict[str, Any]]) -> go.Figure:
    """Every trial's cost against the outcome it pursued (Pareto mode: the front highlighted, colour = days to
    target; target mode: probability of reaching the target, the cheapest feasible package marked)."""
    goal = target_outcome(result, trials)
    ok = [t for t in trials if COST in t.get("metrics", {})]
    target_mode = result.get("mode") == "target"
    y_name = "probability" if target_mode else goal
    x = [t["metrics"][COST] for t in ok]
    y = [t["metrics"].get(y_name) for t in ok]
    hover = [f"trial {t['trial']}<br>{_package_text(t.get('package', {}))}" for t in ok]
    fig = go.Figure()
    if target_mode:
        feasible = [bool(t.get("feasible")) for t in ok]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                name="trials",
                hovertext=hover,
                hoverinfo="text+x+y",
                marker={"color": [BLUE if f else GREY for f in feasible], "size": 8},
            )
        )
        best = result.get("best")
        if best:
            fig.add_trace(
                go.Scatter(
                    x=[best["metrics"][COST]],
                    y=[best["metrics"].get("probability")],
                    mode="markers",
                    name="cheapest package reaching the target",
                    marker={"color": RED, "size": 14, "symbol": "star"},
                )
            )
        required = (result.get("target") or {}).get("probability")
        if required is not None and x:
            fig.add_trace(
                go.Scatter(
                    x=[min(x), max(x)],
                    y=[required, required],
                    mode="lines",
                    name="required probability",
                    line={"color": RED, "dash": "dash"},
                )
            )
        ylabel = f"probability of reaching the target on {goal}"
    else:
        front = {r["trial"] for r in result.get("pareto", [])}
        days = [t["metrics"].get(DAYS) for t in ok]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                name="trials",
                hovertext=hover,
                hoverinfo="text+x+y",
                marker={"color": GREY, "size": 6, "opacity": 0.5},
            )
        )
        on = [k for k, t in enumerate(ok) if t["trial"] in front]
        order = sorted(on, key=lambda k: x[k])
        fig.add_trace(
            go.Scatter(
                x=[x[k] for k in order],
                y=[y[k] for k in order],
                mode="lines+markers",
                name="Pareto front",
                hovertext=[hover[k] for k in order],
                hoverinfo="text+x+y",
                marker={
                    "size": 11,
                    "color": [days[k] for k in order],
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": {"text": "days to target"}},
                },
                line={"color": rgba(BLUE, 0.5)},
            )
        )
        ylabel = f"{goal} (mean over worlds × replicates)"
    _titled(fig, "Optimisation: cost against effect" + ("" if target_mode else " (Pareto front)"))
    fig.update_xaxes(title_text="programme cost, USD (mean, present value)")
    fig.update_yaxes(title_text=ylabel, **({"tickformat": ".0%"} if target_mode else _axis_format(goal)))
    return fig


def nondominated(costs: list[float], values: list[float], above: bool = True) -> list[int]:
    """The positions of the points no other point beats on both cost (lower) and value (higher when `above`, else
    lower), cheapest first; ties count as dominated only when another point is strictly better on one side."""
    sign = 1.0 if above else -1.0
    pts = [(c, sign * v) for c, v in zip(costs, values, strict=True)]
    keep = [
        i
        for i, (c, v) in enumerate(pts)
        if math.isfinite(c)
        and math.isfinite(v)
        and not any(c2 <= c and v2 >= v and (c2 < c or v2 > v) for c2, v2 in pts if math.isfinite(c2 + v2))
    ]
    return sorted(keep, key=lambda i: (costs[i], i))


def _spread(trials: list[dict[str, Any]], outcome: str) -> tuple[list[float], list[float]]:
    """Each trial's 5th and 95th percentile of the outcome over worlds × replicates (its mean where unknown)."""
    lo, hi = [], []
    for t in trials:
        span, mean = (t.get("summary") or {}).get(outcome) or {}, float(t["metrics"][outcome])
        lo.append(mean if span.get("p05") is None else float(span["p05"]))
        hi.append(mean if span.get("p95") is None else float(span["p95"]))
    return lo, hi


def cost_against_achieved(result: dict[str, Any], trials: list[dict[str, Any]]) -> go.Figure:
    """A target optimisation's trials: mean cost against the mean of the target's outcome they achieved (error bars:
    90% of worlds × replicates), feasible trials in blue and the others grey, the front of packages no other beats on
    both cost and outcome joined by a line, the target as a dashed line, the answer (or the closest) starred."""
    goal = target_outcome(result, trials)
    target = result.get("target") or {}
    above = bool(target.get("above", True))
    ok = [t for t in trials if COST in t.get("metrics", {}) and t["metrics"].get(goal) is not None]
    fig = go.Figure()
    for feasible, colour, label in ((True, BLUE, "feasible (reached the target)"), (False, GREY, "not feasible")):
        group = [t for t in ok if bool(t.get("feasible")) == feasible]
        y = [t["metrics"][goal] for t in group]
        lo, hi = _spread(group, goal)
        fig.add_trace(
            go.Scatter(
                x=[t["metrics"][COST] for t in group],
                y=y,
                mode="markers",
                name=label,
                hovertext=[
                    f"trial {t['trial']}<br>{_package_text(t.get('package', {}))}<br>{escape(goal)}: "
                    f"{fmt_value(goal, t['metrics'][goal])}; reached the target in "
                    f"{fmt_value('probability', t['metrics'].get('probability'))}"
                    for t in group
                ],
                hoverinfo="text+x",
                marker={"color": colour, "size": 9, "symbol": "circle" if feasible else "circle-open"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [h - v for h, v in zip(hi, y, strict=True)],
                    "arrayminus": [v - low for low, v in zip(lo, y, strict=True)],
                    "thickness": 0.8,
                    "color": rgba(colour, 0.5),
                },
            )
        )
    costs = [t["metrics"][COST] for t in ok]
    values = [t["metrics"][goal] for t in ok]
    on = nondominated(costs, values, above)
    fig.add_trace(
        go.Scatter(
            x=[costs[k] for k in on],
            y=[values[k] for k in on],
            mode="lines",
            name="front: no trial is both cheaper and better",
            line={"color": rgba(ORANGE, 0.8), "shape": "hv"},
            hoverinfo="skip",
        )
    )
    if target.get("value") is not None and costs:
        fig.add_trace(
            go.Scatter(
                x=[min(costs), max(costs)],
                y=[target["value"], target["value"]],
                mode="lines",
                name=f"target: {goal} {'≥' if above else '≤'} {fmt_value(goal, target['value'])}",
                line={"color": RED, "dash": "dash"},
            )
        )
    picked, label = (
        (result.get("best"), "cheapest package reaching the target")
        if result.get("best")
        else (result.get("closest"), "closest package (none reached the target)")
    )
    if picked and picked.get("metrics", {}).get(goal) is not None:
        fig.add_trace(
            go.Scatter(
                x=[picked["metrics"][COST]],
                y=[picked["metrics"][goal]],
                mode="markers",
                name=label,
                marker={"color": RED, "size": 15, "symbol": "star"},
            )
        )
    _titled(fig, "Optimisation: cost against the share achieved")
    fig.update_xaxes(
        title_text="programme cost, USD (mean over worlds × replicates, present value)", type="log", tickprefix="$"
    )
    fig.update_yaxes(title_text=f"{goal} (mean over worlds × replicates)", **_axis_format(goal))
    return fig


# ----------------------------------------------------------------------------- discover (PRIM)
def box_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per PRIM box: coverage, density, mass, cases and its limits as text."""
    rows = []
    for k, b in enumerate(result.get("boxes", []), start=1):
        limits = []
        for name, lim in b.get("restricted", {}).items():
            if "values" in lim:
                limits.append(f"{name} ∈ {{{', '.join(map(str, lim['values']))}}}")
            else:
                lo = "" if lim.get("low") is None else f"{fmt_value(name, lim['low'])} ≤ "
                hi = "" if lim.get("high") is None else f" ≤ {fmt_value(name, lim['high'])}"
                limits.append(f"{lo}{name}{hi}")
        rows.append(
            {
                "box": k,
                "coverage": b["coverage"],
                "density": b["density"],
                "mass": b["mass"],
                "cases": b.get("n"),
                "limits": limits,
            }
        )
    return rows


def prim_box_limits(result: dict[str, Any], cases: list[dict[str, Any]]) -> go.Figure:
    """Each box's limits on the uncertainties it restricts, as bars on the range the design spans (0 = the
    smallest value sampled, 1 = the largest); hover gives the limits in the parameter's units."""
    frame = pd.DataFrame(cases)
    fig = go.Figure()
    for k, b in enumerate(result.get("boxes", []), start=1):
        names, base, length, hover = [], [], [], []
        for name, lim in b.get("restricted", {}).items():
            if "values" in lim or name not in frame or not pd.api.types.is_numeric_dtype(frame[name]):
                continue
            lo_all, hi_all = float(frame[name].min()), float(frame[name].max())
            span = hi_all - lo_all or 1.0
            lo = lim.get("low") if lim.get("low") is not None else lo_all
            hi = lim.get("high") if lim.get("high") is not None else hi_all
            names.append(name)
            base.append((lo - lo_all) / span)
            length.append((hi - lo) / span)
            hover.append(
                f"box {k}: {fmt_value(name, lo)} ≤ {name} ≤ {fmt_value(name, hi)}"
                f"<br>sampled: {fmt_value(name, lo_all)} – {fmt_value(name, hi_all)}"
            )
        fig.add_trace(
            go.Bar(
                y=names,
                x=length,
                base=base,
                orientation="h",
                name=f"box {k}",
                hovertext=hover,
                hoverinfo="text",
                marker_color=rgba([BLUE, ORANGE, RED][(k - 1) % 3], 0.7),
            )
        )
    sign = "<" if result.get("direction") == "below" else ">"
    _titled(
        fig,
        f"PRIM boxes: where {result.get('outcome')} {sign} {result.get('threshold')}",
        barmode="group",
        height=max(300, 60 * sum(len(b.get("restricted", {})) for b in result.get("boxes", [])) + 160),
    )
    fig.update_xaxes(title_text="position within the sampled range (0 = lowest, 1 = highest)", range=[0, 1])
    return fig


def prim_trajectory(result: dict[str, Any]) -> go.Figure:
    """PRIM's peeling trajectories: coverage against density of each candidate box; the chosen point marked."""
    fig = go.Figure()
    for k, b in enumerate(result.get("boxes", []), start=1):
        traj = b.get("trajectory", [])
        fig.add_trace(
            go.Scatter(
                x=[t["coverage"] for t in traj],
                y=[t["density"] for t in traj],
                mode="lines+markers",
                name=f"box {k} trajectory",
                customdata=[[t["mass"], t["res_dim"]] for t in traj],
                hovertemplate="coverage %{x:.2f}, density %{y:.2f}, mass %{customdata[0]:.2f}, "
                "%{customdata[1]} dimensions<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[b["coverage"]],
                y=[b["density"]],
                mode="markers",
                name=f"box {k} chosen",
                marker={"size": 14, "symbol": "star", "color": RED},
            )
        )
    threshold = result.get("density_threshold")
    if threshold is not None:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[threshold, threshold],
                mode="lines",
                name="density threshold",
                line={"color": GREY, "dash": "dash"},
            )
        )
    _titled(fig, "PRIM peeling trajectory")
    fig.update_xaxes(title_text="coverage", range=[0, 1.02])
    fig.update_yaxes(title_text="density", range=[0, 1.02])
    return fig


# ----------------------------------------------------------------------------- sweep
def _spec_factors(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [*(spec or {}).get("uncertainties", []), *(spec or {}).get("levers", [])]


def sweep_factors(experiments: pd.DataFrame, spec: dict[str, Any] | None) -> list[str]:
    """Every numeric parameter column of a sweep (the spec's uncertainties and levers, else the keys of the first
    experiment's parameters), varied or not."""
    if spec:
        paths = [f["path"] for f in _spec_factors(spec)]
    else:
        paths = []
        for text in experiments.get("params_json", pd.Series(dtype=str)).head(1):
            paths = list(json.loads(text))
    return [p for p in paths if p in experiments and _numeric(experiments[p]).notna().any()]


def sweep_parameters(experiments: pd.DataFrame, spec: dict[str, Any] | None) -> list[str]:
    """The numeric parameter columns of a sweep that vary (the spec's uncertainties and levers)."""
    return [p for p in sweep_factors(experiments, spec) if _numeric(experiments[p]).nunique() > 1]


def log_factors(spec: dict[str, Any] | None) -> set[str]:
    """The factors the spec samples on a log scale (`log = true`)."""
    return {str(f["path"]) for f in _spec_factors(spec) if f.get("log")}


def sweep_outcomes(experiments: pd.DataFrame, spec: dict[str, Any] | None) -> list[str]:
    """The outcomes a sweep recorded (those with a '<outcome>_median' column), in the spec's order."""
    names = [o["name"] for o in (spec or {}).get("outcomes", [])]
    if not names:
        names = [c.removesuffix("_median") for c in experiments.columns if c.endswith("_median")]
    return [n for n in names if f"{n}_median" in experiments]


def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s.astype(float) if s.dtype == bool else s, errors="coerce")


def short_labels(paths: list[str]) -> dict[str, str]:
    """Each dotted path's shortest distinct tail: its last component ('offer.cash_usd' → 'cash_usd'), with as many
    components before it as it takes to tell apart paths that end alike."""
    labels: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            if sum(1 for other in paths if other == tail or other.endswith("." + tail)) == 1:
                break
        labels[path] = tail
    return labels


def wrapped(label: str, width: int = 14) -> str:
    """A label escaped and, when longer than `width`, broken into two lines at the underscore or space nearest its
    middle (so neighbouring axis titles of a scatter matrix do not run into each other)."""
    if len(label) <= width:
        return escape(label, quote=False)
    cuts = [k for k, ch in enumerate(label) if ch in "_ "]
    if not cuts:
        return escape(label, quote=False)
    cut = min(cuts, key=lambda k: abs(k - len(label) / 2))
    return escape(label[: cut + (label[cut] == "_")], quote=False) + "<br>" + escape(label[cut + 1 :], quote=False)


def constant_columns(frame: pd.DataFrame, columns: list[str]) -> dict[str, float | None]:
    """The columns with at most one distinct value across the rows, each with that value (None if it has none)."""
    found: dict[str, float | None] = {}
    for c in columns:
        values = _numeric(frame[c]).dropna()
        if values.nunique() <= 1:
            found[c] = float(values.iloc[0]) if len(values) else None
    return found


def _dropped_note(dropped: dict[str, float | None]) -> str:
    """The note on a scatter matrix naming the columns left out for having a single value."""
    items = [f"{name} ({'no value' if v is None else fmt_value(name.split(' ')[0], v)})" for name, v in dropped.items()]
    return "Not shown, one value in every experiment: " + "; ".join(items)


def _experiment_text(experiment: Any, names: list[str], values: list[Any]) -> str:
    """One experiment's hover text: its number and each column's full name with its value."""
    lines = [f"{escape(n)} = {escape(fmt_value(n.split(' ')[0], v))}" for n, v in zip(names, values, strict=True)]
    return "<br>".join([f"experiment {experiment}", *lines])


def sweep_matrix(
    experiments: pd.DataFrame, parameters: list[str], outcomes: list[str], log: set[str] | None = None
) -> go.Figure:
    """Scatter matrix of the sweep's parameters and each outcome's median over replicates, one point per experiment.

    Axes are labelled with each parameter's last path component (wrapped; the full paths and values are in every
    point's hover text), parameters in `log` (sampled on a log scale) get log axes, and a parameter or outcome with a
    single value across the experiments is left out, the title's second line naming it."""
    ok = experiments[experiments["status"] == "ok"] if "status" in experiments else experiments
    columns = {p: p for p in parameters} | {f"{o}_median": f"{o} (median)" for o in outcomes}
    dropped = {columns[c]: v for c, v in constant_columns(ok, list(columns)).items()}
    kept = [c for c in columns if columns[c] not in dropped]
    short = short_labels(parameters)
    labels = [wrapped(short.get(c, columns[c])) for c in kept]
    logs = [c in (log or set()) for c in kept]
    values = {c: _numeric(ok[c]).tolist() for c in kept}
    dims = [
        {"label": label, "values": values[c], **({"axis": {"type": "log"}} if is_log else {})}
        for c, label, is_log in zip(kept, labels, logs, strict=True)
    ]
    names = [columns[c] for c in kept]
    hover = [
        _experiment_text(e, names, [values[c][k] for c in kept])
        for k, e in enumerate(ok.get("experiment", range(len(ok))))
    ]
    fig = go.Figure(
        go.Splom(
            dimensions=dims,
            showupperhalf=False,
            diagonal_visible=False,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            marker={"size": 5, "color": BLUE, "opacity": 0.6},
        )
    )
    for k, (label, is_log) in enumerate(zip(labels, logs, strict=True)):
        axis: dict[str, Any] = {"tickfont": {"size": 9}, "title": {"text": label, "font": {"size": 11}}, "nticks": 4}
        if is_log:
            axis["type"] = "log"
        suffix = "" if k == 0 else str(k + 1)
        fig.update_layout({f"xaxis{suffix}": {**axis, "tickangle": -30}, f"yaxis{suffix}": axis})
    title = "Sweep: parameters and outcomes (one point per experiment)"
    title = subtitled(title, _dropped_note(dropped)) if dropped else title
    _titled(fig, title, height=max(400, 150 * len(dims)), width=None)
    top_for(fig, title)
    fig.update_layout(margin={"l": 90, "r": 30, "b": 80})
    return fig


def sweep_outcome_vs_parameters(
    experiments: pd.DataFrame, parameters: list[str], outcome: str, log: set[str] | None = None
) -> go.Figure:
    """One panel per varied parameter: the outcome's median over replicates against the parameter, with error
    bars from the 5th to the 95th percentile of the replicates; a log x axis for a parameter in `log` (sampled on a
    log scale)."""
    ok = experiments[experiments["status"] == "ok"] if "status" in experiments else experiments
    cols = min(3, max(1, len(parameters)))
    rows = max(1, -(-len(parameters) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=parameters)
    med = ok[f"{outcome}_median"]
    for k, p in enumerate(parameters):
        fig.add_trace(
            go.Scatter(
                x=_numeric(ok[p]).tolist(),
                y=med.tolist(),
                mode="markers",
                name=p,
                showlegend=False,
                marker={"color": BLUE, "size": 6, "opacity": 0.7},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (ok[f"{outcome}_p95"] - med).tolist(),
                    "arrayminus": (med - ok[f"{outcome}_p05"]).tolist(),
                    "thickness": 0.8,
                    "color": GREY,
                },
                hovertemplate=f"{p} = %{{x:.4~g}}<br>{outcome}: %{{y:.4~g}}<extra></extra>",
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
        if p in (log or set()):
            fig.update_xaxes(type="log", row=k // cols + 1, col=k % cols + 1)
    return _titled(fig, f"Sweep: {outcome} (median, 90% of replicates) against each parameter", height=300 * rows + 100)


# ----------------------------------------------------------------------------- calibration and backtest
def posterior_intervals(parameters: list[dict[str, Any]]) -> go.Figure:
    """Each calibrated parameter's posterior median and 90% interval, placed within its prior range
    (0 = prior low, 1 = prior high); hover gives the values."""
    names, mid, lo, hi, hover = [], [], [], [], []
    for p in parameters:
        span = (p["prior_hi"] - p["prior_lo"]) or 1.0

        def pos(v: float, p: dict[str, Any] = p, span: float = span) -> float:
            position: float = (v - p["prior_lo"]) / span
            return position

        names.append(p["parameter"])
        mid.append(pos(p["median"]))
        lo.append(pos(p["median"]) - pos(p["p05"]))
        hi.append(pos(p["p95"]) - pos(p["median"]))
        hover.append(
            f"{p['parameter']}: {p['median']:.3g} (90%: {p['p05']:.3g} – {p['p95']:.3g}; "
            f"prior {p['prior_lo']:.3g} – {p['prior_hi']:.3g})"
        )
    fig = go.Figure(
        go.Scatter(
            x=mid,
            y=names,
            mode="markers",
            hovertext=hover,
            hoverinfo="text",
            marker={"size": 10, "color": BLUE},
            name="posterior median",
            error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
        )
    )
    _titled(
        fig,
        "Posterior of the calibrated parameters (median, 90% interval) within the prior range",
        height=max(300, 40 * len(names) + 160),
    )
    fig.update_xaxes(title_text="position within the prior range", range=[-0.02, 1.02])
    return fig


def predicted_vs_observed(rows: list[dict[str, Any]], title: str) -> go.Figure:
    """Observed against predicted share of the force (median and 90% interval) per case and outcome, log
    scales; points on the dashed diagonal are predicted exactly."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return _titled(go.Figure(), title)
    inside = frame.get("inside", pd.Series([True] * len(frame))).astype(bool)
    fig = go.Figure(
        go.Scatter(
            x=frame["observed"].tolist(),
            y=frame["median"].tolist(),
            mode="markers",
            name="cases",
            text=[escape(f"{c}: {o}") for c, o in zip(frame["case"], frame["outcome"], strict=True)],
            marker={"size": 10, "color": [BLUE if i else RED for i in inside]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (frame["p95"] - frame["median"]).tolist(),
                "arrayminus": (frame["median"] - frame["p05"]).tolist(),
            },
            hovertemplate="%{text}<br>observed %{x:.3g}, predicted %{y:.3g}<extra></extra>",
        )
    )
    values = np.concatenate(
        [frame["observed"].to_numpy(float), frame["p05"].to_numpy(float), frame["p95"].to_numpy(float)]
    )
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:
        lo, hi = float(values.min()) / 2, float(values.max()) * 2
        fig.add_trace(
            go.Scatter(
                x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = observed", line={"color": GREY, "dash": "dash"}
            )
        )
    _titled(fig, title)
    fig.update_xaxes(type="log", title_text="observed (share of the force)")
    fig.update_yaxes(type="log", title_text="predicted (share of the force)")
    return fig


# ----------------------------------------------------------------------------- a posterior's pairs
PAIR_BINS = 12
"""Bins of each weighted histogram on the diagonal of `posterior_pairs` (over the parameter's prior range)."""


def _prior_range(path: str) -> Range | None:
    return next((u for u in (*CALIBRATED, *DISCREPANCY) if u.path == path), None)


def pair_label(path: str) -> str:
    """A parameter's short name for a small panel: its last part (δ and the family for a discrepancy SD), on two
    lines when long."""
    section, _, name = path.rpartition(".")
    if section == "discrepancy":
        return f"δ {escape(name)}"
    words = name.split("_")
    half = next((k for k in range(1, len(words)) if len(" ".join(words[:k])) >= len(name) / 2), len(words))
    return escape(" ".join(words[:half])) + ("<br>" + escape(" ".join(words[half:])) if half < len(words) else "")


def pair_edges(path: str, values: np.ndarray, bins: int = PAIR_BINS) -> tuple[np.ndarray, bool]:
    """The histogram bin edges of a parameter (natural units) and whether its axis is logarithmic: its prior range
    (log-spaced for a log-uniform prior), or the values' own span for a parameter with no known prior."""
    u = _prior_range(path)
    if u is not None:
        if u.log:
            return np.logspace(math.log10(u.lo), math.log10(u.hi), bins + 1), True
        return np.linspace(u.lo, u.hi, bins + 1), False
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # one value: a span around it
        pad = max(0.5 * abs(lo), 0.5)
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, bins + 1), False


def _pair_ticks(log: bool) -> dict[str, Any]:
    """Few ticks on a small panel: one per decade on a log axis, at most four on a linear one."""
    return {"dtick": 1} if log else {"nticks": 4}


def _rounded(values: np.ndarray) -> list[float]:
    """Values to 4 significant digits (plenty for a plot; it keeps the embedded figure small)."""
    return [float(f"{v:.4g}") for v in values]


def weighted_histogram(values: np.ndarray, weights: np.ndarray, edges: np.ndarray, log: bool = False) -> np.ndarray:
    """Each bin's share of the particles' total weight (values outside the edges count in the end bins)."""
    v = np.clip(np.asarray(values, float), edges[0], edges[-1])
    w = np.asarray(weights, float)
    if log:
        heights, _ = np.histogram(np.log10(v), bins=np.log10(edges), weights=w)
    else:
        heights, _ = np.histogram(v, bins=edges, weights=w)
    return np.asarray(heights / w.sum(), dtype=float)


def posterior_pairs(posteriors: dict[str, dict[str, Any]], title: str) -> go.Figure:
    """A corner plot of weighted particles: one scatter panel per pair of parameters (particles sized by their
    weight) below the diagonal, each parameter's weighted histogram (share of the total weight per bin) on it.

    `posteriors` maps a label to a posterior as its file stores it (`parameters`, `samples`, `weights`); with more
    than one, a menu shows one posterior at a time (the first to begin with). Axes span the prior ranges, on log
    scales for log-uniform priors."""
    names: list[str] = []
    for post in posteriors.values():
        names += [p for p in post["parameters"] if p not in names]
    n = len(names)
    specs: list[list[dict[str, Any] | None]] = [[{} if j <= i else None for j in range(n)] for i in range(n)]
    gap = min(0.02, 0.2 / max(n, 1))
    fig = make_subplots(
        rows=max(n, 1), cols=max(n, 1), specs=specs or [[{}]], horizontal_spacing=gap, vertical_spacing=gap
    )
    axes: dict[str, tuple[np.ndarray, bool]] = {}
    owner: list[int] = []  # the posterior (by position) each trace belongs to
    labels: list[str] = []
    for f, (label, post) in enumerate(posteriors.items()):
        params = list(post["parameters"])
        samples = np.asarray(post["samples"], dtype=float).reshape(-1, len(params))
        w = np.asarray(post["weights"], dtype=float)
        w = w / w.sum()
        size = 3.0 + 11.0 * np.sqrt(w / w.max())
        labels.append(f"{label} (effective sample size {effective_sample_size(w):.1f} of {w.size})")
        col = {p: samples[:, k] for k, p in enumerate(params)}
        for i, pi in enumerate(names):
            if pi not in col:
                continue
            edges, log = axes.setdefault(pi, pair_edges(pi, col[pi]))
            heights = weighted_histogram(col[pi], w, edges, log)
            fig.add_trace(
                go.Scatter(
                    x=edges.tolist(),
                    y=[*heights.tolist(), float(heights[-1])],
                    mode="lines",
                    line={"shape": "hv", "color": BLUE, "width": 1},
                    fill="tozeroy",
                    fillcolor=rgba(BLUE, 0.3),
                    name=f"{escape(label)}: {escape(pi)}",
                    visible=f == 0,
                    showlegend=False,
                    hovertemplate=f"{escape(pi)} from %{{x:.4~g}}: weight share %{{y:.3~g}}<extra></extra>",
                ),
                row=i + 1,
                col=i + 1,
            )
            owner.append(f)
            for j, pj in enumerate(names[:i]):
                if pj not in col:
                    continue
                axes.setdefault(pj, pair_edges(pj, col[pj]))
                fig.add_trace(
                    go.Scatter(
                        x=_rounded(col[pj]),
                        y=_rounded(col[pi]),
                        mode="markers",
                        marker={"size": _rounded(size), "color": BLUE, "opacity": 0.55, "line": {"width": 0}},
                        customdata=_rounded(w),
                        name=f"{escape(label)}: {escape(pi)} against {escape(pj)}",
                        visible=f == 0,
                        showlegend=False,
                        hovertemplate=f"{escape(pj)} = %{{x:.4~g}}<br>{escape(pi)} = %{{y:.4~g}}<br>"
                        "weight %{customdata:.3~g}<extra></extra>",
                    ),
                    row=i + 1,
                    col=j + 1,
                )
                owner.append(f)
    for i, pi in enumerate(names):
        for j, pj in enumerate(names[: i + 1]):
            ex, xlog = axes[pj]
            xr = [math.log10(ex[0]), math.log10(ex[-1])] if xlog else [float(ex[0]), float(ex[-1])]
            fig.update_xaxes(
                type="log" if xlog else "linear",
                range=xr,
                showticklabels=i == n - 1,
                title_text=pair_label(pj) if i == n - 1 else None,
                title_font={"size": 10},
                tickfont={"size": 9},
                **_pair_ticks(xlog),
                row=i + 1,
                col=j + 1,
            )
            if i == j:
                fig.update_yaxes(
                    rangemode="tozero",
                    showticklabels=j == 0,
                    title_text="weight" if j == 0 else None,
                    row=i + 1,
                    col=j + 1,
                    tickfont={"size": 9},
                    title_font={"size": 10},
                    nticks=3,
                )
                continue
            ey, ylog = axes[pi]
            yr = [math.log10(ey[0]), math.log10(ey[-1])] if ylog else [float(ey[0]), float(ey[-1])]
            fig.update_yaxes(
                type="log" if ylog else "linear",
                range=yr,
                showticklabels=j == 0,
                title_text=pair_label(pi) if j == 0 else None,
                title_font={"size": 10},
                tickfont={"size": 9},
                **_pair_ticks(ylog),
                row=i + 1,
                col=j + 1,
            )
    extra: dict[str, Any] = {}
    if len(posteriors) > 1:
        extra["updatemenus"] = [
            {
                "buttons": [
                    {"label": escape(text), "method": "restyle", "args": [{"visible": [o == f for o in owner]}]}
                    for f, text in enumerate(labels)
                ],
                "active": 0,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.0,
                "yanchor": "bottom",
                "pad": {"b": 8},
            }
        ]
    _titled(
        fig,
        escape(title if len(posteriors) > 1 else f"{title}: {labels[0]}" if labels else title),
        height=max(420, 100 * n + 160),
        margin={"l": 90, "r": 30, "t": 90, "b": 90},
        **extra,
    )
    return fig
