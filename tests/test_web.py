"""The dashboard server (`defection serve`): limits, refusals, messages, concurrency and the job queue.

Most tests use Starlette's TestClient; the concurrency and raw-path tests use a real uvicorn on 127.0.0.1 (a free
port, in a thread of this process); the shutdown test runs `python -m defection serve` in a subprocess.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from rich.console import Console

from defection.claims import PAIRED_BASELINE, baseline_artifact, no_offer_baseline
from defection.cli.console import Reporter, recorded
from defection.engine import simulate
from defection.report import report_figures
from defection.report.headline import headline, interval_text
from defection.scenario import ScenarioError, default_scenario, with_changes
from defection.store import ResultsDB, RunMeta
from defection.store.progress import progress_file, read_progress, write_progress
from defection.web import form
from defection.web.app import create_app
from defection.web.jobs import run_job

from .conftest import ROOT, check_paired_baseline, cli_in_process
from .conftest import plain as plain_title
from .processes import HANG_GUARD, REQUEST, STOP, communicate, started

TINY = {"simulation.agents": 2000, "simulation.days": 20, "simulation.replicates": 2}
BASE = "http://127.0.0.1"


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database with two complete tiny runs and one failed run."""
    folder = tmp_path_factory.mktemp("web")
    db = ResultsDB(folder / "runs.duckdb")
    a = db.store(simulate(with_changes(default_scenario(), TINY)))
    b = db.store(simulate(with_changes(default_scenario(), {**TINY, "offer.cash_usd": 1e6, "meta.name": "rich"})))
    failed = db.begin_run(RunMeta.from_scenario(with_changes(default_scenario(), TINY)))
    db.mark_run(failed, "failed", "RuntimeError: made to fail")
    return {"folder": folder, "db": db.path, "complete": [a, b], "failed": failed}


@pytest.fixture
def client(stored: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(stored["db"], start_worker=False), base_url=BASE) as c:
        yield c


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 on a free port, in a thread of this process."""

    def __init__(self, app: Any):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + HANG_GUARD
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(STOP)
        self.sock.close()

    def raw(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """A request sent exactly as written (no client-side normalisation of the path)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def live(stored: dict[str, Any]) -> Iterator[LiveServer]:
    with LiveServer(create_app(stored["db"], start_worker=False)) as server:
        yield server


def cli_problems(changes: dict[str, Any]) -> list[str]:
    """The problem lines the CLI prints for these changes to the default scenario."""
    try:
        with_changes(default_scenario(), changes, source="<cli>")
    except ScenarioError as e:
        return [str(p) for p in e.problems]
    raise AssertionError(f"{changes} is valid")


# ---------------------------------------------------------------------------------------------- limits
def test_oversized_body_is_refused_with_413(stored: dict[str, Any]) -> None:
    app = create_app(stored["db"], max_body_bytes=2000, start_worker=False)
    with TestClient(app, base_url=BASE) as c:
        big = {"changes": {"meta.description": "x" * 5000}}
        r = c.post("/api/validate", json=big)
        assert r.status_code == 413
        assert "too large" in r.json()["detail"] and "2000 bytes" in r.json()["detail"]
        # a streamed body without Content-Length is counted as it arrives
        r = c.post(
            "/api/jobs",
            content=iter([b'{"changes": {"meta.name": "', b"y" * 3000, b'"}}']),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and "too large" in r.json()["detail"]
        assert c.get("/api/jobs").json()["jobs"] == []
        # just under the limit is fine
        assert c.post("/api/validate", json={"changes": {"meta.description": "x" * 1500}}).status_code == 200


def test_unknown_and_malformed_fields_are_named(client: TestClient) -> None:
    cases = {
        "changez": {"changez": {}},
        "offer.bogus": {"changes": {"offer.bogus": 1}},
        "offer": {"changes": {"offer": {"cash_usd": 1}}},
        "offer.cash_usd.x": {"changes": {"offer.cash_usd.x": 1}},
        "information.channels[7].name": {"changes": {"information.channels[7].name": "tv"}},
    }
    for name, body in cases.items():
        for url in ("/api/validate", "/api/jobs"):
            r = client.post(url, json=body)
            assert 400 <= r.status_code < 500, (name, r.status_code)
            assert f"'{name}'" in r.json()["detail"], (name, r.json())
    r = client.post("/api/validate", json={"changes": {"offer.cash_usd": [1, 2]}})
    assert r.status_code == 422 and "offer.cash_usd" in r.json()["detail"]
    r = client.post("/api/validate", json={"changes": {"offer.cash_usd": None}})
    assert r.status_code == 422 and "offer.cash_usd" in r.json()["detail"]
    for raw in (
        b'{"changes": ',
        b"[1, 2]",
        b'"text"',
        b'{"changes": {"offer.cash_usd": 1e999999}}',
        b"[" * 50_000,
        b'{"changes": {"simulation.days": 1' + b"0" * 5000 + b"}}",
        b"\xff\xfe{}",
    ):
        r = client.post("/api/validate", content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, raw
        assert r.json()["detail"]
    form_post = {"content-type": "application/x-www-form-urlencoded"}
    r = client.post("/api/validate", content=b"changes=1", headers=form_post)
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []


def test_unknown_query_parameters_are_refused(client: TestClient, stored: dict[str, Any]) -> None:
    a, b = stored["complete"][:2]
    r = client.get("/api/runs?limit=5&file=/etc/passwd", headers={"accept": "application/json"})
    assert r.status_code == 400 and "unknown query parameter 'file'" in r.json()["detail"]
    assert "allowed here: limit" in r.json()["detail"]
    r = client.get(f"/compare?run={a}&run={b}&db=other.duckdb")
    assert r.status_code == 400 and "unknown query parameter" in r.text and "db" in r.text
    assert client.get("/?debug=1").status_code == 400
    assert client.get("/api/runs?limit=5").status_code == 200  # the known ones still work
    assert client.get(f"/compare?run={a}&run={b}").status_code == 200


def test_path_like_inputs_are_refused_without_touching_files_or_db(
    live: LiveServer, stored: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    for name in ("resolve", "get_run"):
        original = getattr(ResultsDB, name)

        def spy(self: ResultsDB, run_id: str, *a: Any, _original: Any = original, **k: Any) -> Any:
            looked_up.append(run_id)
            return _original(self, run_id, *a, **k)

        monkeypatch.setattr(ResultsDB, name, spy)
    opened: list[str] = []
    recording = threading.Event()

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and recording.is_set() and args and isinstance(args[0], str | bytes):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # cannot be removed; it records only while `recording` is set
    before = sorted(p.name for p in stored["folder"].iterdir())
    gets = [
        "/runs/../../etc/passwd",
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/%2e%2e%2f",
        "/runs/%2e%2e",
        "/api/runs/%2e%2e%2f",
        "/api/runs/%2e%2e",
        "/api/runs/..%252F..%252Fetc%252Fpasswd",
        "/api/runs/r1234%2F..",
        "/api/runs/R0123456789a",
        "/compare?run=../../etc/passwd&run=%2e%2e%2f",
        "/compare?run=" + stored["complete"][0] + "&run=%2Fetc%2Fpasswd",
        "/static/..%2F..%2Fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/%2e%2e",
    ]
    recording.set()
    try:
        for path in gets:
            status, text = live.raw("GET", path)
            assert 400 <= status < 500, (path, status, text)
            assert "root:" not in text and "Traceback" not in text
        for url in ("/api/validate", "/api/jobs"):
            for value in ("/etc/passwd", "../../etc/passwd", ""):
                body = json.dumps({"changes": {"simulation.posterior": value}}).encode()
                status, text = live.raw("POST", url, body, {"content-type": "application/json"})
                assert status == 422, (url, value, status)
                assert "simulation.posterior" in json.loads(text)["detail"]
    finally:
        recording.clear()
    assert not [p for p in opened if "passwd" in p or "app.py" in p], opened
    assert all(re.fullmatch(r"r[0-9a-f]{1,10}", r) for r in looked_up), looked_up
    assert sorted(p.name for p in stored["folder"].iterdir()) == before
    assert live.raw("GET", "/api/jobs")[1] == '{"jobs":[]}'
    assert "simulation.posterior" not in {f.path for f in form.FIELDS}


def test_values_are_data_never_code(client: TestClient, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"{{{{ open('{marker}', 'w') }}}}",
        "1e5; import os",
        "lambda: 1",
    ]
    for value in payloads:
        for path in ("offer.cash_usd", "simulation.days", "offer.schedule.rule"):
            r = client.post("/api/validate", json={"changes": {path: value}})
            assert r.status_code == 422
            assert [p["text"] for p in r.json()["problems"]] == cli_problems({path: value})
    # text fields keep the text as text (and pages escape it)
    r = client.post("/api/validate", json={"changes": {"meta.name": "<script>alert(1)</script>"}})
    assert r.status_code == 200
    assert not marker.exists()


def test_invalid_values_get_the_cli_messages(client: TestClient) -> None:
    cases = [
        {"offer.cash_usd": "abc"},
        {"offer.cash_usd": -5},
        {"simulation.days": 5000},
        {"simulation.days": 20.5},
        {"simulation.mode": "x"},
        {"offer.education": "maybe"},
        {"simulation.agents": 10},
        {"offer.schedule.rule": "deadline"},
        {"force.types.contract.share": 0.9},
        {"offer.cash_usd": -1, "simulation.replicates": 0},
    ]
    for changes in cases:
        for url in ("/api/validate", "/api/jobs"):
            r = client.post(url, json={"changes": changes})
            assert r.status_code == 422, (changes, r.status_code)
            data = r.json()
            expected = cli_problems(changes)
            assert [p["text"] for p in data["problems"]] == expected
            assert data["detail"].splitlines()[1:] == [f"  - {line}" for line in expected]
    r = client.post(
        "/api/validate", content=b'{"changes": {"offer.cash_usd": NaN}}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["problems"][0]["text"] == cli_problems({"offer.cash_usd": float("nan")})[0]
    # a field's problem is attached to the field; a scenario-wide one is not
    data = client.post("/api/validate", json={"changes": {"information.channels[1].daily_reach": 2}}).json()
    assert data["problems"][0]["field"] == "information.channels[1].daily_reach"
    data = client.post("/api/validate", json={"changes": {"simulation.agents": 10}}).json()
    assert data["problems"][0]["field"] is None
    assert client.get("/api/jobs").json()["jobs"] == []


def test_cli_prints_the_same_problem(client: TestClient, tmp_path: Path) -> None:
    r = cli_in_process("run", "--days", "5000", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    web = client.post("/api/validate", json={"changes": {"simulation.days": 5000}}).json()["problems"][0]["text"]
    assert f"  - {web}" in r.stderr.splitlines()


def test_job_size_and_queue_limits(stored: dict[str, Any]) -> None:
    app = create_app(stored["db"], max_queue=2, max_agent_days=1_000_000, start_worker=False)
    with TestClient(app, base_url=BASE) as c:
        r = c.post("/api/validate", json={"changes": {"simulation.agents": 20_000, "simulation.days": 100}})
        assert r.status_code == 422 and "job too large" in r.json()["detail"]
        assert "1,000,000" in r.json()["detail"]
        r = c.post("/api/jobs", json={"changes": {}})  # the default scenario: 722M agent-days
        assert r.status_code == 422 and "job too large" in r.json()["detail"]
        first = c.post("/api/jobs", json={"changes": TINY})
        assert first.status_code == 202 and first.json()["position"] == 1
        second = c.post("/api/jobs", json={"changes": TINY})
        assert second.status_code == 202 and second.json()["position"] == 2
        r = c.post("/api/jobs", json={"changes": TINY})
        assert r.status_code == 429 and "queue is full" in r.json()["detail"]
        # a queued job can be cancelled, which frees a place
        assert c.delete(f"/api/jobs/{first.json()['job_id']}").json()["status"] == "cancelled"
        assert c.get(f"/api/jobs/{second.json()['job_id']}").json()["position"] == 1
        assert c.post("/api/jobs", json={"changes": TINY}).status_code == 202
        assert c.get("/api/jobs/j0000000000").status_code == 404
        assert c.get("/api/jobs/nope").status_code == 400
    assert len(ResultsDB(stored["db"]).list_runs()) == 3  # nothing ran: the worker was not started


def test_the_paired_baseline_doubles_the_cost_and_must_be_a_boolean(stored: dict[str, Any]) -> None:
    app = create_app(stored["db"], max_agent_days=100_000, start_worker=False)  # TINY: 80,000 agent-days
    with TestClient(app, base_url=BASE) as c:
        plain = c.post("/api/validate", json={"changes": TINY}).json()
        assert plain["agent_days"] == 80_000 and plain["paired_baseline"] is False
        r = c.post("/api/validate", json={"changes": {**TINY, "simulation.agents": 1000}, "paired_baseline": True})
        assert r.status_code == 200 and r.json()["agent_days"] == 2 * 40_000 and r.json()["paired_baseline"] is True
        for url in ("/api/validate", "/api/jobs"):  # 160,000 agent-days with the baseline: over the limit
            r = c.post(url, json={"changes": TINY, "paired_baseline": True})
            assert r.status_code == 422 and r.json()["agent_days"] == 160_000
            assert "job too large: 160,000 agent-days" in r.json()["detail"]
            assert "the paired no-offer baseline doubles it" in r.json()["detail"]
            for value in ("yes", "true", 1, 0, None, [], {}):  # true or false, nothing coerced
                r = c.post(url, json={"changes": TINY, "paired_baseline": value})
                assert r.status_code == 422, (url, value)
                assert r.json()["detail"].startswith("paired_baseline: ") and "boolean" in r.json()["detail"]
                assert r.json()["errors"][0]["field"] == "paired_baseline"
            r = c.post(url, json={"changes": {"paired_baseline": True}})  # not a scenario field
            assert r.status_code == 422 and "unknown field 'paired_baseline'" in r.json()["detail"]
        assert c.get("/api/jobs").json()["jobs"] == []
        small = {**TINY, "simulation.agents": 1000}
        job = c.post("/api/jobs", json={"changes": small, "paired_baseline": True}).json()
        assert job["paired_baseline"] is True and job["agent_days"] == 80_000
        assert job["total"] == 2 * 20 * 2  # replicate-days: the run's, then the baseline's
        job = c.post("/api/jobs", json={"changes": small}).json()
        assert job["paired_baseline"] is False and job["agent_days"] == 40_000 and job["total"] == 40
        new = c.get("/new")
        assert "default-src 'none'" in new.headers["content-security-policy"]
        box = new.text[
            new.text.index('id="paired-baseline"') - 200 : new.text.index(
                "</label>", new.text.index('id="paired-baseline"')
            )
        ]
        assert 'type="checkbox"' in box and "data-kind" not in box  # not a scenario field: sent beside the changes
        assert "Also simulate the paired no-offer baseline (doubles the cost;" in " ".join(box.split())
        assert "<script>" not in new.text


def test_unexpected_errors_do_not_leak(stored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(changes: dict[str, Any]) -> None:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(form, "scenario_for", broken)
    with TestClient(create_app(stored["db"], start_worker=False), base_url=BASE, raise_server_exceptions=False) as c:
        r = c.post("/api/validate", json={"changes": {}})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error; the details are in the server's log"}
        r = c.get("/api/runs", headers={"host": "evil.example"})
        assert r.status_code == 400  # DNS-rebinding guard: unknown Host header


def test_pages_and_reads(client: TestClient, stored: dict[str, Any]) -> None:
    a, b = stored["complete"]
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    for rid in (a, b, stored["failed"]):
        assert rid in page.text
    assert f'href="/runs/{a}"' in page.text and f'value="{a}"' in page.text
    assert f'value="{stored["failed"]}"' not in page.text  # only complete runs can be compared
    assert "http://" not in page.text and "https://" not in page.text
    new = client.get("/new").text
    for f in form.FIELDS:
        assert f'name="{f.path}"' in new
    assert 'name="simulation.posterior"' not in new
    cash = new[new.index('data-path="offer.cash_usd"') :]
    cash = cash[: cash.index("</tr>")]
    assert ">USD<" in cash and "[0.0, 100000000.0]" in cash and "100000.0" in cash and "proposal" in cash
    runs = client.get("/api/runs").json()["runs"]
    assert {r["run_id"] for r in runs} == {a, b, stored["failed"]}
    assert next(r for r in runs if r["run_id"] == stored["failed"])["wall_seconds"] is None
    row_a = next(r for r in runs if r["run_id"] == a)  # the API carries what the runs page shows
    assert row_a["headline"].endswith("%)") and row_a["posterior"] and "brief" not in row_a
    assert next(r for r in runs if r["run_id"] == stored["failed"])["headline"] == "–"
    info = client.get(f"/api/runs/{a[:6]}").json()
    assert info["run_id"] == a and info["scenario"]["simulation"]["days"] == 20
    assert "defected" in info["outcomes"]
    assert client.get("/api/runs/rffffffffff").status_code == 404
    report = client.get(f"/runs/{a}")
    assert report.status_code == 200 and a in report.text and "Traceback" not in report.text
    assert client.get(f"/runs/{stored['failed']}").status_code == 409
    assert client.get(f"/compare?run={a}&run={b}").status_code == 200
    assert client.get(f"/compare?run={a}").status_code == 400
    assert client.get(f"/compare?run={a}&run={a}").status_code == 400
    assert client.get(f"/compare?run={a}&run={stored['failed']}").status_code == 409
    err = client.get("/runs/zzz", headers={"accept": "text/html"})
    assert err.status_code == 400 and '<pre class="error-detail">' in err.text
    schema = client.get("/api/schema").json()
    assert schema["groups"][0]["key"] == "common" and schema["groups"][1]["key"] == "simulation"
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/nope.js").status_code == 404


# ---------------------------------------------------------------------------------------------- the runs list
def test_the_runs_list_shows_each_runs_main_outcome_with_its_interval_and_posterior(
    client: TestClient, stored: dict[str, Any]
) -> None:
    a, _ = stored["complete"]
    db = ResultsDB(stored["db"])
    share = db.outcomes(a).set_index("outcome").loc["defected_share"]
    expected = interval_text("defected_share", share["median"], share["p05"], share["p95"])
    assert re.fullmatch(r"\S+% \(\S+–\S+%\)", expected)  # '0.43% (0.21–0.68%)'
    page = client.get("/", headers={"accept": "text/html"}).text
    row = page[page.index(f'data-run-id="{a}"') :]
    row = row[: row.index("</tr>")]
    assert f'<td class="outcome">{expected}</td>' in row
    posterior = db.get_run(a)["posterior_hash"]
    assert (f">{posterior[:8]}<" if posterior else ">defaults<") in row
    assert "main outcome" in page and "posterior" in page


def test_headlines_of_other_kinds_read_their_stored_summary() -> None:
    claims = {"claims": {"verdicts": ["not supported"] * 5 + ["depends on x"]}}
    row = {"status": "complete", "kind": "claims", "brief": json.dumps(claims)}
    assert headline(row) == "6 claims: 0 supported, 5 not supported, 1 depends"
    best = {"mode": "target", "target": {"outcome": "defected_share"}, "closest": {"defected_share": 0.041}}
    row = {"status": "complete", "kind": "optimize", "brief": json.dumps({"optimize": best})}
    assert headline(row) == "target not reached; closest: defected_share 4.1%"
    sweep = {"counts": {"planned": 48, "ok": 46, "failed": 2}}
    row = {"status": "complete", "kind": "sweep", "brief": json.dumps(sweep), "headline_median": 0.004}
    row |= {"headline_p05": 0.001, "headline_p95": 0.02}
    assert headline(row) == "48 experiments (2 failed); defected_share across them 0.4% (0.1–2%)"
    assert headline({"status": "complete", "kind": "backtest", "brief": None}) == "–"
    assert headline({"status": "failed", "kind": "run", "headline_median": 0.1}) == "–"


def test_a_dashboard_jobs_progress_reads_as_a_commands() -> None:
    from defection.web.app import job_progress
    from defection.web.pages import progress_text

    state = job_progress(done=250, total=1000, started_at=100.0, now=110.0)  # a quarter in 10 s: 30 s left
    assert state["fraction"] == 0.25 and state["left_seconds"] == pytest.approx(30.0)
    assert progress_text(state) == "simulating replicate-days 250/1,000 (25%), about 30s left"
    assert progress_text(None) == "running"  # a command that wrote nothing yet


def test_a_running_cli_runs_progress_shows_and_a_dead_ones_does_not(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "runs.duckdb")
    rid = db.begin_run(RunMeta(kind="run", scenario_name="from the command line"))  # this process: alive
    quiet = Console(file=io.StringIO())
    app = create_app(db.path, start_worker=False)

    def sink(state: dict[str, Any]) -> None:  # what `recorded` gives every Reporter inside it
        write_progress(db.path, rid, state)

    with (
        Reporter("run", console=quiet, publish=sink, publish_seconds=0.05) as rep,
        TestClient(app, base_url=BASE) as c,
    ):
        rep.stage("simulating", total=10)
        rep.update(completed=4)
        deadline = time.monotonic() + HANG_GUARD
        while "4/10" not in (page := c.get("/").text):  # the Reporter publishes every 0.05 s here (2 s by default)
            assert time.monotonic() < deadline, "the progress never reached the runs page"
            time.sleep(0.05)
        row = page[page.index(f'data-run-id="{rid}"') :]
        assert 'data-status="running"' in row[:200] and "simulating 4/10 (40%)" in row[: row.index("</tr>")]
        live = c.get("/api/progress").json()["running"][rid]
        assert live["progress"]["done"] == 4 and live["progress"]["total"] == 10 and "4/10" in live["text"]
    with duckdb.connect(str(db.path)) as con:  # the process that wrote it is gone
        con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", [2**31 - 2, rid])
    with TestClient(create_app(db.path, start_worker=False), base_url=BASE) as c:
        assert c.get("/api/progress").json()["running"] == {}
        page = c.get("/").text
        row = page[page.index(f'data-run-id="{rid}"') :]
        assert 'data-status="interrupted"' in row[:200] and "4/10" not in row[: row.index("</tr>")]
        assert f'href="/runs/{rid}/error"' in row
        assert "process ended before the run completed" in c.get(f"/runs/{rid}/error").text
    assert not progress_file(db.path, rid).exists()  # reconciling removed it


def test_a_recorded_run_publishes_its_reporters_progress_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with recorded(path, RunMeta(kind="run")) as (store, rid):
        with Reporter("run", console=Console(file=io.StringIO())) as rep:
            assert rep.publish is not None
            rep.stage("simulating", total=3)
            rep.update(completed=1)
            rep.publish(rep.snapshot())
            state = read_progress(path, [rid])[rid]
            assert state["stage"] == "simulating" and state["done"] == 1 and state["fraction"] == pytest.approx(1 / 3)
        store.mark_run(rid, "failed", "stopped by the test")
    assert not progress_file(path, rid).exists() and not progress_file(path, rid).parent.exists()  # no litter
    assert Reporter("run", console=Console(file=io.StringIO())).publish is None  # outside a recorded run


def test_a_failed_runs_row_links_to_its_error_shown_escaped(tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "runs.duckdb")
    rid = db.begin_run(RunMeta(kind="claims", scenario_name="fails"))
    db.mark_run(rid, "failed", "ValueError: <script>alert(1)</script> & more")
    ok = db.begin_run(RunMeta(kind="curve"))
    db.complete_artifacts(ok, {"curve": {"lever": "offer.cash_usd", "levels": [0, 1e6]}})
    with TestClient(create_app(db.path, start_worker=False), base_url=BASE) as c:
        page = c.get("/").text
        row = page[page.index(f'data-run-id="{rid}"') :]
        assert f'<a href="/runs/{rid}/error" class="run-link">' in row[: row.index("</tr>")]
        assert "offer.cash_usd $0 → $1,000,000 (2 levels)" in page
        err = c.get(f"/runs/{rid}/error", headers={"accept": "text/html"})
        assert err.status_code == 200 and "default-src 'none'" in err.headers["content-security-policy"]
        assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in err.text
        assert "<script>alert" not in err.text
        assert c.get(f"/runs/{ok}/error").status_code == 409  # a complete run has no error
        assert c.get("/runs/zz/error").status_code == 400


def test_fifty_concurrent_requests(live: LiveServer, stored: dict[str, Any]) -> None:
    a, b = stored["complete"]
    expected_ids = {a, b, stored["failed"]}
    bad = {"offer.cash_usd": -5}
    bad_text = cli_problems(bad)

    def one(k: int) -> str:
        kind = k % 6
        with httpx.Client(base_url=live.url, timeout=REQUEST) as h:
            if kind == 0:
                r = h.get("/api/runs")
                assert r.status_code == 200 and {x["run_id"] for x in r.json()["runs"]} == expected_ids
            elif kind == 1:
                r = h.post("/api/validate", json={"changes": {"offer.cash_usd": 1000 * k, **TINY}})
                assert r.status_code == 200 and r.json()["ok"] is True and r.json()["agent_days"] == 80_000
            elif kind == 2:
                r = h.post("/api/validate", json={"changes": bad})
                assert r.status_code == 422 and [p["text"] for p in r.json()["problems"]] == bad_text
            elif kind == 3:
                rid = (a, b)[k % 2]
                r = h.get(f"/runs/{rid}")
                assert r.status_code == 200 and rid in r.text and r.text.rstrip().endswith("</html>")
            elif kind == 4:
                r = h.get("/", headers={"accept": "text/html"})
                assert r.status_code == 200 and all(rid in r.text for rid in expected_ids)
            else:
                r = h.get(f"/api/runs/{b}")
                assert r.status_code == 200 and r.json()["scenario"]["offer"]["cash_usd"] == 1e6
        return f"{kind}:{r.status_code}"

    with ThreadPoolExecutor(max_workers=50) as pool:  # each request has its hang guard; no wall-clock limit here
        results = list(pool.map(one, range(50)))
    assert len(results) == 50


# ---------------------------------------------------------------------------------------------- jobs
def wait_for(c: TestClient, job_id: str, timeout: float = HANG_GUARD) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.mark.slow
def test_jobs_run_in_background_one_after_another(tmp_path: Path) -> None:
    db = tmp_path / "jobs.duckdb"
    with TestClient(create_app(db), base_url=BASE) as c:
        first = c.post("/api/jobs", json={"changes": {**TINY, "meta.name": "first"}})
        second = c.post("/api/jobs", json={"changes": {**TINY, "meta.name": "second", "offer.cash_usd": 0}})
        # submitting did not wait for a simulation: both are still queued or running (checked below, not timed)
        assert first.status_code == second.status_code == 202
        j2 = c.get(f"/api/jobs/{second.json()['job_id']}").json()
        j1 = c.get(f"/api/jobs/{first.json()['job_id']}").json()
        # behind the first: 1 job ahead once the worker has taken the first, 2 if (on a busy machine) it has not yet
        assert j2["status"] == "queued" and j2["position"] in (1, 2)
        assert j1["status"] == "running" or (j1["status"] == "queued" and j1["position"] < j2["position"])
        seen_running = False
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline and not seen_running:
            j1 = c.get(f"/api/jobs/{first.json()['job_id']}").json()
            seen_running = j1["status"] == "running" and j1["run_id"] is not None
            time.sleep(0.05)
        assert seen_running
        listed = {r["run_id"]: r["status"] for r in c.get("/api/runs").json()["runs"]}
        assert listed.get(j1["run_id"]) in ("running", "complete")  # in the database while it runs
        done1 = wait_for(c, first.json()["job_id"])
        done2 = wait_for(c, second.json()["job_id"])
        for done in (done1, done2):
            assert done["status"] == "complete", done
            assert done["done"] == done["total"] == 40 and done["report_url"] == f"/runs/{done['run_id']}"
        assert done2["started_at"] >= done1["finished_at"]
    store = ResultsDB(db)
    runs = store.list_runs().set_index("run_id")
    for done, name in ((done1, "first"), (done2, "second")):
        row = runs.loc[done["run_id"]]
        assert row["status"] == "complete" and row["scenario_name"] == name
        assert (row["days"], row["replicates"]) == (20, 2)
        assert len(store.daily(done["run_id"])) == 40 and "defected" in set(store.outcomes(done["run_id"])["outcome"])
        # the stored wall time is the job's (its process started, imported the engine, simulated, stored), not
        # the simulation's alone (a fraction of a second at this size, against seconds of start-up)
        assert row["wall_seconds"] >= 0.5 * (done["finished_at"] - done["started_at"])
    assert len(runs) == 2


class Pipe:
    """The sending end of a job's pipe, recording what `run_job` sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


def test_a_paired_jobs_progress_rises_to_its_total_and_it_stores_the_baseline(tmp_path: Path) -> None:
    sc = with_changes(default_scenario(), {**TINY, "simulation.seed": 7})
    db = ResultsDB(tmp_path / "runs.duckdb")
    rid = db.begin_run(RunMeta.from_scenario(sc))
    pipe = Pipe()
    handler = signal.getsignal(signal.SIGINT)
    try:  # in this process: run_job ignores SIGINT, as a job process does
        run_job(str(db.path), rid, sc.canonical_json(), True, pipe)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert pipe.sent[-1][0] == "done", pipe.sent
    progress = [m[1:] for m in pipe.sent if m[0] == "progress"]
    assert {total for _, total in progress} == {80}  # both simulations' replicate-days from the start
    done = [d for d, _ in progress]
    assert done == sorted(done) and (40, 80) in progress and progress[-1] == (80, 80)
    assert db.get_run(rid)["status"] == "complete"
    # what `defection run --paired-baseline` stores: the same world with no offer, same seed and replicates
    assert db.artifact(rid, PAIRED_BASELINE) == json.loads(json.dumps(baseline_artifact(no_offer_baseline(sc))))


def failing_job(db_path: str, run_id: str, scenario_json: str, paired_baseline: bool, conn: Any) -> None:
    """A job process that fails (used through `create_app(job_target=...)`)."""
    from defection.web.jobs import run_job

    scenario = json.loads(scenario_json)
    if scenario["meta"]["name"] == "dies":
        os._exit(3)
    if scenario["meta"]["name"] == "raises":
        conn.send(("progress", 1, 40))
        conn.send(("error", "RuntimeError: the simulation blew up"))
        raise SystemExit(1)
    run_job(db_path, run_id, scenario_json, paired_baseline, conn)


@pytest.mark.slow
def test_failed_jobs_are_marked_failed(tmp_path: Path) -> None:
    db = tmp_path / "fail.duckdb"
    with TestClient(create_app(db, job_target=failing_job), base_url=BASE) as c:
        ids = [
            c.post("/api/jobs", json={"changes": {**TINY, "meta.name": name}}).json()["job_id"]
            for name in ("raises", "dies", "fine")
        ]
        raised, died, fine = (wait_for(c, i) for i in ids)
    assert raised["status"] == "failed" and raised["error"] == "RuntimeError: the simulation blew up"
    assert died["status"] == "failed" and "exited with code 3" in died["error"]
    assert fine["status"] == "complete"  # the worker goes on after failures
    with TestClient(create_app(db, start_worker=False), base_url=BASE) as c:  # a job's error, as a CLI run's
        assert f'href="/runs/{raised["run_id"]}/error"' in c.get("/").text
        assert "RuntimeError: the simulation blew up" in c.get(f"/runs/{raised['run_id']}/error").text
    store = ResultsDB(db)
    for job in (raised, died):
        run = store.get_run(job["run_id"])
        assert run["status"] == "failed" and run["error"] == job["error"]
        assert store.daily(job["run_id"]).empty and store.outcomes(job["run_id"]).empty  # nothing partial
    assert store.get_run(fine["run_id"])["status"] == "complete"


@pytest.mark.slow
def test_a_paired_job_stores_the_baseline_and_its_report_separates_the_offers_effect(tmp_path: Path) -> None:
    db = tmp_path / "paired.duckdb"
    with TestClient(create_app(db), base_url=BASE) as c:
        changes = {**TINY, "simulation.seed": 5}
        paired = c.post("/api/jobs", json={"changes": changes, "paired_baseline": True}).json()
        unpaired = c.post("/api/jobs", json={"changes": changes}).json()
        done, plain = wait_for(c, paired["job_id"]), wait_for(c, unpaired["job_id"])
        assert done["status"] == plain["status"] == "complete", (done, plain)
        assert done["paired_baseline"] is True and done["done"] == done["total"] == 80
        assert plain["paired_baseline"] is False and plain["done"] == plain["total"] == 40
        report = c.get(done["report_url"])
        assert report.status_code == 200 and "paired effect" in report.text
    store = ResultsDB(db)
    rid = done["run_id"]
    # the report's check (tests/test_report.py): the stored baseline, and the paired figure beside the total
    check_paired_baseline(store, rid, days=20)
    # the unpaired job's run stores no baseline and its figure says so
    assert store.artifact(plain["run_id"], PAIRED_BASELINE) is None
    title = plain_title(report_figures(store, plain["run_id"])["units-ineffective"].layout.title.text)
    assert "no paired no-offer baseline" in title
    # the same scenario and seed: the paired run's own results are the unpaired one's
    assert store.outcomes(rid).equals(store.outcomes(plain["run_id"]))


@pytest.mark.slow
def test_serve_stops_cleanly_and_records_the_interrupted_run(tmp_path: Path) -> None:
    db = tmp_path / "serve.duckdb"
    with started(
        [sys.executable, "-m", "defection", "serve", "--port", "0", "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # its process group (the job process included) is killed on leaving, whatever happened
        line = proc.stderr.readline()  # type: ignore[union-attr]
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        url = f"http://127.0.0.1:{m.group(1)}"
        with httpx.Client(base_url=url, timeout=REQUEST) as h:
            big = {"simulation.agents": 3000, "simulation.days": 365, "simulation.replicates": 60}
            job = h.post("/api/jobs", json={"changes": big}).json()
            queued = h.post("/api/jobs", json={"changes": TINY}).json()
            deadline = time.monotonic() + HANG_GUARD
            while time.monotonic() < deadline:
                state = h.get(f"/api/jobs/{job['job_id']}").json()
                if state["status"] == "running" and state["done"] > 0:
                    break
                time.sleep(0.2)
            assert state["status"] == "running" and state["done"] > 0, state
            assert queued["status"] == "queued"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group, job process included
        _, err = communicate(proc, STOP)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "dashboard stopped" in err
    runs = ResultsDB(db).list_runs()
    assert len(runs) == 1  # the queued job never started, so it was never recorded
    run = ResultsDB(db).get_run(state["run_id"])
    assert run["status"] == "interrupted" and "stopped before the run completed" in run["error"]
    assert ResultsDB(db).daily(state["run_id"]).empty
