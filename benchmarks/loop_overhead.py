"""The daily loop's fixed cost: CPU time of one replicate at small agent counts (issue 11 part 1, issue 14).

Usage: .venv/bin/python benchmarks/loop_overhead.py [--agents 495 4950] [--days 365] [--repeats 7] [--threads 1]
       [--cpu-phases] [--profile]

Runs `dynamics.run_replicate` on the default scenario (after a warm-up replicate that loads the compiled kernels) and
prints, per agent count, the median CPU milliseconds of a replicate and CPU microseconds per simulated day, with the
median of each phase (`phase_seconds`, wall or, with `--cpu-phases`, CPU time, per day). CPU time is
`time.process_time` (all threads of the process), which a machine shared with other jobs inflates far less than wall
time. Numba runs with `--threads` threads (1, as in calibration workers). With `--profile`, also prints a cProfile of
one replicate at the first agent count, sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
import types

import numba

from defection.model import dynamics
from defection.model.dynamics import run_replicate
from defection.model.parameters import engine_params
from defection.scenario import default_scenario, with_overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[495, 4950])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--cpu-phases", action="store_true", help="time the phases in CPU time rather than wall time")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    if args.cpu_phases:
        dynamics.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[assignment]
    sc = with_overrides(default_scenario(), days=args.days, seed=1)
    p = engine_params(sc)
    run_replicate(sc, p, 0, args.agents[0])  # warm-up: load the compiled kernels
    out = {}
    for n in args.agents:
        cpu, phases = [], []
        for rep in range(args.repeats):
            start = time.process_time()
            res = run_replicate(sc, p, rep, n)
            cpu.append(time.process_time() - start)
            phases.append(res.phase_seconds)
        med = statistics.median(cpu)
        out[n] = {
            "cpu_ms_per_replicate": round(med * 1e3, 2),
            "cpu_us_per_day": round(med / args.days * 1e6, 1),
            "cpu_ms_all": [round(c * 1e3, 2) for c in cpu],
            "phase_us_per_day": {
                k: round(statistics.median(ph[k] for ph in phases) / args.days * 1e6, 1) for k in phases[0]
            },
        }
    print(json.dumps({"days": args.days, "threads": args.threads, "agents": out}, indent=1))
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_replicate(sc, p, 0, args.agents[0])
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
