#!/bin/sh
# How does the cash offer move defections and what does each defector cost? A response curve of the proposal's
# cash from $10,000 to $20 million, on a log axis (the range spans 3.3 decades, so the levels are log-spaced without
# being asked; --log says so explicitly), every other lever as in the proposal.
#
#   sh examples/cash-curve.sh [DB] [REPORT]          # defaults: defection.duckdb, cash-curve.html
#
# 7 levels × 8 replicates of 4,950 simulated soldiers for 180 days. Every level uses the same seed and replicates
# (common random numbers): the table's last column, each level's paired difference from $10,000, is the cash's
# effect alone. The shipped posterior applies, as for `defection run` (--no-posterior: the hand-tuned values).
#
# Variations:
#   defection curve offer.cash_usd --from 1e4 --to 2e7 --set regime.monitors_per_soldier=0   # hold a lever
#   defection curve offer.cash_usd --from 1e4 --to 2e7 --by offer.asylum_probability=0.2,0.9 # one curve per value
#   defection curve regime.monitors_per_soldier --from 0 --to 0.1 --points 5                 # another lever
#   defection curve offer.cash_usd --from 1e4 --to 2e7 --json                                # one JSON object
#   defection runs show <RUN_ID>          # the stored curve; `defection report <RUN_ID>` writes its report again
set -e
DB="${1:-defection.duckdb}"
REPORT="${2:-cash-curve.html}"
defection curve offer.cash_usd --from 10000 --to 20000000 --log --points 7 \
    --replicates 8 --agents 4950 --days 180 --seed 1 \
    --db "$DB" --report "$REPORT"
