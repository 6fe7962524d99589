"""Command-line commands of the exploration layer (registered on the main `defection` app)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
