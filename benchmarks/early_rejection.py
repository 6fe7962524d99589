"""Case simulations and CPU time of a calibration with and without early rejection (calibrate/early.py).

Usage: .venv/bin/python benchmarks/early_rejection.py [--particles 16] [--generations 3] [--seed 5] [--cases a,b]
       [--modes every,last,off]

One process, one worker (so that every case simulation is counted in this process): the same calibration once per
mode of early rejection (every generation, the last one only, off). Prints JSON: per mode the CPU seconds, the
particles pyABC simulated, the case simulations (all generations, and the last one), the temperatures, the final
ESS and whether its posterior is identical to the first mode's (samples and weights), with the largest difference
of a weighted posterior median, in units of the prior range, when it is not.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numba
import numpy as np

import defection.calibrate.early as early
from defection.calibrate.abc import calibrate
from defection.calibrate.cases import load_cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=16)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--cases", default=None, help="comma-separated case ids (default: the whole library)")
    ap.add_argument("--modes", default="every,last,off", help="comma-separated modes of early rejection")
    args = ap.parse_args()
    numba.set_num_threads(1)
    cases = load_cases(only=args.cases.split(",") if args.cases else None)
    counts: list[int] = []
    original = early.EarlyRejectionModel.accept

    def counting(self: early.EarlyRejectionModel, *a: Any) -> Any:
        before = self.cases_simulated
        result = original(self, *a)
        counts.append(self.cases_simulated - before)
        return result

    early.EarlyRejectionModel.accept = counting  # type: ignore[method-assign]
    out: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    }
    posteriors = {}
    modes = args.modes.split(",")
    for mode in modes:
        counts.clear()
        start = time.process_time()
        cal = calibrate(
            cases,
            particles=args.particles,
            generations=args.generations,
            workers=1,
            seed=args.seed,
            early_rejection=mode,
        )
        cpu = time.process_time() - start
        last = int(cal.populations["simulations"].iloc[-1])
        per_particle = counts if mode != "off" else [len(cases)] * cal.simulations
        out[mode] = {
            "cpu_seconds": round(cpu, 1),
            "particles_simulated": cal.simulations,
            "case_simulations": int(sum(per_particle)),
            "last_generation_particles": last,
            "last_generation_case_simulations": int(sum(per_particle[-last:])),
            "temperatures": [round(float(x), 4) for x in cal.populations["epsilon"]],
            "final_ess": round(float(cal.populations["ess"].iloc[-1]), 2),
        }
        posteriors[mode] = cal.posterior
        first = posteriors[modes[0]]
        same = np.array_equal(first.samples, cal.posterior.samples) and np.array_equal(
            first.weights, cal.posterior.weights
        )
        out[mode][f"identical_to_{modes[0]}"] = bool(same)
        if not same:
            out[mode]["largest_median_difference_in_prior_ranges"] = round(median_difference(first, cal), 4)
    print(json.dumps(out, indent=1))


def median_difference(first: Any, cal: Any) -> float:
    """The largest difference between two posteriors' weighted medians, in units of each parameter's prior range."""
    a = first.summary().set_index("parameter")
    b = cal.posterior.summary().set_index("parameter")
    width = (a["prior_hi"] - a["prior_lo"]).abs()
    return float(((a["median"] - b["median"]).abs() / width).max())


if __name__ == "__main__":
    main()
