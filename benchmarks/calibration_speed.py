"""Time a full-library `defection calibrate` and a full leave-one-case-out `defection backtest` with the commands'
default settings (issue 11: calibrate ≤ 5 min, backtest ≤ 20 min on a quiet 2-core machine).

Usage: .venv/bin/python benchmarks/calibration_speed.py [--repeats 1] [--only calibrate|backtest] [-- EXTRA ARGS]

Each command runs in a fresh process (`python -m defection …`, the results store in a temporary folder). Wall seconds
are the command's elapsed time; CPU seconds are the process time of the command and all its worker processes
(`getrusage(RUSAGE_CHILDREN)`), which a busy machine inflates far less than the wall time. Prints one JSON object:
per command the median, and each repeat's wall and CPU seconds, simulations and the final effective sample size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_once(command: str, extra: list[str]) -> dict[str, Any]:
    """One run of `defection COMMAND --json` in a fresh process: its wall and CPU seconds and what it reported."""
    with tempfile.TemporaryDirectory(prefix="defection-bench-") as tmp:
        cmd = [sys.executable, "-m", "defection", command, "--db", str(Path(tmp) / "bench.duckdb"), "--json"]
        if command == "calibrate":
            cmd += ["--output", str(Path(tmp) / "posterior.json")]
        else:
            cmd += ["--plot", str(Path(tmp) / "backtest.png")]
        cmd += extra
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out: dict[str, Any] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "settings": report["settings"]}
    if command == "calibrate":
        out["simulations"] = report["simulations"]
        out["generations"] = [{k: g[k] for k in ("t", "epsilon", "simulations", "ess")} for g in report["generations"]]
        out["cut_short"] = report["cut_short"]
    else:
        folds = report["posteriors"].values()
        out["simulations"] = sum(int(f["simulations"]) for f in folds)
        out["final_epsilon"] = [f["final_epsilon"] for f in folds]
        out["coverage_90"] = report["coverage_90"]
        out["interval_score"] = report["interval_score"]
    return out


def machine() -> dict[str, Any]:
    """What the numbers were measured on (and how busy it was when they started)."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1, help="Runs of each command (the median is reported).")
    ap.add_argument("--only", choices=["calibrate", "backtest"], help="Time one command only.")
    ap.add_argument("extra", nargs="*", help="Extra arguments for the command(s), after --.")
    args = ap.parse_args()
    result: dict[str, Any] = {"machine": machine()}
    for command in ("calibrate", "backtest"):
        if args.only and command != args.only:
            continue
        runs = []
        for k in range(args.repeats):
            runs.append(run_once(command, args.extra))
            print(f"{command} run {k + 1}/{args.repeats}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
        result[command] = {
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
            "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "median_simulations": statistics.median(r["simulations"] for r in runs),
            "runs": runs,
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
