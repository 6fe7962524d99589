"""Response curves: one lever moved across a range of levels with every other parameter held, each level simulated
under common random numbers.

Every level (and every value of an optional second lever, `by`) simulates the same replicates with the same seed, so
replicate r of every level draws the same random numbers and, with a posterior, the same calibrated particle. The
difference between replicate r at one level and replicate r at the first level is then the lever's effect alone
(a paired difference), and its 90% interval is far narrower than the levels' own intervals.

    curve = response_curve(scenario, "offer.cash_usd", curve_levels(1e4, 2e7, 7, log=True), replicates=4, seed=1)
    curve.table()      # by, level, outcome, median, p05, p95 and the paired difference's median, p05, p95
    curve.to_dict()    # the `defection curve --json` object (and the stored artifact)
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from defection.analysis import json_number
from defection.engine import simulate
from defection.model.outputs import OUTCOMES
from defection.scenario import Scenario, with_changes
from defection.scenario.files import InputFileError, parse_toml_value
from defection.scenario.posterior import Posterior
from defection.scenario.registry import ParamInfo, registry

DEFAULT_OUTCOMES = ("defected_share", "cost_per_genuine_defector_usd")
"""What a curve shows unless told otherwise: how many defect, and what each genuine defector costs."""
DEFAULT_POINTS = 7
MAX_POINTS = 100
LOG_DECADES = 2.0
"""A positive range spanning more than this many decades is spaced (and drawn) on a log scale by default."""

Progress = Callable[[int, int], None]
"""`progress(done, total)`: replicate-days simulated so far over the whole curve, and in all."""


class CurveError(ValueError):
    """A lever, range, value or outcome a response curve cannot use; the message names the option, the value and
    what is allowed."""


# ----------------------------------------------------------------------------- the lever and its levels
def _close(path: str) -> str:
    """' (did you mean …?)' with the nearest parameter paths, or ''."""
    near = difflib.get_close_matches(path, list(registry()), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def parameter(path: str, option: str) -> ParamInfo:
    """The registry entry of a parameter a curve may set by its dotted path; CurveError otherwise."""
    info = registry().get(path)
    if info is None:
        raise CurveError(f"{option} {path!r}: not a scenario parameter{_close(path)}; see `defection params`")
    if "[" in path:
        raise CurveError(f"{option} {path!r}: an entry of a list cannot be set here; change it in a scenario file")
    if path.startswith("simulation."):
        raise CurveError(
            f"{option} {path!r}: a simulation setting, not a lever; use --replicates, --agents, --days or --seed"
        )
    return info


def is_numeric(info: ParamInfo) -> bool:
    return isinstance(info.default, int | float) and not isinstance(info.default, bool)


def is_integer(info: ParamInfo) -> bool:
    return isinstance(info.default, int) and not isinstance(info.default, bool)


def lever_info(lever: str) -> ParamInfo:
    """The lever's registry entry: a numeric scenario parameter; CurveError otherwise."""
    info = parameter(lever, "LEVER")
    if not is_numeric(info):
        raise CurveError(
            f"LEVER {lever!r}: not numeric (default {info.default!r}); a curve needs a numeric lever "
            "(give categorical values with --by PATH=V1,V2,...)"
        )
    return info


def level_text(level: float) -> str:
    """A level as text: from 1,000 up in whole numbers with separators (125,992), below with four significant
    digits (0.05)."""
    if 1_000 <= abs(level) < 1e15 or (float(level).is_integer() and abs(level) < 1e15):
        return f"{level:,.0f}"
    return f"{level:.4g}"


def _allowed(info: ParamInfo) -> str:
    return f"[{info.lo:g}, {info.hi:g}]{' ' + info.unit if info.unit else ''}"


def lever_range(info: ParamInfo, lo: float | None, hi: float | None) -> tuple[float, float]:
    """The curve's range: --from and --to (each defaulting to the end of the lever's allowed range), checked to be
    finite, ordered and inside the allowed range; CurveError naming the option, its value and the range otherwise."""
    given = {"--from": lo, "--to": hi}
    ends = {"--from": info.lo, "--to": info.hi}
    values: dict[str, float] = {}
    for option, value in given.items():
        if value is None:
            end = ends[option]
            if end is None:
                raise CurveError(f"{option}: {info.path} has no bounded range; give {option}")
            value = float(end)
        if not math.isfinite(value):
            raise CurveError(f"{option} {value}: not a finite number")
        if (info.lo is not None and value < info.lo) or (info.hi is not None and value > info.hi):
            raise CurveError(f"{option} {value:g}: outside {info.path}'s allowed range {_allowed(info)}")
        values[option] = float(value)
    if values["--from"] >= values["--to"]:
        raise CurveError(f"--from {values['--from']:g} must be below --to {values['--to']:g}")
    return values["--from"], values["--to"]


def default_log(lo: float, hi: float) -> bool:
    """Log spacing by default: the range is positive and spans more than `LOG_DECADES` decades."""
    return lo > 0 and math.log10(hi / lo) > LOG_DECADES


def spacing_note(lo: float, hi: float, log: bool, chosen: bool) -> str:
    """Why the levels are spaced as they are (chosen: the user said --log or --linear)."""
    if chosen:
        return "log spacing (--log)" if log else "even spacing (--linear)"
    if log:
        return (
            f"log spacing: the range spans {math.log10(hi / lo):.1f} decades (over {LOG_DECADES:g}); "
            "--linear for even spacing"
        )
    return "even spacing" + (
        f" (the range spans {math.log10(hi / lo):.1f} decades; --log for log spacing)" if lo > 0 else ""
    )


def curve_levels(lo: float, hi: float, points: int, log: bool, integer: bool = False) -> list[float]:
    """`points` levels from lo to hi: evenly spaced, or geometrically when `log` (lo > 0); rounded to whole numbers
    for an integer parameter (repeats dropped)."""
    if points < 2:
        raise CurveError(f"--points {points}: a curve needs at least 2 points")
    if log and lo <= 0:
        raise CurveError(f"--log needs --from > 0, not {lo:g}")
    raw = np.geomspace(lo, hi, points) if log else np.linspace(lo, hi, points)
    raw[0], raw[-1] = lo, hi  # exactly the ends asked for, whatever the rounding of geomspace
    if integer:
        return [float(v) for v in dict.fromkeys(round(float(x)) for x in raw)]
    return [float(x) for x in raw]


# ----------------------------------------------------------------------------- held and varied levers
def parse_value(text: str) -> Any:
    """A value as written on the command line: a TOML value (number, true/false, quoted string, array), else the
    bare text as a string (e.g. flat)."""
    try:
        return parse_toml_value(text)
    except InputFileError:
        return text.strip()


def parse_assignment(text: str, option: str = "--set") -> tuple[str, Any]:
    """`PATH=VALUE` → (path, value); CurveError for anything else."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path or not value.strip():
        raise CurveError(f"{option} {text!r}: expected PATH=VALUE, e.g. {option} regime.monitors_per_soldier=0.02")
    parameter(path, option)
    return path, parse_value(value)


def parse_by(text: str) -> tuple[str, list[Any]]:
    """`PATH=V1,V2,...` → (path, values): one curve per value; CurveError for anything else."""
    path, sep, values = text.partition("=")
    path = path.strip()
    items = [v for v in (s.strip() for s in values.split(",")) if v]
    if not sep or not path or not items:
        raise CurveError(f"--by {text!r}: expected PATH=V1,V2,..., e.g. --by offer.asylum_probability=0.2,0.8")
    parameter(path, "--by")
    parsed = [parse_value(v) for v in items]
    if len({repr(v) for v in parsed}) != len(parsed):
        raise CurveError(f"--by {text!r}: a value is listed twice")
    return path, parsed


def held(base: Scenario, changes: dict[str, Any], source: str) -> Scenario:
    """The base scenario with other levers held at given values (validated: ScenarioError names the path, the value
    and the allowed range)."""
    return with_changes(base, changes, source) if changes else base


def curve_scenarios(
    base: Scenario, lever: str, levels: Sequence[float], by: tuple[str, Sequence[Any]] | None = None
) -> list[tuple[Any, float, Scenario]]:
    """(by value, level, scenario) for every point of the curve(s), validated before anything is simulated (an
    integer lever's levels as whole numbers)."""
    integer = is_integer(lever_info(lever))
    by_values: Sequence[Any] = by[1] if by is not None else [None]
    out = []
    for value in by_values:
        for level in levels:
            changes: dict[str, Any] = {lever: int(level) if integer else float(level)}
            if by is not None:
                changes[by[0]] = value
            out.append((value, float(level), with_changes(base, changes, f"<curve: {lever} = {level:g}>")))
    return out


def check_outcomes(names: Sequence[str]) -> list[str]:
    """The outcomes to show, each one of `OUTCOMES`; CurveError naming the unknown one otherwise."""
    for name in names:
        if name not in OUTCOMES:
            near = difflib.get_close_matches(name, list(OUTCOMES), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(near)}?)" if near else f"; allowed: {', '.join(OUTCOMES)}"
            raise CurveError(f"--outcome {name!r}: not an outcome{hint}")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- statistics
def interval(values: np.ndarray | Sequence[float]) -> tuple[float, float, float]:
    """Median, 5th and 95th percentile of the finite values (NaN when none is finite, e.g. a cost per defector with
    no defector)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    return float(np.median(v)), float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95))


def paired_differences(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Replicate r's value minus replicate r's value at the reference level (common random numbers)."""
    diff: np.ndarray = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    return diff


# ----------------------------------------------------------------------------- the curve
@dataclass
class CurveResult:
    """A response curve: per (by value, level, replicate) every outcome, and how it was made."""

    lever: str
    unit: str
    levels: list[float]
    log: bool
    outcomes: list[str]
    per_replicate: pd.DataFrame  # by, level, replicate and one column per outcome in OUTCOMES
    seed: int
    replicates: int
    agents: int
    represented: int
    days: int
    by: str | None = None
    by_values: list[Any] = field(default_factory=lambda: [None])
    spacing: str = ""
    held: dict[str, Any] = field(default_factory=dict)
    posterior_hash: str | None = None
    posterior_path: str | None = None
    posterior_fixed: list[str] = field(default_factory=list)  # calibrated parameters the curve sets or holds itself
    agent_days: int = 0
    wall_seconds: float = 0.0
    simulate_seconds: float = 0.0
    run_id: str | None = None

    def values(self, outcome: str, level: float, by: Any = None) -> np.ndarray:
        """One outcome's per-replicate values at a level (of the curve for `by`), in replicate order."""
        df = self.per_replicate
        rows = df[(df["level"] == level) & (df["by"].map(repr) == repr(by))].sort_values("replicate")
        values: np.ndarray = rows[outcome].to_numpy(dtype=float)
        return values

    def differences(self, outcome: str, level: float, by: Any = None) -> np.ndarray:
        """One outcome's paired differences at a level against the first level (same curve), per replicate."""
        return paired_differences(self.values(outcome, level, by), self.values(outcome, self.levels[0], by))

    def table(self) -> pd.DataFrame:
        """One row per (by, level, outcome): median, p05, p95 across replicates and the paired difference against
        the first level (diff_median, diff_p05, diff_p95)."""
        rows = []
        for by in self.by_values:
            for level in self.levels:
                for name in self.outcomes:
                    med, lo, hi = interval(self.values(name, level, by))
                    dmed, dlo, dhi = interval(self.differences(name, level, by))
                    rows.append(
                        {
                            "by": by,
                            "level": level,
                            "outcome": name,
                            "median": med,
                            "p05": lo,
                            "p95": hi,
                            "diff_median": dmed,
                            "diff_p05": dlo,
                            "diff_p95": dhi,
                        }
                    )
        return pd.DataFrame(rows)

    def stored_outcomes(self) -> pd.DataFrame:
        """The outcome table stored with the run (so `defection runs show` lists it): one row per (by, level,
        outcome), named e.g. 'defected_share @ level 3 = 100,000'."""
        width = len(str(len(self.levels)))
        rows = []
        for by in self.by_values:
            for k, level in enumerate(self.levels, start=1):
                where = f"{self.by}={by} " if self.by is not None else ""
                for name in self.outcomes:
                    values = self.values(name, level, by)
                    med, lo, hi = interval(values)
                    finite = values[np.isfinite(values)]
                    mean = float(finite.mean()) if finite.size else math.nan
                    label = f"{name} @ {where}level {k:0{width}d} = {level_text(level)}"
                    rows.append({"outcome": label, "median": med, "p05": lo, "p95": hi, "mean": mean})
        return pd.DataFrame(rows, columns=["outcome", "median", "p05", "p95", "mean"])

    def to_dict(self) -> dict[str, Any]:
        """The `defection curve --json` object, also stored as the run's 'curve' artifact (non-finite numbers null)."""
        curves = []
        for by in self.by_values:
            points = []
            for level in self.levels:
                shown: dict[str, Any] = {}
                for name in self.outcomes:
                    values, diffs = self.values(name, level, by), self.differences(name, level, by)
                    med, lo, hi = interval(values)
                    dmed, dlo, dhi = interval(diffs)
                    shown[name] = {
                        "median": json_number(med),
                        "p05": json_number(lo),
                        "p95": json_number(hi),
                        "difference": {"median": json_number(dmed), "p05": json_number(dlo), "p95": json_number(dhi)},
                        "replicates": [json_number(float(v)) for v in values],
                        "differences": [json_number(float(v)) for v in diffs],
                    }
                points.append({"level": level, "outcomes": shown})
            curves.append({"by": by, "points": points})
        return {
            "run_id": self.run_id,
            "lever": self.lever,
            "unit": self.unit,
            "levels": self.levels,
            "log": self.log,
            "spacing": self.spacing,
            "by": None if self.by is None else {"path": self.by, "values": self.by_values},
            "held": self.held,
            "outcomes": self.outcomes,
            "reference_level": self.levels[0],
            "seed": self.seed,
            "replicates": self.replicates,
            "agents": self.agents,
            "represented": self.represented,
            "days": self.days,
            "posterior": (
                {"hash": self.posterior_hash, "path": self.posterior_path, "set_by_the_curve": self.posterior_fixed}
                if self.posterior_hash
                else None
            ),
            "agent_days": self.agent_days,
            "wall_seconds": self.wall_seconds,
            "curves": curves,
        }


def response_curve(
    scenario: Scenario,
    lever: str,
    levels: Sequence[float],
    replicates: int,
    seed: int,
    *,
    agents: int | None = None,
    days: int | None = None,
    by: tuple[str, Sequence[Any]] | None = None,
    outcomes: Sequence[str] = DEFAULT_OUTCOMES,
    posterior: Posterior | None = None,
    log: bool = False,
    spacing: str = "",
    held: dict[str, Any] | None = None,
    progress: Progress | None = None,
    workers: Executor | None = None,
) -> CurveResult:
    """Simulate `scenario` at every level of `lever` (and, with `by` = (path, values), for every value of a second
    lever): the same `replicates` and `seed` at every point, so replicate r of every point shares its random numbers
    and its posterior particle (common random numbers). `posterior` (else the scenario's `simulation.posterior`, if
    any) gives each replicate its calibrated parameters; the lever and `by` keep the values the curve sets.
    `held`: the other levers' values the scenario holds (recorded, not applied; a calibrated one keeps its value
    rather than the posterior's). CurveError or ScenarioError for
    a lever, level or value the scenario cannot take."""
    start = time.perf_counter()
    info = lever_info(lever)
    shown = check_outcomes(outcomes)
    levels = [float(x) for x in dict.fromkeys(levels)]  # a level given twice is simulated once
    if not levels:
        raise CurveError("a curve needs at least one level")
    points = curve_scenarios(scenario, lever, levels, by)
    if posterior is None and scenario.simulation.posterior:
        posterior = Posterior.load(scenario.simulation.posterior)
    varied = [lever, *([by[0]] if by else []), *(held or {})]
    post = posterior.without(varied) if posterior is not None else None  # the curve sets or holds these itself
    frames = []
    agent_days, simulate_seconds, n_agents, n_days = 0, 0.0, 0, 0
    for k, (value, level, sc) in enumerate(points):

        def tick(done: int, total: int, k: int = k) -> None:
            if progress is not None:
                progress(k * total + done, len(points) * total)

        res = simulate(
            sc,
            replicates=replicates,
            days=days,
            seed=seed,
            agents=agents,
            posterior=post,
            progress=tick,
            workers=workers,
        )
        agent_days += res.agent_days
        simulate_seconds += res.wall_seconds
        n_agents, n_days = res.agents, res.days
        frame = res.per_replicate.copy()
        frame.insert(0, "level", level)
        frame.insert(0, "by", pd.Series([value] * len(frame), dtype=object))
        frames.append(frame)
    return CurveResult(
        lever=lever,
        unit=info.unit,
        levels=levels,
        log=log,
        outcomes=shown,
        per_replicate=pd.concat(frames, ignore_index=True),
        seed=seed,
        replicates=replicates,
        agents=n_agents,
        represented=scenario.force.soldiers,
        days=n_days,
        by=by[0] if by else None,
        by_values=list(by[1]) if by else [None],
        spacing=spacing,
        held=dict(held or {}),
        posterior_hash=posterior.content_hash() if posterior is not None else None,
        posterior_path=posterior.source if posterior is not None else None,
        posterior_fixed=[p for p in varied if posterior is not None and p in posterior.parameters],
        agent_days=agent_days,
        wall_seconds=time.perf_counter() - start,
        simulate_seconds=simulate_seconds,
    )
