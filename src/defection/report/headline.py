"""A stored run's main outcome in one line, as the runs list shows it: a plain run's defected share with its 90%
interval ('0.43% (0.21–0.68%)'), and for the other kinds the most telling line their stored summary allows
('6 claims: 2 supported, 3 not supported, 1 undecided'). Reads a row of `ResultsDB.run_summaries`; pure."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from defection.report.format import fmt_short

HEADLINE = "defected_share"
NONE = "–"


def _number(v: Any) -> float | None:
    """A finite float, else None (NaN, missing, text)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def interval_text(name: str, median: Any, lo: Any, hi: Any) -> str:
    """'0.43% (0.21–0.68%)': the median and the 90% interval, the unit written once at the end."""
    m, a, b = _number(median), _number(lo), _number(hi)
    if m is None:
        return NONE
    if a is None or b is None:
        return fmt_short(name, m)
    low, high = fmt_short(name, a), fmt_short(name, b)
    for unit in ("%",):
        if low.endswith(unit) and high.endswith(unit):
            low = low[: -len(unit)]
    return f"{fmt_short(name, m)} ({low}–{high})"


def parse_brief(text: Any) -> dict[str, Any]:
    """The `brief` column (JSON text or missing) as a dict."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def claims_text(brief: dict[str, Any]) -> str | None:
    """'6 claims: 2 supported, 3 not supported, 1 depends'."""
    verdicts = [str(v) for v in (brief.get("verdicts") or [])]
    if not verdicts:
        return None
    counts = Counter("depends" if v.startswith("depends") else v for v in verdicts)
    order = [
        "supported",
        "not supported",
        "depends",
        *sorted(k for k in counts if k not in ("supported", "not supported", "depends")),
    ]
    parts = [f"{counts[k]} {k}" for k in order if counts[k] or k == "supported"]
    return f"{len(verdicts)} claim{'s' if len(verdicts) != 1 else ''}: {', '.join(parts)}"


def optimize_text(brief: dict[str, Any]) -> str | None:
    """A target optimisation: 'reached: defected_share 12% (8–15%), $1.2bn' or 'not reached; closest: …'; a Pareto
    front: 'Pareto front of N packages'."""
    if brief.get("mode") != "target":
        n = brief.get("pareto")
        return f"Pareto front of {n} package{'s' if n != 1 else ''}" if isinstance(n, int) else None
    target = brief.get("target") or {}
    outcome = str(target.get("outcome") or HEADLINE)
    for key, said in (("best", "target reached"), ("closest", "target not reached; closest")):
        metrics = brief.get(key)
        if not isinstance(metrics, dict):
            continue
        span = brief.get(f"{key}_interval") or {}
        value = interval_text(outcome, metrics.get(outcome), span.get("p05"), span.get("p95"))
        cost = metrics.get("programme_cost_usd")
        tail = f", {fmt_short('programme_cost_usd', cost)}" if _number(cost) is not None else ""
        return f"{said}: {outcome} {value}{tail}"
    return "no trial completed"


def curve_text(brief: dict[str, Any]) -> str | None:
    """'offer.cash_usd 0 → $1m (5 levels): defected share 0.1% → 2.3%'."""
    lever, levels = brief.get("lever"), brief.get("levels") or []
    if not lever or not levels:
        return None
    medians = [_number(m) for m in (brief.get("medians") or [])]
    ends = [float(v) if _number(v) is not None else v for v in (levels[0], levels[-1])]  # 0 and 0.0 alike
    head = f"{lever} {fmt_short(str(lever), ends[0])} → {fmt_short(str(lever), ends[1])} ({len(levels)} levels)"
    if len(medians) >= 2 and medians[0] is not None and medians[-1] is not None:
        head += f": {HEADLINE} {fmt_short(HEADLINE, medians[0])} → {fmt_short(HEADLINE, medians[-1])}"
    return head


def sweep_text(counts: dict[str, Any], row: dict[str, Any]) -> str | None:
    """'48 experiments (2 failed); defected_share across them 0.4% (0.1–2%)'."""
    planned = counts.get("planned")
    if not isinstance(planned, int):
        return None
    failed = counts.get("failed") or 0
    text = f"{planned} experiment{'s' if planned != 1 else ''}" + (f" ({failed} failed)" if failed else "")
    spread = interval_text(HEADLINE, row.get("headline_median"), row.get("headline_p05"), row.get("headline_p95"))
    return text + (f"; {HEADLINE} across them {spread}" if spread != NONE else "")


def calibration_text(brief: dict[str, Any]) -> str | None:
    """'posterior 1a2b3c4d from 9 cases'."""
    post = brief.get("posterior_hash")
    if not post:
        return None
    cases = brief.get("cases")
    text = f"posterior {short_hash(str(post))}" + (f" from {cases} cases" if isinstance(cases, int) else "")
    return text + (" (cut short)" if brief.get("cut_short") else "")


def backtest_text(brief: dict[str, Any]) -> str | None:
    """'90% intervals cover 83% of 12 observations'."""
    cover, n = _number(brief.get("coverage")), brief.get("observations")
    if cover is None or not isinstance(n, int):
        return None
    return f"90% intervals cover {fmt_short('probability', cover)} of {n} observations"


def sensitivity_text(brief: dict[str, Any]) -> str | None:
    method, points = brief.get("method"), brief.get("points")
    return f"{method} indices from {points} design points" if method and isinstance(points, int) else None


def discover_text(brief: dict[str, Any]) -> str | None:
    boxes, of_interest, cases = brief.get("boxes"), brief.get("of_interest"), brief.get("cases")
    if not isinstance(boxes, int):
        return None
    text = f"{boxes} box{'es' if boxes != 1 else ''}"
    return text + (f" for {of_interest} of {cases} cases of interest" if isinstance(cases, int) else "")


def short_hash(value: Any, length: int = 8) -> str:
    """The first characters of a content hash, '–' when there is none."""
    return str(value)[:length] if isinstance(value, str) and value else NONE


def headline(row: dict[str, Any]) -> str:
    """A run's main outcome in one line ('–' when its kind or state gives none): see the module's description."""
    if row.get("status") != "complete":
        return NONE
    brief = parse_brief(row.get("brief"))
    kind = str(row.get("kind") or "")
    readers = {
        "claims": lambda: claims_text(brief.get("claims") or {}),
        "optimize": lambda: optimize_text(brief.get("optimize") or {}),
        "curve": lambda: curve_text(brief.get("curve") or {}),
        "sweep": lambda: sweep_text(brief.get("counts") or {}, row),
        "calibration": lambda: calibration_text(brief.get("calibration") or {}),
        "backtest": lambda: backtest_text(brief.get("backtest") or {}),
        "sensitivity": lambda: sensitivity_text(brief.get("sensitivity") or {}),
        "discover": lambda: discover_text(brief.get("discover") or {}),
    }
    text = readers[kind]() if kind in readers else None
    if text is None and kind not in ("sweep", "calibration", "backtest"):
        text = interval_text(HEADLINE, row.get("headline_median"), row.get("headline_p05"), row.get("headline_p95"))
        text = f"{HEADLINE} {text}" if kind != "run" and text != NONE else text
    return text or NONE


def posterior_text(row: dict[str, Any]) -> str:
    """Which posterior produced the run: its short hash, or 'defaults' (hand-tuned values)."""
    if row.get("status") != "complete":
        return NONE
    if row.get("posterior_hash"):
        return short_hash(row.get("posterior_hash"))
    return "defaults" if row.get("kind") in RECORDS_POSTERIOR else NONE


RECORDS_POSTERIOR = ("run", "claims", "curve")
"""Kinds whose stored row records the posterior they drew from (NULL: the hand-tuned defaults); the others do not
record it, so the list shows '–' rather than guess."""
