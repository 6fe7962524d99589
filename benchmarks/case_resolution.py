"""How few agents can each historical case be simulated with during calibration (issue 11)?

Usage: .venv/bin/python benchmarks/case_resolution.py [--replicates 24] [--case ID …] [--cases FOLDER]
       [--posterior FILE] [--fractions 0.125 0.25 0.5 1] [--reference 4]

For every case, simulates `--replicates` replicates at several agent counts (fractions of the case's
`calibration_agents`, rounded to whole companies) and at a reference size (`--reference` times it, capped at the
force), with the hand-tuned defaults or, with `--posterior`, each replicate with its own posterior particle (as
`defection predict` does). For each observation it reports the calibration's summary statistic, the log of the
simulated share as recorded, raised to the log floor of the agent count (eq. 40): its mean, its Monte Carlo standard
deviation across replicates (the noise one calibration simulation adds to the error model's variance, tolerance² +
δ²) and the standard error of the mean, and the CPU seconds per replicate.

An agent count passes when, for every observation of the case, its mean is within two standard errors of the
reference's (no resolution bias that the Monte Carlo error could not hide) and its replicate-to-replicate standard
deviation is at most `--noise` (default 0.5) times the observation's tolerance (it adds at most a quarter to the
variance of the likelihood). The smallest passing count is printed as `recommended_agents`; the case file's
`case.calibration_agents` (and `scenario.simulation.agents`) are what calibration uses, edited by hand.

Prints one JSON object per case. Re-run it after a change to the model that may change how results depend on the
number of agents (the regime's adaptive rule, for instance: a case with `regime.response.mode = "adaptive"` is
flagged).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from defection.calibrate.abc import case_run
from defection.calibrate.cases import Case, load_cases, log_floor
from defection.model.population import simulated_agents
from defection.scenario.posterior import Posterior


def log_stats(case: Case, agents: int, replicates: int, seed: int, posterior: Posterior | None) -> dict[str, object]:
    """Mean, SD and SE of each observation's log recorded share over `replicates` replicates of `agents` agents."""
    start = time.process_time()
    runs = case_run(case, {}, seed, replicates=replicates, agents=agents, posterior=posterior)
    cpu = (time.process_time() - start) / replicates
    n = int(runs.attrs["agents"])
    floor = log_floor(n)
    obs = []
    for o in case.observed:
        x = np.log(np.maximum(o.recorded_share(1.0) * runs[o.outcome].to_numpy(float), floor))
        sd = float(x.std(ddof=1))
        obs.append(
            {
                "outcome": o.outcome,
                "tolerance": o.tolerance,
                "mean": float(x.mean()),
                "sd": sd,
                "se": sd / math.sqrt(len(x)),
                "zeros": int((x <= math.log(floor) + 1e-12).sum()),
            }
        )
    return {"agents": n, "cpu_seconds_per_replicate": round(cpu, 4), "observations": obs}


def passes(row: dict[str, object], ref: dict[str, object], noise: float) -> bool:
    """Within two standard errors of the reference's mean, and replicate noise at most `noise` × tolerance."""
    for o, r in zip(row["observations"], ref["observations"], strict=True):  # type: ignore[call-overload]
        if abs(o["mean"] - r["mean"]) > 2.0 * math.hypot(o["se"], r["se"]):
            return False
        if o["sd"] > noise * o["tolerance"]:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=24)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--case", action="append", help="Only this case (repeatable).")
    ap.add_argument("--cases", help="Folder of case files (default: the shipped library; e.g. the candidate cases).")
    ap.add_argument("--posterior", help="Posterior file: each replicate draws its own particle.")
    ap.add_argument("--fractions", type=float, nargs="*", default=[0.125, 0.25, 0.5, 1.0])
    ap.add_argument("--reference", type=float, default=4.0, help="Reference size, times calibration_agents.")
    ap.add_argument("--noise", type=float, default=0.5, help="Largest replicate SD, times the tolerance.")
    args = ap.parse_args()
    posterior = Posterior.load(args.posterior) if args.posterior else None
    for case in load_cases(args.cases, only=args.case):
        size = case.scenario.force.company_size
        soldiers = case.scenario.force.soldiers
        current = case.meta.calibration_agents
        ref_agents = simulated_agents(min(soldiers, int(args.reference * current)), size)
        ref = log_stats(case, ref_agents, args.replicates, args.seed, posterior)
        rows = []
        for f in sorted(set(args.fractions)):
            agents = simulated_agents(max(size, int(f * current)), size)
            row = log_stats(case, agents, args.replicates, args.seed, posterior)
            row["passes"] = passes(row, ref, args.noise)
            rows.append(row)
        passing = [r["agents"] for r in rows if r["passes"]]
        print(
            json.dumps(
                {
                    "case": case.id,
                    "regime_mode": case.scenario.regime.response.mode,
                    "adaptive_regime": case.scenario.regime.response.mode != "static",
                    "calibration_agents": current,
                    "replicates": args.replicates,
                    "reference": ref,
                    "sizes": rows,
                    "recommended_agents": min(passing) if passing else None,  # type: ignore[type-var]
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
