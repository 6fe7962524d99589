"""The numbers the documents quote, generated from stored runs so that they cannot drift from the model
(`make numbers`; issue 15, "Numbers that reproduce").

`docs/numbers.toml` declares the settings, the worlds (the default scenario with changes) and the tables and summary
figures the documents quote. `make numbers` simulates each world with the shipped posterior, stores each run in a
results database (so they can be queried later), writes `docs/validation/numbers.json` (every outcome's median and
90% interval, the Monte Carlo interval of each median, the run ids, the posterior and the code version) and
rewrites every marked place in README.md and docs/*.md from it:

* ``<!-- n:WORLD.OUTCOME -->0.46% (0.25%–0.67%)<!-- /n -->``: the median and 90% interval over replicates;
  ``WORLD.OUTCOME.median`` (or ``.p05``, ``.p95``) one of them;
* ``<!-- n:SUMMARY -->...<!-- /n -->``: a figure read from a committed JSON summary (the backtest's);
* ``<!-- n:table:KEY -->`` newline, the table, newline ``<!-- /n -->``: a Markdown table of worlds × outcomes.

The markers are HTML comments, invisible where Markdown is rendered. `tests/test_numbers.py` checks every marked
text against numbers.json, and a fresh run against the recorded Monte Carlo intervals.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from defection.report.files import write_atomically
from defection.scenario.files import read_toml

MARKER = re.compile(r"<!-- n:(?P<key>[A-Za-z0-9_.:-]+) -->(?P<text>.*?)<!-- /n -->", re.DOTALL)
STATS = ("median", "p05", "p95")
BACKTEST_FILE = "docs/validation/backtest.json"  # the committed backtest summary (`make validate`)
# Documents whose marked numbers `make numbers` rewrites (relative to the repository root).
DOCUMENTS = ("README.md", "docs/*.md")


@dataclass(frozen=True)
class World:
    """A world the documents quote: the default scenario with `changes` (dotted paths)."""

    key: str
    label: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class TableSpec:
    """A Markdown table: one row per world, one column per outcome (median and 90% interval)."""

    key: str
    worlds: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (outcome, heading)


@dataclass(frozen=True)
class SummarySpec:
    """A figure read from a committed JSON summary: `field` of `file`, shown by the named `format`."""

    key: str
    file: str
    field: str
    format: str
    total: str = ""  # for "count_of": the field holding the total


@dataclass(frozen=True)
class OptimizeSpec:
    """A worked example's `defection optimize` run: `make numbers` runs it into `file`; markers `opt.KEY.PATH` read
    it (PATH: a dotted path into its --json output, e.g. closest.package.offer.cash_usd)."""

    key: str
    spec: str
    args: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"docs/validation/optimize-{self.key}.json"


@dataclass(frozen=True)
class NumbersSpec:
    """docs/numbers.toml, validated."""

    settings: dict[str, int]
    worlds: tuple[World, ...]
    tables: tuple[TableSpec, ...]
    summaries: tuple[SummarySpec, ...] = field(default=())
    claims_file: str = ""  # the committed `defection claims --json` output the claims markers read
    optimizations: tuple[OptimizeSpec, ...] = ()

    def world(self, key: str) -> World:
        for w in self.worlds:
            if w.key == key:
                return w
        raise KeyError(f"no world '{key}' in docs/numbers.toml; worlds: {', '.join(w.key for w in self.worlds)}")


def load_spec(path: Path) -> NumbersSpec:
    """Read and check docs/numbers.toml (worlds named by tables exist, settings are whole numbers)."""
    data = read_toml(path)
    settings = {k: int(data["settings"][k]) for k in ("agents", "replicates", "days", "seed")}
    worlds = tuple(World(w["key"], w["label"], dict(w.get("changes", {}))) for w in data["world"])
    tables = tuple(
        TableSpec(t["key"], tuple(t["worlds"]), tuple((c[0], c[1]) for c in t["columns"]))
        for t in data.get("table", [])
    )
    summaries = tuple(
        SummarySpec(s["key"], s["file"], s["field"], s["format"], s.get("total", "")) for s in data.get("summary", [])
    )
    optimizations = tuple(OptimizeSpec(o["key"], o["spec"], tuple(o.get("args", []))) for o in data.get("optimize", []))
    spec = NumbersSpec(settings, worlds, tables, summaries, str(data.get("claims", {}).get("file", "")), optimizations)
    for t in tables:
        for w in t.worlds:
            spec.world(w)
    return spec


# ----------------------------------------------------------------------------- statistics


def median_interval_ranks(n: int, level: float = 0.9) -> tuple[int, int]:
    """The 1-based order statistics (j, n+1-j) that bracket the median with at least `level` confidence: the
    distribution-free interval of the median (binomial with p = 1/2); (1, n) when n is too small for `level`."""
    j = 1
    while j < n // 2 and sum(math.comb(n, i) for i in range(j + 1)) / 2**n <= (1 - level) / 2:
        j += 1
    return j, n + 1 - j


def median_monte_carlo_interval(values: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    """The Monte Carlo interval of the median of `values` (one per replicate): how far the median could move with
    another draw of the replicates (`median_interval_ranks`)."""
    v = np.sort(np.asarray(values, dtype=float)[~np.isnan(values)])
    if v.size == 0:
        return math.nan, math.nan
    j, k = median_interval_ranks(int(v.size), level)
    return float(v[j - 1]), float(v[k - 1])


# ----------------------------------------------------------------------------- formatting


def percent(x: float) -> str:
    """A share as a percentage: two significant digits below 1%, one decimal above."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{100 * x:.2g}%" if abs(x) < 0.01 else f"{100 * x:.1f}%"


def with_interval(stats: Mapping[str, float]) -> str:
    """'median (p05–p95)' as percentages."""
    return f"{percent(stats['median'])} ({percent(stats['p05'])}–{percent(stats['p95'])})"


SUMMARY_FORMATS: dict[str, Callable[[float, float], str]] = {
    "percent": lambda v, total: f"{100 * v:.0f}%",
    "count_of": lambda v, total: f"{round(v * total)} of {round(total)}",
    "factor": lambda v, total: f"{math.exp(v):.1f}",
    "number2": lambda v, total: f"{v:.2f}",
    "skill_phrase": lambda v, total: f"{100 * abs(v):.0f}% {'worse' if v < 0 else 'better'} than",
}


def usd(v: float) -> str:
    """Dollars to three significant digits: $171,000, $8.65M, $51.3bn."""
    if v is None or not math.isfinite(v):
        return "–"
    if abs(v) >= 1e9:
        return f"${v / 1e9:.3g}bn"
    if abs(v) >= 1e6:
        return f"${v / 1e6:.3g}M"
    return f"${float(f'{v:.3g}'):,.0f}"


def claim_value(number: Mapping[str, Any], v: float | None) -> str:
    """One value of a claim's number, in its kind: a share as a percentage, dollars, else three digits."""
    if v is None or not math.isfinite(v):
        return "–"
    if "share" in number["name"]:
        return percent(v)
    if number.get("unit") == "USD":
        return usd(v)
    return f"{v:.3g}"


def claim_number(number: Mapping[str, Any]) -> str:
    """A claim's number as 'median (p05 to p95)' (' to ': the values can be negative)."""
    lo, mid, hi = (claim_value(number, number[k]) for k in ("p05", "median", "p95"))
    return f"{mid} ({lo} to {hi})"


def claims_table(claims: Mapping[str, Any]) -> str:
    """The six verdicts: claim, verdict, why, what decides it, the best alternative."""
    lines = ["| claim | verdict | why | decided by | best alternative |", "|---|---|---|---|---|"]
    for c in claims["claims"]:
        deciding = "; ".join(d["parameter"] for d in c.get("deciding") or []) or "–"
        alt = c.get("alternative") or {}
        best = f"{alt['name']} ({alt.get('description', '')})" if alt.get("name") else "–"
        cells = [f"{c['number']}. {c['claim']}", f"**{c['verdict']}**", c["reason"], deciding, best]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def claims_detail(claims: Mapping[str, Any]) -> str:
    """Claim by claim: the test, the verdict and why, every number with its interval, what decides it and the
    best alternative."""
    parts = []
    for c in claims["claims"]:
        lines = [f"### Claim {c['number']}: {c['claim']}", "", f"*Test.* {c['test']}", ""]
        lines += [f"**Verdict: {c['verdict']}.** {c['reason']}", ""]
        lines += ["| number | median (90% interval) |", "|---|---|"]
        lines += [f"| {n['name']} | {claim_number(n)} |" for n in c["numbers"]]
        deciding = c.get("deciding") or []
        if deciding:
            lines += ["", "*Decided by* (the claim's metric at each end of the parameter's plausible range):"]
            lines += [
                f"- `{d['parameter']}` {d['low']:g} → {d['high']:g}: "
                f"{d['metric_at_low']:.3g} → {d['metric_at_high']:.3g}"
                for d in deciding
            ]
        alt = c.get("alternative") or {}
        if alt.get("name"):
            lines += [
                "",
                f"*Best alternative:* {alt['name']} ({alt.get('description', '')}): "
                f"{alt['metric']:.3g} against the proposal's {alt['proposal_metric']:.3g}.",
            ]
        parts.append("\n".join(lines))
    return "\n\n" + "\n\n".join(parts) + "\n\n"


def render_claims_key(key: str, claims: Mapping[str, Any]) -> str:
    """`claims:table`, `claims:detail`, `claims.N.verdict`, `claims.N.reason`, `claims.N.settings`, `claims.N.K`
    (claim N's K-th number with its interval) or `claims.N.K.median` (or .p05, .p95)."""
    if key == "claims:table":
        return "\n\n" + claims_table(claims) + "\n\n"
    if key == "claims:detail":
        return claims_detail(claims)
    _, number, what = key.split(".", 2)
    claim = next((c for c in claims["claims"] if str(c["number"]) == number), None)
    if claim is None:
        raise KeyError(f"marker n:{key}: no claim {number}")
    if what in ("verdict", "reason"):
        return str(claim[what])
    if what == "settings":
        st = claims["settings"]
        return f"{st['agents']:,} agents, {st['days']} days, {st['replicates']} replicates, seed {st['seed']}"
    index, _, stat = what.partition(".")
    number = claim["numbers"][int(index)]
    if stat:
        if stat not in STATS:
            raise KeyError(f"marker n:{key}: the statistic is one of {', '.join(STATS)}")
        return claim_value(number, number[stat])
    return claim_number(number)


def json_path(data: Any, path: str) -> Any:
    """The value at a dotted path, where a key may itself hold dots (a package's 'offer.cash_usd'): at each level
    the longest key that the rest of the path starts with."""
    node, rest = data, path
    while rest:
        if not isinstance(node, Mapping):
            raise KeyError(f"{path}: {rest} goes below a value")
        key = max((k for k in node if rest == k or rest.startswith(k + ".")), key=len, default=None)
        if key is None:
            raise KeyError(f"{path}: no key for {rest}")
        node, rest = node[key], rest[len(key) + 1 :]
    return node


def leaf_value(name: str, v: Any) -> str:
    """A value read from a command's JSON, shown by what its name says: dollars, a share, a count, or text."""
    if isinstance(v, str) or v is None:
        return "–" if v is None else v
    if name.endswith("_usd"):
        return usd(float(v))
    if "share" in name or name in ("probability", "median", "p05", "p95", "mean"):
        return percent(float(v))
    f = float(v)
    return f"{float(f'{f:.3g}'):,.0f}" if abs(f) >= 100 else f"{f:.3g}"


def pct3(x: float | None) -> str:
    """A share as a percentage to three significant digits ('0%' for zero), as the backtest tables show them."""
    if x is None or not math.isfinite(x):
        return "–"
    return "0%" if x == 0 else f"{100 * x:.3g}%"


def backtest_rows(backtest: Mapping[str, Any]) -> str:
    """Every held-out observation of a backtest summary: observed, predicted median and 90% interval, inside the
    90% and 50% intervals, |log error| and PIT."""
    head = (
        "| held-out case | outcome | observed | predicted median | 90% interval | inside 90% | inside 50% | "
        "\\|log error\\| | PIT |"
    )
    lines = [head, "|---|---|---:|---:|---:|:---:|:---:|---:|---:|"]
    for r in backtest["rows"]:
        pit = "" if r.get("pit") is None else f"{r['pit']:.2f}"
        lines.append(
            f"| {r['case']} | {r['outcome']} | {pct3(r['observed'])} | {pct3(r['median'])} | "
            f"{pct3(r['p05'])} – {pct3(r['p95'])} | {'yes' if r['inside_90'] else '**no**'} | "
            f"{'yes' if r['inside_50'] else 'no'} | {r['abs_log_error']:.2f} | {pit} |"
        )
    return "\n".join(lines)


def backtest_scores(backtest: Mapping[str, Any]) -> str:
    """The backtest's scores against the naive baseline and the conformal interval."""
    n = int(backtest["observations"])
    c50, c90 = float(backtest["coverage_50"]), float(backtest["coverage_90"])
    err, wis, naive = (float(backtest[k]) for k in ("median_abs_log_error", "interval_score", "interval_score_naive"))
    skill, conformal = float(backtest["skill"]), backtest.get("conformal_coverage_90")
    lines = [
        f"| score | this run ({n} observations) | naive baseline | conformal (CV+) |",
        "|---|---:|---:|---:|",
        f"| coverage of the 50% intervals | {100 * c50:.0f}% ({round(c50 * n)} of {n}) | | |",
        f"| coverage of the 90% intervals | **{100 * c90:.0f}% ({round(c90 * n)} of {n})** | | "
        + ("" if conformal is None else f"{100 * float(conformal):.0f}%")
        + " |",
        f"| median \\|log error\\| of the median | **{err:.2f}** (a factor of {math.exp(err):.1f}) | | |",
        f"| weighted interval score (log shares; lower is better) | **{wis:.2f}** | {naive:.2f} | |",
        f"| skill, 1 − WIS/WIS_naive | **{f'{skill:+.2f}'.replace('-', '−')}** | 0 | |",
    ]
    return "\n".join(lines)


def render_optimize_key(spec: NumbersSpec, key: str, root: Path) -> str:
    """`opt.KEY.PATH`: the value at PATH of the example's committed optimize output."""
    _, name, path = key.split(".", 2)
    run = next((o for o in spec.optimizations if o.key == name), None)
    if run is None:
        raise KeyError(f"marker n:{key}: no [[optimize]] '{name}' in docs/numbers.toml")
    data = json.loads((root / run.file).read_text(encoding="utf-8"))
    return leaf_value(path.rsplit(".", 1)[-1], json_path(data, path))


def render_table(spec: NumbersSpec, table: TableSpec, numbers: Mapping[str, Any]) -> str:
    """A Markdown table of the worlds' medians and 90% intervals."""
    head = "| world | " + " | ".join(h for _, h in table.columns) + " |"
    lines = [head, "|---|" + "---:|" * len(table.columns)]
    for key in table.worlds:
        outcomes = numbers["worlds"][key]["outcomes"]
        cells = [with_interval(outcomes[o]) for o, _ in table.columns]
        lines.append(f"| {spec.world(key).label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_key(spec: NumbersSpec, key: str, numbers: Mapping[str, Any], root: Path) -> str:
    """The text a marker with `key` stands for."""
    if key in ("backtest:rows", "backtest:scores"):
        data = json.loads((root / BACKTEST_FILE).read_text(encoding="utf-8"))
        rendered = backtest_rows(data) if key == "backtest:rows" else backtest_scores(data)
        return "\n\n" + rendered + "\n\n"
    if key.startswith("opt."):
        return render_optimize_key(spec, key, root)
    if key.startswith(("claims:", "claims.")):
        if not spec.claims_file:
            raise KeyError(f"marker n:{key}: docs/numbers.toml names no claims file")
        return render_claims_key(key, json.loads((root / spec.claims_file).read_text(encoding="utf-8")))
    if key.startswith("table:"):
        name = key.removeprefix("table:")
        table = next((t for t in spec.tables if t.key == name), None)
        if table is None:
            raise KeyError(f"no table '{name}' in docs/numbers.toml")
        return "\n\n" + render_table(spec, table, numbers) + "\n\n"  # blank lines: the table is its own block
    summary = next((s for s in spec.summaries if s.key == key), None)
    if summary is not None:
        data = json.loads((root / summary.file).read_text(encoding="utf-8"))
        total = float(data[summary.total]) if summary.total else math.nan
        return SUMMARY_FORMATS[summary.format](float(data[summary.field]), total)
    world, _, rest = key.partition(".")
    outcome, _, stat = rest.partition(".")
    if world not in numbers["worlds"]:
        raise KeyError(f"no world '{world}' in numbers.json (marker n:{key})")
    stats = numbers["worlds"][world]["outcomes"].get(outcome)
    if stats is None:
        raise KeyError(f"no outcome '{outcome}' for world '{world}' (marker n:{key})")
    if stat:
        if stat not in STATS:
            raise KeyError(f"marker n:{key}: the statistic is one of {', '.join(STATS)}")
        return percent(stats[stat])
    return with_interval(stats)


def documents(root: Path) -> Iterator[Path]:
    """The documents whose marked numbers are generated."""
    for pattern in DOCUMENTS:
        yield from sorted(root.glob(pattern))


def markers(text: str) -> list[tuple[str, str]]:
    """Every (key, marked text) in a document."""
    return [(m.group("key"), m.group("text")) for m in MARKER.finditer(text)]


def rewrite(text: str, spec: NumbersSpec, numbers: Mapping[str, Any], root: Path) -> str:
    """The document with every marked text regenerated."""
    return MARKER.sub(
        lambda m: f"<!-- n:{m.group('key')} -->{render_key(spec, m.group('key'), numbers, root)}<!-- /n -->", text
    )


# ----------------------------------------------------------------------------- simulation


def simulate_worlds(spec: NumbersSpec, db: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Simulate every world with the shipped posterior at the spec's settings, store each run, and return the
    content of numbers.json."""
    from defection.engine import code_version, simulate
    from defection.scenario import default_scenario, with_changes
    from defection.scenario.posterior import Posterior, shipped_posterior_path
    from defection.store import ResultsDB
    from defection.workers import auto_workers, replicate_workers

    posterior = Posterior.load(shipped_posterior_path())
    store = ResultsDB(db)
    worlds: dict[str, Any] = {}
    s = spec.settings
    with replicate_workers(auto_workers(s["agents"], s["days"], s["replicates"])) as pool:
        results = []
        for w in spec.worlds:
            progress(f"world {w.key}: {w.label}")
            sc = with_changes(default_scenario(), w.changes, "docs/numbers.toml")
            res = simulate(
                sc,
                posterior=posterior,
                workers=pool,
                agents=s["agents"],
                replicates=s["replicates"],
                days=s["days"],
                seed=s["seed"],
            )
            results.append((w, res))
    for w, res in results:
        run_id = store.store(res, kind="numbers")
        per = res.per_replicate
        outcomes = {}
        for row in res.outcomes().to_dict("records"):
            name = row["outcome"]
            lo, hi = median_monte_carlo_interval(per[name].to_numpy()) if name in per else (math.nan, math.nan)
            outcomes[name] = {s: _plain(row[s]) for s in STATS} | {"mc_lo": _plain(lo), "mc_hi": _plain(hi)}
        worlds[w.key] = {"label": w.label, "changes": w.changes, "run_id": run_id, "outcomes": outcomes}
    return {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d"),
        "settings": spec.settings,
        "posterior": {"hash": posterior.content_hash(), "path": shipped_posterior_path().name},
        "code_version": code_version(),
        "database": str(db),
        "worlds": worlds,
    }


def run_optimize(run: OptimizeSpec, root: Path, db: Path) -> None:
    """`defection optimize SPEC ARGS --json` into the example's committed JSON (written whole, then renamed)."""
    import subprocess

    print(f"optimize {run.key}: {run.spec} {' '.join(run.args)}")
    cmd = [sys.executable, "-m", "defection", "optimize", str(root / run.spec), *run.args, "--json", "--db", str(db)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    write_atomically(root / run.file, json.dumps(json.loads(out), indent=1, sort_keys=True) + "\n")


def _plain(v: Any) -> float | None:
    """A float for JSON: None for NaN or missing."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def main(argv: list[str] | None = None) -> int:
    """`make numbers`: simulate (unless --from-json), write numbers.json, rewrite the documents."""
    ap = argparse.ArgumentParser(prog="python -m defection.report.numbers", description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path.cwd(), help="The repository (default: here).")
    ap.add_argument("--db", type=Path, default=Path("numbers.duckdb"), help="Where the runs are stored.")
    ap.add_argument("--from-json", action="store_true", help="Rewrite the documents from numbers.json only.")
    args = ap.parse_args(argv)
    root: Path = args.root
    spec = load_spec(root / "docs" / "numbers.toml")
    target = root / "docs" / "validation" / "numbers.json"
    if args.from_json:
        numbers = json.loads(target.read_text(encoding="utf-8"))
    else:
        for run in spec.optimizations:
            run_optimize(run, root, args.db)
        numbers = simulate_worlds(spec, args.db)
        write_atomically(target, json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    changed = 0
    for doc in documents(root):
        text = doc.read_text(encoding="utf-8")
        new = rewrite(text, spec, numbers, root)
        if new != text:
            doc.write_text(new, encoding="utf-8")
            changed += 1
            print(f"rewrote {doc.relative_to(root)}")
    print(f"{target.relative_to(root)}: {len(numbers['worlds'])} worlds; {changed} documents changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
