"""examples/api_tour.py runs end to end, produces what it says, and docs/api.md shows its code verbatim."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from defection.store import ResultsDB

from .processes import run

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "api_tour.py"
API_DOC = ROOT / "docs" / "api.md"
LINE = re.compile(r"^\s+(diff )?(\w+)\s+median (\S+)\s+90% interval \[(\S+), (\S+)\]$")
SECTION = re.compile(r"# --8<-- \[start:(\w+)\]\n(.*?)\n\s*# --8<-- \[end:\1\]", re.S)


def tour_sections() -> dict[str, str]:
    """The marked sections of the tour, dedented as docs/api.md shows them."""
    return {name: textwrap.dedent(body).strip() for name, body in SECTION.findall(TOUR.read_text(encoding="utf-8"))}


def test_docs_code_blocks_are_the_tour_sections() -> None:
    sections = tour_sections()
    assert set(sections) == {"imports", "scenario", "lever", "store", "results", "compare", "plot"}
    blocks = [b.strip() for b in re.findall(r"```python\n(.*?)```", API_DOC.read_text(encoding="utf-8"), re.S)]
    assert blocks == list(sections.values()), "docs/api.md's walk-through must be copied from examples/api_tour.py"


@pytest.mark.slow
def test_api_tour_runs_and_produces_its_results(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = run([sys.executable, str(TOUR), str(tmp_path)], env=env)
    assert proc.returncode == 0, proc.stderr

    # Two complete runs in the database: the default offer and the changed lever, same seed and settings.
    db = ResultsDB(tmp_path / "results.duckdb")
    runs = db.list_runs()
    assert len(runs) == 2 and set(runs["status"]) == {"complete"}
    assert runs["scenario_hash"].nunique() == 2 and runs["seed"].nunique() == 1
    assert set(runs["days"]) == {30} and set(runs["replicates"]) == {3}
    cash = sorted(json.loads(db.get_run(r)["scenario_json"])["offer"]["cash_usd"] for r in runs["run_id"])
    assert cash == [100_000, 10_000_000]

    # The figure and both reports are non-empty, self-contained HTML with plotly figures in them.
    for name in ("defections.html", "report.html", "compare.html"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert text.lstrip().lower().startswith(("<!doctype html", "<html")), name
        assert "Plotly.newPlot" in text and not re.search(r"<script[^>]*\bsrc=", text), name
    assert (tmp_path / "scenario.toml").stat().st_size > 0

    # Printed intervals: 4 outcomes for each of the 2 runs, then their 4 paired differences; each ordered.
    lines = [m.groups() for m in map(LINE.match, proc.stdout.splitlines()) if m]
    assert [d is not None for d, *_ in lines] == [False] * 8 + [True] * 4, proc.stdout
    for _, name, *values in lines:
        median, p05, p95 = map(float, values)
        assert p05 <= median <= p95, (name, p05, median, p95)

    # The printed run intervals are the stored ones (run lines come in the order the runs were made).
    order = list(runs.sort_values("created_at")["run_id"])
    for k, rid in enumerate(order):
        stored = db.outcomes(rid).set_index("outcome")
        for _, name, *values in lines[4 * k : 4 * k + 4]:
            assert [float(v) for v in values] == pytest.approx(
                [stored.loc[name, c] for c in ("median", "p05", "p95")], rel=1e-5
            )
    # The larger offer moves at least as many soldiers in the median paired replicate.
    assert float(lines[8][2]) >= 0.0 and lines[8][1] == "defected_share"
