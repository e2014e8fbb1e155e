"""The loan events of `credit.loans`, from what the book booked and recorded; and back, for a rebuild. Pure.

Every id is derived: a loan's `LoanBooked` from its loan id, a due-date step from its loan,
instalment and step, a cure from its repayment. So a redelivered drawdown or repayment, a restart
and a second replica publish the same events, never new ones; and each carries the time the book
decided it (the booking, the sweep that recorded the step, the repayment), from the injected clock.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.policy import PRODUCER
from services.policy.control.document import PolicyDocument
from services.policy.windows.loans import instant_of
from services.policy.windows.model import InstalmentState, Loan, LoanNotice, Movement
from shared.contracts import (
    DrawdownRequested,
    Instalment,
    InstalmentDueSoon,
    InstalmentOverdue,
    LoanBooked,
    OverdueCured,
    Repaid,
    deterministic_id,
)

__all__ = ["cured", "loan_booked", "loan_of", "step_event"]


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _date(day: int, loan_day_ms: int, offset_ms: int) -> date:
    """The calendar date of a loan's day, in the time zone its days are counted in."""
    return (_moment(instant_of(day, loan_day_ms, offset_ms)) + timedelta(milliseconds=offset_ms)).date()


def loan_booked(cause: DrawdownRequested, loan: Loan) -> LoanBooked:
    """The loan as booked: its schedule (as planned: every instalment paid on its due day) and its total cost."""
    apr = float(loan.apr)
    instalments = tuple(
        Instalment(
            number=n, due_date=_date(i.due, loan.day_ms, loan.offset_ms), pay_by=_moment(instant_of(i.due + 1, loan.day_ms, loan.offset_ms)),
            principal_fen=i.principal, interest_fen=i.planned_interest, amount_fen=i.principal + i.planned_interest,
        )  # fmt: skip
        for n, i in enumerate(loan.instalments, start=1)
    )
    interest = sum(i.interest_fen for i in instalments)
    return LoanBooked.caused_by(
        cause, key=("loan", loan.loan_id), producer=PRODUCER, occurred_at=_moment(loan.booked_ms),
        loan_id=loan.loan_id, drawdown_id=loan.loan_id, customer_id=loan.customer, locale=loan.locale,
        application_id=loan.application_id or None, decision_id=uuid.UUID(loan.decision_id) if loan.decision_id else None,
        partner_id=loan.partner or None, amount=loan.amount, credit_used_fen=loan.credit_used, principal_fen=loan.principal,
        apr=apr, daily_rate=round(apr / 365, 8), term_months=len(instalments), instalment_interval=loan.interval,
        day_seconds=loan.day_ms // 1000, utc_offset_seconds=loan.offset_ms // 1000, instalments=instalments,
        total_interest_fen=interest, total_repayable_fen=loan.principal + interest, balance_seq=loan.balance_seq,
        policy_version=loan.policy_version,
    )  # fmt: skip


def loan_of(event: LoanBooked) -> Loan:
    """The loan a published `LoanBooked` booked, as the book held it then (a rebuild replays the repayments on it)."""
    day_ms, offset_ms = event.day_seconds * 1000, event.utc_offset_seconds * 1000
    booked_ms = int(event.occurred_at.timestamp() * 1000)
    start = (booked_ms + offset_ms) // day_ms
    return Loan(
        loan_id=event.loan_id, customer=event.customer_id, principal=event.principal_fen, outstanding=event.principal_fen,
        apr=repr(event.apr), start_day=start, since_day=start, day_ms=day_ms, offset_ms=offset_ms, booked_ms=booked_ms,
        credit_used=event.credit_used_fen, amount=event.amount, interval=event.instalment_interval, partner=event.partner_id or "",
        application_id=event.application_id or "", decision_id=str(event.decision_id) if event.decision_id else "",
        locale=event.locale, policy_version=event.policy_version, balance_seq=event.balance_seq,
        instalments=[
            InstalmentState(
                due=(int(i.pay_by.timestamp() * 1000) + offset_ms) // day_ms - 1, principal=i.principal_fen, planned_interest=i.interest_fen
            )
            for i in event.instalments
        ],
    )  # fmt: skip


def step_event(notice: LoanNotice, loan: Loan) -> InstalmentDueSoon | InstalmentOverdue:
    """A due-date step the book recorded: a reminder (step 0), or an instalment so many days past due."""
    common = {
        "event_id": deterministic_id("loan-step", notice.loan_id, notice.instalment, notice.step),
        "correlation_id": loan.application_id or loan.loan_id,
        "producer": PRODUCER,
        "occurred_at": _moment(notice.at_ms),
        "loan_id": notice.loan_id,
        "customer_id": notice.customer,
        "locale": loan.locale,
        "application_id": loan.application_id or None,
        "partner_id": loan.partner or None,
        "instalment": notice.instalment,
        "due_date": _date(notice.due, notice.day_ms, notice.offset_ms),
        "pay_by": _moment(notice.pay_by_ms),
        "days_past_due": notice.step,
        "amount_due_fen": notice.amount_due,
        "window_closes_at_days": notice.close_at_days,
    }
    if notice.step == 0:
        return InstalmentDueSoon(**common)  # type: ignore[arg-type]
    return InstalmentOverdue(**common, step=notice.step, closes_window=notice.closes_window)  # type: ignore[arg-type]


def cured(cause: Repaid, movement: Movement, policy: PolicyDocument) -> OverdueCured | None:
    """The cure a repayment brought, with the instant it stops counting on the customer's record (None: no cure)."""
    if not movement.cured_days:
        return None
    until = instant_of(movement.cured_day + policy.lending.record_days, movement.cured_day_ms, movement.cured_offset_ms)
    return OverdueCured.caused_by(
        cause, key=("cured", cause.repayment_id), producer=PRODUCER, occurred_at=_moment(movement.at),
        repayment_id=cause.repayment_id, customer_id=cause.customer_id, locale=cause.locale,
        partner_id=movement.partner or None, cured_on=_date(movement.cured_day, movement.cured_day_ms, movement.cured_offset_ms),
        worst_days_past_due=movement.cured_days, counts_until=_moment(until), loan_ids=movement.cured_loans,
        keeps_windows_closed=movement.cured_days > policy.lending.knockout_worst_days_past_due,
    )  # fmt: skip
