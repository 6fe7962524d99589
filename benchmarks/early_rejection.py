"""Case simulations and CPU time of a calibration with and without early rejection (calibrate/early.py).

Usage: .venv/bin/python benchmarks/early_rejection.py [--particles 16] [--generations 3] [--seed 5] [--cases a,b]

One process, one worker (so that every case simulation is counted in this process): the same calibration twice,
with and without early rejection. Prints JSON: per mode the CPU seconds, the particles pyABC simulated, the case
simulations (all generations, and the last one), and whether the two posteriors are identical.
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
    for mode in (True, False):
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
        per_particle = counts if mode else [len(cases)] * cal.simulations
        out["early" if mode else "full"] = {
            "cpu_seconds": round(cpu, 1),
            "particles_simulated": cal.simulations,
            "case_simulations": int(sum(per_particle)),
            "last_generation_particles": last,
            "last_generation_case_simulations": int(sum(per_particle[-last:])),
            "final_ess": round(float(cal.populations["ess"].iloc[-1]), 2),
        }
        posteriors[mode] = cal.posterior
    out["identical_posterior"] = bool(
        np.array_equal(posteriors[True].samples, posteriors[False].samples)
        and np.array_equal(posteriors[True].weights, posteriors[False].weights)
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
