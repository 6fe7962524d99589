"""Start-up: `defection --help` and `defection check` load none of the heavy libraries (issue 14, "Import lazily").

What a command imports is read from the interpreter itself (`python -X importtime`, which lists every module as it
is imported), never from a timing: the libraries below took 3.2–4.0 s to import before they were made lazy, and
a command that does not import them cannot pay for them. `--help` needs only Typer and Rich (Typer itself loads
pydantic for a subcommand, but the scenario's schema, 0.15–0.25 s of pydantic models, is not built); `check` needs
the scenario's schema as well, and nothing else on the list (a scenario that names a posterior also loads numpy, to
read the posterior).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.processes import run

HEAVY = (
    "scipy",
    "pandas",
    "numba",
    "duckdb",
    "plotly",
    "dask",
    "distributed",
    "optuna",
    "pyabc",
    "SALib",
    "fastapi",
    "uvicorn",
    "matplotlib",
    "pyarrow",
    "numpy",
)
"""Libraries no command's start-up needs (the engine's, the store's, the explorers', the dashboard's)."""
IMPORT_LINE = re.compile(r"^import time:\s*\d+\s*\|\s*\d+\s*\|\s*(\S+)\s*$")


def imported(args: list[str], cwd: Path | None = None) -> tuple[set[str], str]:
    """Every module `python ARGS` imports (from -X importtime, dotted names and their top-level packages), and its
    stdout."""
    proc = run([sys.executable, "-X", "importtime", *args], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = {m.group(1) for line in proc.stderr.splitlines() if (m := IMPORT_LINE.match(line))}
    assert "defection" in modules, proc.stderr[-3000:]  # the listing is there: the checks below are not vacuous
    return modules | {name.split(".")[0] for name in modules}, proc.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(modules & set(HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("run", "--help"),
        ("claims", "--help"),
        ("sweep", "--help"),
        ("curve", "--help"),
        ("brief", "--help"),
    ],
)
def test_help_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    modules, stdout = imported(["-m", "defection", *args])
    assert "Usage" in stdout
    assert not heavy(modules), f"`defection {' '.join(args)}` imported {heavy(modules)}"
    assert "defection.scenario" not in modules, "`--help` needs no scenario schema"
    assert "defection.engine" not in modules
    if args == ("--help",):
        assert "pydantic" not in modules  # nothing at all of the scenario's


def test_check_imports_only_the_scenario_schema(tmp_path: Path) -> None:
    from defection.scenario import scenario_to_toml

    path = tmp_path / "scenario.toml"
    path.write_text(scenario_to_toml(), encoding="utf-8")  # what `defection init` writes
    modules, stdout = imported(["-m", "defection", "check", str(path)], cwd=tmp_path)
    assert "ok" in stdout and "scenario" in stdout
    assert "defection.scenario.schema" in modules  # it validates the file
    assert not heavy(modules), f"`defection check` imported {heavy(modules)}"
    assert "defection.engine" not in modules and "defection.store" not in modules


PACKAGE_NAMES = """
import sys
import defection
assert "defection.engine" not in sys.modules and "numba" not in sys.modules, "import defection loaded the engine"
from defection import RunResult, Scenario, simulate
from defection import engine, scenario
assert simulate is engine.simulate and RunResult is engine.RunResult and Scenario is scenario.Scenario
assert "scipy.stats" not in sys.modules, "the engine loaded scipy.stats (needed in best-response mode only)"
assert set(defection.__all__) <= set(dir(defection))
try:
    defection.no_such_name
except AttributeError as e:
    assert "no_such_name" in str(e)
else:
    raise AssertionError("no AttributeError")
print("names ok")
"""


def test_package_loads_the_engine_on_first_use() -> None:
    """`import defection` (as every submodule import does first) loads no engine; its public names, imported on
    first use, are still the engine's and the scenario's own; the engine itself loads no scipy.stats (1 s)."""
    modules, stdout = imported(["-c", PACKAGE_NAMES])
    assert stdout.strip() == "names ok"
    assert "numba" in modules  # `simulate` brought the engine in


def test_exploration_workers_import_no_store_or_design_libraries() -> None:
    """The tasks that sweep and optimize hand to worker processes (`defection.explore.points`) load the engine
    only: not DuckDB (the store), scipy.stats or SALib (the designs), Optuna or Dask (Numba itself imports the
    top of the scipy package)."""
    modules, _ = imported(["-c", "import defection.explore.points"])
    assert "defection.engine" in modules
    unwanted = {"duckdb", "scipy.stats", "SALib", "optuna", "dask", "distributed", "defection.store"}
    assert not unwanted & modules, sorted(unwanted & modules)


def test_sweeps_and_optimisations_do_not_import_scipy_stats() -> None:
    """`scipy.stats` cost a sweep 0.6–1.6 s to import for one Latin hypercube (docs/performance.md): the modules of a
    sweep, an optimisation and the regime's best response sample it with NumPy (`model.rng.latin_hypercube`)."""
    code = "import defection.cli.app, defection.explore.sweep, defection.explore.optimize, defection.model.regime"
    modules, _ = imported(["-c", code])
    assert "defection.explore.sweep" in modules and "numpy" in modules  # the listing holds what was asked for
    assert "scipy.stats" not in modules
