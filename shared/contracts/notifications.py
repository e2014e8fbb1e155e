"""`NotificationSent`: the customer was told (topic `credit.notifications`)."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.applications import Locale
from shared.contracts.envelope import ApplicationId, CustomerId, Event
from shared.contracts.windows import Category

__all__ = ["NotificationSent"]


class NotificationSent(Event):
    """A rendered message delivered on a channel: exactly once per decision and channel, once per
    drawdown outcome or repayment, and once per notice that is not a decision (`about`: a delayed
    decision, a review received or concluded).

    Schema version 2 tells drawdown outcomes and repayments too (`about` drawdown, `outcome`
    drawdown_approved, drawdown_refused or repayment_applied): then `decision_id` is the outcome event's
    id, `decision_seq` the customer's balance sequence, `movement_id` the drawdown's or repayment's id,
    and `application_id` the application behind the window drawn on (none when there was no window).
    Loan notices (`about` loan: a loan booked, an instalment due soon or overdue, an overdue cured)
    take `decision_id` from the loan event's id and name the loan (`loan_id`).
    """

    EVENT_TYPE: ClassVar[str] = "NotificationSent"
    SCHEMA_VERSION: ClassVar[int] = 2
    ACCEPTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, 2})

    notification_id: uuid.UUID = Field(description="Deterministic from decision and channel: duplicates share it.")
    decision_id: uuid.UUID = Field(
        description="The decision told; for a notice that is not a decision, the event_id of the event told (DecisionDelayed, "
        "ReviewOpened, ReviewConcluded, a drawdown outcome), so every message counts once per decision or notice."
    )
    decision_seq: int = Field(
        ge=0, description="The decision's sequence (the balance's for a drawdown outcome); 0 for a notice that is not a decision."
    )
    application_id: ApplicationId | None = None
    customer_id: CustomerId
    channel: Literal["inbox", "webhook"]
    locale: Locale
    outcome: Literal[
        "opened", "closed", "pending", "drawdown_approved", "drawdown_refused", "repayment_applied",
        "loan_booked", "instalment_due_soon", "instalment_overdue", "overdue_cured",
    ] = Field(description="pending: not decided yet (a delay, a review under way).")  # fmt: skip
    movement_id: str | None = Field(default=None, max_length=80, description="The drawdown's or repayment's id (drawdown outcomes only).")
    loan_id: str | None = Field(default=None, max_length=80, description="The loan told of (about `loan`).")
    category: Category | None = None
    reference: str = Field(max_length=40, description="Decision reference the customer quotes for review.", examples=["CW-3F2A-9C1B"])
    title: str = Field(max_length=200)
    body: str = Field(max_length=4000, description="The rendered disclosure text.")
    policy_version: str = Field(max_length=80)
    model_id: str | None = Field(default=None, max_length=120)
    about: Literal["decision", "delay", "review", "drawdown", "loan"] = Field(default="decision", description="What the message tells.")
    about_decision_id: uuid.UUID | None = Field(
        default=None, description="For a notice: the decision it is about (a delay: the decision to come; a review: the decision reviewed)."
    )
