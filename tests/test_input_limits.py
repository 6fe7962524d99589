"""Input shape and size limits (issue 13, items 4 and 5): every command reads only regular files under a size cap and
a nesting depth, lists at most a screenful of problems, and refuses a run too large to start by accident; each
refusal is a clear error (file, field, value, limit), exit code 2, no traceback and nothing recorded.

The commands run in subprocesses of their own session, watched: a command that opens a FIFO, reads /dev/zero into
memory, records a run or does not answer within a generous guard is killed with its whole process group and the
test fails at once, so that neither a hang nor a slow machine can block the suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer

from defection.scenario import default_scenario, with_overrides
from defection.scenario.posterior import POSTERIOR_FORMAT, Posterior
from defection.scenario.ranges import CALIBRATED

from .conftest import scenario

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 600.0
"""The longest a refused input may take to answer. A refusal takes a few seconds (the command's start-up); the
guard only stops a command that hangs, so it is generous: slowness alone never fails these tests."""
MAX_RSS_BYTES = 2 * 2**30
"""A command that refuses a file unread never comes near this; one that reads /dev/zero passes it within seconds."""

Watch = Callable[[int], str | None]


def guarded(tmp_path: Path, *args: str, watch: Watch | None = None) -> tuple[int, str, str]:
    """Run `defection ARGS` in a session of its own; (exit code, stdout, stderr). `watch(pid)` is polled while it
    runs: a reason it returns fails the test. The process group is killed on any failure or timeout."""
    n = len(list(tmp_path.glob("stdout-*")))
    out, err = tmp_path / f"stdout-{n}", tmp_path / f"stderr-{n}"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "defection", *args],
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while proc.poll() is None:
            why = watch(proc.pid) if watch is not None else None
            assert why is None, f"defection {' '.join(args)}: {why}"
            assert time.monotonic() < deadline, f"defection {' '.join(args)}: no answer in {HANG_GUARD_S:.0f} s"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace")


def fifo_opened(fifo: Path) -> Watch:
    """A watch: fails once the command has opened the FIFO to read it (a writer can then open it without blocking)."""

    def check(pid: int) -> str | None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it
            return None
        os.close(fd)
        return f"opened the FIFO {fifo} to read it"

    return check


def memory_over(limit: int) -> Watch:
    """A watch: fails once the command's resident memory passes `limit` bytes (Linux; elsewhere never)."""

    def check(pid: int) -> str | None:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        return f"read {rss:,} bytes into memory" if rss > limit else None

    return check


def created(path: Path) -> Watch:
    """A watch: fails once `path` exists (a results database: something was recorded)."""
    return lambda pid: f"created {path}: a run was recorded" if path.exists() else None


def assert_refused(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)


# ----------------------------------------------------------------------------- files that are not regular files
# (id, arguments before and after the file): each command reads its file through a different loader; the commands
# run in the test's temporary folder, so a results database or sweep folder they wrongly create lands there
COMMANDS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("scenario", ("check",), ()),
    ("case", ("cases", "check"), ()),
    ("spec", ("sweep",), ("--workers", "0")),
    ("offer-effect", ("offer-effect",), ("--no-posterior", "--draws", "2")),
    ("posterior", ("run", "--agents", "990", "--days", "2", "--replicates", "1", "--posterior"), ()),
    ("claims-posterior", ("claims", "--posterior"), ()),
]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize(("before", "after"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_a_fifo_is_refused_unopened(tmp_path: Path, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    fifo = tmp_path / "input.toml"
    os.mkfifo(fifo)
    code, _, stderr = guarded(tmp_path, *before, str(fifo), *after, watch=fifo_opened(fifo))
    assert_refused(code, stderr, str(fifo), "is a named pipe (FIFO), expected a regular file")
    assert not (tmp_path / "defection.duckdb").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("before", "after"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_a_device_is_refused_unread(tmp_path: Path, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    code, _, stderr = guarded(tmp_path, *before, "/dev/zero", *after, watch=memory_over(MAX_RSS_BYTES))
    assert_refused(code, stderr, "/dev/zero", "is a character device, expected a regular file")
    assert not (tmp_path / "defection.duckdb").exists()


# ----------------------------------------------------------------------------- nesting, size, problem count
@pytest.mark.slow
@pytest.mark.parametrize("depth", [1_000, 40], ids=["too-deep-to-parse", "deeper-than-allowed"])
@pytest.mark.parametrize(("before", "after"), [c[1:] for c in COMMANDS[:3]], ids=[c[0] for c in COMMANDS[:3]])
def test_deeply_nested_toml_is_refused_with_the_limit(
    tmp_path: Path, before: tuple[str, ...], after: tuple[str, ...], depth: int
) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * depth + "]" * depth + "\n", encoding="utf-8")  # 2 KB at depth 1,000
    code, _, stderr = guarded(tmp_path, *before, str(path), *after)
    assert_refused(code, stderr, str(path), "deeper than the 32 levels allowed")
    if depth == 40:
        assert "'depth 41'" in stderr  # the file's own table is the first level


@pytest.mark.slow
def test_a_toml_file_over_the_size_cap_is_refused_unparsed(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"  # 400,000 unknown keys: 4.7 MB, which printed 30 MB of problems
    path.write_text("".join(f"k{i} = 1\n" for i in range(400_000)), encoding="utf-8")
    code, stdout, stderr = guarded(tmp_path, "check", str(path))
    assert_refused(code, stderr, "4,688,890 bytes", "larger than the 1,048,576 bytes allowed")
    assert len(stderr) + len(stdout) < 1_000
    sparse = tmp_path / "sparse.toml"  # a hole of 1 MiB + 1 bytes: refused by its size, not read
    with sparse.open("wb") as f:
        f.truncate(1_048_577)
    code, _, stderr = guarded(tmp_path, "check", str(sparse))
    assert_refused(code, stderr, "1,048,577 bytes", "larger than the 1,048,576 bytes allowed")


@pytest.mark.slow
def test_many_problems_are_counted_not_listed(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"  # 100,000 unknown keys in 0.8 MB: under the size cap
    path.write_text("".join(f"k{i:x}=1\n" for i in range(100_000)), encoding="utf-8")
    code, stdout, stderr = guarded(tmp_path, "check", str(path))
    assert_refused(code, stderr, "invalid scenario (100,000 problems)", "k0 = 1: unknown key", "… and 99,980 more")
    assert stderr.count("unknown key") == 20
    assert len(stderr) + len(stdout) < 10_000


def test_every_loader_reads_through_the_one_guard() -> None:
    """No module parses TOML or reads an input file itself: `scenario.files` is the only place (so every loader
    has the regular-file check, the size cap and the depth limit)."""
    own = ROOT / "src" / "defection" / "scenario" / "files.py"
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sorted((ROOT / "src" / "defection").rglob("*.py"))
        if p != own
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "tomllib" in line
    ]
    assert offenders == []


# ----------------------------------------------------------------------------- posterior files
MORAL = next(u for u in CALIBRATED if u.path == "preferences.moral_cost_median_usd")


def test_weights_too_large_to_add_up_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "post.json"
    path.write_text(
        json.dumps(
            {
                "format": POSTERIOR_FORMAT,
                "parameters": [MORAL.path],
                "samples": [[1e5], [2e5], [3e5]],
                "weights": [1e308, 1e308, 5e307],  # finite, but their sum overflows to infinity
            }
        ),
        encoding="utf-8",
    )
    post = Posterior.load(path)
    assert np.allclose(post.weights, [0.4, 0.4, 0.2])


# ----------------------------------------------------------------------------- the size of a run
HUGE = ("--agents", "700000", "--days", "3650", "--replicates", "100000")  # 2.6 × 10¹⁴ agent-days


@pytest.mark.slow
def test_a_huge_run_is_refused_with_its_estimate_and_nothing_recorded(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    code, stdout, stderr = guarded(tmp_path, "run", *HUGE, "--db", str(db), watch=created(db))
    flat = " ".join(stderr.split())
    assert_refused(code, flat, "699,930 agents × 3,650 days × 100,000 replicates", "agent-days", "--yes")
    assert "it would take about 100 days" in flat  # 2.6e14 agent-days at 3e7 per second
    # its memory (about 560 MB: the daily rows are streamed to the store) is refused only where less is available
    assert not db.exists() and stdout == ""


def test_the_size_check_refuses_without_yes_and_warns_with_it(capsys: pytest.CaptureFixture[str]) -> None:
    from defection.cli.size import check_size

    huge = with_overrides(default_scenario(), agents=700_000, days=3650, replicates=100_000)
    with pytest.raises(typer.Exit) as exc:
        check_size(huge, yes=False)
    assert exc.value.exit_code == 2
    assert "too large to start without --yes" in " ".join(capsys.readouterr().err.split())
    check_size(huge, yes=True)  # goes on: returns
    assert "going on (--yes)" in " ".join(capsys.readouterr().err.split())
    check_size(default_scenario(), yes=False)  # the demo's run: nothing said
    assert capsys.readouterr().err == ""


def test_the_estimate_is_linear_and_the_demo_is_far_under_the_limits() -> None:
    from defection.model.size import MAX_SECONDS, estimate_run, scenario_size, size_problems

    one = estimate_run(9_900, 100, 1)
    assert estimate_run(9_900, 100, 4).seconds == pytest.approx(4 * one.seconds)
    assert estimate_run(9_900, 400, 1).agent_days == 4 * one.agent_days
    assert estimate_run(9_900, 100, 1, candidates=5).seconds == pytest.approx(5 * one.seconds)
    # `defection run` streams the daily rows to the store one replicate at a time: memory does not grow with
    # replicates; best-response mode holds every replicate's series until the best candidate is known
    assert estimate_run(9_900, 100, 1000).memory_bytes == one.memory_bytes
    # each worker process holds its own population (and interpreter): two workers, twice that part
    two = estimate_run(9_900, 100, 1000, workers=2)
    assert 1.9 * one.memory_bytes < two.memory_bytes < 2 * one.memory_bytes  # the daily series is not doubled
    assert two.seconds == pytest.approx(1000 * one.seconds)  # not divided: an upper bound
    assert (
        estimate_run(9_900, 100, 1000, candidates=5).memory_bytes
        > estimate_run(9_900, 100, 1, candidates=5).memory_bytes
    )
    demo = scenario_size(default_scenario())  # `make demo`: 99,000 agents × 365 days × 20 replicates
    assert demo.seconds < MAX_SECONDS / 10 and demo.memory_bytes < 2**30
    assert size_problems(demo, available_bytes=4 * 2**30) == []
    biggest = (
        scenario_size(  # the schema's largest run: 20 million agents (the most soldiers), 10 years, 10⁵ replicates
            scenario(
                force__soldiers=20_000_000,
                simulation__agents=20_000_000,
                simulation__days=3650,
                simulation__replicates=100_000,
            )
        )
    )
    problems = size_problems(biggest, available_bytes=4 * 2**30)
    assert len(problems) == 2 and "7.7 years" in problems[0] and "4.5 GiB of memory" in problems[1]
    assert size_problems(biggest, available_bytes=None) == problems[:1]  # memory unknown: only the time is checked


def test_the_memory_estimate_covers_the_populations_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    from defection.model import population
    from defection.model.parameters import engine_params
    from defection.model.size import SOLDIER_BYTES, TIE_BYTES

    monkeypatch.setattr(population, "_synthesise", lambda *args: None)  # the arrays' sizes, not their values
    p = engine_params(default_scenario())
    pop = population.synthesise(p.company_size * 10, 1, 0, p)
    n = pop.soldiers.status.size
    per_soldier = sum(a.nbytes for group in (pop.soldiers, pop.traits) for a in group) / n
    assert per_soldier == SOLDIER_BYTES + TIE_BYTES * p.network_degree


def test_available_memory_is_the_least_of_meminfo_and_the_cgroup_limit(tmp_path: Path) -> None:
    from defection.model.size import available_memory

    meminfo, cgroup = tmp_path / "meminfo", tmp_path / "cgroup"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12000000 kB\n", encoding="ascii")
    cgroup.mkdir()
    assert available_memory(meminfo, cgroup) == 12_000_000 * 1024  # no cgroup files: the machine's
    (cgroup / "memory.max").write_text("max\n", encoding="ascii")
    assert available_memory(meminfo, cgroup) == 12_000_000 * 1024  # no limit
    (cgroup / "memory.max").write_text(f"{4 * 2**30}\n", encoding="ascii")
    (cgroup / "memory.current").write_text(f"{2**30}\n", encoding="ascii")
    assert available_memory(meminfo, cgroup) == 3 * 2**30  # a container's limit, less what it uses
    assert available_memory(tmp_path / "none", cgroup) == 3 * 2**30
