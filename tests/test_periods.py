"""Before/after and dose observations in one case (`[[observed]] changes`): each period is simulated with common
random numbers, calibrated on and predicted like any observation; bad changes get a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from defection.calibrate.abc import CaseModel, case_run, predictive_check
from defection.calibrate.cases import CaseError, load_case
from defection.calibrate.early import case_cost

CASE = """
[case]
id = "pair"
title = "synthetic before/after"
period = "none"
sources = ["simulated"]
calibration_agents = 2_970

[[observed]]
outcome = "defected_share"
value = 0.05
tolerance = 0.5
tag = "S2"
note = "after the programme started"

[[observed]]
outcome = "defected_share"
value = 0.005
tolerance = 0.5
tag = "S2"
note = "before it started"
{before}

[scenario.simulation]
days = 90
agents = 2_970
replicates = 1

[scenario.regime.response]
mode = "static"

[scenario.credibility]
prior_beta = 0.5

[scenario.preferences]
moral_cost_log_sd = 0.5

[scenario.information]
initial_aware_share = 1.0

[scenario.offer]
cash_usd = 5_000_000.0

[scenario.programme]
extraction_capacity_per_day = 50_000.0
"""


def write(tmp_path: Path, before: str = 'changes = { "offer.cash_usd" = 0.0 }') -> Path:
    path = tmp_path / "pair.toml"
    path.write_text(CASE.format(before=before))
    return path


def test_a_case_with_a_before_period_has_two_scenarios(tmp_path: Path) -> None:
    case = load_case(write(tmp_path), calibrated=())
    assert len(case.scenarios()) == 2
    assert [case.variant(k) for k in range(2)] == [0, 1]
    assert case.scenarios()[1].offer.cash_usd == 0.0 and case.scenarios()[0].offer.cash_usd == 5e6
    assert case_cost(case) == 2 * 2_970 * 90  # both periods are simulated


def test_the_offer_moves_the_flow_between_the_periods_with_common_random_numbers(tmp_path: Path) -> None:
    """Same seed for both periods: the period with the offer has more defections than the one without; and the
    period without it is exactly the case's own scenario with the cash at zero."""
    case = load_case(write(tmp_path), calibrated=())
    stats = CaseModel.case_stats(case, {}, seed=3)
    after, before = stats["pair:0:defected_share"], stats["pair:1:defected_share"]
    assert after > before
    direct = case_run(case, {}, seed=3, variant=1).iloc[0]["defected_share"]
    plain = load_case(write(tmp_path, before=""), calibrated=())
    no_cash = case_run(plain, {"offer.cash_usd": 0.0}, seed=3).iloc[0]["defected_share"]
    assert direct == no_cash
    check = predictive_check([case], None, draws=6, seed=1)
    assert len(check) == 2 and check["median"].iloc[0] > check["median"].iloc[1]


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ('changes = { "preferences.logit_scale" = 0.5 }', "observed[1].changes.preferences.logit_scale"),
        ('changes = { "offer.no_such_field" = 1 }', "observed[1].changes"),
        ('changes = { "offer.cash_usd" = -5.0 }', "offer.cash_usd"),
    ],
)
def test_bad_changes_are_refused_with_the_field(tmp_path: Path, before: str, message: str) -> None:
    with pytest.raises(CaseError, match=re.escape(message)):
        load_case(write(tmp_path, before), calibrated=("preferences.logit_scale",))


def test_the_offer_effect_by_hand_and_where_money_matters() -> None:
    """Eq. 52: log2 of the ratio, floored; in a world where money matters (tests/conftest.py SALIENT) doubling the
    cash raises defections, and against no cash at all too; in the world with no channels nobody hears it."""
    from defection.calibrate.effect import doubling_effect, offer_effect

    from .conftest import SALIENT, scenario

    assert doubling_effect(0.01, 0.02, 1e-6) == 1.0
    assert doubling_effect(0.0, 0.0, 1e-4) == 0.0
    assert doubling_effect(0.0, 4e-4, 1e-4) == 2.0
    sc = scenario(**SALIENT, simulation__days=90)
    money = offer_effect(sc, None, draws=4, seed=2, agents=4_950)
    assert money.agents == 4_950 and money.per_doubling.shape == (4,)
    assert (money.per_doubling > 0).all() and (money.versus_no_cash > 0).all()
    unheard = scenario(
        **{
            **SALIENT,
            "simulation__days": 90,
            "information__channels": [],
            "information__peer_imitation": 0.0,
            "information__initial_aware_share": 0.0,
        }
    )
    deaf = offer_effect(unheard, None, draws=4, seed=2, agents=4_950)
    assert (deaf.per_doubling == 0).all()
    assert set(deaf.summary()) >= {"log2_change_per_doubling", "log2_change_versus_no_cash", "share"}
