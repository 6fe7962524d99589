"""PNG export of report figures with kaleido, which drives a local Chrome or Chromium."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from defection.report.errors import ReportError

PNG_WIDTH = 1100
PNG_TIMEOUT_SECONDS = 300.0
"""How long the export may take before it is given up as hung ($DEFECTION_PNG_TIMEOUT overrides): kaleido waits
on its Chromium without a limit, and on a loaded machine it was seen to wait forever (2026-12-04)."""
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
    write = lambda: pio.write_images(  # noqa: E731
        [figures[n] for n in names], paths, format="png", width=PNG_WIDTH, height=heights
    )
    within_time_limit(write, png_timeout())
    return paths


def png_timeout() -> float:
    """PNG_TIMEOUT_SECONDS, or $DEFECTION_PNG_TIMEOUT when it is a positive number."""
    try:
        value = float(os.environ.get("DEFECTION_PNG_TIMEOUT", ""))
    except ValueError:
        return PNG_TIMEOUT_SECONDS
    return value if value > 0 else PNG_TIMEOUT_SECONDS


def within_time_limit(write: Callable[[], Any], seconds: float) -> None:
    """Run the export in a daemon thread and wait at most `seconds`: a hung browser becomes a ReportError (the
    HTML report still has every figure) instead of a command that never returns. An error of the export itself is
    a ReportError too."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            write()
        except Exception as e:  # kaleido/choreographer raise their own error types (browser failed to start, …)
            failure.append(e)

    worker = threading.Thread(target=target, name="png-export", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ReportError(
            f"PNG export did not finish in {seconds:g} s (kaleido waits on Chrome/Chromium, which may have hung on a "
            "busy machine); the HTML report has every figure. Try again, or set DEFECTION_PNG_TIMEOUT"
        )
    if failure:
        e = failure[0]
        raise ReportError(f"PNG export failed: {type(e).__name__}: {e}") from e
