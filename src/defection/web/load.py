"""The dashboard under load: a bound on concurrent heavy responses, reports cached compressed with an ETag, and
uvicorn settings that close idle and slow connections (see docs/dashboard.md, "Security and limits").
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from defection.web import pages
from defection.web.limits import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    MAX_CONNECTIONS,
    MAX_HEAD_BYTES,
    MAX_HEAVY,
    RETRY_AFTER_S,
)

GZIP_LEVEL = 6


class HeavyLimit:
    """At most `max_heavy` requests under `prefixes` in progress (from the request to the last byte of the
    response); one more is answered 503 with Retry-After at once, never queued. A plain counter: the event loop
    runs one coroutine at a time, so no lock is needed."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...], max_heavy: int = MAX_HEAVY):
        self.app = app
        self.prefixes = prefixes
        self.max_heavy = max_heavy
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_heavy:
            detail = (
                f"busy: {self.active} reports are being served (the limit is {self.max_heavy}); "
                f"try again in {RETRY_AFTER_S} s"
            )
            headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
            accept = dict(scope.get("headers") or []).get(b"accept", b"")
            response: Response = (
                HTMLResponse(pages.error_page(503, detail), status_code=503, headers=headers)
                if b"text/html" in accept
                else JSONResponse({"detail": detail}, status_code=503, headers=headers)
            )
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


@dataclass(frozen=True)
class RenderedReport:
    """A report's bytes, gzipped once, and its ETag (a hash of the bytes)."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, text: str) -> RenderedReport:
        body = text.encode("utf-8")
        return cls(body, gzip.compress(body, GZIP_LEVEL, mtime=0), f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def response(self, request: Request, headers: dict[str, str], cacheable: bool) -> Response:
        """200 (gzipped when the client accepts it) or, for a cacheable report the client has, 304."""
        common = {**headers, "Vary": "Accept-Encoding"}
        if cacheable:
            common |= {"ETag": self.etag, "Cache-Control": "private, no-cache"}
            if _etag_matches(request.headers.get("if-none-match", ""), self.etag):
                return Response(status_code=304, headers=common)
        else:
            common["Cache-Control"] = "no-store"
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(self.gzipped, media_type="text/html", headers={**common, "Content-Encoding": "gzip"})
        # GZipMiddleware adds "Vary: Accept-Encoding" to an uncompressed body of this size; not twice
        del common["Vary"]
        return Response(self.body, media_type="text/html", headers=common)


class ReportCache:
    """The last `size` rendered reports by key; its lock is held only to read or update the dictionary (never
    while rendering), so the event loop may consult it."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple[str, ...], RenderedReport] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> RenderedReport | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, ...], report: RenderedReport) -> None:
        with self._lock:
            self._items[key] = report
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header accepts gzip (named, or '*', without q=0)."""
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and _zero(q[2:]))
    return False


def _zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a header timeout: a connection that has not delivered a complete request head
    `HEADER_TIMEOUT_S` after it opened (or after its last response) is closed. uvicorn alone keeps a connection
    that sends nothing, or one byte at a time, open for ever."""

    header_timeout = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_after:  # a request head arrived
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        self._arm_head_timer()
        super().on_response_complete()  # may start a pipelined request at once (data_received is not called)
        if self.cycle is not self._waiting_after:
            self._disarm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._waiting_after = self.cycle
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()


def server_config(
    app: ASGIApp,
    max_connections: int = MAX_CONNECTIONS,
    header_timeout: float = HEADER_TIMEOUT_S,
    keep_alive: int = KEEP_ALIVE_S,
    **kwargs: Any,
) -> uvicorn.Config:
    """uvicorn settings for the dashboard: keep-alive and header timeouts, a connection limit, a head size cap;
    `kwargs` go to uvicorn.Config as they are."""
    protocol = type("TimedH11Protocol", (TimedH11Protocol,), {"header_timeout": header_timeout})
    return uvicorn.Config(
        app,
        http=protocol,
        timeout_keep_alive=keep_alive,
        limit_concurrency=max_connections,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        **kwargs,
    )
