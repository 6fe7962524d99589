"""Fingerprints of fixed-seed runs, to check that a refactoring of the daily loop changes no number.

Usage: .venv/bin/python benchmarks/loop_hashes.py [--agents 5000] [--days 90] [--replicates 2] > hashes.json

Runs `simulate` for several settings that exercise different branches of `dynamics.run_replicate` (the default
scenario, a static regime, threshold mode, best response, escalating and ratchet offers, an adaptive offer, a
deadline; crossing only, and the offer rewarding each mix of the three exit routes) and prints, per setting, the
SHA-256 of `RunResult.daily` and `RunResult.per_replicate` (the raw bytes of every column, in order) and, for best
response, every candidate's mean loss, as JSON. Run it before and after a
change and compare the two files: any difference is a changed number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from defection.engine import simulate
from defection.scenario import default_scenario, with_changes

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "static": {"regime.response.mode": "static"},
    "threshold": {"simulation.mode": "threshold"},
    "best_response": {"regime.response.mode": "best_response", "regime.response.best_response_trials": 2},
    "ratchet_topup": {"offer.schedule.rule": "ratchet_topup", "offer.schedule.growth_per_step": 0.5},
    "unannounced_escalation": {"offer.schedule.rule": "unannounced_escalation", "offer.schedule.growth_per_step": 0.5},
    "announced_escalation": {
        "offer.schedule.rule": "announced_escalation",
        "offer.schedule.growth_per_step": 0.5,
        "offer.schedule.step_days": 14,
    },
    "adaptive_offer": {
        "offer.schedule.rule": "adaptive",
        "offer.schedule.growth_per_step": 0.5,
        "offer.schedule.step_days": 7,
        "offer.schedule.target_share_per_month": 0.002,
    },
    "deadline_budget": {
        "offer.schedule.rule": "deadline",
        "offer.schedule.deadline_day": 40,
        "offer.schedule.budget_cap_usd": 5e8,
    },
    # the exit routes (docs/model.md §7.5b): home and surrender are open by default
    "crossing_only": {"routes.home.open": False, "routes.surrender.open": False},
    "rewards_all_routes": {"offer.rewards": ["cross", "home", "surrender"]},
    "rewards_home_surrender": {"offer.rewards": ["home", "surrender"]},
    "ratchet_cross_surrender": {
        "routes.home.open": False,
        "offer.rewards": ["cross", "surrender"],
        "offer.schedule.rule": "ratchet_topup",
        "offer.schedule.growth_per_step": 0.5,
    },
    "announced_all_routes_enemy_home": {
        "offer.rewards": ["cross", "home", "surrender"],
        "offer.schedule.rule": "announced_escalation",
        "offer.schedule.growth_per_step": 0.5,
        "offer.schedule.step_days": 14,
        "war.enemy_holds_home_share": 0.3,
    },
}


def frame_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's column names and the bytes of every column, in order."""
    h = hashlib.sha256()
    for col in df.columns:
        h.update(str(col).encode())
        h.update(np.ascontiguousarray(df[col].to_numpy()).tobytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=5000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    out = {}
    for name, changes in SETTINGS.items():
        sc = with_changes(default_scenario(), changes) if changes else default_scenario()
        res = simulate(sc, agents=args.agents, days=args.days, replicates=args.replicates, seed=args.seed)
        out[name] = {
            "daily": frame_hash(res.daily),
            "per_replicate": frame_hash(res.per_replicate),
            "regime_choice": res.regime_choice,  # best response: every candidate's mean loss, exactly (repr)
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
