"""`defection serve`: the local web dashboard (see docs/dashboard.md).

Registered on the main `defection` app by `defection.cli.app`.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from defection.cli.console import NoPosteriorOpt, PosteriorOpt, choose_posterior, err, fail
from defection.web.limits import (
    LOOPBACK_NAMES,
    MAX_CONNECTIONS,
    MAX_HEAVY,
    TOKEN_ENV,
    TOKEN_PARAM,
    TokenError,
    check_token,
    needs_token,
    new_token,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("serve")(serve)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, so a port in use is a clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _bound_names(host: str) -> list[str]:
    """The names a `Host` header may carry for a server listening on `host`: the loopback names, `host` itself,
    and for a wildcard address (0.0.0.0, ::) every address of this machine and its host name."""
    names = [*LOOPBACK_NAMES, host.strip("[]")]
    try:
        wildcard = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        import psutil  # a dependency of dask.distributed

        v6 = ":" in host
        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family == (socket.AF_INET6 if v6 else socket.AF_INET):
                    names.append(a.address.split("%")[0])
        names += [socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(n.lower() for n in names if n))


def _token(host: str, token: str | None, no_token: bool) -> tuple[str | None, bool]:
    """The token the server requires (None: none) and whether it was generated here (then it is printed)."""
    if token is not None and no_token:
        fail("--token and --no-token contradict each other; give one")
    exposed = needs_token(host)
    if no_token or token == "":
        if exposed:
            fail(
                f"refusing to serve on {host} without an access token: every machine that can reach this one "
                "could read the results and queue simulations. Leave out --no-token (a token is generated and "
                f"printed), give one with --token or {TOKEN_ENV}, or serve on 127.0.0.1"
            )
        return None, False
    if token is not None:
        try:
            return check_token(token, f"--token (or {TOKEN_ENV})"), False
        except TokenError as e:
            fail(str(e))
    return (new_token(), True) if exposed else (None, False)


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. The default serves this machine only; any other address (0.0.0.0, a "
            "LAN address, even 127.0.0.2) exposes the dashboard and needs an access token.",
        ),
    ] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help="Access token required on every request (16 to 256 characters of A-Z a-z 0-9 . _ ~ -). "
            "Generated and printed when serving on a non-loopback address without one.",
            show_default=False,
        ),
    ] = None,
    no_token: Annotated[
        bool,
        typer.Option("--no-token", help="No token (refused on any address but 127.0.0.1, ::1 and localhost)."),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another name the Host header may carry (a DNS name of this machine); repeatable.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")] = 8050,
    db: Annotated[Path, typer.Option("--db", help="Results database (DuckDB file); created if missing.")] = Path(
        "defection.duckdb"
    ),
    max_agent_days: Annotated[
        int,
        typer.Option(
            "--max-agent-days", min=1, help="Largest job accepted: agents × days × replicates (× regime candidates)."
        ),
    ] = 2_000_000_000,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, max=1000, help="Jobs that may wait in the queue.")
    ] = 8,
    max_reports: Annotated[
        int,
        typer.Option(
            "--max-reports", min=1, max=10_000, help="Report downloads in progress at once; more get 503 (retry)."
        ),
    ] = MAX_HEAVY,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=16, max=100_000, help="Open connections before new ones get 503."),
    ] = MAX_CONNECTIONS,
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
) -> None:
    """Serve the dashboard: browse and compare runs, open reports, and create runs from a form (simulated in a
    background worker, one at a time). Ctrl-C stops it; a run in progress is recorded as interrupted."""
    # lazy: uvicorn, FastAPI and duckdb take about 0.25 s to import; only `defection serve` needs them
    import uvicorn

    from defection.scenario import default_scenario
    from defection.store import ResultsError
    from defection.web.app import create_app
    from defection.web.load import server_config

    required, generated = _token(host, token, no_token)
    hosts = _bound_names(host) + [h.strip().lower() for h in allowed_host or [] if h.strip()]
    chosen, _ = choose_posterior(default_scenario(), posterior, no_posterior)  # the same choice as `claims`
    try:
        app = create_app(
            db,
            max_agent_days=max_agent_days,
            max_queue=max_queue,
            allowed_hosts=hosts,
            token=required,
            max_heavy=max_reports,
            posterior=str(Path(str(chosen.source)).resolve()) if chosen is not None else None,
        )
    except ResultsError as e:
        fail(str(e))
    try:
        sock = _bind(host, port)
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}; pass another --port")
    shown = f"[{host}]" if ":" in host else host
    actual = sock.getsockname()[1]
    url = f"http://{shown}:{actual}/"
    if generated:  # printed once, as Jupyter does; a token the user gave is not echoed
        url += f"?{TOKEN_PARAM}={required}"
    err.print(f"dashboard at [bold]{url}[/] (database {db}); Ctrl-C to stop", highlight=False, soft_wrap=True)
    if required is not None:
        err.print(
            f"[yellow]note:[/] listening on {host}: every request needs the access token "
            f"({'in the address above' if generated else f'given with --token or {TOKEN_ENV}'}; or the header "
            f"'Authorization: Bearer <token>'); Host names accepted: {', '.join(hosts)}",
            highlight=False,
            soft_wrap=True,
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = server_config(
        app, max_connections=max_connections, log_level="warning", timeout_graceful_shutdown=5, access_log=False
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM (the app's shutdown stops the job worker and records a run
    # in progress as interrupted), then raises the signal again: end quietly on it.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    err.print("dashboard stopped")


class _Stopped(Exception):
    """SIGTERM, raised again by uvicorn after its graceful shutdown."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped()
