"""Numbers as text for reports: shares as percentages, money in dollars, counts with separators."""

from __future__ import annotations

import math


def fmt_value(name: str, v: float | None) -> str:
    """One value of the outcome (or series) `name`, formatted for reading."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if math.isinf(v):
        return "never" if "days_to_target" in name else ("∞" if v > 0 else "−∞")
    if "share" in name or name.endswith("credibility") or name == "probability":
        return f"{100 * v:.3g}%" if abs(v) < 0.01 else f"{100 * v:.1f}%"
    if "usd" in name or "cost" in name:
        return f"${v / 1e9:,.2f}bn" if abs(v) >= 1e9 else f"${v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_interval(name: str, lo: float | None, hi: float | None) -> str:
    """A 90% interval as 'lo – hi'."""
    return f"{fmt_value(name, lo)} – {fmt_value(name, hi)}"


def fmt_signed(name: str, v: float | None) -> str:
    """A difference, with an explicit sign for positive values."""
    text = fmt_value(name, v)
    return "+" + text if v is not None and math.isfinite(v) and v > 0 else text
