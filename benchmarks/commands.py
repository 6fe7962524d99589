"""Where the commands' time goes: `run`, `claims`, `optimize`, `sweep` and `calibrate` at their defaults, against
the engine's own throughput (`defection bench`) measured in the same invocation (issue 14, "Measure first").

Usage: .venv/bin/python benchmarks/commands.py [--quick] [--only CMD ...] [--json] [--keep DIR]

What it runs, each as a fresh `defection ... --json` process into a temporary results database (in a temporary
folder, removed afterwards unless --keep):

* `run`: the embedded default scenario at its own settings (the shipped posterior applies, as for a user).
* `claims`: its defaults (19,800 agents, 365 days, 12 replicates per variant).
* `optimize`: the shipped example examples/cheapest-package.toml with `--target 0.01` (the cheapest package for 1%
  of the force), otherwise the command's defaults (32 trials, the spec's 8 worlds × 2 replicates, batches of 4).
* `sweep`: the shipped example examples/package-sweep.toml (64 points × 2 replicates).
* `calibrate`: its defaults (the shipped case library, 32 particles, up to 4 generations, 24 predictive draws).

`--quick` scales every command down for a smoke run (990 agents, 30 days, 2 replicates; 2 trials of 2 worlds; 4
sweep points; 4 particles, one generation, no predictive check, on the smallest case; a 99,000-agent bench): its
figures show that the harness works, not what the commands cost.

For each command it reports:

* `wall_s`: the command's wall time, process start to exit, measured here (not what the command says of itself).
* `agent_days`: the agent-days it simulated: the `agent_days` field of its --json output where the command reports
  it (`source` = "reported"), otherwise computed here from its settings and output (`source` = "computed": run
  agents × days × replicates; claims simulations × replicates × agents × days; optimize evaluated trials ×
  worlds × replicates × agents × days; sweep experiments run × replicates × agents × days; calibrate simulations ×
  the mean agents × days of its cases, `source` = "estimated", since each case has its own size).
* `agent_days_per_s` and `share_of_bench`: agent_days / wall_s, and that as a share of `defection bench --json`'s
  agent-days/s on the default scenario (1,000,000 agents × 100 days, median of 3; population synthesis included).
* `startup_s`: the import of the command line (`python -c "import defection.cli"`, median of 5 here), which every
  command pays before it reads its arguments, and `cluster_s`: the Dask cluster's start-up where the command
  reports it (sweep's `startup_seconds`).

The breakdown (`breakdown`): one in-process cProfile of a representative small run (`defection run`, 4,950
agents × 60 days × 2 replicates, --no-posterior, into a temporary database), run twice in one process. The
first call's Numba compilation or on-disk cache load (the cumulative time of the dispatchers' `_compile_for_args`)
is reported as `jit_first_call`; whether it compiled or loaded from the cache depends on whether the kernels'
cache (Numba `cache=True`, in __pycache__) was warm. The second, steady-state call is split by each function's own
time (cProfile's tottime), by where the function lives:

* `kernels`: the compiled kernels, called by the daily loop through their entry points (cProfile lists each as
  `<built-in method defection.model.…>`), except those called from population synthesis;
* `population synthesis`: model/population.py and the kernels it calls;
* `python between phases`: the rest of defection's own code (the daily loop, economics, outcomes, the CLI) and
  the numpy calls it makes;
* `pandas`: pandas and pyarrow; `database`: duckdb and defection.store;
* `numba dispatch`: numba and llvmlite (argument typing on each replicate's first call of a kernel);
* `imports`: importlib (modules the command imports on first use); `other`: everything else (Typer's parsing,
  Rich's progress display, the standard library).

A profile inflates Python-heavy parts relative to compiled code (each Python call is timed), so the shares are
indicative; the wall times and throughputs are from the unprofiled processes. The machine's load is printed with
the results: on a busy machine every figure is slower and noisier.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COMMANDS = ("run", "claims", "optimize", "sweep", "calibrate")
QUICK = {"agents": 990, "days": 30, "replicates": 2}
COLUMNS = (
    "command",
    "wall_s",
    "agent_days",
    "source",
    "agent_days_per_s",
    "share_of_bench",
    "startup_s",
    "cluster_s",
)
CATEGORIES = (
    "kernels",
    "population synthesis",
    "python between phases",
    "pandas",
    "database",
    "numba dispatch",
    "imports",
    "other",
)
PROFILE_RUN = ("-k", "4950", "-d", "60", "-r", "2", "--no-posterior")


def defection(*args: str | Path) -> list[str]:
    """The command line of `defection ARGS` with this interpreter (so that PYTHONPATH and the venv apply)."""
    return [sys.executable, "-m", "defection", *(str(a) for a in args)]


def timed(cmd: list[str], cwd: Path, timeout: float) -> tuple[float, str]:
    """Run `cmd` in its own process group; its wall time and stdout. A failure raises with its stderr's tail."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)  # whatever it left behind (Dask workers) goes with it
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return wall, out


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of `stdout` that is a JSON object (the command's --json output)."""
    for line in reversed(stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise ValueError(f"no JSON object in the output: {stdout[-500:]}")


def whole_companies(agents: int, company_size: int = 99) -> int:
    """Agents as simulated: whole companies only (model.population.simulated_agents)."""
    return max(1, agents // company_size) * company_size


def scaled_spec(source: Path, folder: Path, changes: dict[str, int]) -> Path:
    """A copy of a spec with some of its [experiment] integers changed (for --quick)."""
    text = source.read_text(encoding="utf-8")
    for key, value in changes.items():
        text, n = re.subn(rf"(?m)^{key}\s*=\s*[0-9_]+", f"{key} = {value}", text)
        if n != 1:
            raise ValueError(f"{source}: no single `{key} = ` line to change")
    path = folder / source.name
    path.write_text(text, encoding="utf-8")
    return path


def spec_experiment(path: Path) -> dict[str, Any]:
    import tomllib

    with path.open("rb") as f:
        return dict(tomllib.load(f)["experiment"])


# ----------------------------------------------------------------------------- the commands


@dataclass
class Command:
    """One command to measure: its arguments and how to count its agent-days from its --json output."""

    name: str
    args: list[str | Path]
    agent_days: Callable[[dict[str, Any]], tuple[float | None, str]]


def smallest_case(folder: Path) -> tuple[str, int, int]:
    """The case with the fewest agent-days (id, agents, days), from `defection cases list --json`."""
    _, out = timed(defection("cases", "list", "--json"), folder, 600)
    rows = json.loads(out)
    best = min(rows, key=lambda r: r["agents"] * r["days"])
    return str(best["id"]), int(best["agents"]), int(best["days"])


def case_sizes(folder: Path, only: str | None) -> list[tuple[int, int]]:
    _, out = timed(defection("cases", "list", "--json"), folder, 600)
    return [(int(r["agents"]), int(r["days"])) for r in json.loads(out) if only is None or r["id"] == only]


def reported(payload: dict[str, Any]) -> float | None:
    value = payload.get("agent_days")
    return float(value) if isinstance(value, int | float) else None


def commands(folder: Path, quick: bool) -> dict[str, Command]:
    """The five commands at their defaults, or scaled down with `quick`."""
    db = folder / "bench.duckdb"
    q = [] if not quick else ["-k", str(QUICK["agents"]), "-d", str(QUICK["days"]), "-r", str(QUICK["replicates"])]

    def run_days(p: dict[str, Any]) -> tuple[float | None, str]:
        if (r := reported(p)) is not None:
            return r, "reported"
        return float(p["agents"] * p["days"] * p["replicates"]), "computed"

    claims_settings = QUICK if quick else {"agents": 19_800, "days": 365, "replicates": 12}

    def claims_days(p: dict[str, Any]) -> tuple[float | None, str]:
        if (r := reported(p)) is not None:
            return r, "reported"
        s = claims_settings
        return float(p["simulations"] * s["replicates"] * whole_companies(s["agents"]) * s["days"]), "computed"

    opt_spec = EXAMPLES / "cheapest-package.toml"
    sweep_spec = EXAMPLES / "package-sweep.toml"
    opt_extra: list[str | Path] = []
    sweep_extra: list[str | Path] = []
    if quick:
        small = {"agents": QUICK["agents"], "days": QUICK["days"], "replicates": QUICK["replicates"]}
        (folder / "opt").mkdir()
        (folder / "sweep").mkdir()
        opt_spec = scaled_spec(opt_spec, folder / "opt", {**small, "samples": 2})
        sweep_spec = scaled_spec(sweep_spec, folder / "sweep", {**small, "samples": 4})
        opt_extra = ["--trials", "2", "--batch", "2", "--robust-worlds", "2", "--workers", "1"]
        sweep_extra = ["--workers", "1"]
    opt_ex, sweep_ex = spec_experiment(opt_spec), spec_experiment(sweep_spec)

    def opt_days(p: dict[str, Any]) -> tuple[float | None, str]:
        if (r := reported(p)) is not None:
            return r, "reported"
        sims = p["evaluated"] * p["worlds"] * p["replicates"]
        return float(sims * whole_companies(opt_ex["agents"]) * opt_ex["days"]), "computed"

    def sweep_days(p: dict[str, Any]) -> tuple[float | None, str]:
        if (r := reported(p)) is not None:
            return r, "reported"
        sims = p["ran"] * sweep_ex["replicates"]
        return float(sims * whole_companies(sweep_ex["agents"]) * sweep_ex["days"]), "computed"

    cal_extra: list[str | Path] = []
    only_case = None
    if quick:
        only_case, _, _ = smallest_case(folder)
        cal_extra = ["--particles", "4", "--generations", "1", "--check-draws", "0", "--workers", "1"]
        cal_extra += ["--case", only_case]
    sizes = case_sizes(folder, only_case)

    def cal_days(p: dict[str, Any]) -> tuple[float | None, str]:
        if (r := reported(p)) is not None:
            return r, "reported"
        sims = p.get("simulations")
        if not isinstance(sims, int | float) or not sizes:
            return None, "unknown"
        mean = statistics.fmean(whole_companies(a) * d for a, d in sizes)
        return float(sims * mean), "estimated"

    return {
        "run": Command("run", ["run", "--json", "--db", db, *q], run_days),
        "claims": Command("claims", ["claims", "--json", "--db", db, *q], claims_days),
        "optimize": Command(
            "optimize", ["optimize", opt_spec, "--target", "0.01", "--json", "--db", db, *opt_extra], opt_days
        ),
        "sweep": Command(
            "sweep",
            ["sweep", sweep_spec, "--out", folder / "sweep-out", "--json", "--db", db, *sweep_extra],
            sweep_days,
        ),
        "calibrate": Command(
            "calibrate",
            ["calibrate", "--json", "--db", db, "--output", folder / "posterior.json", *cal_extra],
            lambda p: cal_days(p.get("calibration", p)),
        ),
    }


# ----------------------------------------------------------------------------- start-up, bench, profile


def startup_seconds(folder: Path, repeats: int = 5) -> float:
    """Median wall time of `python -c "import defection.cli"`."""
    times = [timed([sys.executable, "-c", "import defection.cli"], folder, 600)[0] for _ in range(repeats)]
    return statistics.median(times)


def bench(folder: Path, quick: bool) -> dict[str, Any]:
    args = ["bench", "--json"] + (["--agents", "99000", "--days", "20", "--repeats", "1"] if quick else [])
    _, out = timed(defection(*args), folder, 3600)
    return last_json(out)


def category(func: tuple[str, int, str], kernel_from_population: set[tuple[str, int, str]]) -> str:
    """The breakdown's category of one profiled function (see the module's docstring)."""
    path, _, name = func
    if path == "~" and name.startswith("<built-in method defection."):
        return "population synthesis" if func in kernel_from_population else "kernels"
    norm = path.replace("\\", "/")
    if norm.endswith("defection/model/population.py"):
        return "population synthesis"
    if "/defection/store/" in norm or "/duckdb/" in norm or "duckdb" in name:
        return "database"
    if "/pandas/" in norm or "/pyarrow/" in norm:
        return "pandas"
    if "/numba/" in norm or "/llvmlite/" in norm:
        return "numba dispatch"
    if "importlib" in norm or "<frozen" in norm:
        return "imports"
    if "/defection/" in norm or "/numpy/" in norm or (path == "~" and "numpy" in name):
        return "python between phases"
    return "other"


def profile_breakdown(folder: Path) -> dict[str, Any]:
    """One in-process profile of a small `defection run`, run twice: the first call's JIT, then the second call's
    time by category (see the module's docstring)."""
    from defection.cli.app import app

    def once(n: int, profiler: cProfile.Profile) -> float:
        args = ["run", "--json", "--db", str(folder / f"profile-{n}.duckdb"), *PROFILE_RUN]
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            profiler.enable()
            try:
                app(args, standalone_mode=False)
            finally:
                profiler.disable()
        return time.perf_counter() - start

    first = cProfile.Profile()
    first_wall = once(1, first)
    jit = sum(
        row[3]
        for func, row in pstats.Stats(first).stats.items()
        if func[2] == "_compile_for_args"  # type: ignore[attr-defined]
    )
    second = cProfile.Profile()
    wall = once(2, second)
    stats: dict[Any, Any] = pstats.Stats(second).stats  # type: ignore[attr-defined]
    from_population = {
        func
        for func, (_, _, _, _, callers) in stats.items()
        if any(c[0].replace("\\", "/").endswith("defection/model/population.py") for c in callers)
        and (func[0] == "~" and func[2].startswith("<built-in method defection."))
    }
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for func, (_, _, tottime, _, _) in stats.items():
        seconds[category(func, from_population)] += tottime
    total = sum(seconds.values())
    return {
        "what": "defection run " + " ".join(PROFILE_RUN),
        "first_call_wall_s": first_wall,
        "jit_first_call_s": jit,
        "steady_wall_s": wall,
        "profiled_s": total,
        "seconds": seconds,
        "shares": {k: (v / total if total else 0.0) for k, v in seconds.items()},
    }


# ----------------------------------------------------------------------------- output


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"bench: {fmt(result['bench']['agent_days_per_s'])} agent-days/s "
        f"({result['bench']['agents']:,} agents × {result['bench']['days']} days); "
        f"import defection.cli: {fmt(result['startup_s'])} s; load average {result['load']}"
        + ("; --quick (smoke sizes)" if result["quick"] else ""),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in result["commands"]:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in COLUMNS) + " |")
    b = result["breakdown"]
    if b:
        lines += [
            "",
            f"Breakdown of `{b['what']}` (cProfile, second call in one process; first call "
            f"{fmt(b['first_call_wall_s'])} s, of which JIT/cache load {fmt(b['jit_first_call_s'])} s; "
            f"second call {fmt(b['steady_wall_s'])} s):",
            "",
            "| part | seconds | share |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {fmt(b['seconds'][k])} | {100 * b['shares'][k]:.1f}% |" for k in CATEGORIES]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Scale every command down (a smoke run).")
    parser.add_argument("--only", action="append", choices=COMMANDS, help="Measure only this command (repeatable).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the Markdown table.")
    parser.add_argument("--no-profile", action="store_true", help="Skip the in-process profile (the breakdown).")
    parser.add_argument("--keep", type=Path, help="Keep the databases and outputs in this (new) folder.")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0, help="Seconds allowed for each command.")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="defection-commands-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        startup = startup_seconds(folder)
        bench_result = bench(folder, args.quick)
        rate = float(bench_result["agent_days_per_s"])
        todo = commands(folder, args.quick)
        rows = []
        for name in args.only or COMMANDS:
            cmd = todo[name]
            wall, out = timed(defection(*cmd.args), folder, args.timeout)
            payload = last_json(out)
            agent_days, source = cmd.agent_days(payload)
            per_s = agent_days / wall if agent_days is not None and wall > 0 else None
            rows.append(
                {
                    "command": name,
                    "wall_s": wall,
                    "agent_days": agent_days,
                    "source": source,
                    "agent_days_per_s": per_s,
                    "share_of_bench": per_s / rate if per_s is not None and rate > 0 else None,
                    "startup_s": startup,
                    "cluster_s": payload.get("startup_seconds"),
                    "reported_wall_seconds": payload.get("wall_seconds"),
                }
            )
        breakdown = None if args.no_profile else profile_breakdown(folder)
        result = {
            "quick": args.quick,
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "cpus": os.cpu_count(),
            "startup_s": startup,
            "bench": bench_result,
            "commands": rows,
            "breakdown": breakdown,
        }
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n" if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
