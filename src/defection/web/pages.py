"""The dashboard's HTML pages: plain server-rendered markup, every value escaped.

Behaviour (live validation, job progress, the compare selection) is in static/app.js; the look in
static/style.css. Both are package data served by the app itself: a page loads nothing from anywhere else.
"""

from __future__ import annotations

from html import escape
from typing import Any

from defection.web import form

STATUS_CLASS = {"complete": "ok", "running": "run", "failed": "bad", "interrupted": "warn"}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _here(page: str, name: str) -> str:
    return ' class="here"' if page == name else ""


def layout(title: str, page: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · defection-lab</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body data-page="{_e(page)}">
<header class="top"><a class="brand" href="/">defection-lab</a>
<nav><a href="/"{_here(page, "runs")}>Runs</a><a href="/new"{_here(page, "new")}>New run</a></nav>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def _count(v: Any) -> str:
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return "–"


def _seconds(v: Any) -> str:
    if v is None:
        return "–"
    v = float(v)
    return f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


def duration_text(seconds: Any) -> str:
    """A duration as 42s, 3m05s or 2h07m ('' when unknown)."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not seconds >= 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_text(progress: dict[str, Any] | None) -> str:
    """A running run's progress in words: 'simulating 3/10 (30%), about 1m05s left'; 'running' when it wrote
    none (yet)."""
    if not progress:
        return "running"
    parts = [str(progress.get("stage") or "running")]
    done, total = progress.get("done"), progress.get("total")
    if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
        parts.append(f"{done:,.0f}/{total:,.0f}")
    fraction = progress.get("fraction")
    if isinstance(fraction, int | float) and 0 <= fraction <= 1:
        parts.append(f"({100 * fraction:.0f}%)")
    text = " ".join(parts)
    if progress.get("detail"):
        text += f", {progress['detail']}"
    left = duration_text(progress.get("left_seconds"))
    return text + (f", about {left} left" if left else "")


def _fraction(progress: dict[str, Any] | None) -> float:
    value = (progress or {}).get("fraction")
    return float(value) if isinstance(value, int | float) and 0 <= value <= 1 else 0.0


def outcome_cell(r: dict[str, Any]) -> str:
    """The runs list's main-outcome cell: the headline of a complete run, the live progress of a running one (a
    bar and words), the link to the error of a failed or interrupted one."""
    rid, status = _e(r["run_id"]), str(r["status"])
    if status == "running":
        pct = round(100 * _fraction(r.get("progress")))
        return (
            f'<td class="outcome progress" data-progress-for="{rid}"><div class="bar small" role="progressbar" '
            f'aria-valuemin="0" aria-valuemax="100" aria-valuenow="{pct}"><div class="fill" data-width="{pct}">'
            f'</div></div><span class="progress-text">{_e(progress_text(r.get("progress")))}</span></td>'
        )
    if status in ("failed", "interrupted"):
        return (
            f'<td class="outcome"><a class="error-link" href="/runs/{rid}/error">{_e(status)}: see the error</a></td>'
        )
    return f'<td class="outcome">{_e(r.get("headline") or "–")}</td>'


def runs_page(rows: list[dict[str, Any]], limits: dict[str, Any]) -> str:
    if rows:
        body_rows = []
        for r in rows:
            rid, status = _e(r["run_id"]), str(r["status"])
            if status == "complete":
                link = f'<a href="/runs/{rid}" class="run-link">{rid}</a>'
            elif status in ("failed", "interrupted"):
                link = f'<a href="/runs/{rid}/error" class="run-link">{rid}</a>'
            else:
                link = rid
            box = (
                f'<input type="checkbox" name="run" value="{rid}" aria-label="select {rid} for comparison">'
                if status == "complete"
                else ""
            )
            created = _e(str(r["created_at"] or "")[:16].replace("T", " "))
            body_rows.append(
                f'<tr data-run-id="{rid}" data-status="{_e(status)}"><td class="sel">{box}</td>'
                f'<td class="mono">{link}</td>'
                f'<td><span class="badge {STATUS_CLASS.get(status, "")}">{_e(status)}</span></td>'
                f'<td>{_e(r["kind"])}</td><td class="name">{_e(r["scenario_name"])}</td>{outcome_cell(r)}'
                f'<td class="mono" title="{_e(r.get("posterior_hash") or "")}">{_e(r.get("posterior") or "–")}</td>'
                f'<td class="num">{created}</td>'
                f'<td class="num">{_count(r["agents"])}</td><td class="num">{_count(r["days"])} × '
                f'{_count(r["replicates"])}</td><td class="num">{_seconds(r["wall_seconds"])}</td></tr>'
            )
        table = f"""<form id="compare-form" method="get" action="/compare">
<div class="toolbar"><button type="submit" id="compare-button" disabled>Compare selected</button>
<span class="hint" id="compare-hint">Tick two or more complete runs to compare them
(at most {limits["max_compare"]}).</span></div>
<table class="runs">
<thead><tr><th class="sel"></th><th>run</th><th>status</th><th>kind</th><th>scenario</th>
<th title="a run's defected share: median (90% interval); other kinds: their answer in one line">main outcome</th>
<th title="the posterior the run drew its calibrated parameters from (short hash)">posterior</th>
<th class="num">created (UTC)</th><th class="num">agents</th>
<th class="num">days × replicates</th><th class="num">wall time</th></tr></thead>
<tbody>
{chr(10).join(body_rows)}
</tbody>
</table>
</form>"""
    else:
        table = '<p class="empty">No runs in this database yet. <a href="/new">Create one</a>.</p>'
    return layout(
        "Runs",
        "runs",
        f"""<div class="head"><h1>Runs</h1><a class="button" href="/new">New run</a></div>
<section id="jobs" class="jobs" hidden><h2>Jobs on this server</h2><table class="jobs-table"><thead><tr><th>job</th>
<th>status</th><th>scenario</th><th>progress</th><th></th></tr></thead><tbody></tbody></table></section>
<p class="sub">{len(rows)} run{"s" if len(rows) != 1 else ""}, newest first. Open a complete run for its report,
a failed or interrupted one for its error. Main outcome: the defected share's median and 90% interval.</p>
{table}""",
    )


def _field_row(f: form.FormField) -> str:
    path = _e(f.path)
    common = (
        f'name="{path}" id="f-{path}" data-kind="{f.kind}" data-default="{_e(f.default_text)}" '
        f'aria-describedby="e-{path}"'
    )
    if f.kind == "bool":
        checked = " checked" if f.default else ""
        control = f'<input type="checkbox" {common}{checked}>'
    elif f.kind == "choice":
        opts = "".join(
            f'<option value="{_e(c)}"{" selected" if c == f.default else ""}>{_e(c)}</option>' for c in f.choices
        )
        control = f"<select {common}>{opts}</select>"
    elif f.kind == "text":
        control = f'<textarea {common} rows="2" maxlength="{form.MAX_TEXT}">{_e(f.default)}</textarea>'
    else:
        mode = ' inputmode="decimal"' if f.kind in ("int", "float") else ""
        control = (
            f'<input type="text" {common} value="{_e(f.default_text)}"{mode} autocomplete="off" spellcheck="false">'
        )
    return (
        f'<tr class="field" data-path="{path}"><th scope="row"><label for="f-{path}" title="{_e(f.doc)}">'
        f'{_e(f.label)}</label><div class="doc">{_e(f.doc)}</div></th><td class="value">{control}</td>'
        f'<td class="unit">{_e(f.unit)}</td><td class="range">{_e(f.range_text)}</td>'
        f'<td class="default">{_e(f.default_text if f.kind != "text" else "(see text)")}</td>'
        f'<td class="source">{_e(f.source)}</td></tr>\n'
        f'<tr class="error-row" hidden><td colspan="6"><div class="error" id="e-{path}" data-for="{path}" '
        f'role="alert"></div></td></tr>'
    )


def new_run_page(limits: dict[str, Any]) -> str:
    groups = []
    for key, title, fields in form.groups():
        is_open = " open" if key in ("common", "simulation") else ""
        rows = "\n".join(_field_row(f) for f in fields)
        groups.append(f"""<details class="group" data-group="{key}"{is_open}>
<summary>{_e(title)} <span class="count">{len(fields)} fields</span><span class="changed" hidden></span></summary>
<table class="fields"><thead><tr><th>field</th><th>value</th><th>unit</th><th>range</th><th>default</th><th>source</th>
</tr></thead><tbody>
{rows}
</tbody></table>
</details>""")
    max_days = f"{limits['max_agent_days']:,}"
    posterior = limits.get("posterior")
    posterior_note = (
        f"Behavioural parameters: each replicate draws a particle of the calibrated posterior "
        f"<code>{escape(str(posterior))}</code>, so the intervals include parameter uncertainty."
        if posterior
        else "Behavioural parameters: the scenario's hand-tuned values (no posterior; the server was started with "
        "<code>--no-posterior</code> or has none)."
    )
    return layout(
        "New run",
        "new",
        f"""<div class="head"><h1>New run</h1></div>
<p class="sub">Every field starts at the default scenario's value (the proposal); only the fields you change are
sent. Values are checked as you type, by the same rules and with the same messages as <code>defection run</code> and
<code>defection check</code>. The run is queued and simulated in the background; this server runs jobs of at most
{max_days} agent-days (agents × days × replicates, counted twice with the paired no-offer baseline) and queues at
most {limits["max_queue"]}.</p>
<p class="sub" id="posterior-note">{posterior_note}</p>
<form id="new-run" novalidate>
<div id="summary" class="summary" role="status"><span id="estimate"></span></div>
<div id="form-errors" class="form-errors" role="alert" hidden></div>
{chr(10).join(groups)}
<p class="option"><label for="paired-baseline"><input type="checkbox" id="paired-baseline" name="paired_baseline">
Also simulate the paired no-offer baseline (doubles the cost; the report then separates the offer's effect from
combat losses)</label></p>
<div class="submit-bar"><button type="submit" id="submit">Run simulation</button>
<button type="button" id="reset" class="secondary">Reset to defaults</button>
<span class="hint" id="changed-count">no changes: the default scenario</span></div>
</form>""",
    )


def job_page(job_id: str) -> str:
    jid = _e(job_id)
    return layout(
        f"Job {job_id}",
        "job",
        f"""<div class="head"><h1>Job <span class="mono">{jid}</span></h1></div>
<section id="job" class="job" data-job-id="{jid}">
<p class="status-line"><span class="badge" id="job-status">…</span> <span id="job-name"></span>
<span id="job-size" class="hint"></span></p>
<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
<div class="fill"></div></div>
<p id="job-progress" class="hint"></p>
<p id="job-warning" class="warning" hidden></p>
<p id="job-error" class="error" hidden></p>
<p id="job-done" hidden><a class="button" id="report-link" href="#">Open the report</a>
<a href="/">All runs</a></p>
</section>""",
    )


def run_error_page(run: dict[str, Any]) -> str:
    """A failed or interrupted run: what it was and the error it stored (escaped), for CLI runs and dashboard jobs
    alike."""
    rid, status = _e(run["run_id"]), str(run["status"])
    error = run.get("error") or "no error message was recorded"
    finished = _e(str(run.get("finished_at") or "")[:19].replace("T", " ")) or "–"
    return layout(
        f"Run {run['run_id']}: {status}",
        "run-error",
        f"""<div class="head"><h1>Run <span class="mono">{rid}</span>
<span class="badge {STATUS_CLASS.get(status, "")}">{_e(status)}</span></h1></div>
<p class="sub">{_e(run.get("kind"))} · {_e(run.get("scenario_name"))} · {_count(run.get("agents"))} agents ×
{_count(run.get("days"))} days × {_count(run.get("replicates"))} replicates · ended {finished} UTC
· process {_e(run.get("pid"))} on {_e(run.get("host"))}</p>
<h2>Error</h2>
<pre class="error-detail" id="run-error">{_e(error)}</pre>
<p><a href="/">Back to the runs</a></p>""",
    )


def error_page(status: int, detail: str) -> str:
    return layout(
        f"Error {status}",
        "error",
        f"""<div class="head"><h1>Error {status}</h1></div>
<pre class="error-detail">{_e(detail)}</pre>
<p><a href="/">Back to the runs</a></p>""",
    )
