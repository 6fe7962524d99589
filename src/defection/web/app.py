"""The dashboard's web application (FastAPI): pages, a JSON API, limits and error handling.

`create_app(db_path)` builds an application with no global state: the results database, the job queue and the
limits live on `app.state`. Pages are plain server-rendered HTML with one small script and one stylesheet,
both package data; nothing is loaded from elsewhere.

Access: `token` (see `defection.web.security`) is required on every request when given; the `Host` header must
be one of `allowed_hosts`. Load: report and comparison responses are rendered in their own threads, cached
gzipped with an ETag (304 on If-None-Match), and at most `max_heavy` are in progress at once (503 beyond); see
`defection.web.load`.

Limits: request bodies over `max_body_bytes` get 413; unknown fields, fields that name a file, values that are
not plain numbers/text/booleans, a `paired_baseline` that is not true or false, invalid scenarios (the CLI's
messages), jobs over `max_agent_days` agent-days (the paired baseline's counted) and malformed run or job ids get
4xx with a message; a full queue gets 429. Run ids are checked against the id format before the database is
touched. No request ever reads or writes a path taken from the request.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from defection.analysis import json_safe
from defection.report import ReportError, render_compare, render_report
from defection.report.headline import headline, posterior_text
from defection.scenario import Scenario, ScenarioError
from defection.store import ResultsDB, ResultsError, RunNotFound
from defection.web import form, pages
from defection.web.jobs import JOB_ID_PATTERN, JobQueue, JobTarget, QueueFull, job_cost, run_job
from defection.web.limits import LOOPBACK_NAMES, MAX_HEAVY, TOKEN_PARAM
from defection.web.load import HeavyLimit, RenderedReport, ReportCache
from defection.web.security import HostCheck, TokenAuth

log = logging.getLogger("defection.web")

MAX_BODY_BYTES = 64 * 1024
MAX_QUEUE = 8
MAX_AGENT_DAYS = 2_000_000_000  # ≈ 2 minutes at ~18M agent-days/s on 2 cores; the default scenario is 0.72e9
QUERY_PARAMS = {"/compare": {"run"}, "/api/runs": {"limit"}}
"""The query parameters each path takes; any other is refused (400)."""
MAX_COMPARE = 8
REPORT_CACHE = 16
RENDER_THREADS = 2
"""Threads that render reports (apart from the pool that serves pages and the API, so neither waits on the other)."""
HEAVY_PATHS = ("/runs/", "/compare")
RUN_ID = re.compile(r"r[0-9a-f]{1,10}")
JOB_ID = re.compile(JOB_ID_PATTERN)
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}

# Dashboard pages: only our own script and stylesheet. Reports (self-contained, inline Plotly) may run inline
# scripts but still load nothing from anywhere.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


class ApiError(Exception):
    """A request the server refuses: status and message."""

    def __init__(self, status: int, detail: str, **extra: Any):
        self.status = status
        self.detail = detail
        self.extra = extra
        super().__init__(detail)


class ChangesBody(BaseModel):
    """Body of POST /api/validate and /api/jobs: dotted field paths (see GET /api/schema) → values, and whether to
    also simulate the paired no-offer baseline (`defection run --paired-baseline`; true or false, nothing else)."""

    model_config = ConfigDict(extra="forbid")
    changes: dict[str, Any] = Field(default_factory=dict)
    paired_baseline: StrictBool = False


# ---------------------------------------------------------------------------------------------- middleware
class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length or by counting a streamed body, and
    API requests with a body that is not declared application/json with 415 (so a cross-site form cannot post)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["method"] in ("POST", "PUT", "PATCH") and scope["path"].startswith("/api/"):
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                shown = ctype.decode("latin-1")[:60] or "no content type"
                await self._refuse(send, 415, f"send the request body as application/json, not {shown}")
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await self._refuse(send, 400, "invalid Content-Length header")
                return
            if declared > self.max_bytes:
                await self._too_large(send, declared)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(send, None)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        await self._refuse(send, 413, f"request body too large: {size}; the limit is {self.max_bytes} bytes")

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


# ---------------------------------------------------------------------------------------------- helpers
def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_run_id(text: str) -> str:
    """A run id or prefix of one ('r' + up to 10 hex digits), else ApiError 400. Checked before any lookup."""
    if not RUN_ID.fullmatch(text):
        raise ApiError(
            400, f"invalid run id {_shown(text)}: a run id is 'r' followed by 10 hex digits (a unique prefix is enough)"
        )
    return text


def check_job_id(text: str) -> str:
    if not JOB_ID.fullmatch(text):
        raise ApiError(400, f"invalid job id {_shown(text)}: a job id is 'j' followed by 10 hex digits")
    return text


def _json_safe(value: Any) -> Any:
    """NaN/NaT/NA → None, timestamps → ISO text, numpy scalars → Python."""
    if value is None or (not isinstance(value, str | bytes | list | dict | tuple) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return json_safe(value)


def _validation_message(err: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    """FastAPI's validation errors in plain words, naming each field."""
    items = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        name = ".".join(loc) or "(body)"
        kind = e.get("type", "")
        if kind == "extra_forbidden":
            text = f"unknown field '{name}'"
        elif kind == "missing":
            text = f"missing field '{name}'"
        elif kind == "json_invalid":
            name = "(body)"
            text = f"request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
        elif kind == "model_attributes_type" or (name == "(body)" and kind.endswith("_type")):
            text = "request body must be a JSON object"
        else:
            text = f"{name}: {e.get('msg')}"
        items.append({"field": name, "message": text})
    return "; ".join(i["message"] for i in items) or "invalid request", items


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def _error(request: Request, status: int, detail: str, **extra: Any) -> Response:
    headers = {"Cache-Control": "no-store"}
    if _wants_json(request):
        return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)
    return HTMLResponse(
        pages.error_page(status, detail), status_code=status, headers={**headers, "Content-Security-Policy": PAGE_CSP}
    )


def _with_back_link(report: str) -> str:
    """A report (a standalone document) shown inside the dashboard, with a way back to the runs."""
    return report.replace("<body>", '<body><p style="margin:0 0 1rem"><a href="/">&larr; all runs</a></p>', 1)


def _html(body: str, csp: str = PAGE_CSP) -> HTMLResponse:
    return HTMLResponse(body, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------- the app
def create_app(
    db_path: str | Path,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_queue: int = MAX_QUEUE,
    max_agent_days: int = MAX_AGENT_DAYS,
    allowed_hosts: list[str] | None = None,
    token: str | None = None,
    max_heavy: int = MAX_HEAVY,
    posterior: str | None = None,
    job_target: JobTarget = run_job,
    start_worker: bool = True,
) -> FastAPI:
    """The dashboard for the results database at `db_path` (created if missing; its folder must exist).

    `allowed_hosts`: Host header values accepted (DNS-rebinding guard); default localhost names only.
    `token`: when given, every request must present it (`defection.web.security.TokenAuth`); None: no check.
    `max_heavy`: report and comparison responses in progress at once; more get 503 with Retry-After.
    `posterior`: a checked posterior file every job uses (the server's choice, never the form's); None: the
    scenario's hand-tuned values.
    `job_target`: the function each job process runs (see `defection.web.jobs.run_job`).
    `start_worker=False` leaves the queue unserved (jobs stay queued), for tests."""
    db = ResultsDB(db_path)
    db_lock = threading.RLock()
    queue = JobQueue(db.path, max_queue=max_queue, target=job_target, db_lock=db_lock)
    static = {name: (resources.files("defection.web") / "static" / name).read_bytes() for name in STATIC}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_worker:
            queue.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(queue.shutdown)

    app = FastAPI(
        title="defection-lab dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.db = db
    app.state.db_lock = db_lock
    app.state.queue = queue
    app.state.limits = {
        "max_body_bytes": max_body_bytes,
        "max_queue": max_queue,
        "max_agent_days": max_agent_days,
        "max_compare": MAX_COMPARE,
        "posterior": posterior,
    }
    reports = ReportCache(REPORT_CACHE)
    render_lock = threading.Lock()
    render_threads = anyio.CapacityLimiter(RENDER_THREADS)

    # added innermost first: a request passes the query check, the Host check, the token, the bound on heavy
    # responses, compression and the body limit, in that order
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # leaves the pre-compressed reports as they are
    app.add_middleware(HeavyLimit, prefixes=HEAVY_PATHS, max_heavy=max_heavy)
    app.add_middleware(TokenAuth, token=token)
    app.add_middleware(HostCheck, allowed=allowed_hosts or LOOPBACK_NAMES)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        taken = QUERY_PARAMS.get(request.url.path, set()) | {TOKEN_PARAM}  # the token is TokenAuth's
        unknown = sorted(set(request.query_params) - taken)
        if unknown:  # like unknown body fields: refused, not silently ignored
            allowed = ", ".join(sorted(QUERY_PARAMS.get(request.url.path, set()))) or "none"
            response = _error(
                request,
                400,
                f"unknown query parameter {_shown(', '.join(unknown))} on "
                f"{_shown(request.url.path)}; allowed here: {allowed}",
            )
        else:
            response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    # -- errors ------------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return _error(request, exc.status, exc.detail, **exc.extra)

    @app.exception_handler(form.FormError)
    async def on_form_error(request: Request, exc: form.FormError) -> Response:
        return _error(request, exc.status, exc.detail, field=exc.field, problems=[])

    @app.exception_handler(ScenarioError)
    async def on_scenario_error(request: Request, exc: ScenarioError) -> Response:
        return _error(request, 422, exc.render(), problems=[form.problem_json(p) for p in exc.problems])

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        detail, items = _validation_message(exc)
        status = (
            400
            if any("not valid JSON" in i["message"] or "must be a JSON object" in i["message"] for i in items)
            else 422
        )
        return _error(request, status, detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such page: {request.url.path[:200]}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path[:200]}"
        return _error(request, exc.status_code, detail)

    @app.exception_handler(RunNotFound)
    async def on_not_found(request: Request, exc: RunNotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(ResultsError)
    async def on_results_error(request: Request, exc: ResultsError) -> Response:
        log.error("results database: %s", exc)
        return _error(request, 503, f"the results database is not available: {exc}")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(request, 500, "internal error; the details are in the server's log")

    # -- data --------------------------------------------------------------------------------------------
    def runs_rows(limit: int | None = None) -> list[dict[str, Any]]:
        """/api/runs: the stored runs with their main outcome ('headline', its interval) and posterior, as the runs
        page shows them."""
        with db_lock:
            df = db.run_summaries(limit=limit)
        rows = df.to_dict("records")
        for r in rows:
            r["headline"], r["posterior"] = headline(r), posterior_text(r)
            r.pop("brief", None)
        return [{k: _json_safe(v) for k, v in r.items()} for r in rows]

    def live_progress(run_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The progress of these running runs: a dashboard job's from the queue, a command's from the file it
        writes beside the database (None when it wrote none yet)."""
        with db_lock:
            found: dict[str, dict[str, Any] | None] = dict.fromkeys(run_ids)
            found.update(db.progress(run_ids))
        now = time.time()
        for job, _ in queue.jobs():
            if job.status == "running" and job.run_id in found:
                found[job.run_id] = job_progress(job.done, job.total, job.started_at, now)
        return found

    def summary_rows() -> list[dict[str, Any]]:
        """The runs page's rows: the runs with their headline, posterior and (running ones) progress."""
        with db_lock:
            df = db.run_summaries()
        rows = [{k: _json_safe(v) for k, v in r.items()} for r in df.to_dict("records")]
        progress = live_progress([r["run_id"] for r in rows if r["status"] == "running"])
        for r in rows:
            r["headline"], r["posterior"] = headline(r), posterior_text(r)
            r["progress"] = progress.get(r["run_id"])
        return rows

    def get_run(run_id: str) -> dict[str, Any]:
        with db_lock:
            return db.get_run(check_run_id(run_id))

    def validated(body: ChangesBody) -> Any:
        sc = form.scenario_for(body.changes)
        if sc.simulation.posterior:  # cannot happen through the form; refuse rather than read a file
            raise ApiError(422, "simulation.posterior cannot be set from the dashboard", field="simulation.posterior")
        if posterior:
            sc = sc.model_copy(deep=True)
            sc.simulation.posterior = posterior
        paired = body.paired_baseline
        cost = job_cost(sc, paired)
        if cost > max_agent_days:
            candidates = " × regime candidates" if cost != _plain(sc) * (2 if paired else 1) else ""
            baseline = " × 2: the paired no-offer baseline doubles it" if paired else ""
            raise ApiError(
                422,
                f"job too large: {cost:,} agent-days (simulation.agents × simulation.days × "
                f"simulation.replicates{candidates}{baseline}); this dashboard runs at most {max_agent_days:,}. "
                f"Use fewer agents, days or replicates{', or no paired baseline' if paired else ''}, or "
                "`defection run` on the command line",
                field="simulation.agents",
                agent_days=cost,
            )
        return sc

    def report_bytes(key: tuple[str, ...], render: Callable[[], str], cacheable: bool) -> RenderedReport:
        """Rendered (in a render thread, one at a time), with the back link, encoded and gzipped; kept if
        `cacheable` (every run complete: a report that cannot change)."""
        with render_lock:
            found = reports.get(key)
            if found is not None:
                return found
            with db_lock:
                text = render()
            rendered = RenderedReport.of(_with_back_link(text))
            if cacheable:
                reports.put(key, rendered)
            return rendered

    def run_report(run_id: str) -> tuple[RenderedReport, bool]:
        run = get_run(run_id)
        rid = run["run_id"]
        complete = run["status"] == "complete"
        try:
            return report_bytes((rid,), lambda: render_report(db, rid), complete), complete
        except ReportError as e:
            raise ApiError(409, f"run {rid} ({run['status']}, kind {run['kind']}) has no report: {e}") from None

    def compare_report(ids: list[str]) -> tuple[RenderedReport, bool]:
        infos = [get_run(r) for r in ids]
        full = [i["run_id"] for i in infos]
        if len(set(full)) < len(full):
            raise ApiError(400, "the same run is selected twice; select different runs")
        complete = all(i["status"] == "complete" for i in infos)
        try:
            return report_bytes(("compare", *full), lambda: render_compare(db, full), complete), complete
        except ReportError as e:
            raise ApiError(409, f"these runs cannot be compared: {e}") from None

    # -- pages -------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def runs_page() -> Response:
        return _html(pages.runs_page(summary_rows(), app.state.limits))

    @app.get("/runs/{run_id}/error", response_class=HTMLResponse)
    def run_error_page(run_id: str) -> Response:
        run = get_run(run_id)
        if run["status"] not in ("failed", "interrupted"):
            raise ApiError(409, f"run {run['run_id']} is {run['status']}: it has no error to show")
        return _html(pages.run_error_page(run))

    @app.get("/new", response_class=HTMLResponse)
    def new_page() -> Response:
        return _html(pages.new_run_page(app.state.limits))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str) -> Response:
        job = queue.get(check_job_id(job_id))
        if job is None:
            raise ApiError(404, f"no job {job_id} on this server (jobs are forgotten when it restarts)")
        return _html(pages.job_page(job.id))

    # Reports: async, so that neither the rendering nor the database lookups occupy the thread pool that serves
    # the other pages; a complete run's report (full id) is served from the cache without touching the database.
    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    async def report_page(run_id: str, request: Request) -> Response:
        check_run_id(run_id)
        cached = reports.get((run_id,))
        if cached is not None:  # only complete runs are cached, under their full id
            rendered, complete = cached, True
        else:
            rendered, complete = await anyio.to_thread.run_sync(run_report, run_id, limiter=render_threads)
        return rendered.response(request, {"Content-Security-Policy": REPORT_CSP}, complete)

    @app.get("/compare", response_class=HTMLResponse)
    async def compare_page(request: Request, run: Annotated[list[str] | None, Query()] = None) -> Response:
        ids = [check_run_id(r) for r in (run or [])]
        if len(ids) < 2:
            raise ApiError(400, "select at least two runs to compare")
        if len(ids) > MAX_COMPARE:
            raise ApiError(400, f"at most {MAX_COMPARE} runs can be compared at once, not {len(ids)}")
        cached = reports.get(("compare", *ids))
        if cached is not None:
            rendered, complete = cached, True
        else:
            rendered, complete = await anyio.to_thread.run_sync(compare_report, ids, limiter=render_threads)
        return rendered.response(request, {"Content-Security-Policy": REPORT_CSP}, complete)

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, f"no such file: {_shown(name)}")
        return Response(static[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    # -- API ---------------------------------------------------------------------------------------------
    @app.get("/api/health")
    async def health() -> dict[str, Any]:  # on the event loop: never waits for a thread
        return {"ok": True, "limits": app.state.limits}

    @app.get("/api/runs")
    def api_runs(limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> dict[str, Any]:
        return {"runs": runs_rows(limit)}

    @app.get("/api/progress")
    def api_progress() -> dict[str, Any]:
        """The runs still running (stale rows reconciled) with their progress and its text, for the runs page."""
        with db_lock:
            ids = db.running()
        found = live_progress(ids)
        return {
            "running": {rid: {"progress": p, "text": pages.progress_text(p)} for rid, p in found.items()},
        }

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> dict[str, Any]:
        info = get_run(run_id)
        out = {k: _json_safe(v) for k, v in info.items() if k not in ("scenario_json", "library_versions")}
        out["library_versions"] = info["library_versions"]
        out["scenario"] = json.loads(info["scenario_json"] or "{}")
        if info["status"] == "complete":
            with db_lock:
                rows = db.outcomes(info["run_id"]).to_dict("records")
            out["outcomes"] = {
                r["outcome"]: {k: _json_safe(r[k]) for k in ("median", "p05", "p95", "mean")} for r in rows
            }
        return out

    @app.get("/api/schema")
    def api_schema() -> dict[str, Any]:
        return {
            "groups": [{"key": k, "title": t, "fields": [f.to_json() for f in fs]} for k, t, fs in form.groups()],
            "limits": app.state.limits,
        }

    @app.post("/api/validate")
    def api_validate(body: ChangesBody) -> dict[str, Any]:
        sc = validated(body)
        return {
            "ok": True,
            "agent_days": job_cost(sc, body.paired_baseline),
            "paired_baseline": body.paired_baseline,
            "max_agent_days": max_agent_days,
        }

    @app.post("/api/jobs", status_code=202)
    def api_submit(body: ChangesBody) -> dict[str, Any]:
        sc = validated(body)
        try:
            job = queue.submit(sc, paired_baseline=body.paired_baseline)
        except QueueFull as e:
            raise ApiError(429, str(e)) from None
        return {**job.to_json(queue.position(job)), "url": f"/jobs/{job.id}"}

    @app.get("/api/jobs")
    def api_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json(pos) for j, pos in queue.jobs()]}

    @app.get("/api/jobs/{job_id}")
    def api_job(job_id: str) -> dict[str, Any]:
        job = queue.get(check_job_id(job_id))
        if job is None:
            raise ApiError(404, f"no job {job_id} on this server (jobs are forgotten when it restarts)")
        return job.to_json(queue.position(job))

    @app.delete("/api/jobs/{job_id}")
    def api_cancel(job_id: str) -> dict[str, Any]:
        job = queue.get(check_job_id(job_id))
        if job is None:
            raise ApiError(404, f"no job {job_id} on this server")
        if not queue.cancel(job.id):
            raise ApiError(409, f"job {job.id} is {job.status}; only a queued job can be cancelled")
        return job.to_json()

    return app


def job_progress(done: int, total: int, started_at: float | None, now: float) -> dict[str, Any]:
    """A dashboard job's progress in the form a command writes its own (`defection.store.progress`)."""
    fraction = done / total if total else 0.0
    elapsed = max(0.0, now - started_at) if started_at is not None else None
    left = elapsed * (total - done) / done if elapsed and done > 0 and total else None
    state: dict[str, Any] = {"stage": "simulating replicate-days", "done": done, "total": total, "fraction": fraction}
    if elapsed is not None:
        state["elapsed_seconds"] = elapsed
    if left is not None:
        state["left_seconds"] = left
    return state


def _plain(sc: Scenario) -> int:
    sim = sc.simulation
    return sim.agents * sim.days * sim.replicates
