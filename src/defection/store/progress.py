"""Progress of running commands, beside the database: `<database>.progress/<run id>.json`, one small JSON file per
running run, replaced atomically (written to a temporary file in the same folder, then `os.replace`).

A command writes its progress here instead of into the database so that it never takes the database's write lock
for it: DuckDB locks the whole file for a writer, so a progress row updated every few seconds would make the
dashboard and every other command wait. Readers (the dashboard) read only the files of runs whose row is still
'running' after the store has reconciled stale rows (`ResultsDB.reconcile`, which also removes a dead process's
file), so the progress of a process that died is never shown. Writing is best effort: a folder that cannot be
written loses the progress display, never the run."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

PROGRESS_SUFFIX = ".progress"
RUN_FILE = re.compile(r"r[0-9a-f]{10}")
MAX_BYTES = 16 * 1024
"""A progress file larger than this is not read (it was not written by a command)."""
FIELDS: dict[str, type | tuple[type, ...]] = {
    "stage": str,
    "detail": str,
    "command": str,
    "done": (int, float),
    "total": (int, float),
    "fraction": (int, float),
    "elapsed_seconds": (int, float),
    "left_seconds": (int, float),
    "updated_at": (int, float),
}


def progress_dir(db_path: Path | str) -> Path:
    """The folder beside a database where running commands write their progress."""
    path = Path(db_path)
    return path.with_name(path.name + PROGRESS_SUFFIX)


def progress_file(db_path: Path | str, run_id: str) -> Path:
    """The progress file of one run (`run_id` must be a full run id: 'r' + 10 hex digits)."""
    if not RUN_FILE.fullmatch(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return progress_dir(db_path) / f"{run_id}.json"


def clean_progress(state: dict[str, Any]) -> dict[str, Any]:
    """The known fields of a progress state with the right types and finite numbers; anything else dropped."""
    out: dict[str, Any] = {}
    for key, kind in FIELDS.items():
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[key] = value[:500] if isinstance(value, str) else value
    return out


def write_progress(db_path: Path | str, run_id: str, state: dict[str, Any]) -> bool:
    """Replace a run's progress file with `state` (see `FIELDS`), atomically; False when it could not be written."""
    target = progress_file(db_path, run_id)
    text = json.dumps(clean_progress(state))
    try:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def read_progress(db_path: Path | str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The progress of these runs that have a readable progress file, by run id (missing or damaged files are
    left out)."""
    found: dict[str, dict[str, Any]] = {}
    for rid in run_ids:
        if not RUN_FILE.fullmatch(rid):
            continue
        path = progress_file(db_path, rid)
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            found[rid] = clean_progress(state)
    return found


def remove_progress(db_path: Path | str, run_id: str) -> None:
    """Remove a run's progress file, if any (its run ended), and the folder once it is empty, so a finished command
    leaves nothing beside the database. (A command that finds the folder gone recreates it at its next write.)"""
    if RUN_FILE.fullmatch(run_id):
        with suppress(OSError):
            progress_file(db_path, run_id).unlink()
        with suppress(OSError):  # not empty: another command is running
            progress_dir(db_path).rmdir()
