"""Drawing on an open window, and paying back (keyed by customer).

Upstream apps write `DrawdownRequested` (with the term the customer chose) and `Repaid` (topic
`credit.lending-requests`); the policy service decides each drawdown at once against the customer's
window (`DrawdownApproved` or `DrawdownRefused`, in the same four honest categories as a window) and
applies each repayment (`RepaymentApplied`, saying how it was allocated), on `credit.lending-results`,
which only it writes. An approved drawdown is booked as a loan in the same step (`LoanBooked` on
`credit.loans`, another result topic only the policy writes). The balance is the customer's principal
outstanding: it outlives a window that closes or is superseded, and a new window's available amount
is its limit less what is still owed. Every outcome carries the balance after it and the customer's
balance sequence (`balance_seq`, raised by every approved drawdown and applied repayment), so the
balances can be rebuilt from `credit.lending-results` and `credit.loans` exactly.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from shared.contracts.applications import DEFAULT_LOCALE, Locale
from shared.contracts.envelope import CustomerId, Event
from shared.contracts.loans import RepaymentAllocation
from shared.contracts.windows import Category

__all__ = [
    "LENDING_REQUESTS",
    "LENDING_RESULTS",
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
    term_months: int | None = Field(
        default=None, ge=1, le=600,
        description="The term the customer chose, in monthly instalments: one the policy offers (none: the policy's default term).",
        examples=[6],
    )  # fmt: skip


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
    partner_id: str | None = Field(default=None, max_length=40, description="The partner of the window drawn on (its webhook is told).")


class DrawdownApproved(DrawdownOutcome):
    """The money is lent: the balance grew by `amount` (less any credit balance used), booked as a loan."""

    EVENT_TYPE: ClassVar[str] = "DrawdownApproved"

    loan_id: str | None = Field(default=None, max_length=80, description="The loan it was booked as (`LoanBooked` on credit.loans).")


class DrawdownRefused(DrawdownOutcome):
    """The drawdown is refused, and why, in the four honest categories."""

    EVENT_TYPE: ClassVar[str] = "DrawdownRefused"

    category: Category
    reason: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="no_window | window_closed | window_expired | term_not_offered | own_overdue | above_available | balance_cap",
        examples=["above_available"],
    )
    window_reason: str | None = Field(default=None, max_length=64, description="Why the window is closed, when it is.")


class RepaymentApplied(Event):
    """A repayment, allocated: interest then principal of the oldest instalment due first, then what is
    not yet due (an early repayment lowers the principal outstanding, and later interest with it);
    what is left over becomes a credit balance, never lost, which the customer's next drawdown uses."""

    EVENT_TYPE: ClassVar[str] = "RepaymentApplied"

    repayment_id: DrawdownId
    customer_id: CustomerId
    amount: Amount
    locale: Locale = DEFAULT_LOCALE
    applied: int = Field(
        ge=0, description="What it paid of what was owed (interest and principal), whole CNY rounded down; the fen fields are exact."
    )
    balance: int = Field(ge=0, description="The principal the customer owes after it, CNY (rounded up to the yuan).")
    balance_seq: int = Field(ge=0)
    interest_fen: int = Field(default=0, ge=0, description="What it paid of interest.")
    principal_fen: int = Field(default=0, ge=0, description="What it paid of principal.")
    credit_fen: int = Field(default=0, ge=0, description="What it paid beyond all that was owed: added to the credit balance.")
    credit_balance_fen: int = Field(default=0, ge=0, description="The customer's credit balance after it (used by their next drawdown).")
    balance_fen: int = Field(default=0, ge=0, description="The principal outstanding after it, fen.")
    allocations: tuple[RepaymentAllocation, ...] = Field(default=(), max_length=600, description="Instalment by instalment, in the order paid.")


# What the policy service tells of a drawdown or a repayment (the outcome of a movement of the balance).
LendingOutcome = DrawdownApproved | DrawdownRefused | RepaymentApplied
# What each lending topic carries: the upstream apps' requests, the policy service's results.
LENDING_REQUESTS: tuple[type[Event], ...] = (DrawdownRequested, Repaid)
LENDING_RESULTS: tuple[type[Event], ...] = (DrawdownApproved, DrawdownRefused, RepaymentApplied)
