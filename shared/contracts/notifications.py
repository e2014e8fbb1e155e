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
    """A rendered disclosure delivered on a channel, exactly once per decision (or drawdown outcome) and channel.

    Schema version 2 tells drawdown outcomes and repayments too (`outcome` drawdown_approved,
    drawdown_refused or repayment_applied): then `decision_id` is the outcome event's id,
    `decision_seq` the customer's balance sequence, `movement_id` the drawdown's or repayment's id,
    and `application_id` the application behind the window drawn on (none when there was no window).
    """

    EVENT_TYPE: ClassVar[str] = "NotificationSent"
    SCHEMA_VERSION: ClassVar[int] = 2
    ACCEPTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, 2})

    notification_id: uuid.UUID = Field(description="Deterministic from decision and channel: duplicates share it.")
    decision_id: uuid.UUID = Field(description="The decision told (or the drawdown outcome's event id).")
    decision_seq: int = Field(ge=0, description="The decision's sequence (or the balance sequence of a drawdown outcome).")
    application_id: ApplicationId | None = None
    customer_id: CustomerId
    channel: Literal["inbox", "webhook"]
    locale: Locale
    outcome: Literal["opened", "closed", "drawdown_approved", "drawdown_refused", "repayment_applied"]
    movement_id: str | None = Field(default=None, max_length=80, description="The drawdown's or repayment's id (drawdown outcomes only).")
    category: Category | None = None
    reference: str = Field(max_length=40, description="Decision reference the customer quotes for review.", examples=["CW-3F2A-9C1B"])
    title: str = Field(max_length=200)
    body: str = Field(max_length=4000, description="The rendered disclosure text.")
    policy_version: str = Field(max_length=80)
    model_id: str | None = Field(default=None, max_length=120)
