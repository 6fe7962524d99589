"""Golden summary: a fixed small run must reproduce stored outcomes (regression guard).

If a model change is intended, regenerate with ``DEFECTION_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and
explain the change in the commit message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from defection import simulate

GOLDEN = Path(__file__).parent / "golden" / "default_small.json"


def current() -> dict[str, dict[str, float]]:
    res = simulate(replicates=4, days=180, agents=9_900, seed=20220302)
    table = res.outcomes().set_index("outcome")
    return {name: {k: float(table.loc[name, k]) for k in ("median", "p05", "p95")} for name in table.index}


def test_golden_summary() -> None:
    now = current()
    if os.environ.get("DEFECTION_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(now, indent=2, sort_keys=True) + "\n")
    stored = json.loads(GOLDEN.read_text())
    assert stored.keys() == now.keys()
    for name, stats in stored.items():
        for k, v in stats.items():
            assert now[name][k] == pytest.approx(v, rel=1e-6, abs=1e-9), (name, k)
