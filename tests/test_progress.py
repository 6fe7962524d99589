"""Long commands say what they are doing on stderr (timestamped lines when stderr is not a terminal, with a
heartbeat), and `calibrate --max-minutes` bounds the whole command: a run the limit cuts short keeps the
finished ABC-SMC generations and says so (complete); one cut before any generation finished fails clearly."""

from __future__ import annotations

import io
import json
import math
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from defection.calibrate.abc import Deadline, case_run, check_draws_that_fit
from defection.calibrate.cases import load_case
from defection.cli.console import HEARTBEAT_ENV, Reporter, elapsed_text, heartbeat_seconds, time_left

from .conftest import cli, cli_in_process
from .processes import HANG_GUARD
from .test_calibration import write_case

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d (\S+) (stage|working|note|done): .+ \((\S+) elapsed\)$"
)


# ----------------------------------------------------------------------------- the pieces
def test_a_deadline_counts_down_and_shares_what_is_left() -> None:
    d = Deadline(4 * HANG_GUARD)  # so long that no pause of a busy machine between these lines can matter
    before = d.left()
    assert 3 * HANG_GUARD < before <= 4 * HANG_GUARD and not d.expired()
    assert (before - HANG_GUARD) / 2 < d.share(2).left() <= before / 2  # two folds left: each gets half
    gone = Deadline(0.0)
    assert gone.expired() and gone.left() == 0.0


def test_predictive_draws_fit_the_time_left() -> None:
    assert check_draws_that_fit(24, math.inf, 1.0) == 24  # no limit
    assert check_draws_that_fit(24, 10.0, 0.5) == 16  # 0.8 × 10 s / 0.5 s per draw
    assert check_draws_that_fit(24, 100.0, 0.5) == 24  # never more than asked
    assert check_draws_that_fit(24, 1.0, 0.5) == 0  # one draw gives no interval: skip


def test_heartbeat_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    assert heartbeat_seconds() == 60.0
    monkeypatch.setenv(HEARTBEAT_ENV, "0.5")
    assert heartbeat_seconds() == 0.5
    for bad in ("soon", "0", "-3", "nan"):
        monkeypatch.setenv(HEARTBEAT_ENV, bad)
        assert heartbeat_seconds() == 60.0, bad
    assert [elapsed_text(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]


def test_off_a_terminal_the_reporter_writes_stage_lines_and_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV, "0.1")
    buffer = io.StringIO()
    with Reporter("demo", console=Console(file=buffer, force_terminal=False)) as rep:
        rep.stage("first step", total=3)
        rep.update(completed=2, detail="items done")
        deadline = time.monotonic() + HANG_GUARD  # a long step: heartbeats, no new stage (however busy the machine)
        while buffer.getvalue().count(" working: ") < 2:
            assert time.monotonic() < deadline, buffer.getvalue()
            time.sleep(0.05)
        rep.note("half way")
        rep("second step")  # a progress(message) callback
    lines = buffer.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    kinds = [LINE.match(line).group(2) for line in lines]  # type: ignore[union-attr]
    assert kinds[0] == "stage" and kinds[-2:] == ["stage", "done"] and "note" in kinds
    beats = [line for line in lines if " working: " in line]
    assert len(beats) >= 2 and all("first step, 2/3, items done" in line for line in beats), lines
    assert "\x1b" not in buffer.getvalue()


def test_on_a_terminal_the_reporter_draws_a_display_not_log_lines() -> None:
    buffer = io.StringIO()
    with Reporter("demo", console=Console(file=buffer, force_terminal=True, width=100)) as rep:
        rep.stage("first step", total=3)
        rep.update(completed=2)
    text = buffer.getvalue()
    assert "first step" in text and "\x1b" in text and " stage: " not in text


# ----------------------------------------------------------------------------- the time left
class FakeClock:
    """A clock the test moves by hand: estimates of the time left are checked without waiting or timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _quiet_reporter(clock: FakeClock) -> Reporter:
    return Reporter("demo", console=Console(file=io.StringIO(), force_terminal=False), clock=clock)


def _estimates(sizes: list[float], weighted: bool) -> list[tuple[float, float, float | None]]:
    """Run a job of tasks of these sizes at a constant rate (1 s per unit of work) through a Reporter; after each
    task: (share of the work done, true time left, estimated time left)."""
    clock, total = FakeClock(), sum(sizes)
    out = []
    with _quiet_reporter(clock) as rep:
        rep.stage("tasks", total=len(sizes), work_total=total if weighted else None)
        done = 0.0
        for size in sizes:
            clock.now += size
            done += size
            rep.update(advance=1, work=size if weighted else 0.0)
            out.append((done / total, total - done, rep.time_left()))
    return out


def test_the_time_left_after_a_tenth_of_a_constant_rate_job_is_right_within_a_factor_of_two() -> None:
    assert time_left(0, 100, 5.0) is None and time_left(10, None, 5.0) is None  # nothing to go on yet
    assert time_left(10, 100, 5.0) == pytest.approx(45.0)
    for share, truth, estimate in _estimates([1.0] * 50, weighted=False):
        if share >= 0.1 and truth > 0:
            assert estimate is not None and truth / 2 <= estimate <= 2 * truth, (share, truth, estimate)


def test_the_time_left_weighs_tasks_of_unequal_size_by_their_work() -> None:
    """Ten small tasks, then ten thirty times larger (e.g. variants of more agent-days): counted in tasks, the
    estimate after the small ones is many times too short; counted in work (agent-days) it is right."""
    sizes = [1.0] * 10 + [30.0] * 10
    checked = 0
    for share, truth, estimate in _estimates(sizes, weighted=True):
        if share >= 0.1 and truth > 0:
            assert estimate is not None and truth / 2 <= estimate <= 2 * truth, (share, truth, estimate)
            checked += 1
    assert checked >= 9
    by_count = [(s, t, e) for s, t, e in _estimates(sizes, weighted=False) if s >= 0.1 and t > 0]
    assert any(e is not None and e < t / 2 for _, t, e in by_count)  # what a count of tasks would have said


def test_a_commands_overall_work_gives_its_time_left_across_stages() -> None:
    """A backtest's folds each run several stages (generations); its time left is the whole command's, from the
    folds done weighted by their cost, not the current stage's."""
    clock = FakeClock()
    with _quiet_reporter(clock) as rep:
        rep.stage("fold 1, generation 1", total=8)
        clock.now += 10.0
        rep.update(completed=8)
        assert rep.time_left() == 0.0  # the stage is done
        rep.overall(1.0, 4.0)  # one fold of four equal ones in 10 s
        assert rep.time_left() == pytest.approx(30.0)
        rep.stage("fold 2, generation 1", total=8)
        assert rep.time_left() == pytest.approx(30.0)


def test_log_lines_carry_the_time_left() -> None:
    clock, buffer = FakeClock(), io.StringIO()
    with Reporter("demo", console=Console(file=buffer, force_terminal=False), clock=clock) as rep:
        rep.stage("variants", total=10)
        clock.now += 20.0
        rep.update(completed=2, detail="now: variant 3 of 10", line=True)
    lines = buffer.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert any("variants, 2/10, now: variant 3 of 10, about 1m20s left" in line for line in lines), lines


def test_on_a_terminal_the_display_shows_the_time_left() -> None:
    clock, buffer = FakeClock(), io.StringIO()
    with Reporter("demo", console=Console(file=buffer, force_terminal=True, width=140), clock=clock) as rep:
        rep.stage("variants", total=10)
        clock.now += 20.0
        rep.update(completed=2)
    assert "about 1m20s left" in buffer.getvalue()


# ----------------------------------------------------------------------------- the command
@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Two small synthetic cases; one simulation in this process first so the subprocess finds Numba's cache."""
    folder = tmp_path / "cases"
    folder.mkdir()
    write_case(folder, "alpha", defected=0.004, caught=0.01, days=30, agents=990)
    write_case(folder, "beta", defected=0.01, caught=0.02, days=30, agents=990)
    case_run(load_case(folder / "alpha.toml"), {}, seed=1)
    return folder


@pytest.fixture
def misfit(tmp_path: Path) -> Path:
    """Two small cases whose observations the model cannot reach: the temperature schedule needs many generations."""
    folder = tmp_path / "misfit"
    folder.mkdir()
    write_case(folder, "alpha", defected=0.5, caught=0.5, days=180, agents=4_950)
    write_case(folder, "beta", defected=0.6, caught=0.4, days=180, agents=4_950)
    case_run(load_case(folder / "alpha.toml"), {}, seed=1)
    return folder


def test_calibrate_cut_short_by_its_time_limit_keeps_finished_generations_and_reports_progress(
    misfit: Path, tmp_path: Path
) -> None:
    """24 s for 50 generations: the limit stops it (an unbounded run takes many minutes; quiet, the first generation
    ends after about 10 s, the second after 19). A machine so slow that not even the first generation finishes in
    24 s gets the documented failure instead. That the limit stopped it is read from the result (cut short, fewer
    generations), not from the wall clock, which a busy machine stretches."""
    db, post = tmp_path / "r.duckdb", tmp_path / "post.json"
    # far from history and without the discrepancy term, the temperature schedule needs many generations
    args = ["--particles", "20", "--generations", "50", "--workers", "1", "--check-draws", "3", "--no-discrepancy"]
    r = cli(
        "calibrate", "--cases", str(misfit), *args, "--max-minutes", "0.4",
        "-o", str(post), "--db", str(db), "--json",
        env={HEARTBEAT_ENV: "1"},
    )  # fmt: skip
    # stderr: timestamped plain lines only (the error message of a failure aside), stages and heartbeats
    assert "\x1b" not in r.stderr and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if not line.startswith("error: ")]
    assert lines and all(LINE.match(line) for line in lines), r.stderr
    stages = [line for line in lines if " stage: " in line]
    assert any("stage: ABC-SMC: sampling the prior" in line for line in stages)
    if r.returncode == 1:  # too slow a machine (even the prior's sampling outlasted 24 s): the documented failure
        assert r.stdout == "" and "ran out before the first ABC-SMC generation finished" in r.stderr
        runs = json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
        assert [r["status"] for r in runs] == ["failed"] and not post.exists()
        return
    assert r.returncode == 0, r.stderr
    assert any("stage: ABC-SMC generation 1/50" in line for line in stages)
    assert any(" working: ABC-SMC " in line and "particles accepted" in line for line in lines), r.stderr
    assert any("note: time limit reached during ABC-SMC generation" in line for line in lines)
    # stdout: one JSON object
    assert r.stdout.count("\n") == 1
    cal = json.loads(r.stdout)
    # the result says it was cut short; the finished generations make a posterior; the run is complete
    assert cal["cut_short"] is True
    assert 1 <= len(cal["generations"]) < 50
    assert any("time limit stopped ABC-SMC" in n for n in cal["notes"])
    assert cal["check"] is None or cal["check_draws"] <= 3
    assert post.exists()
    runs = json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in runs] == [(cal["run_id"], "complete")]


def test_calibrate_with_no_time_for_one_generation_fails_clearly(library: Path, tmp_path: Path) -> None:
    db, post = tmp_path / "r.duckdb", tmp_path / "post.json"
    r = cli(
        "calibrate", "--cases", str(library), "--particles", "400", "--workers", "1", "--max-minutes", "0.01",
        "-o", str(post), "--db", str(db), "--json",
    )  # fmt: skip
    assert r.returncode == 1 and r.stdout == ""
    assert "ran out before the first ABC-SMC generation finished" in r.stderr and "Traceback" not in r.stderr
    assert not post.exists()
    runs = json.loads(cli_in_process("runs", "list", "--db", str(db), "--json").stdout)
    assert [r["status"] for r in runs] == ["failed"]
    info = json.loads(cli_in_process("runs", "show", runs[0]["run_id"], "--db", str(db), "--json").stdout)
    assert "ran out before the first ABC-SMC generation" in info["error"]
