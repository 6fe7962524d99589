"""Numbers as text for reports: shares as percentages, money in dollars, counts with separators."""

from __future__ import annotations

import math
from typing import Any


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


def round_sig(v: float, digits: int = 3) -> float:
    """`v` rounded to `digits` significant digits (0 and non-finite values unchanged)."""
    if v == 0 or not math.isfinite(v):
        return v
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


def fmt_sig(v: float, digits: int = 3) -> str:
    """`v` to `digits` significant digits with thousands separators and no trailing zeros: 23927.65 → '23,900',
    0.012345 → '0.0123', 0.5 → '0.5'."""
    if not math.isfinite(v):
        return "∞" if v > 0 else ("−∞" if v < 0 else "–")
    r = round_sig(float(v), digits)
    if r == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(r))))
    text = f"{r:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_short(name: str, v: Any) -> str:
    """A lever's or an outcome's value for a table a reader scans: shares and probabilities as percentages and
    money in dollars, both to 3 significant digits with thousands separators ('$23,900', '1.23%'); other numbers
    to 3 significant digits; integers, booleans and text as they are."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if math.isinf(v):
        return "never" if "days_to_target" in name else ("∞" if v > 0 else "−∞")
    if "share" in name or name.endswith("credibility") or name == "probability":
        return f"{fmt_sig(100 * v)}%"
    if "usd" in name or "cost" in name:
        sign = "−" if v < 0 else ""
        if abs(v) >= 1e12:
            return f"{sign}${fmt_sig(abs(v) / 1e12)}tn"
        return f"{sign}${fmt_sig(abs(v) / 1e9)}bn" if abs(v) >= 1e9 else f"{sign}${fmt_sig(abs(v))}"
    return fmt_sig(v)


def fmt_short_interval(name: str, lo: Any, hi: Any) -> str:
    """A 90% interval as 'lo – hi', each end as `fmt_short` writes it."""
    return f"{fmt_short(name, lo)} – {fmt_short(name, hi)}"
