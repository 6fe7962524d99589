"""`defection serve`: a local web dashboard to browse runs, open and compare their reports, and create runs
from a form generated from the scenario schema, simulated in a background worker.

`defection.web.app.create_app` builds the application; `defection.web.cli` registers the command. This package
imports nothing heavy on import, because `defection.cli` imports `defection.web.cli` at start-up.
"""
