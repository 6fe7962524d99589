"""What the model outputs, declared once: soldier statuses, per-company counters, the daily series and the
outcomes (docs/model.md §Outcomes).

This is the bottom of the model: it imports only the scenario (for ``TYPE_NAMES``; numpy only for a type
hint, so the CLI reads it without loading numpy), so every other module (the kernels, the daily loop, the
store, the report, the CLI) reads its names from here.
Numeric values follow from the order of the tuples below; they are part of the stored results and of the
golden files, so **append, never reorder**. The Numba kernels need statuses and counter columns as
compile-time constants: they are exported as plain module-level ``int`` s (``C_ARRIVED``, ``SERVING``, …)
computed from the tuples at import.

Recipes:

* **Add a daily series**: add its name to ``SERIES`` (at the end of the group it belongs to) and write it
  in ``dynamics.run_replicate``'s record phase. The results store adds the column to existing databases
  when it opens them (NULL for runs stored before); no migration is needed.
* **Add an outcome**: add its name and description to ``OUTCOMES`` (and to ``OPEN_ENDED`` if "never" is a
  possible value, stored as NaN and read as +∞) and compute it in ``outcomes.replicate_outcomes``. An
  outcome that is a function of the daily series alone can instead be declared in one place with
  ``add_outcome(name, description, derive)``; outcomes are stored in long form, so the store needs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from defection.scenario import TYPE_NAMES, Scenario

if TYPE_CHECKING:
    import numpy as np  # only in a type: the CLI reads these names without loading numpy

# -- soldiers -------------------------------------------------------------------------------------------

SOLDIER_STATUSES = (
    "serving",
    "arrived",
    "caught",
    "executed",
    "killed_crossing",
    "killed",
    "wounded",
    "queued",
    "deserted",
    "surrendered",
)
"""Soldier status codes (docs/model.md §2.1), in code order. Serving and queued (waiting for extraction by the
programme) are present in the unit; every other status has left it. Arrived, deserted and surrendered are the
three exit routes' successes (§7.5b); killed_crossing also holds soldiers killed while surrendering."""
STATUS = {name: code for code, name in enumerate(SOLDIER_STATUSES)}
SERVING = STATUS["serving"]
ARRIVED = STATUS["arrived"]
CAUGHT = STATUS["caught"]
EXECUTED = STATUS["executed"]
KILLED_CROSSING = STATUS["killed_crossing"]
KILLED = STATUS["killed"]
WOUNDED = STATUS["wounded"]
QUEUED = STATUS["queued"]
DESERTED = STATUS["deserted"]
SURRENDERED = STATUS["surrendered"]

# -- per-company daily counters -------------------------------------------------------------------------

COUNTERS = (
    "attempts",
    "arrived",
    "caught",
    "executed",
    "killed_crossing",
    "killed_in_action",
    "wounded",
    "replaced",
    "contacts",
    "detected_waiting",
    "arrived_programme",
    "paid",
    "rejected",
    *(f"arrived_{t}" for t in TYPE_NAMES),
    "extracted",
    "deserted",
    "surrendered",
    "caught_deserting",
    "returned_to_unit",
    "killed_surrendering",
)
"""Columns of the per-company ``counts`` array every phase adds to, in column order; each is also the name of
the daily series it feeds (``COUNT_SERIES``)."""
COUNTER = {name: col for col, name in enumerate(COUNTERS)}
N_COUNTERS = len(COUNTERS)
C_ATTEMPTS = COUNTER["attempts"]
C_ARRIVED = COUNTER["arrived"]
C_CAUGHT = COUNTER["caught"]
C_EXECUTED = COUNTER["executed"]
C_KILLED_X = COUNTER["killed_crossing"]
C_KILLED = COUNTER["killed_in_action"]
C_WOUNDED = COUNTER["wounded"]
C_REPLACED = COUNTER["replaced"]
C_CONTACTS = COUNTER["contacts"]
C_DETECTED_WAITING = COUNTER["detected_waiting"]
C_ARRIVED_PROGRAMME = COUNTER["arrived_programme"]
C_PAID = COUNTER["paid"]
C_REJECTED = COUNTER["rejected"]
C_ARRIVED_TYPE = COUNTER[f"arrived_{TYPE_NAMES[0]}"]  # + type index
C_EXTRACTED = COUNTER["extracted"]
C_DESERTED = COUNTER["deserted"]
C_SURRENDERED = COUNTER["surrendered"]
C_CAUGHT_DESERTING = COUNTER["caught_deserting"]
C_RETURNED = COUNTER["returned_to_unit"]
C_KILLED_SURRENDERING = COUNTER["killed_surrendering"]

# -- components that name daily series (used by economics and regime) -----------------------------------

PROGRAMME_COMPONENTS = (
    "cash_now",
    "cash_deferred",
    "topup",
    "trip",
    "resettlement",
    "education",
    "protection",
    "pow_upkeep",
    "screening",
    "extraction",
    "communications",
    "fraud",
)
"""The programme's cost components (eq. 36a–l), each recorded daily as ``cost_<component>_pv``."""
REGIME_COMPONENTS = ("pay_rise", "monitors", "blocking", "propaganda")
"""The regime's cost components (eq. 33), each recorded daily as ``regime_<component>``."""
COUNTER_MEASURES = (
    "monitors",
    "blocking",
    "propaganda",
    "family_reprisal",
    "execution",
    "sentence",
    "infiltration",
    "pay_usd_month",
)
"""The regime's counter-measures (the fields of ``regime.CounterMeasures``, in order), each a daily series."""

# -- daily series ---------------------------------------------------------------------------------------

COUNT_SERIES = {
    name: COUNTER[name]
    for name in (
        "contacts",
        "attempts",
        "arrived",
        "arrived_programme",
        "paid",
        "rejected",
        "extracted",
        "caught",
        "detected_waiting",
        "executed",
        "killed_crossing",
        "killed_in_action",
        "wounded",
        "replaced",
        *(f"arrived_{t}" for t in TYPE_NAMES),
    )
}
"""The daily series that are a day's counter totals: series name → counter column."""
ROUTE_SERIES = {
    name: COUNTER[name]
    for name in ("deserted", "surrendered", "caught_deserting", "returned_to_unit", "killed_surrendering")
}
"""Counter totals of the exit routes other than crossing (§7.5b), recorded after every older series (their columns
come last, so the older series keep theirs)."""
STRENGTH_QUANTILES = (10, 25, 50, 75, 90)
"""Percentiles of company strength (eq. 22, present over establishment) recorded every day."""
SERIES = (
    "offer_usd",
    "programme_open",
    "serving",
    "queued",
    "aware",
    *COUNT_SERIES,
    "fraud_claimants",
    "fraud_paid",
    "credibility",
    "strength_share",
    "units_ineffective_share",
    *(f"unit_strength_p{q}" for q in STRENGTH_QUANTILES),
    "programme_cost",
    "programme_cost_pv",
    *(f"cost_{c}_pv" for c in PROGRAMME_COMPONENTS),
    "regime_cost",
    *(f"regime_{c}" for c in REGIME_COMPONENTS),
    *COUNTER_MEASURES,
    *ROUTE_SERIES,
)
"""Daily series, in column order. Counts are in represented soldiers (agents × soldiers per agent); money in USD."""
COL = {name: k for k, name in enumerate(SERIES)}
"""Series name → column of the daily array."""

# -- outcomes -------------------------------------------------------------------------------------------

OUTCOMES = {
    "defected": "Soldiers who reached the other side (represented force).",
    "defected_share": "Defected as a share of the initial force.",
    "attempts": "Crossings attempted (directly, or extracted by the programme).",
    "contacts": "Soldiers who contacted the programme and joined its queue.",
    "defected_programme_share": "Share of the initial force that arrived through the programme's extraction.",
    "deserted": "Soldiers who deserted home and were not caught (represented force).",
    "deserted_share": "Deserted as a share of the initial force.",
    "surrendered_in_combat": "Soldiers who surrendered in combat and reached captivity.",
    "surrendered_share": "Surrendered in combat as a share of the initial force.",
    "returned_to_unit": "Caught deserters sentenced (suspended) and sent back to their unit, with a record.",
    "caught_deserting_share": "Deserters caught by their own side as a share of the initial force (returned or not).",
    "lost_share": "Share of the initial force lost by any exit route: crossed, deserted or surrendered.",
    "caught": "Caught by their own side (crossing or while waiting), executions included.",
    "caught_share": "Caught as a share of the initial force (a detected-exit flow, e.g. desertion prosecutions).",
    "detected_waiting": "Caught while waiting for extraction.",
    "executed": "Caught and summarily executed.",
    "killed_crossing": "Killed while crossing.",
    "queued_final": "Still waiting for extraction on the last day.",
    "paid_defectors": "Genuine defectors verified and paid.",
    "rejected": "Genuine defectors rejected by screening (not paid).",
    "fraud_claimants": "Impersonators, infiltrators and repeat claimants screened.",
    "fraud_paid": "Fraudulent claimants who passed screening and were paid.",
    "killed_in_action": "Soldiers killed in combat.",
    "wounded": "Soldiers evacuated wounded.",
    "replaced": "Replacements who arrived in depleted companies.",
    "aware_share": "Share of serving soldiers who know the offer, final day.",
    "credibility": "Mean believed probability that promises are kept, final day.",
    "strength_remaining_share": "Soldiers present over establishment, final day.",
    "units_ineffective_share": "Share of companies below the combat-ineffective threshold, final day.",
    "units_ineffective_peak_share": "Largest daily share of combat-ineffective companies.",
    "offer_final_usd": "Cash offer on the last day (0 if the programme closed).",
    "offer_max_usd": "Highest cash offer during the run.",
    "days_to_target": "First day the defected share reached programme.target_share (none: not reached).",
    "programme_cost_usd": "Programme cost, present value at day 0 (USD).",
    "programme_cost_nominal_usd": "Programme cost, undiscounted (USD).",
    "cost_per_genuine_defector_usd": "Programme cost (present value) per paid genuine defector.",
    "fraud_losses_usd": "Payments to fraudulent claimants, present value.",
    "budget_share": "Programme cost as a share of the budget sources.",
    "regime_cost_usd": "What the regime's counter-measures cost it (USD).",
    "regime_loss_usd": "The regime's loss: soldier value × defectors + counter-measure cost (eq. 32).",
    "monitors_final": "Monitors per soldier on the last day.",
    "pay_final_usd_month": "Soldier pay on the last day (USD/month).",
    **{f"defected_share_{t}": f"Share of {t} soldiers who defected." for t in TYPE_NAMES},
}
"""Outcome name → description, in report order."""
OPEN_ENDED = {"days_to_target", "cost_per_genuine_defector_usd"}
"""Outcomes whose 'never' is stored as NaN and read as +∞ (shown as none)."""

OutcomeFromDaily = Callable[["np.ndarray", Scenario], float]
"""An outcome computed from one replicate's daily array (days × ``SERIES``, indexed with ``COL``) and its
scenario."""
DERIVED_OUTCOMES: dict[str, OutcomeFromDaily] = {}
"""Outcomes declared with ``add_outcome``, computed after the built-in ones (empty unless a user adds one)."""


def add_outcome(name: str, description: str, derive: OutcomeFromDaily, open_ended: bool = False) -> None:
    """Declare an outcome computed from the daily series, in this one place.

    ``derive(daily, scenario)`` gets one replicate's daily array (days × ``SERIES``; use ``COL[name]`` for a
    column) and returns a float (NaN for "never" when ``open_ended``). Once added, the outcome is computed
    for every replicate by ``outcomes.replicate_outcomes``, summarised by ``analysis.interval_table``, printed
    by ``defection run``, stored by the results store and shown in the HTML report. Call it before any
    simulation, e.g. in a script that then runs the CLI::

        import numpy as np
        from defection.model import outputs
        outputs.add_outcome("arrived_peak", "Largest daily arrivals.",
                            lambda daily, sc: float(np.max(daily[:, outputs.COL["arrived"]])))
        from defection.cli import main; main()

    Registering the same name twice, or a built-in outcome's name, raises ``ValueError``.
    """
    if name in OUTCOMES:
        raise ValueError(f"outcome {name!r} is already declared")
    OUTCOMES[name] = description
    DERIVED_OUTCOMES[name] = derive
    if open_ended:
        OPEN_ENDED.add(name)
