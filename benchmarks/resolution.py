"""Resolution check: an outcome share and the regime's final state against the agent count.

    .venv/bin/python benchmarks/resolution.py --agents 4950,19800,99000 --replicates 32 [--set offer.cash_usd=1e7]

Prints one JSON line per agent count: the defected share (mean and standard error over replicates) and the
regime's final monitors. docs/performance.md ("Resolution") quotes its output.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from defection import simulate
from defection.scenario import default_scenario
from defection.scenario.build import with_changes


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} → {"a": {"b": 1}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="4950,19800,99000", help="Comma-separated agent counts.")
    ap.add_argument("--replicates", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="dotted.path=value (default: offer.cash_usd=1e7).")
    args = ap.parse_args()
    changes: dict[str, Any] = {"offer.cash_usd": 1e7}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            changes[key] = float(value)
        except ValueError:
            changes[key] = value
    sc = with_changes(default_scenario(), nested(changes), "benchmarks/resolution.py")
    for n in (int(a) for a in args.agents.split(",")):
        start = time.perf_counter()
        res = simulate(sc, agents=n, replicates=args.replicates, seed=args.seed)
        share = res.per_replicate["defected_share"].to_numpy()
        last = res.daily[res.daily.day == res.days - 1]
        row = {
            "agents": res.agents,
            "replicates": args.replicates,
            "defected_share": float(share.mean()),
            "standard_error": float(share.std(ddof=1) / np.sqrt(share.size)),
            "monitors_final": float(last["monitors"].mean()),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
