"""The README's "What the default run says": the proposal and three other worlds, each simulated with the shipped
posterior, as a Markdown table of medians and 90% intervals.

    python examples/default_worlds.py [--agents 99000] [--replicates 20] [--seed 1]

Every world is the default scenario (the proposal: $100,000, asylum, education, a threat to stayers; the Russian
army in Ukraine, all three exit routes open) with one change, on the same seed, so the worlds share their random
numbers and each replicate its draw of the calibrated parameters. With the defaults (99,000 agents for 700,000
soldiers, 365 days, 20 replicates) it takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
from typing import Any

import defection
from defection.scenario import with_changes
from defection.scenario.posterior import Posterior, shipped_posterior_path

# Each world: its name in the table and its changes to the default scenario (dotted paths).
WORLDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("the proposal ($100,000, asylum, education, threat to stayers)", {}),
    ("no programme at all", {"information.channels": [], "information.initial_aware_share": 0.0}),
    ("$10 million instead of $100,000", {"offer.cash_usd": 10_000_000.0}),
    ("the proposal, and no monitoring", {"regime.monitors_per_soldier": 0.0}),
)
# The columns: outcome and its heading.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("defected_share", "crossed to Ukraine"),
    ("deserted_share", "deserted home"),
    ("surrendered_share", "surrendered in combat"),
    ("lost_share", "lost by any route"),
    ("caught_share", "caught by their own side"),
)


def percent(x: float) -> str:
    """A share as a percentage with two significant digits below 1%."""
    return f"{100 * x:.2g}%" if x < 0.01 else f"{100 * x:.1f}%"


def table(agents: int, replicates: int, seed: int) -> str:
    """The Markdown table, one row per world: median (5th–95th percentile) over replicates."""
    posterior = Posterior.load(shipped_posterior_path())
    head = "| world | " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for name, changes in WORLDS:
        sc = with_changes(defection.default_scenario(), changes, "examples/default_worlds.py")
        res = defection.simulate(sc, replicates=replicates, agents=agents, days=365, seed=seed, posterior=posterior)
        out = res.outcomes().set_index("outcome")
        cells = [
            f"{percent(out.loc[o, 'median'])} ({percent(out.loc[o, 'p05'])}–{percent(out.loc[o, 'p95'])})"
            for o, _ in COLUMNS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=99_000)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"posterior: {shipped_posterior_path().name} (the shipped posterior); seed {args.seed}")
    print(table(args.agents, args.replicates, args.seed))


if __name__ == "__main__":
    main()
