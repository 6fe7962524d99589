"""PNG export of report figures with kaleido, which drives a local Chrome or Chromium."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from defection.report.errors import ReportError

PNG_WIDTH = 1100
NO_CHROME = (
    "PNG export needs Chrome or Chromium and none was found; install it (Debian/Ubuntu: "
    "`apt-get install chromium`; or `plotly_get_chrome`) or set BROWSER_PATH to its executable"
)


def find_chrome() -> str | None:
    """The Chrome/Chromium executable kaleido would use (BROWSER_PATH, PATH, kaleido's download), or None."""
    from choreographer.browsers.chromium import Chromium  # lazy: kaleido's browser driver, only for PNG export

    try:
        path = Chromium.find_browser(skip_local=False)
    except (RuntimeError, ValueError, OSError):
        return None
    return path if path and Path(path).exists() else None


def write_pngs(figures: dict[str, go.Figure], folder: str | Path) -> list[Path]:
    """Write every figure as `<folder>/<name>.png` (one browser session for all); ReportError if no browser is
    found or rendering fails."""
    if find_chrome() is None:
        raise ReportError(NO_CHROME)
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ReportError(f"--png {target}: exists and is not a folder")
    if not target.parent.exists():
        raise ReportError(f"--png {target}: folder {target.parent} does not exist")
    target.mkdir(exist_ok=True)
    if not figures:
        return []
    names = list(figures)
    paths = [target / f"{name}.png" for name in names]
    heights = [int(figures[n].layout.height or 450) for n in names]
    try:
        pio.write_images([figures[n] for n in names], paths, format="png", width=PNG_WIDTH, height=heights)
    except Exception as e:  # kaleido/choreographer raise their own error types (browser failed to start, …)
        raise ReportError(f"PNG export failed: {type(e).__name__}: {e}") from e
    return paths
