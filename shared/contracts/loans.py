"""Loans: what an approved drawdown becomes, and what happens after it (topic `credit.loans`, keyed by
customer, kept forever; written by the policy service only).

An approved drawdown is booked as a loan at the window's APR, with a schedule of equal instalments
(`LoanBooked`). The policy's sweeper watches each due date: a reminder before it
(`InstalmentDueSoon`), a notice on missing it and at each days-past-due step the policy names
(`InstalmentOverdue`, step 1 being the miss itself), each published once. A repayment that brings
an overdue customer back to current is told too (`OverdueCured`), with the date the cured overdue
stops counting on the customer's record with us (`OwnRecord`, which every later decision reads).

Money on this topic is in whole fen (integers, `_fen`): interest is counted by the day, and a yuan
is too coarse for it. Days past due are counted in the loan's calendar days (China time) from the
day after the due date.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from shared.contracts.applications import DEFAULT_LOCALE, Locale
from shared.contracts.envelope import CustomerId, Event, Part

__all__ = [
    "LOAN_EVENTS",
    "Instalment",
    "InstalmentDueSoon",
    "InstalmentOverdue",
    "InstalmentStep",
    "LoanBooked",
    "LoanEvent",
    "LoanId",
    "OverdueCured",
    "OwnRecord",
    "RepaymentAllocation",
]

LoanId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{5,79}$"),
    Field(description="The loan's id: the id of the drawdown it was booked for.", examples=["dd_0001_3c2d9e04"]),
]
Fen = Annotated[int, Field(ge=0, description="Whole fen (CNY 0.01).")]


class Instalment(Part):
    """One instalment of a schedule: when it is due and what it is made of, as booked."""

    number: int = Field(ge=1, le=600, description="1 for the first instalment.")
    due_date: date = Field(description="The day it is due, in China time (the drawdown's day of the month, or the month's last day).")
    pay_by: datetime = Field(description="The end of the due date: unpaid at this instant, it is one day past due.")
    principal_fen: Fen
    interest_fen: Fen = Field(description="Interest by the day on the principal outstanding as scheduled, rounded to fen half up.")
    amount_fen: Fen = Field(description="principal_fen + interest_fen: the instalment as scheduled.")


class RepaymentAllocation(Part):
    """What a repayment paid of one instalment: its interest first, then its principal."""

    loan_id: LoanId
    instalment: int = Field(ge=1, le=600)
    interest_fen: Fen
    principal_fen: Fen
    due: bool = Field(description="It was due when paid (else paid early: the principal outstanding fell, and later interest with it).")


class OwnRecord(Part):
    """The customer's repayment record with us, as a decision read it: the platform's own counts, beside the bureau's."""

    days_past_due: int = Field(ge=0, description="Days past due now of the customer's oldest unpaid instalment (0: current).")
    worst_days_past_due_12m: int = Field(
        ge=0, description="The worst days past due among overdues still counting (ongoing, or cured within the record's 12 months)."
    )
    overdue_fen: Fen = Field(default=0, description="What is past due now.")
    counts_until: datetime | None = Field(
        default=None, description="When the last cured overdue stops counting (none: nothing counts, or an overdue is ongoing)."
    )


class LoanBooked(Event):
    """An approved drawdown booked as a loan, in the same atomic step as the balance: its schedule and total cost."""

    EVENT_TYPE: ClassVar[str] = "LoanBooked"

    loan_id: LoanId
    drawdown_id: LoanId
    customer_id: CustomerId
    locale: Locale = DEFAULT_LOCALE
    application_id: str | None = Field(default=None, max_length=80, description="The application whose window was drawn on.")
    decision_id: uuid.UUID | None = Field(default=None, description="The window's decision.")
    partner_id: str | None = Field(default=None, max_length=40)
    amount: int = Field(gt=0, description="The amount drawn, CNY.")
    credit_used_fen: Fen = Field(default=0, description="The customer's credit balance (an earlier overpayment) used by this drawdown.")
    principal_fen: Fen = Field(description="amount x 100 - credit_used_fen: what the loan lends.")
    apr: float = Field(gt=0, lt=1, description="The window's APR.")
    daily_rate: float = Field(gt=0, lt=0.01, description="APR / 365: interest a day on the principal outstanding.")
    term_months: int = Field(ge=0, le=600, description="The number of instalments (0: the credit balance paid it all).")
    instalment_interval: str = Field(max_length=32, description="P1M: monthly; a shorter duration only under a testing policy.")
    day_seconds: int = Field(gt=0, description="The length of the loan's days (86400; shorter only under a testing policy).")
    utc_offset_seconds: int = Field(description="The offset from UTC its days are counted in (28800: China time).")
    instalments: tuple[Instalment, ...] = Field(max_length=600)
    total_interest_fen: Fen = Field(description="The interest of the whole schedule, if every instalment is paid on its due date.")
    total_repayable_fen: Fen = Field(description="principal_fen + total_interest_fen: the total cost of the loan, as scheduled.")
    balance_seq: int = Field(ge=0, description="The customer's balance sequence after the drawdown (orders loans and repayments).")
    policy_version: str = Field(max_length=80)


class InstalmentStep(Event):
    """What every due-date notice carries: the instalment, what is left to pay of it, and by when."""

    loan_id: LoanId
    customer_id: CustomerId
    locale: Locale = DEFAULT_LOCALE
    application_id: str | None = Field(default=None, max_length=80)
    partner_id: str | None = Field(default=None, max_length=40)
    instalment: int = Field(ge=1, le=600)
    due_date: date
    pay_by: datetime
    days_past_due: int = Field(ge=0, description="0 for a reminder; the step for an overdue notice.")
    amount_due_fen: Fen = Field(description="What is left to pay of this instalment (interest, then principal).")
    window_closes_at_days: int = Field(
        default=1, ge=1, description="The policy's days past due at which the customer's window closes and drawdowns are refused."
    )


class InstalmentDueSoon(InstalmentStep):
    """A reminder, the policy's time before the due date, of an instalment not yet paid. Once per instalment."""

    EVENT_TYPE: ClassVar[str] = "InstalmentDueSoon"


class InstalmentOverdue(InstalmentStep):
    """An instalment reached a days-past-due step the policy names (1: it was missed). Once per instalment and step."""

    EVENT_TYPE: ClassVar[str] = "InstalmentOverdue"

    step: int = Field(ge=1, le=3650, description="The step reached, in days past due (1, 30, 60, 90, ...).")
    closes_window: bool = Field(default=False, description="At this step the customer's open window closes and drawdowns are refused.")


class OverdueCured(Event):
    """A repayment brought an overdue customer back to current: told with the date it stops counting."""

    EVENT_TYPE: ClassVar[str] = "OverdueCured"

    repayment_id: LoanId
    customer_id: CustomerId
    locale: Locale = DEFAULT_LOCALE
    partner_id: str | None = Field(default=None, max_length=40)
    cured_on: date = Field(description="The day it was cured, China time.")
    worst_days_past_due: int = Field(ge=1, description="The worst days past due the cured instalments reached.")
    counts_until: datetime = Field(description="From this instant the cured overdue no longer counts on the customer's record.")
    keeps_windows_closed: bool = Field(
        default=True, description="Until `counts_until` an application is closed for it (the policy allows fewer days past due)."
    )
    loan_ids: tuple[LoanId, ...] = Field(max_length=100)


# What `credit.loans` carries, in the order a loan goes.
LOAN_EVENTS: tuple[type[Event], ...] = (LoanBooked, InstalmentDueSoon, InstalmentOverdue, OverdueCured)
LoanEvent = LoanBooked | InstalmentDueSoon | InstalmentOverdue | OverdueCured
