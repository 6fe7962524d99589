"""Bit-identity: a fixed-seed run reproduces, exactly, what the code produced before the package was re-laid-out.

The golden file was written by the pre-refactor code (commit 71f8823), and rewritten once since, when the regime
came to see the expected flow of exits (eq. 28b, issue 11 part 0, a deliberate model change), from
``defection run --agents 20000 --days 60 --replicates 3 --seed 1 --no-posterior --json`` (the hand-tuned values,
not the shipped posterior): the printed object (less its run id) and the SHA-256 of every daily series stored in
the database. A refactoring must leave both unchanged to the last bit; a deliberate model change regenerates
the file with ``DEFECTION_UPDATE_GOLDEN=1`` and says why in its commit.

Since the exit routes are open by default (issue 12), the run uses ``tests/golden/crossing_only.toml``: the default
scenario with only crossing open, which is exactly the old default (same scenario hash). That the same golden still
holds is the test that the multinomial route choice reduces to the binary one, bit for bit, when one route is open.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from defection.store import ResultsDB
from tests.conftest import cli

GOLDEN = Path(__file__).parent / "golden" / "bit_identity_run.json"
CROSSING_ONLY = Path(__file__).parent / "golden" / "crossing_only.toml"


def sha256(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


@pytest.mark.slow
def test_fixed_seed_run_is_bit_identical_to_golden(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    args = (
        "run",
        str(CROSSING_ONLY),
        "--agents",
        "20000",
        "--days",
        "60",
        "--replicates",
        "3",
        "--seed",
        "1",
        "--no-posterior",
        "--json",
    )
    args += ("--db", str(db))
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    run_id = printed.pop("run_id")
    # bookkeeping, not results (issue 14): the command's own wall time, and the agent-days it simulated
    assert printed.pop("wall_seconds") > 0
    assert printed.pop("agent_days") == printed["agents"] * printed["days"] * printed["replicates"]
    daily = ResultsDB(db).daily(run_id)
    now = {"run": printed, "daily_sha256": {c: sha256(daily[c].to_numpy(dtype=np.float64)) for c in daily.columns}}
    if os.environ.get("DEFECTION_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    stored = json.loads(GOLDEN.read_text())
    assert now["run"] == stored["run"]  # exact: floats survive JSON's repr round trip
    assert now["daily_sha256"].keys() == stored["daily_sha256"].keys()
    changed = [c for c, h in stored["daily_sha256"].items() if now["daily_sha256"][c] != h]
    assert not changed, f"daily series changed: {changed}"
