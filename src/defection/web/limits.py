"""Access rules and load limits, with no web-framework imports (`defection serve` reads them at start-up).

Access: the dashboard needs no token only when it listens on a loopback name that this machine alone can reach
(`LOOPBACK_NAMES`); any other address (0.0.0.0, ::, a LAN address, even another 127.x.y.z) needs one. The
middleware that checks it is `defection.web.security`; the load limits are applied by `defection.web.load`.
"""

from __future__ import annotations

import re
import secrets

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
"""Listening on one of these serves this machine only: no token is needed (one may still be given)."""
TOKEN_PATTERN = r"[A-Za-z0-9._~-]{16,256}"
"""A token given with --token or DEFECTION_TOKEN: 16 to 256 URL-safe characters."""
TOKEN_ENV = "DEFECTION_TOKEN"
TOKEN_PARAM = "token"
COOKIE_PREFIX = "defection_token_"
_TOKEN = re.compile(TOKEN_PATTERN)

MAX_HEAVY = 32
"""Report and comparison responses in progress at once (rendering or sending); more get 503 at once."""
RETRY_AFTER_S = 2
HEADER_TIMEOUT_S = 10.0
"""A connection must deliver a complete request head this soon after it opens or after its last response."""
KEEP_ALIVE_S = 5
"""An idle keep-alive connection is closed after this long (uvicorn's timeout_keep_alive)."""
MAX_CONNECTIONS = 2048
"""Open connections and tasks before uvicorn answers 503 (its limit_concurrency)."""
MAX_HEAD_BYTES = 16 * 1024
"""Largest request line plus headers (h11's max incomplete event size)."""


class TokenError(ValueError):
    """A token that cannot be used (too short, characters that do not fit a URL or a cookie)."""


def needs_token(host: str) -> bool:
    """Whether listening on `host` exposes the dashboard beyond this machine's loopback names."""
    return host.strip("[]").lower() not in LOOPBACK_NAMES


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe), as Jupyter prints one at start."""
    return secrets.token_urlsafe(32)


def check_token(token: str, source: str) -> str:
    """`token` if it is usable, else TokenError naming `source` (the option or variable it came from)."""
    if not _TOKEN.fullmatch(token):
        shown = f"{len(token)} characters" if token else "empty"
        raise TokenError(
            f"{source}: the token must be 16 to 256 characters from A-Z, a-z, 0-9 and . _ ~ - (got {shown}); "
            f"leave it out to have one generated"
        )
    return token
