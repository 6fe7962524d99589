"""How long a run would take and how much memory it would need, before it starts.

A scenario may ask for up to 50 million agents × 3,650 days × 100,000 replicates (the schema's ranges), about
10¹⁶ agent-days: centuries of computing. `defection run` refuses a run whose estimate is over `MAX_SECONDS` or
over the memory the machine has available, unless told to go on (`--yes`). The estimate is deliberately
pessimistic, from the slowest throughput measured (docs/performance.md) and the engine's own array sizes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from defection.model.outputs import SERIES
from defection.model.population import simulated_agents
from defection.scenario.schema import Scenario

AGENT_DAYS_PER_SECOND = 3.0e7
"""Throughput assumed: below the slowest full-engine figure in docs/performance.md (3.2 × 10⁷ agent-days/s, one
Numba thread at 1,000,000 agents on a 2-vCPU AMD EPYC; two threads on the Intel machine do 1.07 × 10⁸)."""
SECONDS_PER_REPLICATE_DAY = 4.0e-4
"""The once-a-day Python work of one replicate, whatever the population (0.4 ms at 990 agents, docs/performance.md)."""
SOLDIER_BYTES = 64
"""Bytes per simulated soldier in `model.population` (status, days, traits: four 4-byte days, six 8-byte floats,
four 1-byte codes; tests/test_input_limits.py checks this against `synthesise`), besides his network ties."""
TIE_BYTES = 4
"""Bytes per network tie (an int32 neighbour index; `information.network_degree` ties per soldier)."""
QUEUE_BYTES = 16
"""Bytes per soldier of the programme's queue in `dynamics.run_replicate` (two int32 arrays of twice the force)."""
WORKING_FACTOR = 2.0
"""Headroom on the population's arrays for the kernels' working arrays and the allocator."""
BASE_BYTES = 400e6
"""The process before the population: Python, NumPy, Numba, pandas, DuckDB (a sweep's driver peaks at 377-409 MB)."""
DAILY_COPIES_STREAMED = 2
"""`defection run` streams the daily series (`simulate(on_daily=...)` into `ResultsDB.stage_daily`): one replicate's
series is held at a time, as its array and as its frame, then written to the staging folder."""
DAILY_COPIES_BEST_RESPONSE = 3
"""In best-response mode the kept policy is known only at the end, so every replicate's daily series is held: as
arrays, as one frame per replicate, and as their concatenation (for the best candidate and the current one)."""
MAX_SECONDS = 3600.0
"""The longest run started without `--yes`: one hour at the assumed throughput."""


@dataclass(frozen=True)
class RunSize:
    """A run's size: simulated agent-days, and the time and peak memory estimated for it."""

    agents: int
    days: int
    replicates: int
    candidates: int
    agent_days: float
    seconds: float
    memory_bytes: float


def estimate_run(
    agents: int, days: int, replicates: int, network_degree: int = 8, candidates: int = 1, workers: int = 1
) -> RunSize:
    """The size of a run of `agents` simulated agents (whole companies), `days` × `replicates`, each simulated
    `candidates` times (best-response mode simulates the regime's candidate policies on the same seeds), in
    `workers` processes (`defection.workers`: each holds a population and its own `BASE_BYTES`; the time is not
    divided by them, so that the estimate stays an upper bound).

    Time: every replicate-day costs `SECONDS_PER_REPLICATE_DAY` plus its agents at `AGENT_DAYS_PER_SECOND`.
    Memory: one replicate's population (`SOLDIER_BYTES`, `TIE_BYTES` per tie, `QUEUE_BYTES`, times
    `WORKING_FACTOR`), plus the daily series (`len(SERIES)` 8-byte values a day): one replicate's at a time,
    `DAILY_COPIES_STREAMED` times, as `defection run` streams them; in best-response mode every replicate's,
    `DAILY_COPIES_BEST_RESPONSE` times, twice (the best candidate's and the current one's); plus `BASE_BYTES`."""
    runs = float(candidates) * replicates * days
    per_agent = SOLDIER_BYTES + TIE_BYTES * network_degree + QUEUE_BYTES
    series_bytes = float(days) * len(SERIES) * 8
    if candidates > 1:
        daily = replicates * series_bytes * DAILY_COPIES_BEST_RESPONSE * 2
    else:
        daily = series_bytes * DAILY_COPIES_STREAMED
    return RunSize(
        agents=agents,
        days=days,
        replicates=replicates,
        candidates=candidates,
        agent_days=runs * agents,
        seconds=runs * (SECONDS_PER_REPLICATE_DAY + agents / AGENT_DAYS_PER_SECOND),
        memory_bytes=(BASE_BYTES + WORKING_FACTOR * per_agent * agents) * max(1, workers) + daily,
    )


def scenario_size(sc: Scenario, workers: int = 1) -> RunSize:
    """`estimate_run` for a scenario as `defection run` would run it (`engine.simulate`, its daily rows streamed to
    the store, in `workers` processes)."""
    sim, rr = sc.simulation, sc.regime.response
    best_response = rr.mode == "best_response" and sim.mode == "full"
    return estimate_run(
        simulated_agents(sim.agents, sc.force.company_size),
        sim.days,
        sim.replicates,
        sc.information.network_degree,
        1 + rr.best_response_trials if best_response else 1,
        workers,
    )


def available_memory(meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes of memory a new process can use: the least of Linux's MemAvailable and what the cgroup (v2) limit
    leaves (a container's `memory.max` less `memory.current`); else the free physical pages; None if unknown."""
    found = [v for v in (_meminfo_available(meminfo), _cgroup_available(cgroup)) if v is not None]
    if found:
        return min(found)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _meminfo_available(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available(cgroup: Path) -> int | None:
    try:
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((cgroup / "memory.current").read_text(encoding="ascii")))
    except (OSError, ValueError):
        return None


def size_problems(size: RunSize, available_bytes: int | None, max_seconds: float = MAX_SECONDS) -> list[str]:
    """Why a run of this size should not start without being asked to: longer than `max_seconds`, or more memory
    than `available_bytes` (not checked when unknown). Empty if neither."""
    problems = []
    if size.seconds > max_seconds:
        problems.append(
            f"it would take about {duration_text(size.seconds)} (at {AGENT_DAYS_PER_SECOND:,.0f} agent-days/s; "
            f"the limit without --yes is {duration_text(max_seconds)})"
        )
    if available_bytes is not None and size.memory_bytes > available_bytes:
        problems.append(
            f"it would need about {bytes_text(size.memory_bytes)} of memory; "
            f"this machine has {bytes_text(available_bytes)} available"
        )
    return problems


def describe(size: RunSize) -> str:
    """The run's size in words: agents × days × replicates (× candidate policies) = agent-days."""
    parts = f"{size.agents:,} agents × {size.days:,} days × {size.replicates:,} replicates"
    if size.candidates > 1:
        parts += f" × {size.candidates} candidate policies"
    return f"{parts} = {size.agent_days:.2g} agent-days"


def duration_text(seconds: float) -> str:
    """A duration in the largest unit it fills: 40 seconds, 12 minutes, 1 hour, 3.5 hours, 20 days, 19,000 years."""
    if not math.isfinite(seconds):
        return "forever"
    for unit, length in (("year", 365.25 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= length or unit == "second":
            value = seconds / length
            text = f"{value:,.0f}" if value >= 10 else f"{value:.2g}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    raise AssertionError("unreachable")


def bytes_text(n: float) -> str:
    """A number of bytes in binary units: 512 MiB, 21.7 GiB, 5.1 TiB."""
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"
