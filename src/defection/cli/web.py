"""`defection serve`: the local web dashboard (see docs/dashboard.md).

Registered on the main `defection` app by `defection.cli.app`.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from defection.cli.claims import choose_posterior
from defection.cli.console import NoPosteriorOpt, PosteriorOpt, err, fail
from defection.scenario import default_scenario


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


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. The default serves this machine only; "
            "anything else exposes the dashboard (and its job queue) to your network.",
        ),
    ] = "127.0.0.1",
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
    posterior: PosteriorOpt = None,
    no_posterior: NoPosteriorOpt = False,
) -> None:
    """Serve the dashboard: browse and compare runs, open reports, and create runs from a form (simulated in a
    background worker, one at a time). Ctrl-C stops it; a run in progress is recorded as interrupted."""
    # lazy: uvicorn, FastAPI and duckdb take about 0.25 s to import; only `defection serve` needs them
    import uvicorn

    from defection.store import ResultsError
    from defection.web.app import create_app

    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if host in ("0.0.0.0", "::"):
        hosts = ["*"]
        err.print(
            f"[yellow]warning:[/] listening on {host}: every machine that can reach this one can use the "
            "dashboard and queue simulations",
            highlight=False,
        )
    elif host not in hosts:
        hosts.append(host)
    if posterior is not None and no_posterior:
        fail("--posterior and --no-posterior contradict each other; give one")
    chosen, _ = choose_posterior(default_scenario(), posterior, no_posterior)  # the same choice as `claims`
    try:
        app = create_app(
            db,
            max_agent_days=max_agent_days,
            max_queue=max_queue,
            allowed_hosts=hosts,
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
    err.print(
        f"dashboard at [bold]http://{shown}:{actual}/[/] (database {db}); Ctrl-C to stop",
        highlight=False,
        soft_wrap=True,
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, access_log=False)
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
