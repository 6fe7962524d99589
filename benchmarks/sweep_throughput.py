"""Sweep throughput: simulations per minute of `defection sweep` with 1 and 2 local Dask workers, with a real
`dask scheduler` and two `dask worker` processes over loopback, and serially in the driver (no Dask) for
reference.

Usage: .venv/bin/python benchmarks/sweep_throughput.py [--points 48] [--agents 4950] [--days 90] [--repeats 3]

Every measurement is a fresh `defection sweep --json` process on a fixed LHS spec (offer.cash_usd,
regime.monitors_per_soldier and preferences.moral_cost_median_usd; one replicate per point, so one point is one
simulation). Throughput is simulations / compute seconds, where compute runs from the first submitted
experiment to the last result: it excludes starting the cluster and warming the workers (loading the compiled
kernels), which `startup_seconds` reports, and the final ingest. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
[experiment]
name = "throughput"
sampler = "lhs"
samples = {points}
replicates = 1
seed = 1
days = {days}
agents = {agents}

[[uncertainties]]
path = "preferences.moral_cost_median_usd"
low = 100_000.0
high = 1_000_000.0
log = true

[[uncertainties]]
path = "regime.monitors_per_soldier"
low = 0.01
high = 0.1

[[levers]]
path = "offer.cash_usd"
low = 10_000.0
high = 10_000_000.0
log = true
"""
DASK = str(Path(sys.executable).parent / "dask")
# single-threaded Numba, and no Dask statistical profiler in the `dask worker` processes (as `defection sweep`
# configures its LocalCluster): its thread takes the GIL every 10 ms
ENV = {
    **os.environ,
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
}


def sweep(spec: Path, work: Path, tag: str, *executor: str) -> dict:
    out, db = work / f"out-{tag}", work / f"{tag}.duckdb"
    load = os.getloadavg()[0]
    cmd = [
        sys.executable,
        "-m",
        "defection",
        "sweep",
        str(spec),
        *executor,
        "--out",
        str(out),
        "--db",
        str(db),
        "--json",
    ]
    # a session of its own: the driver and its local workers form one autogroup, as the external cluster does
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False, start_new_session=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    r = json.loads(proc.stdout)
    assert r["failed"] == 0, r["failures"]
    return {
        "compute_seconds": r["compute_seconds"],
        "startup_seconds": r["startup_seconds"],
        "wall_seconds": r["wall_seconds"],
        "simulations": r["ran"],
        "load_before": load,
    }


def start_cluster(work: Path) -> tuple[str, subprocess.Popen]:
    """A `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1, all in one new session
    (so, under Linux's autogroup scheduling, they share one CPU-time group as a local cluster does)."""
    sched_file = work / "scheduler.json"
    worker = (
        f"'{DASK}' worker --scheduler-file '{sched_file}' --nthreads 1 --nworkers 1 --no-dashboard "
        "--host 127.0.0.1 --local-directory"
    )
    script = (
        f"'{DASK}' scheduler --host 127.0.0.1 --port 0 --no-dashboard --scheduler-file '{sched_file}' & "
        f"while [ ! -s '{sched_file}' ]; do sleep 0.2; done; "
        f"{worker} '{work / 'w0'}' & {worker} '{work / 'w1'}' & wait"
    )
    log = (work / "dask.log").open("w")
    proc = subprocess.Popen(["bash", "-c", script], env=ENV, stdout=log, stderr=log, start_new_session=True)
    while not sched_file.exists() or not sched_file.read_text().strip():
        time.sleep(0.2)
    address = json.loads(sched_file.read_text())["address"]
    from dask.distributed import Client

    with Client(address, timeout="60s", set_as_default=False) as client:
        client.wait_for_workers(2, timeout=180)
    return address, proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=48)
    ap.add_argument("--agents", type=int, default=4_950)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {
        "serial (--workers 0)": [],
        "1 local worker": [],
        "2 local workers": [],
        "scheduler + 2 workers (loopback)": [],
    }
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        work = Path(tmp)
        spec = work / "spec.toml"
        spec.write_text(SPEC.format(points=args.points, days=args.days, agents=args.agents), encoding="utf-8")
        address, cluster = start_cluster(work)
        try:
            for rep in range(args.repeats):  # interleaved, so a change in background load hits every setting
                runs["serial (--workers 0)"].append(sweep(spec, work, f"s{rep}", "--workers", "0"))
                runs["1 local worker"].append(sweep(spec, work, f"l1-{rep}", "--workers", "1"))
                runs["2 local workers"].append(sweep(spec, work, f"l2-{rep}", "--workers", "2"))
                runs["scheduler + 2 workers (loopback)"].append(sweep(spec, work, f"r{rep}", "--scheduler", address))
        finally:
            stop(cluster)
    rows = []
    for name, rs in runs.items():
        compute = statistics.median(r["compute_seconds"] for r in rs)
        sims = rs[0]["simulations"]
        rows.append(
            {
                "setting": name,
                "simulations": sims,
                "compute_seconds_median": round(compute, 3),
                "startup_seconds_median": round(statistics.median(r["startup_seconds"] for r in rs), 3),
                "wall_seconds_median": round(statistics.median(r["wall_seconds"] for r in rs), 3),
                "simulations_per_minute": round(60.0 * sims / compute, 1),
                "load_before": [round(r["load_before"], 2) for r in rs],
            }
        )
    one = next(r for r in rows if r["setting"] == "1 local worker")["simulations_per_minute"]
    for r in rows:
        r["speedup_vs_1_worker"] = round(r["simulations_per_minute"] / one, 2)
    print(
        f"{args.points} points × {args.agents:,} agents × {args.days} days × 1 replicate; median of "
        f"{args.repeats}; {os.cpu_count()} CPUs"
    )
    print(f"{'setting':<34}{'sims/min':>10}{'vs 1 worker':>13}{'compute s':>11}{'startup s':>11}{'wall s':>9}")
    for r in rows:
        print(
            f"{r['setting']:<34}{r['simulations_per_minute']:>10,.0f}{r['speedup_vs_1_worker']:>12.2f}×"
            f"{r['compute_seconds_median']:>11.2f}{r['startup_seconds_median']:>11.2f}"
            f"{r['wall_seconds_median']:>9.2f}"
        )
    print(
        json.dumps(
            {
                "points": args.points,
                "agents": args.agents,
                "days": args.days,
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
