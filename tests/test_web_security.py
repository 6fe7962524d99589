"""The dashboard's door and its behaviour under load (issue 13, items 1 and 7).

Access: `defection serve` on any address but 127.0.0.1, ::1 and localhost needs a token. The tests start the real
command in a subprocess (its own process group, killed in `finally`) bound to 127.0.0.2 (Linux routes all of
127/8 to the loopback interface) and, when this machine has one, to a non-loopback address, and check every way
of presenting the token, the refusals and the Host allow-list.

Load: a real uvicorn (in a thread of this process, with the dashboard's own settings) under 200 concurrent report
downloads while a render is held up, the caching and compression headers, and the header timeout that closes
idle and slow connections. They assert behaviour, never timings; time limits are generous hang guards only.
"""

from __future__ import annotations

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

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

import defection.web.app as web_app
from defection.engine import simulate
from defection.scenario import default_scenario, with_changes
from defection.store import ResultsDB
from defection.web.app import create_app

from .conftest import ROOT, cli
from .processes import HANG_GUARD, REQUEST, STOP

TINY = {"simulation.agents": 2000, "simulation.days": 20, "simulation.replicates": 2}
TOKEN_RE = re.compile(r"http://(\S+?):(\d+)/(?:\?token=([A-Za-z0-9_-]+))?")
GIVEN_TOKEN = "given-token-0123456789abcdef"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database with one complete tiny run."""
    folder = tmp_path_factory.mktemp("websec")
    db = ResultsDB(folder / "runs.duckdb")
    run = db.store(simulate(with_changes(default_scenario(), TINY)))
    return {"db": db.path, "run": run}


# ---------------------------------------------------------------------------------------------- item 1: access
class Serve:
    """`python -m defection serve` in its own process group, its standard error read by a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "defection", "serve", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**{k: v for k, v in os.environ.items() if k != "DEFECTION_TOKEN"}, **(env or {})},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def address(self, timeout: float = HANG_GUARD) -> tuple[str, int, str | None]:
        """Host, port and printed token (None when not printed) from the start-up line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = TOKEN_RE.search(line) if "dashboard at" in line else None
                if m:
                    return m.group(1).strip("[]"), int(m.group(2)), m.group(3)
            assert self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"serve did not start: {''.join(self.lines)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP)


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (None if it has none)."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None


ADDRESSES = ["127.0.0.2", pytest.param("lan", id="non-loopback")]
PROTECTED = ["/", "/new", "/api/health", "/api/runs", "/api/jobs", "/api/schema", "/static/app.js"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ADDRESSES)
def test_serve_on_another_address_requires_the_token(stored: dict[str, Any], where: str) -> None:
    host = where if where != "lan" else non_loopback_ipv4()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # 127.0.0.2: the token is generated and printed; the other address: given through DEFECTION_TOKEN
    env = {"DEFECTION_TOKEN": GIVEN_TOKEN} if where == "lan" else {}
    server = Serve(["--host", host, "--db", str(stored["db"]), "--allowed-host", "dash.example"], env=env)
    try:
        shown, port, printed = server.address()
        assert shown == host
        if where == "lan":
            assert printed is None and GIVEN_TOKEN not in "".join(server.lines)  # a given token is not echoed
            token = GIVEN_TOKEN
        else:
            assert printed is not None and len(printed) >= 40
            token = printed
        url = f"http://{host}:{port}"
        run = stored["run"]
        with httpx.Client(base_url=url, timeout=REQUEST) as h:
            for path in [*PROTECTED, f"/runs/{run}", f"/api/runs/{run}"]:
                r = h.get(path)
                assert r.status_code == 401, (path, r.status_code)
                assert "token" in r.json()["detail"] and r.headers["www-authenticate"].startswith("Bearer")
                assert h.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 403
                assert h.get(path, headers={"Authorization": f"Bearer {token}x"}).status_code == 403
                assert h.get(path, params={"token": token[:-1]}).status_code == 403
                assert h.get(path, headers={"Cookie": f"defection_token_{port}=nope"}).status_code == 403
                assert h.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path
            # nothing can be queued or validated without it
            job = {"changes": TINY}
            assert h.post("/api/jobs", json=job).status_code == 401
            assert h.post("/api/validate", json=job).status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            assert h.post("/api/validate", json=job, headers=bearer).status_code == 200
            assert h.delete("/api/jobs/j0123456789", headers=bearer).status_code == 404  # reached the app
            # ?token= on the API: answered, and a cookie for the browser
            r = h.get("/api/runs", params={"token": token})
            assert r.status_code == 200 and r.json()["runs"][0]["run_id"] == run
            cookie = r.headers["set-cookie"]
            assert cookie.startswith(f"defection_token_{port}={token};")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            # ?token= on a page: redirected to the same page without it, with the cookie
            r = h.get(f"/runs/{run}", params={"token": token}, headers={"accept": "text/html"})
            assert r.status_code == 303 and r.headers["location"] == f"/runs/{run}"
            assert "HttpOnly" in r.headers["set-cookie"]
        with httpx.Client(base_url=url, timeout=REQUEST, cookies={f"defection_token_{port}": token}) as h:
            assert h.get("/", headers={"accept": "text/html"}).status_code == 200
            assert h.get(f"/runs/{run}").status_code == 200
            assert h.get("/static/app.js").status_code == 200
            # the Host allow-list is still on: a spoofed name is refused even with the token
            r = h.get("/api/health", headers={"Host": "attacker.example"})
            assert r.status_code == 400 and "attacker.example" in r.json()["detail"]
            assert h.get("/api/health", headers={"Host": f"attacker.example:{port}"}).status_code == 400
            assert h.get("/api/health", headers={"Host": f"dash.example:{port}"}).status_code == 200
            assert h.get("/api/health", headers={"Host": f"localhost:{port}"}).status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.lines)


def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    for args, env, expected in [
        (["--host", "127.0.0.2", "--no-token"], {}, "refusing to serve on 127.0.0.2 without an access token"),
        (["--host", "0.0.0.0", "--token", ""], {}, "refusing to serve on 0.0.0.0 without an access token"),
        (["--host", "127.0.0.2", "--token", "short"], {}, "the token must be 16 to 256 characters"),
        (["--host", "127.0.0.2", "--token", "has space 0123456789"], {}, "the token must be 16 to 256"),
        (["--host", "127.0.0.2", "--token", GIVEN_TOKEN, "--no-token"], {}, "contradict each other"),
    ]:
        r = cli("serve", "--port", "0", "--db", str(db), *args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert expected in " ".join(r.stderr.split()), (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not db.exists()  # refused before anything was opened


def test_loopback_needs_no_token_unless_one_is_given(stored: dict[str, Any]) -> None:
    with TestClient(create_app(stored["db"], start_worker=False), base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health", headers={"Host": "[::1]:8050"}).status_code == 200  # IPv6, brackets and port
        assert c.get("/api/health", headers={"Host": "attacker.example"}).status_code == 400
    app = create_app(stored["db"], start_worker=False, token=GIVEN_TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").status_code == 401
        assert c.get("/api/health", headers={"Authorization": f"Bearer {GIVEN_TOKEN}"}).status_code == 200


# ---------------------------------------------------------------------------------------------- item 7: load
class LiveServer:
    """uvicorn with the dashboard's settings (`server_config`) on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any, **settings: Any):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        from defection.web.load import server_config  # here, so that the access tests run (and fail) without it

        self.server = uvicorn.Server(server_config(app, log_level="warning", access_log=False, **settings))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


@pytest.fixture
def held_render(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Report rendering waits until the event is set (so that downloads pile up)."""
    gate = threading.Event()
    original = web_app.render_report

    def slow(db: ResultsDB, run_id: str) -> str:
        assert gate.wait(300), "the test never released the render"
        return original(db, run_id)

    monkeypatch.setattr(web_app, "render_report", slow)
    try:
        yield gate
    finally:
        gate.set()


def test_concurrent_report_downloads_are_bounded_and_health_answers(
    stored: dict[str, Any], held_render: threading.Event
) -> None:
    run = stored["run"]
    app = create_app(stored["db"], start_worker=False, max_heavy=4)
    with LiveServer(app) as live:

        def download(_: int) -> tuple[int, str, bytes]:
            with httpx.Client(base_url=live.url, timeout=REQUEST) as h:
                r = h.get(f"/runs/{run}")
                return r.status_code, r.headers.get("retry-after", ""), r.content

        with ThreadPoolExecutor(max_workers=200) as pool:
            futures = [pool.submit(download, k) for k in range(200)]
            # while the render is held, four downloads are in progress and every other one is refused at once
            deadline = time.monotonic() + 300
            while sum(f.done() for f in futures) < 196:
                assert time.monotonic() < deadline, "refusals did not come"
                time.sleep(0.05)
            with httpx.Client(base_url=live.url, timeout=REQUEST) as h:
                health = h.get("/api/health")
                assert health.status_code == 200 and health.json()["ok"] is True
            done = [f.result() for f in futures if f.done()]
            assert len(done) == 196 and all(s == 503 and ra == "2" for s, ra, _ in done)
            held_render.set()
            results = [f.result(timeout=REQUEST) for f in futures]
        served = [body for s, _, body in results if s == 200]
        assert len(served) == 4 and len({*served}) == 1 and served[0].rstrip().endswith(b"</html>")
        with httpx.Client(base_url=live.url, timeout=REQUEST) as h:  # once the load is gone, all is served again
            assert h.get(f"/runs/{run}").status_code == 200
            assert h.get("/", headers={"accept": "text/html"}).status_code == 200
            assert h.get("/api/health").status_code == 200


def test_reports_are_cached_compressed_and_revalidated(stored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    run = stored["run"]
    renders: list[str] = []
    original = web_app.render_report

    def counted(db: ResultsDB, run_id: str) -> str:
        renders.append(run_id)
        return original(db, run_id)

    monkeypatch.setattr(web_app, "render_report", counted)
    with TestClient(create_app(stored["db"], start_worker=False), base_url="http://127.0.0.1") as c:
        plain = c.get(f"/runs/{run}", headers={"accept-encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        etag = plain.headers["etag"]
        assert plain.headers["cache-control"] == "private, no-cache"
        assert plain.headers["vary"].lower() == "accept-encoding"
        zipped = c.get(f"/runs/{run}", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] == etag
        assert zipped.content == plain.content  # httpx decodes it
        assert int(zipped.headers["content-length"]) < len(plain.content) / 2
        again = c.get(f"/runs/{run}", headers={"if-none-match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert c.get(f"/runs/{run}", headers={"if-none-match": '"other"'}).status_code == 200
        assert c.get(f"/runs/{run[:5]}", headers={"if-none-match": etag}).status_code == 304  # a prefix too
        assert renders == [run]  # rendered once, then served from the cache
        page = c.get("/", headers={"accept": "text/html", "accept-encoding": "gzip"})
        assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"  # every page is compressed


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (reads end) before `seconds` pass."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_and_slow_connections_are_closed(stored: dict[str, Any]) -> None:
    app = create_app(stored["db"], start_worker=False)
    with LiveServer(app, header_timeout=1.0, keep_alive=1) as live:
        idle = socket.create_connection(("127.0.0.1", live.port), timeout=REQUEST)  # opens and sends nothing
        slow = socket.create_connection(("127.0.0.1", live.port), timeout=REQUEST)  # sends its head a byte at a time
        slow.sendall(b"GET /api/health HTTP/1.1\r\n")
        try:
            head = b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 400
            closed = False
            deadline = time.monotonic() + 120
            for byte in head:
                try:
                    slow.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.2)
                assert time.monotonic() < deadline
            assert closed or _closed_within(slow, REQUEST), "a head sent a byte at a time kept its connection"
            assert _closed_within(idle, REQUEST), "an idle connection was kept open"
            # a well-behaved client is served, and its idle keep-alive connection is closed after it
            with socket.create_connection(("127.0.0.1", live.port), timeout=REQUEST) as polite:
                polite.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert polite.recv(4096).startswith(b"HTTP/1.1 200")
                assert _closed_within(polite, REQUEST)
            with socket.create_connection(("127.0.0.1", live.port), timeout=REQUEST) as big:  # a head over 16 KiB
                big.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
                assert big.recv(4096).startswith(b"HTTP/1.1 431")
        finally:
            for s in (idle, slow):
                s.close()


def test_a_wildcard_address_accepts_this_machines_names_only() -> None:
    from defection.cli.web import _bound_names

    names = _bound_names("0.0.0.0")
    assert {"127.0.0.1", "localhost", "::1", "0.0.0.0", socket.gethostname().lower()} <= set(names)
    lan = non_loopback_ipv4()
    assert lan is None or lan in names
    assert "*" not in names and "attacker.example" not in names
    assert _bound_names("127.0.0.2") == ["127.0.0.1", "::1", "localhost", "127.0.0.2"]
