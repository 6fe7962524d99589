"""The dashboard under load (issue 13, item 7): many concurrent report downloads while /api/health and the runs
page are timed, then idle connections left open.

Usage: .venv/bin/python benchmarks/dashboard_load.py [--downloads 1000] [--idle 200] [--db FILE --run ID]

Starts `python -m defection serve` on 127.0.0.1 (a free port) in its own process group, over a fresh database
with one small run (or `--db`/`--run`), downloads that run's report once (so it is rendered), then starts
`--downloads` downloads at once (asyncio, one connection each, accepting gzip like a browser) and, while they
last, times GET /api/health and GET / one after the other from another thread. Then opens `--idle` connections
that send nothing and counts how many the server has closed after its header timeout (10 s) plus a margin.
Prints one JSON object: the downloads' answers (200, 503, errors) and wall time, and the median, 95th percentile
and maximum latency of health and the runs page. A busy machine inflates every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TINY = {"simulation.agents": 5000, "simulation.days": 365, "simulation.replicates": 2}


def make_db(folder: Path) -> tuple[Path, str]:
    """A database with one small complete run."""
    from defection.engine import simulate
    from defection.scenario import default_scenario, with_changes
    from defection.store import ResultsDB

    db = ResultsDB(folder / "load.duckdb")
    return db.path, db.store(simulate(with_changes(default_scenario(), TINY)))


def start_server(db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "defection", "serve", "--port", "0", "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"serve did not start: {line}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # drain
    return proc, int(m.group(1))


def summary(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)
    return {
        "n": len(seconds),
        "median_s": round(statistics.median(seconds), 4),
        "p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 4),
        "max_s": round(ordered[-1], 4),
    }


def probe(url: str, stop: threading.Event, found: dict[str, list[float]]) -> None:
    """Time /api/health and / one after the other until `stop`."""
    with httpx.Client(base_url=url, timeout=600) as h:
        while not stop.is_set():
            for name, path, headers in (("health", "/api/health", {}), ("runs_page", "/", {"accept": "text/html"})):
                t0 = time.perf_counter()
                try:
                    status = h.get(path, headers=headers).status_code
                except httpx.HTTPError:
                    status = -1
                found[name].append(time.perf_counter() - t0)
                found[f"{name}_status"].append(status)
            time.sleep(0.05)


async def downloads(url: str, run: str, n: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    answers: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as h:

        async def one() -> None:
            try:
                r = await h.get(f"/runs/{run}", headers={"accept": "text/html", "accept-encoding": "gzip"})
                key = str(r.status_code)
            except httpx.HTTPError as e:
                key = type(e).__name__
            answers[key] = answers.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return {"answers": answers, "wall_s": round(time.perf_counter() - t0, 2)}


def idle_connections(port: int, n: int, wait_s: float) -> dict[str, int]:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
    time.sleep(wait_s)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return {"opened": n, "closed_by_server": closed, "after_s": int(wait_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--downloads", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="defection-load-") as tmp:
        db, run = (args.db, args.run) if args.db else make_db(Path(tmp))
        proc, port = start_server(db)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=600) as h:
                first = h.get(f"/runs/{run}", headers={"accept-encoding": "gzip"})
                size = {"status": first.status_code, "bytes": len(first.content)}
                size["gzip_bytes"] = int(first.headers.get("content-length", 0))
            found: dict[str, list[float]] = {
                k: [] for k in ("health", "runs_page", "health_status", "runs_page_status")
            }
            stop = threading.Event()
            prober = threading.Thread(target=probe, args=(url, stop, found))
            prober.start()
            try:
                load = asyncio.run(downloads(url, run, args.downloads))
            finally:
                stop.set()
                prober.join()
            idle = idle_connections(port, args.idle, 10 + 5) if args.idle else {}
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    statuses = {k: sorted(set(v)) for k, v in found.items() if k.endswith("_status")}
    print(
        json.dumps(
            {
                "report": size,
                "downloads": {"concurrent": args.downloads, **load},
                "health": summary(found["health"]),
                "runs_page": summary(found["runs_page"]),
                "statuses": statuses,
                "idle_connections": idle,
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
