"""Engine throughput across population sizes and Numba thread counts.

Usage: .venv/bin/python benchmarks/engine_throughput.py [--days 100] [--repeats 5]
Each (agents, threads) point runs in a fresh process so NUMBA_NUM_THREADS takes effect; prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--agents", type=int, nargs="*", default=[99_000, 1_000_000])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    args = ap.parse_args()
    for agents in args.agents:
        for threads in args.threads:
            env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
            cmd = [
                sys.executable,
                "-m",
                "defection",
                "bench",
                "--agents",
                str(agents),
                "--days",
                str(args.days),
                "--repeats",
                str(args.repeats),
                "--json",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            report = json.loads(proc.stdout)
            print(
                json.dumps(
                    {
                        k: report[k]
                        for k in (
                            "agents",
                            "days",
                            "threads",
                            "seconds_median",
                            "agent_days_per_s",
                            "phase_seconds",
                            "machine",
                        )
                    }
                )
            )


if __name__ == "__main__":
    main()
