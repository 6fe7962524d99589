"""The `defection` command line (Typer + Rich). Thin: every command calls the Python API.

Layout: `console` (shared helpers), one module per command group (`run`, `runs`, `claims`, `calibrate`, `bench`,
`sweep`, `search`, `report`, `web`), and `app`, which registers them all.
"""

from defection.cli.app import app, main

__all__ = ["app", "main"]
