"""Reading the runs a report needs from the results database, refusing runs that are not complete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from defection.report.errors import ReportError

if TYPE_CHECKING:
    from defection.store import ResultsDB


def complete_run(db: ResultsDB, run_id: str) -> dict[str, Any]:
    """The run's row (see `ResultsDB.get_run`); ReportError if it is running, failed or interrupted.
    RunNotFound and ResultsError pass through."""
    run = db.get_run(run_id)
    if run["status"] != "complete":
        why = f" ({run['error']})" if run.get("error") else ""
        raise ReportError(
            f"run {run['run_id']} is {run['status']}{why}, not complete; only a complete run has a report"
        )
    return run
