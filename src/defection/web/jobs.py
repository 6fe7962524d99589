"""The dashboard's job queue: simulations run one at a time in a worker thread, each in its own process.

A web request only validates a scenario and queues it. The worker thread takes the oldest queued job, records
it as a 'running' run in the results database (`ResultsDB.begin_run`, so it is listed at once), and starts a
fresh process ("spawn": no state is shared with the server, and Numba's threads are safe) that simulates the
scenario (and, for a job with `paired_baseline`, the same world with no offer on the same seed and replicates,
as `defection run --paired-baseline` does), stores the result in one transaction (`ResultsDB.complete_run`) and
reports its progress through a pipe. A job whose process raises, or dies without completing, is marked 'failed'
with its error; a job still running when the server stops is terminated and marked 'interrupted'. Nothing partial
is ever stored.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
from pathlib import Path
from typing import Any, Literal

from defection.claims import PAIRED_BASELINE, baseline_artifact, no_offer_baseline
from defection.engine import simulate
from defection.model.population import resolution_warning
from defection.scenario import Scenario
from defection.store import ResultsDB, ResultsError, RunMeta, RunNotFound
from defection.workers import process_age

log = logging.getLogger("defection.web")

JobStatus = Literal["queued", "running", "complete", "failed", "interrupted", "cancelled"]
FINISHED = ("complete", "failed", "interrupted", "cancelled")
JOB_ID_PATTERN = r"j[0-9a-f]{10}"
PROGRESS_EVERY_SECONDS = 0.1
KEEP_FINISHED = 200  # finished jobs remembered for the progress pages


class QueueFull(Exception):
    """The queue already holds its maximum number of waiting jobs."""


def job_cost(sc: Scenario, paired_baseline: bool = False) -> int:
    """Agent-days a scenario simulates: agents × days × replicates, times the candidate policies a best-response
    regime tries (1 + best_response_trials), times 2 with the paired no-offer baseline (`NO_OFFER` leaves the
    regime, and so the candidates, as they are: the baseline simulates as many agent-days again)."""
    sim = sc.simulation
    candidates = 1
    if sc.regime.response.mode == "best_response" and sim.mode == "full":
        candidates += sc.regime.response.best_response_trials
    return sim.agents * sim.days * sim.replicates * candidates * (2 if paired_baseline else 1)


def job_total(sc: Scenario, paired_baseline: bool = False) -> int:
    """A job's progress units before its process reports its own: replicate-days, the baseline's included."""
    return sc.simulation.days * sc.simulation.replicates * (2 if paired_baseline else 1)


@dataclass
class Job:
    """One requested simulation and what has become of it."""

    id: str
    scenario: Scenario
    cost: int
    paired_baseline: bool = False  # also simulate the paired no-offer baseline (artifact PAIRED_BASELINE)
    status: JobStatus = "queued"
    run_id: str | None = None
    done: int = 0
    total: int = 0
    error: str | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    def to_json(self, position: int | None = None) -> dict[str, Any]:
        sim = self.scenario.simulation
        return {
            "job_id": self.id,
            "status": self.status,
            "run_id": self.run_id,
            "scenario_name": self.scenario.meta.name,
            "agents": sim.agents,
            "resolution_warning": resolution_warning(sim.agents, self.scenario.force.company_size),
            "days": sim.days,
            "replicates": sim.replicates,
            "agent_days": self.cost,
            "paired_baseline": self.paired_baseline,
            "done": self.done,
            "total": self.total,
            "fraction": (self.done / self.total) if self.total else (1.0 if self.status == "complete" else 0.0),
            "position": position,
            "error": self.error,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "report_url": f"/runs/{self.run_id}" if self.status == "complete" and self.run_id else None,
        }


def run_job(db_path: str, run_id: str, scenario_json: str, paired_baseline: bool, conn: Connection) -> None:
    """The job process: simulate the scenario (then, with `paired_baseline`, its paired no-offer baseline, as
    `defection run --paired-baseline` does), store the result under `run_id`, report through `conn`.

    Messages: ("progress", done, total) at most every PROGRESS_EVERY_SECONDS, then ("done", wall_seconds) or
    ("error", "Type: message"). With the baseline, `total` counts both simulations from the start (the main run's
    replicate-days twice) and the baseline's progress continues from the main run's end, so `done` keeps rising
    to `total`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the server decides
    try:
        sc = Scenario.model_validate_json(scenario_json)
        last = 0.0
        main_total = job_total(sc)  # the main run's replicate-days, as its engine counts them (candidates included)

        def send(done: int, total: int, final: bool) -> None:
            nonlocal last
            now = time.monotonic()
            if final or now - last >= PROGRESS_EVERY_SECONDS:
                conn.send(("progress", done, total))
                last = now

        def progress(done: int, total: int) -> None:  # the main run: the baseline will simulate as many again
            nonlocal main_total
            main_total = total
            send(done, total * (2 if paired_baseline else 1), done == total)

        def baseline_progress(done: int, total: int) -> None:  # continues from the main run's end
            send(main_total + done, main_total + total, done == total)

        store = ResultsDB(db_path)
        with store.stage_daily(run_id) as staged:  # daily rows streamed to Parquet, stored with the run at the end
            result = simulate(sc, progress=progress, on_daily=staged)
            artifacts: dict[str, Any] = {}
            if paired_baseline:
                artifacts[PAIRED_BASELINE] = baseline_artifact(no_offer_baseline(sc, progress=baseline_progress))
            result.run_id = run_id
            result.wall_seconds = process_age()  # the job's (its process's start-up included), not the engine's
            store.complete_run(run_id, result, artifacts, staged=staged)
        conn.send(("done", float(result.wall_seconds)))
    except BaseException as e:
        with suppress(OSError, ValueError):
            conn.send(("error", f"{type(e).__name__}: {e}"))
        raise SystemExit(1) from None
    finally:
        conn.close()


JobTarget = Callable[[str, str, str, bool, Connection], None]
"""A job process's function: (db_path, run_id, scenario_json, paired_baseline, conn), as `run_job`."""


def _context(method: str) -> SpawnContext | ForkContext | ForkServerContext:
    """multiprocessing.get_context(method), typed: the three start methods all make Processes and Pipes."""
    if method == "spawn":
        return multiprocessing.get_context("spawn")
    if method == "fork":
        return multiprocessing.get_context("fork")
    if method == "forkserver":
        return multiprocessing.get_context("forkserver")
    raise ValueError(f"cannot find context for {method!r}")


class JobQueue:
    """A FIFO of jobs served by one worker thread; each job runs in a fresh process made by `start_method`."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        max_queue: int = 8,
        target: JobTarget = run_job,
        start_method: str = "spawn",
        db_lock: Any = None,
    ):
        self.db_path = Path(db_path)
        self.max_queue = max_queue
        self.target = target
        self._ctx = _context(start_method)
        self._db_lock = db_lock if db_lock is not None else nullcontext()
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: Any = None

    # -- the server's side ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="defection-jobs", daemon=True)
            self._thread.start()

    def submit(self, scenario: Scenario, paired_baseline: bool = False) -> Job:
        """Queue a validated scenario (with `paired_baseline`, its paired no-offer baseline too); QueueFull if
        `max_queue` jobs are already waiting."""
        with self._cond:
            if self._stop.is_set():
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} jobs waiting); wait for one to finish")
            job = Job(
                id="j" + uuid.uuid4().hex[:10],
                scenario=scenario,
                cost=job_cost(scenario, paired_baseline),
                paired_baseline=paired_baseline,
                total=job_total(scenario, paired_baseline),
            )
            self._jobs[job.id] = job
            self._pending.append(job)
            self._forget_old()
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after…; None unless queued."""
        with self._cond:
            for k, j in enumerate(self._pending):
                if j is job:
                    return k + 1
        return None

    def jobs(self) -> list[tuple[Job, int | None]]:
        """Every remembered job, newest first, with its queue position."""
        with self._cond:
            pos = {j.id: k + 1 for k, j in enumerate(self._pending)}
            return [(j, pos.get(j.id)) for j in reversed(self._jobs.values())]

    def cancel(self, job_id: str) -> bool:
        """Remove a queued job; False if it is not waiting (running jobs are not cancelled)."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.status != "queued":
                return False
            self._pending.remove(job)
            job.status, job.finished_at = "cancelled", time.time()
            return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker: cancel queued jobs, terminate a running one (marked 'interrupted'), join the thread."""
        with self._cond:
            self._stop.set()
            while self._pending:
                job = self._pending.popleft()
                job.status, job.finished_at = "cancelled", time.time()
                job.error = "the server stopped before the job started"
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for j in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[j.id]

    # -- the worker thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                job = self._pending.popleft()
                job.status, job.started_at = "running", time.time()
            try:
                self._run(job)
            except Exception as e:  # never let the worker die: record the job as failed and go on
                log.exception("job %s failed in the worker", job.id)
                self._finish(job, "failed", f"{type(e).__name__}: {e}")

    def _finish(self, job: Job, status: JobStatus, error: str | None = None) -> None:
        """Record the outcome on the job and, for a run that did not complete, in the database."""
        if job.run_id is not None and status in ("failed", "interrupted"):
            try:
                with self._db_lock:
                    ResultsDB(self.db_path).mark_run(job.run_id, status, error)
            except ValueError:  # it completed after all (the process died after committing)
                status, error = "complete", None
            except (ResultsError, RunNotFound) as e:
                log.error("could not record run %s as %s: %s", job.run_id, status, e)
        with self._cond:
            job.status, job.error, job.finished_at = status, error, time.time()
            if status == "complete":
                job.done = job.total

    def _run(self, job: Job) -> None:
        try:
            meta = RunMeta.from_scenario(job.scenario)
            with self._db_lock:
                run_id = ResultsDB(self.db_path).begin_run(meta)
        except ResultsError as e:
            self._finish(job, "failed", str(e))
            return
        job.run_id = run_id
        receiver, sender = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=self.target,
            name=f"defection-job-{job.id}",
            daemon=True,
            args=(str(self.db_path), run_id, job.scenario.canonical_json(), job.paired_baseline, sender),
        )
        proc.start()
        sender.close()
        self._proc = proc
        done, error = False, None
        try:
            while True:
                if self._stop.is_set():
                    self._stop_process(proc)
                    self._finish(job, "interrupted", "the dashboard server stopped before the run completed")
                    return
                if receiver.poll(0.2):
                    try:
                        msg = receiver.recv()
                    except EOFError:  # the process closed its end: it has finished or died
                        break
                    if msg[0] == "progress":
                        job.done, job.total = int(msg[1]), int(msg[2])
                    elif msg[0] == "done":
                        done = True
                    elif msg[0] == "error":
                        error = str(msg[1])
                elif not proc.is_alive():
                    break
            proc.join(30)
            if proc.is_alive():
                self._stop_process(proc)
        finally:
            receiver.close()
            self._proc = None
        if done and proc.exitcode == 0:
            self._finish(job, "complete")
        else:
            self._finish(
                job, "failed", error or f"the job process exited with code {proc.exitcode} before the run completed"
            )

    @staticmethod
    def _stop_process(proc: Any) -> None:
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


__all__ = [
    "FINISHED",
    "JOB_ID_PATTERN",
    "Job",
    "JobQueue",
    "JobTarget",
    "QueueFull",
    "job_cost",
    "job_total",
    "run_job",
]
