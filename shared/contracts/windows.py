"""`WindowOpened` / `WindowClosed`: the policy's decision on a borrowing window (topic `credit.windows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.applications import DEFAULT_LOCALE, Locale, Segment
from shared.contracts.envelope import ApplicationId, CustomerId, Event, FreeText, Part
from shared.contracts.scores import Reason, RecourseAction

__all__ = [
    "Category",
    "Decision",
    "DecisionDelayed",
    "LimitBasis",
    "RuleThreshold",
    "Trigger",
    "WindowClosed",
    "WindowOpened",
]

Category = Literal["credit", "strategy", "system", "regulatory"]
# review: a person overturned a decision on review; suspension: an operator suspended the customer.
Trigger = Literal["application", "expiry", "pause", "redecision", "review", "suspension"]
# reviewer: the limit a person set on review (still under the regulatory caps).
Bound = Literal["risk_grade", "requested_amount", "income_cap", "absolute_cap", "segment_budget", "reviewer"]


class LimitBasis(Part):
    """How the limit was reached: the rule that bound it, and the parameters of the rules that apply.

    Nothing here is derived from the customer's income (`credit.windows` is kept forever): the
    income-based cap is carried as its rule (`income_fraction`), never as an amount. Schema version 1
    of `WindowOpened` carried `grade_limit` and `income_cap` (both income times a factor); version 2
    dropped them, and a version-1 basis read today simply ignores them.
    """

    cycle_factor: float = Field(gt=0, description="Macro cycle factor applied.")
    programme: str | None = Field(default=None, max_length=64, description="Segment programme that boosted the limit.")
    programme_boost: float = Field(default=1.0, gt=0, description="Multiplier from the programme.")
    income_fraction: float | None = Field(
        default=None, gt=0, le=1, description="The income rule: a person's balance at most this share of annual income."
    )
    absolute_cap: int | None = Field(
        default=None, ge=0, description="Regulatory absolute cap per person (the same for everyone)."
    )
    programme_part: int = Field(default=0, ge=0, description="Part of the limit charged to the programme's budget.")
    budget_available: int | None = Field(default=None, ge=0, description="Segment budget left when decided.")
    bound_by: Bound = Field(description="What set the final limit.")
    multiplier: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="The policy's limit multiplier for the customer's segment, region and channel.",
    )
    budget_period: str | None = Field(
        default=None,
        max_length=16,
        description="The budget period the limit was charged to (e.g. 2026-11); none: the segment's budget has no period.",
    )


class RuleThreshold(Part):
    """The rule that closed a window, as the customer is told it (credit education): its threshold,
    and where the rule compared a count of the customer's own, that count.

    Knock-outs: at most `threshold` overdues (inquiries) in `period_months`; the score cut-off: the
    points needed (`value`: the customer's points); the income cap: the share of annual income; the
    absolute cap and the minimum limit: amounts in CNY. Never an amount derived from income.
    """

    rule: str = Field(max_length=64, description="The closure reason this threshold belongs to.", examples=["knockout_inquiries"])
    threshold: float = Field(description="The rule's parameter, from the policy version that decided.", examples=[3])
    value: float | None = Field(default=None, description="The customer's own figure the rule compared, if any.", examples=[5])
    period_months: int | None = Field(default=None, ge=1, le=120, description="The period a count covers.", examples=[3])


class Decision(Event):
    """Fields every decision carries. A decision names the policy and model versions behind it."""

    decision_id: uuid.UUID = Field(description="Id of this decision; the reference a customer quotes.")
    decision_seq: int = Field(ge=1, description="Monotonic per customer: a higher sequence is newer.")
    application_id: ApplicationId
    customer_id: CustomerId
    segment: Segment | None = Field(default=None, description="None only when the application could not be read.")
    region: str | None = Field(default=None, max_length=12, description="Region code (for pauses and rebuilds).")
    channel: str | None = Field(
        default=None, max_length=40, description="Application channel (for pauses and rebuilds)."
    )
    locale: Locale = DEFAULT_LOCALE
    partner_id: str | None = Field(default=None, max_length=40)
    policy_version: str = Field(max_length=80, description="name@version of the policy used.", examples=["default@1"])
    model_id: str | None = Field(default=None, max_length=120)
    trigger: Trigger = Field(default="application", description="What caused the decision.")
    score_disclosed: bool = Field(
        default=False, description="The policy lets the customer be told their points, grade and the cut-off."
    )
    reviewed_decision_id: uuid.UUID | None = Field(
        default=None, description="For a decision made on review (trigger `review`): the decision a person reviewed."
    )
    review_note: FreeText | None = Field(default=None, max_length=1000, description="The reviewer's note to the customer (review only).")


class WindowOpened(Decision):
    """The borrowing window is open: a limit, a price and an expiry.

    Schema version 2: the basis carries no income-derived amount (see `LimitBasis`); version 1 is
    still accepted.
    """

    EVENT_TYPE: ClassVar[str] = "WindowOpened"
    SCHEMA_VERSION: ClassVar[int] = 2
    ACCEPTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, 2})

    limit: int = Field(gt=0, description="Credit limit, CNY.", examples=[20000])
    apr: float = Field(gt=0, lt=1, description="Annual percentage rate.", examples=[0.1095])
    daily_rate: float = Field(gt=0, lt=0.01, description="Daily rate (APR / 365).", examples=[0.0003])
    valid_until: datetime = Field(description="The window closes at this time unless renewed.")
    grade: str = Field(max_length=2)
    pd: float = Field(ge=0, le=1)
    points: float
    expected_loss: float = Field(ge=0, description="limit x PD x LGD, CNY: what the window takes from the loss budget.")
    basis: LimitBasis


class WindowClosed(Decision):
    """The borrowing window is closed, with the category and reasons the customer is told."""

    EVENT_TYPE: ClassVar[str] = "WindowClosed"

    category: Category
    reason: str = Field(max_length=64, description="Code of the rule that closed it.", examples=["score_below_cutoff"])
    reasons: tuple[Reason, ...] = Field(default=(), max_length=4, description="Scorecard reasons (credit).")
    recourse: tuple[RecourseAction, ...] = Field(default=(), max_length=8)
    retry_after: datetime | None = Field(default=None, description="When trying again makes sense (strategy, system).")
    closes_decision_id: uuid.UUID | None = Field(
        default=None, description="For expiry or a pause: the earlier opened decision this closes."
    )
    grade: str | None = Field(default=None, max_length=2)
    pd: float | None = Field(default=None, ge=0, le=1)
    points: float | None = None
    threshold: RuleThreshold | None = Field(default=None, description="The closing rule's threshold (credit and regulatory closures).")


class DecisionDelayed(Event):
    """An application waits longer than the policy's bound because Redis or the broker is away.

    Not a decision: the customer is told once that it is a technical problem, not their credit, and
    that it will be decided as soon as it clears; exactly one decision follows. Its id is derived
    from the application, so every copy (a retry, another replica) is the same notice.
    """

    EVENT_TYPE: ClassVar[str] = "DecisionDelayed"

    application_id: ApplicationId
    customer_id: CustomerId
    decision_id: uuid.UUID = Field(description="The id the application's decision will carry (its reference, told in advance).")
    locale: Locale = DEFAULT_LOCALE
    segment: Segment | None = None
    partner_id: str | None = Field(default=None, max_length=40)
    waiting_since: datetime = Field(description="When the application was scored and began to wait for its decision.")
    cause: str = Field(max_length=200, description="What is away, for operators (never shown to the customer).", examples=["ConnectionError"])
