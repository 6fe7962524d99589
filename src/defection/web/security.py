"""Who may use the dashboard: the `Host` allow-list and the access token (see docs/dashboard.md).

Rule: the dashboard needs no token only when it listens on a loopback name that this machine alone can reach
(`LOOPBACK_NAMES`: 127.0.0.1, ::1, localhost). Any other address (0.0.0.0, ::, a LAN address, even another
127.x.y.z) needs a token, checked on every request (pages, API, static files, jobs): `Authorization: Bearer
<token>`, or `?token=<token>` once (which sets an HttpOnly, SameSite=Strict cookie), or that cookie. Tokens are
compared in constant time (`hmac.compare_digest`). The `Host` header must name this server (a guard against DNS
rebinding) whatever the address.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from defection.web import pages
from defection.web.limits import COOKIE_PREFIX, MAX_HEAD_BYTES, TOKEN_PARAM


def host_name(header: str) -> str:
    """The name part of a `Host` header value, lower case: 'a.b:80' → 'a.b', '[::1]:80' → '::1'."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _refuse(scope: Scope, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A refusal as JSON (API and non-browser clients) or a small HTML page (browsers)."""
    accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    if scope["path"].startswith("/api/") or "text/html" not in accept:
        return JSONResponse({"detail": detail}, status_code=status, headers=all_headers)
    return HTMLResponse(pages.error_page(status, detail), status_code=status, headers=all_headers)


class HostCheck:
    """Refuse (400) a request whose `Host` header is not one of `allowed` names (ports are ignored; IPv6
    addresses may be written with or without brackets), and (431) one whose target and headers exceed
    `max_head_bytes` (uvicorn's own cap applies only to a head that arrives in pieces)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str], max_head_bytes: int = MAX_HEAD_BYTES):
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed)
        self.max_head_bytes = max_head_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("headers") or []
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
            size += sum(len(k) + len(v) + 4 for k, v in raw)
            if size > self.max_head_bytes:
                detail = f"request head too large: {size} bytes; the limit is {self.max_head_bytes} bytes"
                await _refuse(scope, 431, detail, {"Connection": "close"})(scope, receive, send)
                return
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_name(header) not in self.allowed:
                shown = repr(header[:60]) if header else "none"
                detail = (
                    f"invalid Host header {shown}: this server answers to {', '.join(sorted(self.allowed))} "
                    "(add a name with `defection serve --allowed-host NAME`)"
                )
                await _refuse(scope, 400, detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TokenAuth:
    """Require `token` on every HTTP request (None: no check). A valid `?token=` sets a cookie; a browser's GET
    with it is redirected to the same address without it (so the token leaves the address bar and history)."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token.encode() if token else None

    def _matches(self, presented: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cookie_name = f"{COOKIE_PREFIX}{(scope.get('server') or ('', 0))[1]}"  # one cookie per port
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        from_query = [v for k, v in query if k == TOKEN_PARAM]
        presented = [*from_query]
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer ":
            presented.append(auth[7:].strip())
        presented += _cookies(headers.get(b"cookie", b"").decode("latin-1"), cookie_name)
        if not presented:
            await _refuse(
                scope,
                401,
                "this dashboard needs its access token: open the address `defection serve` printed "
                f"(…/?{TOKEN_PARAM}=…), or send the header 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": 'Bearer realm="defection"'},
            )(scope, receive, send)
            return
        if not any(self._matches(p) for p in presented):  # every one compared; constant time each
            await _refuse(
                scope,
                403,
                "wrong access token: use the token `defection serve` printed or was given",
                {"WWW-Authenticate": 'Bearer realm="defection", error="invalid_token"'},
            )(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return
        rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAM])
        cookie = f"{cookie_name}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
        accept = headers.get(b"accept", b"").decode("latin-1")
        if scope["method"] == "GET" and "text/html" in accept:
            path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            target = "/" + path.lstrip("/\\") + (f"?{rest}" if rest else "")  # never '//elsewhere'
            redirect = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
            redirect.headers.append("Set-Cookie", cookie)
            await redirect(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app({**scope, "query_string": rest.encode("latin-1")}, receive, send_with_cookie)


def _cookies(header: str, name: str) -> list[str]:
    """Values of the cookie `name` in a Cookie header (no parsing errors: malformed parts are skipped)."""
    found = []
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            found.append(value.strip().strip('"'))
    return found
