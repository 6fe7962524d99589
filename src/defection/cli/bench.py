"""`defection bench`: throughput of the full model (every phase) on the default scenario."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from defection.cli.console import JsonOpt, fail, out

# numba and the engine are imported inside `run_bench`: `defection --help` and `defection check` need neither.


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} logical CPUs, {system}, Python {platform.python_version()}"


def run_bench(agents: int = 1_000_000, days: int = 100, repeats: int = 3) -> dict[str, Any]:
    """Median agent-days per second over `repeats` timed single-replicate runs (after a warm-up run).

    The force is enlarged to at least `agents` soldiers so that any agent count is valid; population
    synthesis is included in the time, as in a real run.
    """
    import numba

    from defection.engine import simulate
    from defection.scenario import default_scenario

    sc = default_scenario()
    sc.force.soldiers = max(sc.force.soldiers, agents)
    simulate(sc, replicates=1, days=2, agents=sc.force.company_size * 10, seed=1)  # JIT/cache warm-up
    seconds: list[float] = []
    phases: list[dict[str, float]] = []
    simulated = agents
    for k in range(repeats):
        start = time.perf_counter()
        res = simulate(sc, replicates=1, days=days, agents=agents, seed=1000 + k)
        seconds.append(time.perf_counter() - start)
        phases.append(res.phase_seconds)
        simulated = res.agents
    med = statistics.median(seconds)
    return {
        "agents": simulated,
        "days": days,
        "repeats": repeats,
        "seconds": seconds,
        "seconds_median": med,
        "agent_days_per_s": simulated * days / med,
        "phase_seconds": {k: statistics.median(p[k] for p in phases) for k in phases[0]},
        "threads": numba.get_num_threads(),
        "machine": machine_description(),
    }


# ----------------------------------------------------------------------------- bench


def bench(
    agents: Annotated[int, typer.Option("--agents", help="Simulated agents.")] = 1_000_000,
    days: Annotated[int, typer.Option("--days", help="Days per repeat.")] = 100,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed repeats; the median is reported.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Engine throughput of the full model (every phase) on the default scenario, in agent-days per second."""
    if agents < 99 or days < 1 or repeats < 1:
        fail("--agents must be ≥ 99 (one company), --days and --repeats ≥ 1")
    report = run_bench(agents=agents, days=days, repeats=repeats)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    table = Table(
        title=f"defection bench: {report['agents']:,} agents × {days} days, median of {repeats}", show_header=False
    )
    table.add_row("agent-days per second", f"{report['agent_days_per_s']:.3g}")
    table.add_row("seconds per repeat (median)", f"{report['seconds_median']:.3f}")
    table.add_row("numba threads", str(report["threads"]))
    table.add_row("machine", report["machine"])
    for phase, sec in report["phase_seconds"].items():
        table.add_row(f"  phase {phase}", f"{sec:.3f} s")
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `defection` app."""
    app.command()(bench)
