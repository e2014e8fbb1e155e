"""`ApplicationReceived`: a customer asks for their borrowing window (topic `credit.applications`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal, get_args

from pydantic import BeforeValidator, Field, StringConstraints

from shared.contracts.envelope import ApplicationId, CustomerId, Event, Part

__all__ = [
    "DEFAULT_LOCALE",
    "Applicant",
    "ApplicationFacts",
    "ApplicationReceived",
    "BureauSignals",
    "Locale",
    "SEGMENTS",
    "Segment",
]

Segment = Literal["individual", "small_business"]
# The segments, in order: the one definition every service and tool uses.
SEGMENTS: tuple[Segment, ...] = get_args(Segment)

# A category code of the applicant's characteristics. Known codes are listed per field; an unseen
# code is not an error: the scorecard puts it in the characteristic's "special" bin (issue 3).
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$")]


# The fleet's language when a customer's is not known: every default in the fleet is this one.
DEFAULT_LOCALE: Final = "zh-CN"


def _normalise_locale(value: object) -> object:
    # Upstream apps send many spellings; the fleet speaks zh-CN (default) and en.
    if value is None:
        return DEFAULT_LOCALE
    if isinstance(value, str):
        lowered = value.strip().replace("_", "-").lower()
        if lowered.startswith("en"):
            return "en"
        return DEFAULT_LOCALE
    return value


Locale = Annotated[
    Literal["zh-CN", "en"],
    BeforeValidator(_normalise_locale),
    Field(description="Customer's language: zh-CN (default) or en; other values fall back to zh-CN."),
]


class Applicant(Part):
    """The applicant's characteristics, as in the UCI German Credit data (codes, not free text).

    Every field may be missing (None): the scorecard scores a missing value with the binning's
    missing bin. Impossible values (a negative duration, an age of 300) are validation errors.
    """

    checking_account: Code | None = Field(
        default=None,
        description="Status of the checking account: lt_0, 0_to_200, ge_200, none.",
        examples=["0_to_200"],
    )
    duration_months: int | None = Field(default=None, ge=1, le=120, description="Duration asked for, months.")
    credit_history: Code | None = Field(
        default=None,
        description=(
            "no_credits_or_all_paid, all_paid_this_bank, existing_paid_duly, past_delay, critical_account."
        ),
        examples=["existing_paid_duly"],
    )
    purpose: Code | None = Field(
        default=None,
        description=(
            "car_new, car_used, furniture, radio_tv, appliances, repairs, education, vacation, "
            "retraining, business, others."
        ),
        examples=["radio_tv"],
    )
    credit_amount: int | None = Field(default=None, ge=1, le=10_000_000, description="Amount of the credit.")
    savings: Code | None = Field(
        default=None, description="Savings: lt_100, 100_to_500, 500_to_1000, ge_1000, unknown_none."
    )
    employment_since: Code | None = Field(
        default=None, description="Present employment since: unemployed, lt_1y, 1_to_4y, 4_to_7y, ge_7y."
    )
    installment_rate_pct: int | None = Field(
        default=None, ge=1, le=100, description="Installment rate in percentage of disposable income."
    )
    other_debtors: Code | None = Field(default=None, description="none, co_applicant, guarantor.")
    residence_since_years: int | None = Field(default=None, ge=0, le=100, description="Present residence since, years.")
    property: Code | None = Field(
        default=None, description="Most valuable property: real_estate, savings_insurance, car_other, unknown_none."
    )
    age_years: int | None = Field(default=None, ge=18, le=110, description="Age in years.")
    other_installment_plans: Code | None = Field(default=None, description="bank, stores, none.")
    housing: Code | None = Field(default=None, description="rent, own, for_free.")
    existing_credits: int | None = Field(default=None, ge=0, le=50, description="Existing credits at this bank.")
    job: Code | None = Field(
        default=None,
        description="unemployed_unskilled_nonresident, unskilled_resident, skilled, management_self_employed.",
    )
    dependents: int | None = Field(default=None, ge=0, le=30, description="People liable to provide maintenance for.")
    telephone: bool | None = Field(default=None, description="A telephone registered in the customer's name.")


class BureauSignals(Part):
    """Signals from the credit bureau, as counts (never the raw report)."""

    overdue_count_12m: int = Field(default=0, ge=0, le=999, description="Overdue payments in the last 12 months.")
    inquiries_3m: int = Field(default=0, ge=0, le=999, description="Hard credit inquiries in the last 3 months.")


class ApplicationFacts(Part):
    """What the policy and notification services need of an application, carried down the chain."""

    segment: Segment = Field(description="individual or small_business.", examples=["individual"])
    region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")] = Field(
        description="ISO 3166-2 region code.", examples=["CN-SH"]
    )
    channel: Code = Field(description="Where the customer applied: app, mini_program, web, partner.", examples=["app"])
    annual_income: int = Field(ge=0, le=1_000_000_000, description="Declared annual income, CNY.")
    requested_amount: int = Field(ge=1, le=100_000_000, description="Limit asked for, CNY.")
    locale: Locale = DEFAULT_LOCALE
    bureau: BureauSignals = Field(default_factory=BureauSignals)
    partner_id: Code | None = Field(
        default=None, description="Partner whose webhook also receives the notification, if any."
    )


class ApplicationReceived(Event):
    """A customer asked for a borrowing window. Emitted by upstream apps; keyed by customer_id."""

    EVENT_TYPE: ClassVar[str] = "ApplicationReceived"

    application_id: ApplicationId
    customer_id: CustomerId
    facts: ApplicationFacts
    applicant: Applicant = Field(default_factory=Applicant)
