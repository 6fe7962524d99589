"""The dashboard and the HTML report in a real browser: Debian's headless chromium, driven by Playwright.

`python -m defection serve` runs in a subprocess on a free port. The tests create a run through the form (with its
paired no-offer baseline) and watch it finish, open its report and check that the figures are drawn, compare two
runs, check that an invalid value shows the CLI's message, and open a report written to a file with no network
request at all.

Set DEFECTION_SCREENSHOTS=DIR to save dashboard-runs.png, dashboard-new-run.png, dashboard-progress.png,
report.png and compare.png (1280×800) into DIR. Skipped when /usr/bin/chromium is missing, unless CI is set:
there a missing browser is a failure (`make browser` installs it). `playwright install` is never used.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, cli_in_process
from .processes import HANG_GUARD, REQUEST, STOP, started

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
SMALL = {"simulation.agents": 3000, "simulation.days": 120, "simulation.replicates": 3}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="/usr/bin/chromium not found (`apt-get install chromium`, or `make browser` as root); "
        "browser tests are skipped outside CI",
    ),
]

# Every plot on the page: its traces, the points they hold, and what Plotly drew for them.
FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
  id: d.id,
  traces: (d.data || []).length,
  points: (d.data || []).map(t => Math.max((t.x || []).length, (t.y || []).length, (t.values || []).length)),
  svgs: d.querySelectorAll('.main-svg').length,
  drawn: d.querySelectorAll('.trace').length,
}))"""


def screenshot(page: Any, name: str, full_page: bool = False) -> None:
    folder = os.environ.get("DEFECTION_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=full_page)


@dataclass
class Server:
    url: str
    db: Path
    runs: list[str]
    folder: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from defection.engine import simulate
    from defection.scenario import default_scenario, with_changes
    from defection.store import ResultsDB

    folder = tmp_path_factory.mktemp("browser")
    db = folder / "runs.duckdb"
    store = ResultsDB(db)
    runs = [
        store.store(simulate(with_changes(default_scenario(), {**SMALL, "meta.name": "proposal-100k"}))),
        store.store(
            simulate(
                with_changes(default_scenario(), {**SMALL, "offer.cash_usd": 10_000_000.0, "meta.name": "cash-10m"})
            )
        ),
    ]
    log = folder / "serve.log"
    with (
        log.open("w") as err,
        started(
            [sys.executable, "-m", "defection", "serve", "--port", "0", "--db", str(db)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        ) as proc,
    ):  # the server's process group is killed on leaving, whatever happened
        try:
            deadline = time.monotonic() + HANG_GUARD
            m = None
            while m is None:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
                m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
                time.sleep(0.1)
            yield Server(f"http://127.0.0.1:{m.group(1)}", db, runs, folder)
        finally:
            proc.terminate()  # a graceful stop first: its log must hold no traceback
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("CI is set but /usr/bin/chromium is missing: the browser tests must run in CI (`make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def foreign(self, *allowed: str) -> list[str]:
        """Requests to anywhere but the allowed prefixes (and data:, about:, blob:)."""
        ok = (*allowed, "data:", "about:", "blob:")
        return [u for u in self.requests if not u.startswith(ok)]


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(REQUEST * 1000)  # a hang guard (ms), not a speed limit
    t = Tab(page)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    page.on("request", lambda r: t.requests.append(r.url))
    try:
        yield t
    finally:
        context.close()


def check_figures(page: Any, at_least: int) -> list[dict[str, Any]]:
    """Wait for the plots and check each has traces with points, drawn as SVG."""
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {at_least}")
    figures = page.evaluate(FIGURES_JS)
    assert len(figures) >= at_least, figures
    for f in figures:
        assert f["traces"] > 0 and f["svgs"] > 0 and f["drawn"] > 0, f
        assert max(f["points"]) > 0, f
    return figures


def test_create_a_run_through_the_form(server: Server, tab: Tab) -> None:
    page = tab.page
    page.goto(server.url + "/new")
    for name, value in {
        "simulation.agents": "5000",
        "simulation.days": "365",
        "simulation.replicates": "2",
        "offer.cash_usd": "250000",
        "meta.name": "from-the-form",
    }.items():
        page.fill(f'[name="{name}"]', value)
    page.uncheck('[name="offer.education"]')
    page.locator("#estimate").filter(has_text="Valid. 3,650,000 agent-days").wait_for()
    page.check("#paired-baseline")  # the paired no-offer baseline: twice the agent-days
    page.locator("#estimate").filter(
        has_text="Valid. 7,300,000 agent-days, the paired no-offer baseline's included"
    ).wait_for()
    assert page.inner_text("#changed-count") == "5 fields changed"  # days 365 is the default; the box is no field
    page.click("#submit")
    page.wait_for_url(re.compile(r"/jobs/j[0-9a-f]{10}$"))
    page.locator("#job-status").filter(has_text=re.compile("queued|running|complete")).wait_for()
    assert "5,000 agents × 365 days × 2 replicates, and the paired no-offer baseline" in page.inner_text("#job-size")
    try:  # catch the bar part-way (the job may be too quick for that)
        page.wait_for_function(
            "() => { const v = +document.querySelector('.bar').getAttribute('aria-valuenow');"
            " return v >= 10 && v <= 95; }",
            timeout=20_000,
        )
        assert re.search(r"of 1,460 replicate-days simulated", page.inner_text("#job-progress"))  # baseline's too
        screenshot(page, "dashboard-progress.png")
    except Exception as e:  # playwright's TimeoutError
        if "Timeout" not in type(e).__name__:
            raise
    page.locator("#job-done").wait_for(state="visible", timeout=HANG_GUARD * 1000)
    assert page.inner_text("#job-status") == "complete"
    assert page.get_attribute(".bar", "aria-valuenow") == "100"
    page.click("#report-link")
    page.wait_for_url(re.compile(r"/runs/r[0-9a-f]{10}$"))
    run_id = page.url.rsplit("/", 1)[1]
    check_figures(page, at_least=3)
    text = page.inner_text("body")
    assert run_id in text and "from-the-form" in text and "offer.cash_usd" in text
    page.locator(".js-plotly-plot").first.evaluate("e => e.closest('section').scrollIntoView()")
    screenshot(page, "report.png")
    assert tab.errors == []
    assert tab.foreign(server.url) == []

    from defection.claims import PAIRED_BASELINE
    from defection.store import ResultsDB

    store = ResultsDB(server.db)
    run = store.get_run(run_id)
    assert run["status"] == "complete" and run["scenario_name"] == "from-the-form"
    assert (run["days"], run["replicates"]) == (365, 2)
    baseline = store.artifact(run_id, PAIRED_BASELINE)
    assert baseline is not None and (baseline["days"], baseline["replicates"]) == (365, 2)


def test_compare_two_runs(server: Server, tab: Tab) -> None:
    page = tab.page
    page.goto(server.url + "/")
    for rid in server.runs:
        assert page.locator(f'tr[data-run-id="{rid}"] .badge').inner_text() == "complete"
    button = page.locator("#compare-button")
    assert button.is_disabled()
    page.check(f'input[name="run"][value="{server.runs[0]}"]')
    assert button.is_disabled()
    page.check(f'input[name="run"][value="{server.runs[1]}"]')
    assert button.is_enabled() and button.inner_text() == "Compare selected (2)"
    screenshot(page, "dashboard-runs.png")
    button.click()
    page.wait_for_url(f"{server.url}/compare?run={server.runs[0]}&run={server.runs[1]}")  # oldest first
    check_figures(page, at_least=2)
    text = page.inner_text("body")
    assert all(rid in text for rid in server.runs) and "cash-10m" in text
    screenshot(page, "compare.png", full_page=True)
    assert tab.errors == []
    assert tab.foreign(server.url) == []


def test_a_command_line_runs_progress_is_live_on_the_runs_page(server: Server, tab: Tab) -> None:
    """A run recorded by another process (here: this test's, which is alive) with progress written as a command's
    Reporter writes it: the runs page shows its bar and words, follows the next state, and reloads to the run's
    error link once it has failed."""
    from defection.store import ResultsDB, RunMeta
    from defection.store.progress import write_progress

    store = ResultsDB(server.db)
    rid = store.begin_run(RunMeta(kind="run", scenario_name="from-the-command-line"))
    write_progress(server.db, rid, {"stage": "simulating", "done": 4, "total": 10, "fraction": 0.4})
    page = tab.page
    page.goto(server.url + "/")
    cell = page.locator(f'[data-progress-for="{rid}"]')
    assert cell.locator(".progress-text").inner_text() == "simulating 4/10 (40%)"
    assert cell.locator(".fill").evaluate("e => e.style.width") == "40%"
    write_progress(server.db, rid, {"stage": "simulating", "done": 7, "total": 10, "fraction": 0.7, "left_seconds": 65})
    cell.locator(".progress-text", has_text="7/10").wait_for()  # polled every 2 s
    assert cell.locator(".progress-text").inner_text() == "simulating 7/10 (70%), about 1m05s left"
    store.mark_run(rid, "failed", "RuntimeError: <b>not bold</b>")
    page.locator(f'tr[data-run-id="{rid}"] a.error-link').wait_for()  # the page reloaded
    page.locator(f'tr[data-run-id="{rid}"] a.error-link').click()
    page.wait_for_url(f"{server.url}/runs/{rid}/error")
    assert page.locator("#run-error").inner_text() == "RuntimeError: <b>not bold</b>"
    assert tab.errors == []
    assert tab.foreign(server.url) == []


def test_invalid_values_show_the_cli_message(server: Server, tab: Tab) -> None:
    from defection.scenario import ScenarioError, default_scenario, with_changes

    def expected(path: str, value: Any) -> str:
        with pytest.raises(ScenarioError) as e:
            with_changes(default_scenario(), {path: value})
        return str(e.value.problems[0])

    page = tab.page
    page.goto(server.url + "/new")
    page.fill('[name="simulation.days"]', "5000")
    days = page.locator('.error[data-for="simulation.days"]')
    days.wait_for(state="visible")
    assert days.inner_text() == expected("simulation.days", 5000)
    cli_run = cli_in_process("run", "--days", "5000", "--db", str(server.folder / "never.duckdb"))
    assert cli_run.returncode == 2 and f"  - {days.inner_text()}" in cli_run.stderr.splitlines()
    page.fill('[name="offer.cash_usd"]', "lots")
    cash = page.locator('.error[data-for="offer.cash_usd"]')
    cash.wait_for(state="visible")
    assert cash.inner_text() == expected("offer.cash_usd", "lots")
    assert page.get_attribute('[name="offer.cash_usd"]', "class") == "invalid"
    assert "2 problems" in page.inner_text("#estimate")
    # a scenario-wide problem has no field of its own: it is shown above the form
    page.fill('[name="simulation.days"]', "20")
    page.fill('[name="offer.cash_usd"]', "100000")
    page.fill('[name="simulation.agents"]', "50")
    page.locator("#form-errors").wait_for(state="visible")
    assert page.inner_text("#form-errors") == expected("simulation.agents", 50)
    page.fill('[name="simulation.agents"]', "99000")
    page.fill('[name="offer.cash_usd"]', "-5")
    cash.filter(has_text="out of range").wait_for()
    assert cash.inner_text() == expected("offer.cash_usd", -5)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "dashboard-new-run.png")
    jobs_before = page.request.get(server.url + "/api/jobs").json()["jobs"]
    page.click("#submit")
    page.wait_for_timeout(500)
    assert page.url.endswith("/new") and cash.inner_text() == expected("offer.cash_usd", -5)
    assert page.request.get(server.url + "/api/jobs").json()["jobs"] == jobs_before
    refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert tab.errors and [e for e in tab.errors if e != refused] == []  # chromium logs each 422 answer
    assert tab.foreign(server.url) == []


def test_report_file_opens_offline(server: Server, tab: Tab, tmp_path: Path) -> None:
    from defection.report import render_report
    from defection.store import ResultsDB

    target = tmp_path / "report.html"
    target.write_text(render_report(ResultsDB(server.db), server.runs[1]), encoding="utf-8")
    page = tab.page
    page.goto(target.as_uri())
    check_figures(page, at_least=3)
    assert server.runs[1] in page.inner_text("body")
    page.wait_for_timeout(500)  # anything loaded late would show up here
    assert [u for u in tab.requests if not u.startswith(("file:", "data:", "about:", "blob:"))] == []
    assert tab.errors == []


CURVE_JS = """() => { const d = document.getElementById('fig-curve'); return {
  axes: Object.keys(d.layout).filter(k => k.startsWith('xaxis')).map(k => d.layout[k].type),
  traces: d.data.map(t => ({fill: t.fill || null, x: t.xaxis || 'x', y: t.yaxis || 'y', n: (t.x || []).length})),
  fills: Array.from(d.querySelectorAll('.fills path.js-fill')).filter(p => (p.getAttribute('d') || '').length > 10)
    .length,
}; }"""


@pytest.mark.parametrize("spacing", ["--log", "--linear"])
def test_curve_report_draws_bands_and_a_log_axis(tab: Tab, tmp_path: Path, spacing: str) -> None:
    """`defection curve --report`: the file opens offline and draws the curve, each 90% band as two traces (its
    lower edge, and its upper edge filled down to it), one panel per outcome, a log x axis with --log."""
    target = tmp_path / "curve.html"
    proc = cli_in_process(
        "curve", "offer.cash_usd", "--from", "1e4", "--to", "2e7", "--points", "3", spacing,
        "--agents", "2000", "--days", "30", "--replicates", "3", "--seed", "1",
        "--db", str(tmp_path / "c.duckdb"), "--report", str(target),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = tab.page
    page.goto(target.as_uri())
    check_figures(page, at_least=1)
    curve = page.evaluate(CURVE_JS)
    traces = curve["traces"]
    assert len(traces) == 2 * 3  # two outcomes × (band's lower edge, band's upper edge, median)
    bands = [k for k, t in enumerate(traces) if t["fill"] == "tonexty"]
    assert len(bands) == 2
    for k in bands:  # each band: its lower edge is the trace just before, on the same axes
        assert traces[k - 1]["fill"] is None and traces[k]["n"] == 3
        assert (traces[k - 1]["x"], traces[k - 1]["y"]) == (traces[k]["x"], traces[k]["y"])
    assert curve["fills"] >= 2  # the filled areas were drawn (SVG paths with a shape)
    assert set(curve["axes"]) == {"log" if spacing == "--log" else "linear"}
    screenshot(page, f"curve{spacing.replace('--', '-')}.png", full_page=True)
    assert tab.errors == []
    assert [u for u in tab.requests if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


def test_validation_report_fits_a_laptop_and_draws_the_pairs(tab: Tab, tmp_path: Path) -> None:
    """The committed backtest summary's validation report at 1280 px: the per-case table needs no sideways scroll;
    with hand-made particles added to each fold, the pairwise plot is drawn and its menu switches fold."""
    import json

    from defection.report.validation import validation_report
    from defection.scenario.ranges import CALIBRATED

    summary = json.loads((ROOT / "docs" / "validation" / "backtest.json").read_text(encoding="utf-8"))
    paths = [u.path for u in CALIBRATED[:3]]
    for k, fold in enumerate(summary["posteriors"].values()):
        samples = [[u.at((i + k) % 5 / 4) for u in CALIBRATED[:3]] for i in range(5)]
        fold["particles"] = {"parameters": paths, "samples": samples, "weights": [1.0, 2.0, 3.0, 2.0, 1.0]}
    target = tmp_path / "validation.html"
    target.write_text(validation_report(summary)[0], encoding="utf-8")
    page = tab.page
    page.goto(target.as_uri())
    fits = page.evaluate(
        """() => { const t = document.querySelector('#held-out table'), box = t.parentElement;
        return {table: t.getBoundingClientRect().right, scroll: box.scrollWidth, box: box.clientWidth,
                page: document.documentElement.scrollWidth, width: window.innerWidth}; }"""
    )
    assert fits["scroll"] <= fits["box"] and fits["table"] <= fits["width"] and fits["page"] <= fits["width"], fits
    page.locator("#held-out").scroll_into_view_if_needed()
    screenshot(page, "validation-table.png")
    check_figures(page, at_least=4)
    shown = (
        "() => document.getElementById('fig-validation-pairs').data.filter(t => t.visible === true).map(t => t.name)"
    )
    held = list(summary["posteriors"])  # the held-out cases, in the order of their folds
    first = page.evaluate(shown)
    assert len(first) == 6 and all(n.startswith(f"without {held[0]}:") for n in first)  # 3 pairs, 3 histograms
    page.locator("#fig-validation-pairs .updatemenu-header-group").click()
    page.locator("#fig-validation-pairs .updatemenu-dropdown-button").nth(1).click()
    page.wait_for_function(
        "() => document.getElementById('fig-validation-pairs').data.some(t => t.visible === true "
        f"&& t.name.startsWith('without {held[1]}:'))"
    )
    assert len(page.evaluate(shown)) == 6
    assert tab.errors == []
    assert [u for u in tab.requests if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


def test_brief_fits_a_laptop_and_draws_its_figures(tab: Tab, tmp_path: Path) -> None:
    """`defection brief` on a tiny claims run: at 1280 px the page needs no sideways scroll (long posterior paths
    and claim texts wrap), the six verdicts are there, and the three figures are drawn, offline."""
    target = tmp_path / "brief.html"
    proc = cli_in_process(
        "brief", "--agents", "990", "--days", "2", "--replicates", "2", "--seed", "3",
        "--db", str(tmp_path / "b.duckdb"), "-o", str(target),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = tab.page
    page.goto(target.as_uri())
    figures = check_figures(page, at_least=3)
    assert {f["id"] for f in figures} == {"fig-defections", "fig-funnel", "fig-cost"}
    widths = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth, width: window.innerWidth,"
        " widest: Math.max(...Array.from(document.querySelectorAll('main :is(p, li, td, th, h1, h2, h3, .plot)'))"
        ".map(e => e.getBoundingClientRect().right))})"
    )
    assert widths["page"] <= 1280 and widths["widest"] <= widths["width"], widths
    assert page.locator("#brief-claims .claim").count() == 6
    assert page.locator("#brief-numbers-table tbody tr").count() == 5
    screenshot(page, "brief.png", full_page=True)
    assert tab.errors == []
    assert [u for u in tab.requests if not u.startswith(("file:", "data:", "about:", "blob:"))] == []
