"""Self-contained HTML reports of stored runs, PNG export of their figures, and comparison of runs.

`render_report`, `render_compare` and `report_figures` live in `defection.report.html`; they are imported on first
use so that loading the command line (which registers `defection report`) does not import plotly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from defection.report.errors import ReportError

if TYPE_CHECKING:
    from defection.report.html import render_compare, render_report, report_figures

__all__ = ["ReportError", "render_compare", "render_report", "report_figures"]
_LAZY = {"render_compare", "render_report", "report_figures"}


def __getattr__(name: str) -> Any:
    """The HTML functions, imported when first asked for."""
    if name in _LAZY:
        from defection.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'defection.report' has no attribute {name!r}")
