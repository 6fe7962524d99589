"""Scenario schema: every model parameter with its unit, default, allowed range and source.

A scenario is a TOML file validated by pydantic v2. The schema below *is* the parameter registry:
``defection params`` and ``defection init`` are generated from it, so a number cannot appear in the
model without a unit, a range and a source (or the words "calibrated" / "assumption").
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def param(default: Any, lo: float | None, hi: float | None, unit: str, source: str, doc: str) -> Any:
    """A scenario field with its registry metadata (unit, range, source, meaning)."""
    extra = {"unit": unit, "source": source, "lo": lo, "hi": hi}
    kwargs: dict[str, Any] = {"default": default, "description": doc, "json_schema_extra": extra}
    if lo is not None:
        kwargs["ge"] = lo
    if hi is not None:
        kwargs["le"] = hi
    return Field(**kwargs)


ROUTE_NAMES = ("cross", "home", "surrender")
"""The ways out of the army besides staying (docs/model.md §7.5b), in code order (route 0, 1, 2)."""
Route = Literal["cross", "home", "surrender"]


def _cross_only() -> list[Route]:
    return ["cross"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# ---------------------------------------------------------------------------------------------
class Meta(Section):
    name: str = Field("proposal-100k", description="Short scenario name shown in run lists.")
    description: str = Field(
        "The proposal (docs/proposal.md): $100,000 cash, a Disneyland trip, asylum and a "
        "Western education offered to Russian soldiers in Ukraine, with war-crimes threats to stayers.",
        description="Free text.",
    )


class Simulation(Section):
    days: int = param(365, 1, 3650, "day", "design: horizon 180–730 d", "Days simulated.")
    replicates: int = param(
        20,
        1,
        100_000,
        "count",
        "design; ≥100 recommended for publication",
        "Stochastic replicates; intervals are taken across them.",
    )
    seed: int = param(20220302, 0, 2**62, "integer", "design", "Master seed of the counter-based RNG.")
    agents: int = param(
        99_000,
        1,
        50_000_000,
        "agents",
        "design: scaled sample of whole companies (Covasim pop_scale)",
        "Simulated soldiers; each stands for soldiers/agents real soldiers.",
    )
    posterior: str = Field(
        "",
        description="Posterior sample from `defection calibrate` (a JSON file; a relative "
        "path is taken from the scenario file's folder). Each replicate then draws its calibrated "
        "parameters from it, so intervals include parameter uncertainty. Empty = none.",
    )
    mode: Literal["full", "threshold"] = Field(
        "full",
        description="'full' = random-utility model (eq. 9–19); 'threshold' = Granovetter "
        "threshold-only mode used for docking (eq. 20).",
    )


class SoldierType(Section):
    share: float = param(0.2, 0.0, 1.0, "share of force", "see type", "Share of the force.")
    hazard_multiplier: float = param(1.0, 0.0, 20.0, "×", "see type", "Multiplier on the daily death hazard (eq. 1).")
    vsl_median_usd: float = param(1.5e6, 1e4, 2e7, "USD", "see type", "Median value of own statistical life (eq. 8).")
    moral_cost_multiplier: float = param(
        1.0, 0.0, 10.0, "×", "see type", "Multiplier on the moral/identity cost of defecting (eq. 12)."
    )
    assault_affinity: float = param(
        1.0, 0.0, 100.0, "×", "see type", "Relative odds that a company of this type is an assault company."
    )
    rear_affinity: float = param(
        1.0, 0.0, 100.0, "×", "see type", "Relative odds that a company of this type is a rear company."
    )


def _type(share: float, hazard: float, vsl: float, moral: float, assault: float, rear: float, why: str) -> Any:
    return Field(
        default_factory=lambda: SoldierType(
            share=share,
            hazard_multiplier=hazard,
            vsl_median_usd=vsl,
            moral_cost_multiplier=moral,
            assault_affinity=assault,
            rear_affinity=rear,
        ),
        description=why,
    )


class SoldierTypes(Section):
    """The five soldier types of docs/model.md §2.1, in a fixed order (index 0–4 in the engine)."""

    contract: SoldierType = _type(
        0.57,
        1.0,
        3.0e5,
        1.0,
        1.0,
        1.0,
        "Contract/volunteer. Share: assumption from POW profile 76% contract incl. PMC/prison [R9] "
        "less convicts and officers. VSL: DERIVED revealed VSL of volunteers $0.1–0.3M [R3]. "
        "Moral multiplier: assumption (reference type).",
    )
    mobilised: SoldierType = _type(
        0.25,
        1.0,
        1.5e6,
        0.6,
        0.5,
        1.0,
        "Mobilised reservists. Share: 244k of 617k in Dec 2023 less losses; POWs 19% [R11, R9]. "
        "VSL: Russian population VSL ≈$1.5M [V5]. Moral 0.6: assumption, involuntary service lowers "
        "loyalty (McLauchlin: conscript units desert more [S4]). Assault affinity 0.5: assumption.",
    )
    convict: SoldierType = _type(
        0.08,
        2.0,
        1.5e5,
        0.7,
        6.0,
        0.2,
        "Convict/'Storm' units. Share: assumption (up to 100k inmates sent [R12]). Hazard ×2: "
        "DERIVED, 14% of identified dead [R6] vs ≈8% of force. VSL: DERIVED low revealed VSL [R3]. "
        "Moral 0.7 and assault affinity 6 (Storm-Z assault units [R12]): assumption.",
    )
    conscript: SoldierType = _type(
        0.05,
        0.2,
        1.5e6,
        0.8,
        0.0,
        10.0,
        "Conscripts (mostly rear). Share: ~5% of POWs [R9]. Hazard ×0.2: rear role "
        "(exposure class, model.md §2.2). VSL: population VSL [V5]. Moral and rear affinity 10: "
        "assumption (conscripts are by law kept out of combat abroad).",
    )
    officer: SoldierType = _type(
        0.05,
        0.7,
        1.5e6,
        2.0,
        1.0,
        1.0,
        "Officers. Share: ~3% of POWs officers, 13% sergeants [R9]; assumption 5%. Hazard ×0.7 "
        "and moral ×2: assumption (5,540 officers among identified dead [R6]).",
    )

    def ordered(self) -> list[tuple[str, SoldierType]]:
        return [(n, getattr(self, n)) for n in TYPE_NAMES]

    @model_validator(mode="before")
    @classmethod
    def _each_type_keeps_its_own_defaults(cls, data: Any) -> Any:
        """A type given in part (`[force.types.conscript]` with only `share`) keeps that type's defaults for the
        fields it does not give, not a generic soldier's (a conscript's hazard ×0.2, not ×1)."""
        if not isinstance(data, dict):
            return data
        completed = dict(data)
        for name, given in data.items():
            factory = cls.model_fields[name].default_factory if name in cls.model_fields else None
            if isinstance(given, dict) and factory is not None:
                completed[name] = {**factory().model_dump(), **given}  # type: ignore[call-arg]
        return completed

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> SoldierTypes:
        total = sum(t.share for _, t in self.ordered())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"type shares must sum to 1, they sum to {total:.6g}")
        return self


TYPE_NAMES = ("contract", "mobilised", "convict", "conscript", "officer")


class Force(Section):
    soldiers: int = param(
        700_000,
        1,
        20_000_000,
        "soldiers",
        "Putin, Jun 2024: 'almost 700,000' in the SVO zone [R11] [S]",
        "Soldiers in theatre represented by the simulation.",
    )
    squad_size: int = param(
        9,
        2,
        30,
        "soldiers",
        "design (squad ≈8–10)",
        "Soldiers per squad; squads are the coordination groups (eq. 18).",
    )
    squads_per_company: int = param(
        11,
        1,
        100,
        "squads",
        "design (company ≈100)",
        "Squads per company; companies are the units (eq. 22).",
    )
    unit_homogeneity: float = param(
        0.8, 0.0, 1.0, "share", "assumption", "Probability that a soldier has his company's dominant type."
    )
    cohesion_base: float = param(
        1.0,
        0.0,
        1.0,
        "index",
        "assumption (Costa & Kahn [S3]: homogeneity raises cohesion)",
        "Cohesion κ_u of a fully homogeneous company (eq. 12a).",
    )
    rear_share: float = param(
        0.30,
        0.0,
        1.0,
        "share of companies",
        "assumption",
        "Base share of companies in the rear exposure class (before type affinity).",
    )
    line_share: float = param(0.55, 0.0, 1.0, "share of companies", "assumption", "Companies on the contact line.")
    assault_share: float = param(0.15, 0.0, 1.0, "share of companies", "assumption", "Assault companies.")
    rear_exposure: float = param(
        0.2,
        0.0,
        20.0,
        "×",
        "design role multiplier (rear 0.2)",
        "Death-hazard multiplier of rear companies (eq. 1).",
    )
    line_exposure: float = param(
        1.0,
        0.0,
        20.0,
        "×",
        "design role multiplier (line 1–3)",
        "Death-hazard multiplier of line companies (eq. 1).",
    )
    assault_exposure: float = param(
        5.0,
        0.0,
        50.0,
        "×",
        "design role multiplier (assault 5–10)",
        "Death-hazard multiplier of assault companies (eq. 1).",
    )
    types: SoldierTypes = Field(default_factory=SoldierTypes, description="Soldier types.")

    @model_validator(mode="after")
    def _class_shares(self) -> Force:
        total = self.rear_share + self.line_share + self.assault_share
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"rear_share + line_share + assault_share must sum to 1, they sum to {total:.6g}")
        return self

    @property
    def company_size(self) -> int:
        return self.squad_size * self.squads_per_company


class Preferences(Section):
    vsl_log_sd: float = param(
        0.8,
        0.0,
        3.0,
        "log-sd",
        "assumption: spans $0.15M–$7M range [V1–V7]",
        "Spread of VSL around the type median (eq. 8).",
    )
    present_bias: float = param(
        0.85,
        0.5,
        1.0,
        "β",
        "meta-analysis β=0.82 [0.74,0.90], bias-corrected 0.87 [P1]",
        "Quasi-hyperbolic present bias on all future payoffs (eq. 4).",
    )
    discount_rate: float = param(
        0.20,
        0.0,
        1.0,
        "per year",
        "Warner & Pleeter: most enlisted >17.5% [P4]",
        "Long-run annual discount rate r (eq. 3).",
    )
    crra: float = param(0.5, 0.0, 0.99, "η", "Holt & Laury [P6]", "Relative risk aversion over money (eq. 2).")
    income_usd_year: float = param(
        9_700.0,
        1_000.0,
        200_000.0,
        "USD/year",
        "73k RUB/month average income [R3] at 90 RUB/USD",
        "Median civilian income W, the CRRA reference and Y_RU (eq. 2, 6).",
    )
    income_log_sd: float = param(
        0.4, 0.0, 2.0, "log-sd", "assumption (regional spread [R3])", "Spread of civilian income."
    )
    moral_cost_median_usd: float = param(
        300_000.0,
        0.0,
        5e6,
        "USD",
        "calibrated (hand-tuned so that with no offer ≈0.2–0.4%/yr cross, pattern P-base; Kuran [C3])",
        "Median latent moral/identity cost m0 (eq. 12).",
    )
    moral_cost_log_sd: float = param(
        1.0, 0.0, 4.0, "log-sd", "calibrated (Kuran [C3]: wide, hidden)", "Heterogeneity of m0 (eq. 12)."
    )
    cohesion_cost_usd: float = param(
        50_000.0,
        0.0,
        5e6,
        "USD",
        "calibrated (Shils & Janowitz [S2])",
        "μ: extra moral cost of abandoning a fully cohesive, intact group (eq. 12).",
    )
    threshold_mean: float = param(
        0.25, -1.0, 2.0, "threshold units", "Granovetter [C1]", "Mean of the idiosyncratic threshold τ_i (eq. 17, 20)."
    )
    threshold_sd: float = param(
        0.15, 0.0, 2.0, "threshold units", "Granovetter [C1, C1b]; range 0.05–0.3", "Spread of τ_i."
    )
    utility_scale_usd: float = param(
        100_000.0,
        1_000.0,
        1e7,
        "USD per threshold unit",
        "assumption",
        "Money that equals one threshold unit; converts Δ to threshold units.",
    )
    logit_scale: float = param(
        0.15,
        0.001,
        10.0,
        "threshold units",
        "calibrated (hand-tuned with m0; McFadden logit [T1])",
        "σ, scale of the daily random-utility shock (eq. 17).",
    )
    peer_weight: float = param(
        0.5,
        0.0,
        10.0,
        "threshold units",
        "calibrated [S5, S6]",
        "φ, weight of the share of co-defectors/defected network neighbours (eq. 17).",
    )
    precedent_weight: float = param(
        2.0,
        0.0,
        50.0,
        "threshold units",
        "calibrated (Lehmann & Zhukov [S6])",
        "ψ, weight of the company's recent defection precedent (eq. 17).",
    )
    precedent_half_life_days: float = param(
        30.0,
        1.0,
        365.0,
        "day",
        "Lehmann & Zhukov [S6]; design 30 d (7–90 d)",
        "Half-life of the precedent index prec_u (eq. 24).",
    )
    complex_contagion_contacts: int = param(
        2,
        1,
        5,
        "contacts",
        "Centola & Macy [C6]",
        "Revealed willing squad-mates needed before the peer term acts (eq. 18).",
    )
    reveal_probability: float = param(
        0.3,
        0.0,
        1.0,
        "per day",
        "calibrated (Kuran [C3])",
        "r0, chance a soldier reveals his willingness to his squad (eq. 16).",
    )
    reveal_monitor_sensitivity: float = param(
        10.0,
        0.0,
        100.0,
        "per monitor/soldier",
        "calibrated (Kuran [C3])",
        "ζ: monitoring suppresses revelation, r = r0·exp(−ζ·M) (eq. 16).",
    )
    has_family_share: float = param(
        0.5,
        0.0,
        1.0,
        "share",
        "POW profile: ~half have children [R9] [S]",
        "Soldiers exposed to family reprisals (eq. 12).",
    )


class Combat(Section):
    death_hazard: float = param(
        3e-4,
        0.0,
        0.05,
        "per day",
        "DERIVED: 243k–352k dead over ≈1,400 d of ~600k [R5]",
        "p0, baseline daily death hazard (eq. 1).",
    )
    wounded_per_killed: float = param(
        3.0,
        0.0,
        10.0,
        "ratio",
        "DERIVED: CSIS ~1.2M casualties incl. up to 325k dead [R13]",
        "Evacuated wounded per soldier killed.",
    )
    intensity: float = param(1.0, 0.0, 10.0, "×", "scenario", "I(t), combat-intensity multiplier (eq. 1).")
    replacement_rate: float = param(
        0.02,
        0.0,
        1.0,
        "per vacancy per day",
        "assumption: recruitment ≈30k/month matches losses [R14]",
        "Daily chance a vacant slot is refilled (eq. 21).",
    )
    replacement_capacity_share_per_day: float = param(
        0.00167,
        0.0,
        0.05,
        "share of force per day",
        "DERIVED: recruitment 30,000–40,000/month [R14], the midpoint over a force of ≈700,000 [R11] "
        "(35,000 / 30 / 700,000); 0 = no cap",
        "ρ_max, the most replacements the army can send in a day, as a share of its force (eq. 21b).",
    )
    remaining_exposure_days: float = param(
        365.0,
        30.0,
        2000.0,
        "day",
        "calibrated (design range 90–730 d)",
        "T, expected remaining front exposure (eq. 7).",
    )
    opportunity_line: float = param(
        0.01,
        0.0,
        1.0,
        "per squad per day",
        "design P(opp) 0.01",
        "Daily crossing opportunity of a line squad (eq. 15).",
    )
    opportunity_assault: float = param(
        0.015,
        0.0,
        1.0,
        "per squad per day",
        "assumption (contact-heavy)",
        "Daily crossing opportunity of an assault squad (eq. 15).",
    )
    opportunity_rear: float = param(
        0.0,
        0.0,
        1.0,
        "per squad per day",
        "design (rear 0)",
        "Daily crossing opportunity of a rear squad (eq. 15).",
    )
    pay_usd_month: float = param(
        2_333.0, 0.0, 50_000.0, "USD/month", "210k RUB/month minimum SVO pay 2024 [R3]", "w, soldier pay (eq. 7)."
    )
    death_benefit_usd: float = param(
        138_000.0, 0.0, 2e6, "USD", "12.4M RUB to family [R7]", "D_death, state payment to the family on death (eq. 7)."
    )
    family_benefit_weight: float = param(
        0.3,
        0.0,
        1.0,
        "weight",
        "calibrated (design default ω_fam)",
        "ω_fam, weight a soldier puts on the death benefit (eq. 7).",
    )


class Crossing(Section):
    catch_base: float = param(
        0.05,
        0.0,
        1.0,
        "probability",
        "calibrated (design default p^c_0)",
        "p^c_0, chance of being caught with no monitors (eq. 9).",
    )
    arrest_constant: float = param(
        2.3, 0.0, 10.0, "k", "Epstein [C2]; Mesa default [C2a]", "k in the arrest form 1−exp(−k·M_v/(1+D)) (eq. 9)."
    )
    monitor_vision: float = param(
        6.0,
        1.0,
        100.0,
        "soldiers",
        "design V_size (squad/platoon)",
        "Soldiers within one monitor's view; M_v = M·V (eq. 9).",
    )
    killed_crossing_base: float = param(
        0.10,
        0.0,
        1.0,
        "probability",
        "calibrated (design default p^x_0; [S1, S7])",
        "p^x_0, chance of being killed while crossing a front of the reference depth (eq. 10, 48).",
    )
    reference_depth_km: float = param(
        10.0,
        0.1,
        200.0,
        "km",
        "kill zone 5–10 km deep in 2023 (Moscow Times, 11 Oct 2025 [W1]) [S2]",
        "L_ref, the depth of front at which killed_crossing_base applies (eq. 48).",
    )


class RegimeResponse(Section):
    """The regime's counter-measures (docs/model.md §7.11): adaptive rules or a simulated best response."""

    mode: Literal["static", "adaptive", "best_response"] = Field(
        "adaptive",
        description="'static': levers fixed; 'adaptive': rules with delays and triggers (eq. 28–31); "
        "'best_response': levers chosen to minimise the regime's loss, using the simulator (eq. 32).",
    )
    update_days: int = param(
        14, 1, 365, "day", "design T_R (7–30 d)", "T_R, days between the regime's reviews of its levers."
    )
    observation_delay_days: int = param(
        7,
        0,
        180,
        "day",
        "assumption",
        "Delay before the regime sees exits (it reviews exits of days [t−delay−T_R, t−delay)).",
    )
    target_exit_share_per_month: float = param(
        0.001,
        1e-6,
        0.5,
        "share of force per 30 days",
        "assumption: ≈ the AWOL level it already tolerates, ~0.1–0.2%/month [R8, R16] [D]",
        "d*, the voluntary-exit rate the regime tolerates.",
    )
    monitor_response: float = param(
        0.5,
        0.0,
        10.0,
        "per review",
        "calibrated (η_M, model.md §7.11)",
        "η_M: M ← M·(1 + η_M·max(0, d̄/d* − 1)) (eq. 28).",
    )
    max_monitors_per_soldier: float = param(0.2, 0.0, 1.0, "monitors/soldier", "design M_u range", "Ceiling on M.")
    blocking_response: float = param(
        0.1, 0.0, 1.0, "per review", "calibrated (η_b)", "η_b: b ← min(b_max, b + η_b·max(0, d̄/d* − 1)) (eq. 29)."
    )
    max_blocking: float = param(
        0.8,
        0.0,
        1.0,
        "share",
        "assumption (Roskomnadzor blocked 256 domains [H5])",
        "Ceiling on the regime's blocking of all channels.",
    )
    propaganda_response: float = param(
        0.05,
        0.0,
        10.0,
        "pseudo-count/day per review",
        "calibrated (η_p)",
        "η_p: prop ← min(prop_max, prop + η_p·max(0, d̄/d* − 1)) (eq. 29).",
    )
    max_propaganda: float = param(
        0.5,
        0.0,
        100.0,
        "pseudo-count/day",
        "assumption",
        "Ceiling on counter-propaganda (negative public evidence per day).",
    )
    state_media_trust: float = param(
        0.5,
        0.0,
        1.0,
        "weight",
        "assumption (model.md §7.9)",
        "Weight soldiers give to regime propaganda (eq. 26c).",
    )
    family_trigger: float = param(
        2.0,
        0.0,
        100.0,
        "× d*",
        "assumption (model.md §7.11)",
        "Family reprisals switch on when d̄ exceeds this multiple of d* (eq. 30).",
    )
    family_reprisal_on_usd: float = param(
        100_000.0, 0.0, 5e6, "USD", "assumption", "F_pol once reprisals are switched on (eq. 30)."
    )
    execution_trigger: float = param(
        3.0, 0.0, 100.0, "× d*", "assumption", "Summary executions rise when d̄ exceeds this multiple of d* (eq. 30)."
    )
    execution_on: float = param(
        0.3, 0.0, 1.0, "probability", "assumption (blocking units [R2])", "π_exec once triggered (eq. 30)."
    )
    sentence_trigger: float = param(
        2.0,
        0.0,
        100.0,
        "× d*",
        "assumption (Sept 2022 code amendments [R1])",
        "Sentences lengthen when d̄ exceeds this multiple of d* (eq. 30).",
    )
    sentence_on_years: float = param(
        10.0, 0.0, 25.0, "years", "Art. 338 pt 3: 5–15 y [R1]", "J once triggered (eq. 30)."
    )
    infiltration_trigger: float = param(
        2.0, 0.0, 100.0, "× d*", "assumption", "The regime starts sending infiltrators above this multiple of d*."
    )
    infiltration_share: float = param(
        0.02,
        0.0,
        0.05,
        "per genuine defector",
        "design I_inf (0–5% of arrivals; [F1])",
        "Infiltrators posing as defectors, per genuine arrival, once triggered.",
    )
    strength_floor: float = param(
        0.9,
        0.0,
        1.0,
        "share",
        "assumption: pay follows recruitment needs (model.md §7.11)",
        "Pay rises when force strength falls below this (eq. 31).",
    )
    pay_rise: float = param(
        0.1,
        0.0,
        2.0,
        "per review",
        "assumption (regional sign-on races [R3])",
        "Relative pay rise per review while below the strength floor (eq. 31).",
    )
    soldier_value_usd: float = param(
        40_000.0,
        0.0,
        1e7,
        "USD",
        "DERIVED: avg one-time payment 1.119M RUB plus first-year pay 3.25M RUB [R3], at 90 RUB/USD, rounded down",
        "v_s, the regime's loss per soldier who defects (eq. 32).",
    )
    blocking_cost_usd_day: float = param(
        20_000.0,
        0.0,
        1e8,
        "USD/day at full blocking",
        "assumption",
        "C_b: daily cost of blocking every channel (eq. 33).",
    )
    propaganda_cost_usd_day: float = param(
        10_000.0, 0.0, 1e8, "USD/day per pseudo-count", "assumption", "Daily cost of counter-propaganda (eq. 33)."
    )
    best_response_trials: int = param(
        12,
        1,
        500,
        "simulations",
        "design (a compute budget, not a model quantity)",
        "Candidate lever sets tried in best-response mode (plus the adaptive rules).",
    )


class Regime(Section):
    monitors_per_soldier: float = param(
        0.05,
        0.0,
        1.0,
        "monitors/soldier",
        "design (cf. Epstein cop density 0.074 [C2a])",
        "M, blocking units/commissars per soldier (eq. 9, 16).",
    )
    assault_monitor_multiplier: float = param(
        3.0,
        0.0,
        20.0,
        "×",
        "assumption ('barrier troops' behind assaults, UK MoD Nov 2022 [R2])",
        "Monitoring density of assault companies relative to M (eq. 9).",
    )
    rear_monitor_multiplier: float = param(
        0.5, 0.0, 20.0, "×", "assumption", "Monitoring density of rear companies relative to M (eq. 9)."
    )
    sentence_years: float = param(
        5.0,
        0.0,
        25.0,
        "years",
        "Art. 352.1: 3–10 y; Art. 337: 5–10 y [R1]",
        "J, sentence if caught or returned (eq. 13).",
    )
    sentence_served_share: float = param(
        0.3,
        0.0,
        1.0,
        "share",
        "Mediazona: real terms 28–35%, most suspended [R8] [S]",
        "Share of sentences actually served.",
    )
    prison_year_cost_vsly: float = param(
        0.5,
        0.0,
        2.0,
        "× VSLY",
        "assumption",
        "Money-equivalent cost of a prison year as a share of the value of a statistical life-year (eq. 13).",
    )
    execution_probability: float = param(
        0.1,
        0.0,
        1.0,
        "probability",
        "calibrated (design default π_exec; blocking units [R2])",
        "π_exec, summary execution if caught (eq. 13).",
    )
    penal_death_risk: float = param(
        0.2,
        0.0,
        1.0,
        "probability",
        "assumption (penal 'Storm' units [R12])",
        "Extra death risk of a caught soldier sent to a penal unit (eq. 13).",
    )
    family_reprisal_usd: float = param(
        20_000.0,
        0.0,
        5e6,
        "USD",
        "calibrated (design F_i; family extracted first [H6])",
        "F_pol, expected cost of reprisals against the family (eq. 12).",
    )
    exchange_return_probability: float = param(
        0.3,
        0.0,
        1.0,
        "probability",
        "calibrated (~6,000 of >10,000 POWs returned [R9])",
        "π_ex, chance a POW is returned in an exchange (eq. 12).",
    )
    prosecution_if_returned: float = param(
        0.5,
        0.0,
        1.0,
        "probability",
        "assumption (returned POWs questioned, often re-sent [R17], secondary source)",
        "Chance a returned POW is prosecuted.",
    )
    assassination_risk: float = param(
        0.002,
        0.0,
        0.2,
        "probability",
        "assumption (Kuzminov [H6])",
        "Perceived chance a defector abroad is killed by the regime (eq. 12).",
    )
    response: RegimeResponse = Field(
        default_factory=RegimeResponse, description="How the regime changes its levers over time (§4.6)."
    )


class Channel(Section):
    name: str = Field("leaflets", description="Channel name.")
    daily_reach: float = param(
        0.003,
        0.0,
        1.0,
        "per day",
        "calibrated (Bass p [I1, I2]; [H5, H7])",
        "ρ_k, daily chance an unblocked, fully funded channel reaches a soldier (eq. 23).",
    )
    coverage: float = param(1.0, 0.0, 1.0, "share", "scenario", "x_k, spend/coverage of the channel.")
    blocked: float = param(
        0.0,
        0.0,
        1.0,
        "share",
        "scenario (Roskomnadzor blocked 256 domains [H5])",
        "b_k, share of the channel blocked by the regime.",
    )


def _default_channels() -> list[Channel]:
    return [
        Channel(name="internet", daily_reach=0.006, coverage=1.0, blocked=0.3),
        Channel(name="leaflets", daily_reach=0.003, coverage=1.0, blocked=0.0),
        Channel(name="radio", daily_reach=0.002, coverage=1.0, blocked=0.0),
    ]


class Information(Section):
    channels: list[Channel] = Field(
        default_factory=_default_channels, description="Media channels (docs/model.md §7.9)."
    )
    reach_multiplier: float = param(
        1.0,
        0.0,
        100.0,
        "×",
        "calibrated (Bass p [I1, I2]; `defection calibrate`)",
        "Scales every channel's daily reach ρ_k: the external Bass coefficient p_ext "
        "(eq. 23b) shared across historical cases.",
    )
    peer_imitation: float = param(
        0.2,
        0.0,
        1.0,
        "per day",
        "calibrated (Bass q [I1, I2])",
        "q, awareness hazard from a fully aware network (eq. 23).",
    )
    initial_aware_share: float = param(0.0, 0.0, 1.0, "share", "scenario", "Soldiers who know the offer on day 0.")
    offer_noise_log_sd: float = param(
        0.3, 0.0, 2.0, "log-sd", "calibrated (design default σ_B)", "σ_B, noise in the perceived offer (eq. 25)."
    )
    network_degree: int = param(
        8, 2, 30, "ties", "Watts [C5]; design range 6–12", "Ties per soldier in the within-company small world."
    )
    network_rewiring: float = param(
        0.05, 0.0, 1.0, "probability", "Watts [C5]; design", "Watts–Strogatz rewiring probability."
    )


class Credibility(Section):
    prior_alpha: float = param(
        2.0,
        0.01,
        100.0,
        "pseudo-count",
        "design prior Beta(2,2)",
        "α0 of the Beta belief that promises are honoured (eq. 26).",
    )
    prior_beta: float = param(
        2.0, 0.01, 100.0, "pseudo-count", "design prior Beta(2,2)", "β0 of the Beta belief (eq. 26)."
    )
    memory: float = param(
        0.995,
        0.9,
        1.0,
        "per day",
        "calibrated (design range λ_c 0.98–1)",
        "λ_c, daily persistence of evidence (eq. 26).",
    )
    weight_arrival: float = param(
        0.5,
        0.0,
        100.0,
        "pseudo-count per comrade",
        "calibrated",
        "Positive evidence from each company comrade who got across (eq. 26).",
    )
    weight_killed: float = param(
        2.0,
        0.0,
        100.0,
        "pseudo-count per comrade",
        "calibrated; negative > positive (model.md §7.9)",
        "Negative evidence from each comrade killed while surrendering (eq. 26).",
    )


class ThreatToStayers(Section):
    prosecution_probability: float = param(
        1e-3,
        0.0,
        0.2,
        "probability",
        "design π_wc (weak certainty [D2])",
        "π_wc, perceived chance a stayer is prosecuted for war crimes (eq. 7).",
    )
    sentence_years: float = param(10.0, 0.0, 30.0, "years", "design Pen_wc", "Sentence threatened (eq. 7).")
    amnesty_for_defectors: bool = Field(True, description="Defectors are exempt from the threat (eq. 12).")


class Schedule(Section):
    """How the cash offer changes over time (docs/model.md §7.10), eq. 27."""

    rule: Literal["flat", "announced_escalation", "unannounced_escalation", "ratchet_topup", "deadline", "adaptive"] = (
        Field(
            "flat",
            description="flat | announced_escalation | unannounced_escalation | "
            "ratchet_topup (escalation with retroactive top-up) | deadline | adaptive "
            "(sweeten until target).",
        )
    )
    growth_per_step: float = param(
        0.0,
        -0.9,
        10.0,
        "share per step",
        "scenario (proposal: 'keep on making the offer richer')",
        "g: the offer is multiplied by (1 + g) every step_days.",
    )
    step_days: int = param(30, 1, 365, "day", "scenario", "Days between changes of the offer.")
    max_cash_usd: float = param(1e8, 0.0, 1e9, "USD", "scenario", "Ceiling on the cash offer.")
    deadline_day: int = param(
        0,
        0,
        3650,
        "day",
        "scenario (deadline effect [E5])",
        "Last day the offer is open (rule 'deadline'; must be after offer.start_day).",
    )
    target_share_per_month: float = param(
        0.01,
        0.0,
        1.0,
        "share of force per 30 days",
        "scenario",
        "Rule 'adaptive': raise until this many defect per 30 days.",
    )
    budget_cap_usd: float = param(
        0.0,
        0.0,
        1e13,
        "USD",
        "scenario (0 = no cap)",
        "Programme stops raising, and closes, once committed cost reaches this.",
    )
    expectation_update: float = param(
        0.1,
        0.0,
        1.0,
        "per day",
        "design λ_g (0.05–0.3)",
        "λ_g, adaptive-expectation weight for unannounced raises (eq. 25c).",
    )
    opportunity_persistence: float = param(
        0.999,
        0.9,
        1.0,
        "per day",
        "design π_opp",
        "π_opp, daily survival of the chance to defect later (eq. 19).",
    )
    raise_credibility_cost: float = param(
        0.5,
        0.0,
        100.0,
        "pseudo-count",
        "assumption (unannounced increases cost credibility; model.md §7.9)",
        "Negative public evidence from each unannounced raise (eq. 26c).",
    )


class Offer(Section):
    cash_usd: float = param(
        100_000.0, 0.0, 1e8, "USD", "proposal (docs/proposal.md)", "B, cash offered to each defector."
    )
    start_day: int = param(0, 0, 3650, "day", "scenario", "Day the offer is announced.")
    share_on_arrival: float = param(
        0.5,
        0.0,
        1.0,
        "share",
        "design φ_now",
        "φ_now, share of cash paid on arrival; the rest after the war (eq. 4).",
    )
    deferred_delay_years: float = param(
        2.0,
        0.0,
        30.0,
        "years",
        "assumption ('after the war' [H4])",
        "T_post, delay before deferred payments begin (eq. 4).",
    )
    deferred_instalments: int = param(1, 1, 30, "years", "assumption", "T_pay, yearly instalments.")
    asylum_probability: float = param(
        0.5,
        0.0,
        1.0,
        "probability",
        "design π_asy (calibrate)",
        "π_asy, chance asylum/resettlement is delivered (eq. 5).",
    )
    resettled_income_usd_year: float = param(
        25_000.0,
        0.0,
        500_000.0,
        "USD/year",
        "assumption (refugee earnings; OECD [K2])",
        "Y_West, income after resettlement (eq. 6).",
    )
    education: bool = Field(True, description="A Western education is part of the package (eq. 6).")
    education_premium_usd_year: float = param(
        8_000.0, 0.0, 200_000.0, "USD/year", "assumption", "Extra yearly income from the education (eq. 6)."
    )
    exile_cost_usd: float = param(
        40_000.0, 0.0, 5e6, "USD", "calibrated", "E, one-off money-equivalent cost of exile (eq. 6)."
    )
    working_life_years: int = param(30, 1, 60, "years", "assumption", "T_life in eq. 6.")
    trip_value_usd: float = param(
        7_000.0, 0.0, 1e6, "USD", "Disney family trip $6.3–6.9k [K3]", "Consumption value of the trip (eq. 5)."
    )
    family_extraction_probability: float = param(
        0.0,
        0.0,
        1.0,
        "probability",
        "scenario (GUR extracted Kuzminov's family [H6])",
        "Chance the family is brought out, removing reprisals (eq. 12).",
    )
    protection: float = param(
        0.5, 0.0, 1.0, "share", "assumption", "Share of the assassination risk removed by protection abroad (eq. 12)."
    )
    rewards: list[Route] = Field(
        default_factory=_cross_only,
        min_length=1,
        description="The exit routes the offer pays for (eq. 44): a hotline rewards cross and surrender, an "
        "amnesty home. A route must be open (routes.<route>.open) to be rewarded.",
        json_schema_extra={"unit": "routes", "source": "scenario (the programme's terms)", "lo": None, "hi": None},
    )
    threat: ThreatToStayers = Field(default_factory=ThreatToStayers, description="War-crimes threat to those who stay.")
    schedule: Schedule = Field(default_factory=Schedule, description="How the offer changes over time.")

    @model_validator(mode="after")
    def _consistent_schedule(self) -> Offer:
        sch = self.schedule
        if sch.rule == "deadline" and sch.deadline_day <= self.start_day:
            raise ValueError(
                f"schedule.deadline_day = {sch.deadline_day} is not after offer.start_day = "
                f"{self.start_day}; a deadline must fall after the offer starts"
            )
        if sch.rule == "adaptive" and sch.growth_per_step <= 0:
            raise ValueError(
                f"schedule.growth_per_step = {sch.growth_per_step} with rule 'adaptive': sweetening "
                "until a target needs a positive growth per step"
            )
        if sch.rule in ("announced_escalation", "unannounced_escalation", "ratchet_topup") and sch.growth_per_step == 0:
            raise ValueError(f"schedule.rule = '{sch.rule}' needs a non-zero schedule.growth_per_step")
        if 0 < sch.budget_cap_usd < self.cash_usd:
            raise ValueError(
                f"schedule.budget_cap_usd = {sch.budget_cap_usd:g} is below the first payment "
                f"(offer.cash_usd = {self.cash_usd:g}); use 0 for no cap"
            )
        if sch.max_cash_usd < self.cash_usd:
            raise ValueError(
                f"schedule.max_cash_usd = {sch.max_cash_usd:g} is below offer.cash_usd = {self.cash_usd:g}"
            )
        return self


class CredibilityEvent(Section):
    name: str = Field("paid defector assassinated abroad", description="What happens.")
    day: int = param(
        -1, -1, 3650, "day", "scenario (-1 = at random, at rate_per_day)", "Day of the event, or -1 for a random event."
    )
    rate_per_day: float = param(0.0, 0.0, 1.0, "per day", "scenario", "Daily probability of a random event (day = -1).")
    weight: float = param(
        -10.0,
        -1000.0,
        1000.0,
        "pseudo-count",
        "assumption (negative events weigh more, model.md §7.9; Kuzminov [H6])",
        "Evidence added for every soldier: negative = betrayal, positive = a kept promise.",
    )


class BudgetSource(Section):
    name: str = Field("immobilised Russian central-bank assets", description="Source of money.")
    amount_usd: float = param(
        2.8e11, 0.0, 1e14, "USD", "~€260bn (~$280–283bn) immobilised [K1]", "Money available from this source."
    )


def _default_sources() -> list[BudgetSource]:
    return [BudgetSource()]


class Programme(Section):
    """The offering programme's operations and costs (docs/model.md §7.10, §7.12)."""

    extraction_capacity_per_day: float = param(
        50.0,
        0.1,
        1e5,
        "soldiers/day",
        "assumption for a scaled-up programme; observed ≈0.5/day for the hotline [H5], Colombia ≈10/day at peak [H9]",
        "K_ext, surrenders the programme can extract per day (eq. 34).",
    )
    queue_detection_per_day: float = param(
        0.01,
        0.0,
        1.0,
        "per day",
        "calibrated (model.md §7.10)",
        "Daily chance a soldier waiting for extraction is detected (eq. 34).",
    )
    extraction_crossing_risk: float = param(
        0.5,
        0.0,
        1.0,
        "×",
        "assumption (surrender protocol [H7b])",
        "Crossing-death risk of a guided extraction relative to p^x (eq. 34).",
    )
    weight_caught_waiting: float = param(
        1.0,
        0.0,
        100.0,
        "pseudo-count per comrade",
        "calibrated",
        "Negative evidence from each comrade detected while waiting (eq. 26).",
    )
    screening_sensitivity: float = param(
        0.8,
        0.0,
        1.0,
        "probability",
        "design s_scr (0.5–0.95)",
        "Chance a fraudulent claimant is detected (eq. 35).",
    )
    screening_specificity: float = param(
        0.98, 0.0, 1.0, "probability", "assumption", "Chance a genuine defector is accepted and paid (eq. 35)."
    )
    impersonators_per_defector: float = param(
        0.1,
        0.0,
        10.0,
        "per genuine defector at $100k",
        "calibrated (Chieu Hoi: 21.5–25% genuine [H8] is an upper bound on fraud)",
        "Impersonators claiming the bounty (eq. 35).",
    )
    impersonation_elasticity: float = param(
        0.5,
        0.0,
        3.0,
        "elasticity",
        "assumption (cobra effect [F3])",
        "Impersonators scale with (cash/$100k)^elasticity (eq. 35).",
    )
    recycled_share: float = param(
        0.05,
        0.0,
        1.0,
        "per exchanged POW",
        "assumption",
        "Share of POWs returned in exchanges who claim again (eq. 35).",
    )
    discount_rate: float = param(
        0.03,
        0.0,
        0.2,
        "per year",
        "assumption (social discount rate; UK Green Book 3.5%)",
        "Rate at which programme costs are discounted to day 0 (eq. 36).",
    )
    trip_cost_usd: float = param(
        7_000.0, 0.0, 1e6, "USD", "Disney family trip $6.3–6.9k [K3]", "Cost of the trip per paid defector."
    )
    resettlement_usd_year: float = param(
        12_000.0,
        0.0,
        1e6,
        "USD/year",
        "OECD ≈€10k first year; Germany €12.7k/yr [K2]",
        "Resettlement and integration per person-year.",
    )
    resettlement_years: int = param(
        3, 0, 30, "years", "assumption (costs decline after the first years, OECD)", "Years of resettlement support."
    )
    education_usd_year: float = param(
        15_000.0,
        0.0,
        1e6,
        "USD/year",
        "assumption: $20–60k/yr US, near-free in Germany (unverified [M])",
        "Education cost per student-year.",
    )
    education_years: int = param(4, 0, 10, "years", "assumption", "Years of education funded.")
    education_takeup: float = param(0.5, 0.0, 1.0, "share", "assumption", "Resettled defectors who study.")
    protection_usd_year: float = param(
        5_000.0, 0.0, 1e7, "USD/year", "assumption (Kuzminov [H6])", "Protection per resettled defector-year."
    )
    protection_years: int = param(5, 0, 50, "years", "assumption", "Years of protection.")
    screening_usd: float = param(500.0, 0.0, 1e6, "USD per claimant", "assumption", "Screening each claimant.")
    extraction_usd: float = param(
        2_000.0, 0.0, 1e6, "USD per extraction", "assumption", "Extracting one soldier from the line."
    )
    communications_usd_day: float = param(
        20_000.0,
        0.0,
        1e9,
        "USD/day per channel",
        "assumption (Colombia: $21M/yr for aid, rewards and outreach [H9])",
        "Cost of running one fully covered channel for a day.",
    )
    pow_upkeep_usd_month: float = param(
        243.0, 0.0, 1e5, "USD/month", "≈10,000 UAH/month [H5b]", "Upkeep of a defector held as a POW (not resettled)."
    )
    pow_months: int = param(
        24, 0, 600, "months", "assumption (until exchange or the war's end)", "Months a non-resettled defector is held."
    )
    events: list[CredibilityEvent] = Field(
        default_factory=list, description="Credibility events, scheduled or random (eq. 26c)."
    )
    budget_sources: list[BudgetSource] = Field(
        default_factory=_default_sources, description="Money available to pay for the programme."
    )
    target_share: float = param(
        0.10,
        0.0,
        1.0,
        "share of force",
        "Lyall: mass desertion ≥10% [S8]",
        "Defected share whose first day is reported as days_to_target.",
    )


class War(Section):
    """The kind of war: what sets which exit routes are open and how risky each is (docs/model.md §7.6c)."""

    kind: Literal["conventional", "insurgency", "mixed"] = Field(
        "conventional",
        description="A conventional front, an insurgency without one, or a mix (docs/model.md §7.6c lists the "
        "settings of each).",
    )
    front_depth_km: float = param(
        10.0,
        0.1,
        200.0,
        "km",
        "5–10 km in 2023; 15–20, locally 30–40 km, by late 2025 (Moscow Times [W1]; Zaluzhnyi 20–30 km [W2]) [S2]",
        "L, depth of the zone a crosser must pass under fire; an insurgency's walk to a post ≈ 0.5 km (eq. 48).",
    )
    home_distance_km: float = param(
        1_000.0,
        0.0,
        20_000.0,
        "km",
        "assumption (Russian soldiers in Ukraine: 500–2,000 km [M])",
        "d, distance from the unit to the soldiers' homes (eq. 50).",
    )
    enemy_holds_home_share: float = param(
        0.0,
        0.0,
        1.0,
        "share",
        "scenario (Confederate home regions under Union occupation; Syrian opposition-held towns [W3])",
        "e, share of the soldiers' home areas the enemy holds: a deserter there is out of his side's reach but must "
        "cross the lines to get home (eq. 49).",
    )
    manoeuvre: float = param(
        0.0,
        0.0,
        1.0,
        "index",
        "scenario (0 positional, as Ukraine 2024–25; 1 a front-wide breakthrough, as Germany 1918)",
        "m, how mobile the war is: breakthroughs and encirclements make surrender possible (eq. 51).",
    )
    collapse_start_day: int = param(
        0,
        0,
        3650,
        "day",
        "scenario (Caporetto: day 0 of the case; the Gulf ground war: day 38 of 42 [S])",
        "t_c, the first day on which the front is broken (eq. 53).",
    )
    collapse_days: int = param(
        0,
        0,
        3650,
        "day",
        "scenario (0: the front holds, as in Ukraine 2023–25 [S2]; Caporetto 20 days [S2]; the Gulf's 100-hour "
        "ground war, 4 days [S])",
        "D_c, how many days the front stays broken: on these days companies can be overrun (eq. 53).",
    )


class DesertHome(Section):
    """Desert home: leave the unit and hide at home or abroad without reaching the enemy (eq. 42–44)."""

    open: bool = Field(
        True,
        description="The route is open in this war (Russian soldiers leave their units for home [S]; closed with the "
        "surrender route, the model has only crossing, as before issue 12).",
    )
    daily_opportunity: float = param(
        0.002,
        0.0,
        1.0,
        "per squad per day",
        "assumption (leave, hospital and rear postings; calibrate)",
        "π^H, daily chance a squad's members can walk away unseen, every class alike (eq. 42).",
    )
    catch_probability: float = param(
        0.3,
        0.0,
        1.0,
        "probability",
        "Confederacy: 31,056 of 104,428 deserters officially returned (0.30) [S]; assumption elsewhere",
        "p^c_H, chance a deserter is eventually caught by his own side (eq. 43).",
    )
    returned_to_unit_probability: float = param(
        0.7,
        0.0,
        1.0,
        "probability",
        "Mediazona: real terms in 28–35% of AWOL convictions, most suspended and sent back [R8] [S]",
        "ρ_ret, chance a caught first offender is sentenced (suspended) and returned to his unit (eq. 44).",
    )
    sentence_years: float = param(
        5.0,
        0.0,
        25.0,
        "years",
        "Art. 337–338: AWOL 5–10 y, desertion up to 15 y [R1]",
        "J_H, sentence of a deserter who is not returned (eq. 44).",
    )
    return_penalty_usd: float = param(
        20_000.0,
        0.0,
        1e7,
        "USD",
        "assumption (returned convicts sent to assault units [R8])",
        "C_ret, money-equivalent cost of being returned to the unit with a record (eq. 44).",
    )
    hiding_cost_usd: float = param(
        30_000.0,
        0.0,
        1e7,
        "USD",
        "assumption (a year of lost income and legal status)",
        "C_hide, money-equivalent cost of living in hiding (eq. 44).",
    )
    family_exposure: float = param(
        1.0,
        0.0,
        5.0,
        "×",
        "assumption (the family is where a deserter hides)",
        "f_H, family reprisals against a deserter relative to a defector's (eq. 44).",
    )
    rear_multiplier: float = param(
        10.0,
        0.0,
        100.0,
        "×",
        "DERIVED: 80% of Ukrainian AWOL from training centres [W4] [S2], if 10–30% of men are in the rear [M]",
        "m_rear, the desertion opportunity of a rear squad relative to a line or assault squad (eq. 50).",
    )
    reference_distance_km: float = param(
        1_000.0,
        0.0,
        20_000.0,
        "km",
        "assumption (a Russian soldier's home and the front in Ukraine)",
        "d_ref, the distance home at which daily_opportunity applies (eq. 50).",
    )
    distance_scale_km: float = param(
        300.0,
        10.0,
        10_000.0,
        "km",
        "assumption ('a few hundred miles' from home left little hope of getting back [W5]) [M]",
        "d_0, the distance over which the chance to get home falls by a factor e (eq. 50).",
    )
    enemy_held_catch_probability: float = param(
        0.05,
        0.0,
        1.0,
        "probability",
        "assumption (beyond the reach of his own side's police)",
        "p^c_enemy, chance a deserter hiding in a home area the enemy holds is caught (eq. 49).",
    )


class SurrenderInCombat(Section):
    """Surrender in combat: give up in place when overrun or in a hopeless position (eq. 42–44)."""

    open: bool = Field(True, description="The route is open in this war (Russian soldiers surrender in combat [S]).")
    daily_opportunity: float = param(
        0.002,
        0.0,
        1.0,
        "per squad per day at unit exposure",
        "assumption (calibrate)",
        "π^S, daily chance of a position where surrender is possible, times class exposure and intensity (eq. 42).",
    )
    monitor_factor: float = param(
        0.5,
        0.0,
        5.0,
        "×",
        "assumption (blocking units watch a fight less than a crossing)",
        "Monitoring of a surrender relative to a crossing, in eq. 9 (eq. 43).",
    )
    death_probability: float = param(
        0.1,
        0.0,
        1.0,
        "probability",
        "assumption (prisoner killing deterred surrender, Ferguson [S7])",
        "p^x_S, chance of being killed while surrendering at intensity 1 (eq. 43).",
    )
    manoeuvre_ratio: float = param(
        10.0,
        1.0,
        100.0,
        "×",
        "DERIVED: German captures ×14 in the mobile last 4 months of 1918 (Watson 2014 [W6]) [S]; ×4–6 in the "
        "Kursk incursion, Aug 2024 [W7] [S2]",
        "R_m, surrender opportunity in a fully mobile war relative to a positional one (eq. 51).",
    )
    overrun_probability: float = param(
        0.05,
        0.0,
        1.0,
        "per company per day at intensity 1",
        "calibrated (Caporetto: 265,000–300,000 captured of 1.5M in 20 days [S2]; the Gulf: ~87,000 in a 4-day ground "
        "war [S]); default an assumption",
        "ε_0, chance that a company is overrun or encircled on a day the front is broken, times intensity (eq. 53a).",
    )
    fight_on_death_probability: float = param(
        0.3,
        0.0,
        1.0,
        "probability",
        "assumption (an overrun unit that fights on is destroyed or captured; Caporetto's encircled units [S2])",
        "p_f, chance that a soldier of an overrun company who fights on instead of leaving is killed (eq. 53b).",
    )


class Routes(Section):
    """The ways out of the army besides crossing to the other side (docs/model.md §7.5b)."""

    home: DesertHome = Field(default_factory=DesertHome, description="Desert home.")
    surrender: SurrenderInCombat = Field(default_factory=SurrenderInCombat, description="Surrender in combat.")

    def open_routes(self) -> tuple[str, ...]:
        """The routes open in this war, crossing always among them."""
        return ("cross", *tuple(r for r in ("home", "surrender") if getattr(self, r).open))


class Units(Section):
    combat_ineffective_threshold: float = param(
        0.6,
        0.05,
        1.0,
        "share of establishment",
        "scenario; doctrine 3/10/30% [U1], breakpoints [U2]",
        "θ_CE: a company below this strength is combat-ineffective (eq. 22).",
    )


class Scenario(Section):
    """A complete, validated scenario."""

    meta: Meta = Field(default_factory=Meta)
    simulation: Simulation = Field(default_factory=Simulation)
    force: Force = Field(default_factory=Force)
    preferences: Preferences = Field(default_factory=Preferences)
    combat: Combat = Field(default_factory=Combat)
    crossing: Crossing = Field(default_factory=Crossing)
    regime: Regime = Field(default_factory=Regime)
    information: Information = Field(default_factory=Information)
    credibility: Credibility = Field(default_factory=Credibility)
    offer: Offer = Field(default_factory=Offer)
    programme: Programme = Field(default_factory=Programme)
    units: Units = Field(default_factory=Units)
    routes: Routes = Field(default_factory=Routes)
    war: War = Field(default_factory=War)

    @model_validator(mode="after")
    def _sizes(self) -> Scenario:
        company = self.force.company_size
        if self.simulation.agents < company:
            raise ValueError(
                f"simulation.agents = {self.simulation.agents} is smaller than one company "
                f"({company} = force.squad_size × force.squads_per_company)"
            )
        if self.simulation.agents > self.force.soldiers:
            raise ValueError(
                f"simulation.agents = {self.simulation.agents} is more than force.soldiers = "
                f"{self.force.soldiers}; an agent cannot stand for less than one soldier"
            )
        return self

    @model_validator(mode="after")
    def _rewarded_routes_open(self) -> Scenario:
        closed = [r for r in self.offer.rewards if r not in self.routes.open_routes()]
        if closed:
            raise ValueError(
                f"offer.rewards = {self.offer.rewards} rewards {closed}, which routes.{closed[0]}.open = false "
                "closes; open the route or drop it from the rewards"
            )
        if len(set(self.offer.rewards)) != len(self.offer.rewards):
            raise ValueError(f"offer.rewards = {self.offer.rewards} names a route twice")
        return self

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
