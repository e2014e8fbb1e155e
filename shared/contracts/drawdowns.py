"""Drawing on an open window, and paying back (topic `credit.drawdowns`, keyed by customer).

Upstream apps write `DrawdownRequested` and `Repaid`; the policy service decides each drawdown at
once against the customer's window (`DrawdownApproved` or `DrawdownRefused`, in the same four honest
categories as a window) and applies each repayment (`RepaymentApplied`). The balance is the
customer's: it outlives a window that closes or is superseded, and a new window's available amount
is its limit less what is still owed. Every outcome carries the balance after it and the customer's
balance sequence (`balance_seq`, raised by every approved drawdown and applied repayment), so the
balances can be rebuilt from this topic exactly.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from shared.contracts.applications import DEFAULT_LOCALE, Locale
from shared.contracts.envelope import CustomerId, Event
from shared.contracts.windows import Category

__all__ = [
    "DrawdownApproved",
    "DrawdownId",
    "DrawdownOutcome",
    "DrawdownRefused",
    "DrawdownRequested",
    "LendingOutcome",
    "Repaid",
    "RepaymentApplied",
]

DrawdownId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{5,79}$"),
    Field(
        description="Id the upstream app gives the drawdown (or repayment): asking twice is asking once.",
        examples=["dd_0001_3c2d9e04"],
    ),
]
Amount = Annotated[int, Field(gt=0, le=100_000_000, description="CNY, whole yuan.", examples=[5000])]


class DrawdownRequested(Event):
    """A customer asks to draw on their window now. Written by upstream apps; keyed by customer_id."""

    EVENT_TYPE: ClassVar[str] = "DrawdownRequested"

    drawdown_id: DrawdownId
    customer_id: CustomerId
    amount: Amount
    locale: Locale = DEFAULT_LOCALE


class Repaid(Event):
    """A customer paid back part of their balance. Written by upstream apps; keyed by customer_id."""

    EVENT_TYPE: ClassVar[str] = "Repaid"

    repayment_id: DrawdownId
    customer_id: CustomerId
    amount: Amount
    locale: Locale = DEFAULT_LOCALE


class DrawdownOutcome(Event):
    """What every drawdown outcome carries: the request, the window it was decided against, the balance."""

    drawdown_id: DrawdownId
    customer_id: CustomerId
    amount: Amount
    locale: Locale = DEFAULT_LOCALE
    decision_id: uuid.UUID | None = Field(default=None, description="The window's decision (None: no window).")
    application_id: str | None = Field(
        default=None, max_length=80, description="The application that opened the window."
    )
    limit: int = Field(ge=0, description="The window's limit, CNY (0 when there is none).")
    balance: int = Field(ge=0, description="What the customer owes after this outcome, CNY.")
    available: int = Field(ge=0, description="What the customer may still draw after this outcome, CNY.")
    balance_seq: int = Field(ge=0, description="The customer's balance sequence after this outcome (higher is newer).")
    policy_version: str = Field(max_length=80)


class DrawdownApproved(DrawdownOutcome):
    """The money is lent: the balance grew by `amount`."""

    EVENT_TYPE: ClassVar[str] = "DrawdownApproved"


class DrawdownRefused(DrawdownOutcome):
    """The drawdown is refused, and why, in the four honest categories."""

    EVENT_TYPE: ClassVar[str] = "DrawdownRefused"

    category: Category
    reason: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="no_window | window_closed | window_expired | above_available | balance_cap",
        examples=["above_available"],
    )
    window_reason: str | None = Field(default=None, max_length=64, description="Why the window is closed, when it is.")


class RepaymentApplied(Event):
    """A repayment lowered the balance (never below zero)."""

    EVENT_TYPE: ClassVar[str] = "RepaymentApplied"

    repayment_id: DrawdownId
    customer_id: CustomerId
    amount: Amount
    locale: Locale = DEFAULT_LOCALE
    applied: int = Field(
        ge=0, description="What it took off the balance, CNY (less than amount when it paid more than was owed)."
    )
    balance: int = Field(ge=0, description="What the customer owes after it, CNY.")
    balance_seq: int = Field(ge=0)


# What the policy service tells of a drawdown or a repayment (the outcome of a movement of the balance).
LendingOutcome = DrawdownApproved | DrawdownRefused | RepaymentApplied
