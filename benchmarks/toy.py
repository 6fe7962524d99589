"""A minimal Numba model of the same daily step, beside the engine (issue 14: "≥ 1.7× the minimal Numba toy").

Usage: .venv/bin/python benchmarks/toy.py [--agents 1000000] [--days 100] [--repeats 3] [--rounds 2]

The toy keeps only the skeleton of a day of the real model (`defection bench`): soldiers in companies of 100 and
squads of 10, each with 8 network ties; per day, in one parallel loop over companies, (1) attrition: one
counter-based uniform per present soldier against a death hazard; (2) awareness: an unaware soldier draws a
uniform and, with it, counts his aware ties (the word-of-mouth hazard of eq. 23); (3) decision: each squad draws an
opportunity, and a squad with one evaluates each serving member with a logistic choice on a cash value, a moral
cost and his aware ties, one more uniform each. No regime, programme, queue, routes, accounting or record. It is
what a hand-written Numba model of this step costs, so the engine's throughput as a multiple of it says how much
of the engine's time the model's extra content costs.

Each round runs `defection bench --json` (the full engine, population synthesis included) and the toy (its
population drawn outside the timing) in one process each, one after the other, and prints both medians and their
ratio as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import numba
import numpy as np
from numba import njit, prange

from defection.workers import prefer_passive_threads

COMPANY = 100
SQUAD = 10
TIES = 8


@njit(cache=True, inline="always")
def mix(key: np.uint64, i: int) -> float:
    """A counter-based uniform in [0, 1): splitmix64 of (key, i), as the engine's `rng.uniform` does."""
    z = key + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, parallel=True)
def day(t: int, status: np.ndarray, aware: np.ndarray, ties: np.ndarray, moral: np.ndarray) -> int:
    """One day of the toy: attrition, awareness and squad decisions, company by company; returns today's exits."""
    n_comp = status.size // COMPANY
    exits = 0
    k = np.uint64(t) * np.uint64(0x632BE59BD9B4E019)
    for c in prange(n_comp):
        for i in range(c * COMPANY, (c + 1) * COMPANY):
            if status[i] != 0:
                continue
            if mix(k ^ np.uint64(1), i) < 2e-4:  # attrition
                status[i] = 2
                continue
            if not aware[i]:  # word of mouth: hazard from the aware share of his ties
                u = mix(k ^ np.uint64(2), i)
                n = 0
                for d in range(TIES):
                    n += aware[ties[i, d]]
                if u < 1.0 - (1.0 - 0.009) * 0.8**n:
                    aware[i] = True
        for s in range(c * COMPANY // SQUAD, (c + 1) * COMPANY // SQUAD):
            if mix(k ^ np.uint64(3), s) >= 0.02:  # the squad's opportunity today
                continue
            for i in range(s * SQUAD, (s + 1) * SQUAD):
                if status[i] != 0:
                    continue
                peers = 0
                for d in range(TIES):
                    peers += status[ties[i, d]] == 1
                z = (100_000.0 * aware[i] - moral[i] + 20_000.0 * peers) / 50_000.0
                if mix(k ^ np.uint64(4), i) < 1.0 / (1.0 + math.exp(-z)):
                    status[i] = 1
                    exits += 1
    return exits


def toy_seconds(agents: int, days: int) -> float:
    """Wall seconds of `days` toy days on `agents` soldiers (population drawn before the clock starts)."""
    rng = np.random.default_rng(1)
    agents -= agents % COMPANY
    status = np.zeros(agents, np.int8)
    aware = np.zeros(agents, np.bool_)
    company = np.arange(agents) // COMPANY
    ties = (company[:, None] * COMPANY + rng.integers(0, COMPANY, (agents, TIES))).astype(np.int64)
    moral = rng.lognormal(np.log(300_000.0), 0.8, agents)
    start = time.perf_counter()
    for t in range(days):
        day(t, status, aware, ties, moral)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    prefer_passive_threads()  # the engine's threading policy, before the toy starts Numba's threads
    toy_seconds(10_000, 2)  # compile or load from the cache
    for r in range(args.rounds):
        size = ["--agents", str(args.agents), "--days", str(args.days), "--repeats", str(args.repeats)]
        bench = subprocess.run(
            [sys.executable, "-m", "defection", "bench", *size, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        engine = json.loads(bench.stdout)
        toy = statistics.median(toy_seconds(args.agents, args.days) for _ in range(args.repeats))
        toy_rate = args.agents * args.days / toy
        print(
            json.dumps(
                {
                    "round": r + 1,
                    "agents": args.agents,
                    "days": args.days,
                    "threads": numba.get_num_threads(),
                    "engine_seconds": engine["seconds_median"],
                    "engine_agent_days_per_s": engine["agent_days_per_s"],
                    "toy_seconds": toy,
                    "toy_agent_days_per_s": toy_rate,
                    "engine_over_toy": engine["agent_days_per_s"] / toy_rate,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
