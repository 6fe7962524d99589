"""benchmarks/commands.py, the command benchmark (issue 14, "Measure first"): a smoke run at --quick sizes checks
the report's shape (its JSON keys and the Markdown table's columns), never its timings."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.processes import run

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "commands.py"


def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_commands", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_reports_every_column(tmp_path: Path) -> None:
    proc = run([sys.executable, str(SCRIPT), "--quick", "--only", "run", "--json", "--keep", tmp_path / "work"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    bench = harness()

    assert result["quick"] is True
    assert result["bench"]["agent_days_per_s"] > 0
    assert result["startup_s"] > 0
    (row,) = result["commands"]
    assert set(bench.COLUMNS) <= set(row)
    assert row["command"] == "run"
    # the quick run: 990 agents × 30 days × 2 replicates, whether the command reports it or it is computed here
    assert row["agent_days"] == 990 * 30 * 2
    assert row["source"] in ("reported", "computed")
    assert math.isclose(row["agent_days_per_s"], row["agent_days"] / row["wall_s"])
    assert math.isclose(row["share_of_bench"], row["agent_days_per_s"] / result["bench"]["agent_days_per_s"])

    breakdown = result["breakdown"]
    assert set(breakdown["seconds"]) == set(bench.CATEGORIES)
    assert breakdown["seconds"]["kernels"] > 0  # the compiled kernels were found in the profile
    assert math.isclose(sum(breakdown["shares"].values()), 1.0)

    table = bench.markdown(result)
    header = next(line for line in table.splitlines() if line.startswith("| command"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    assert "| run |" in table
    for part in bench.CATEGORIES:
        assert f"| {part} |" in table
