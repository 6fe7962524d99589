"""The error raised when a report cannot be built."""


class ReportError(Exception):
    """A report cannot be built for this run (not complete, wrong kind, nothing to show)."""
