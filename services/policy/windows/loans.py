"""The book's loan rules: schedule, interest by the day, repayment allocation, days past due, the own
record. Pure; `Book.draw`, `Book.repay` and `Book.watch` apply them, and the Lua script of
`adapters/redis_book.py` is their twin function for function (`tests/e2e/test_book_twins.py`).

Money, one rule: every amount computed from a rate is rounded to whole fen, half up:
``fen(x) = floor(x + 0.5)``. Interest for `days` days on `principal` fen at `apr` is
``fen(principal x apr x days / 365)``; the equal instalment is ``fen(principal / annuity)``; a
window's expected loss is ``fen(limit x el_rate x 100)``. The last instalment's principal is what
remains, so it absorbs the rounding. Nothing else is rounded: every other sum is of whole fen.

The rules:

- **schedule**: equal instalments (principal and interest together), one per due day. Each period's
  interest is counted on the principal outstanding by the actual days from the previous due day (the
  booking day for the first) to its own; the payment A solves "the principal is repaid by the last
  due day" exactly (A = principal / sum over k of prod over j <= k of 1 / (1 + apr x days_j / 365)),
  then rounded; each instalment's principal is A less its interest, the last one's what remains.
- **accrue**: interest is counted by the day on the principal outstanding, into the instalment whose
  period the days fall in (a period runs from the previous due day, included, to its own, excluded);
  only a repayment accrues (so a rebuild that replays the repayments accrues the same spans); no
  interest accrues after the last due day.
- **allocate**: a repayment pays, instalment by instalment, the oldest first (by the end of its due
  day, then the order the loans were booked in): the interest accrued into it, then its principal.
  The instalments due come first; then those not yet due (an early repayment: their principal, so the
  principal outstanding falls and later interest with it). What is left is a credit balance: never
  lost, used by the customer's next drawdown.
- **days past due**: counted in the loan's calendar days from the day after the due day: an
  instalment due on day D and unpaid on day D + n is n days past due. Days are calendar days in China
  time (`day = floor((ms + offset) / day_ms)`), shorter only under a testing policy.
- **own record**: the customer's days past due now, the worst days past due among overdues still
  counting (ongoing, or cured less than the record's days ago), and when the last cured one stops
  counting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from copy import deepcopy

from services.policy.windows.model import Allocation, Episode, InstalmentState, Loan

__all__ = [
    "accrue",
    "allocate",
    "day_of",
    "days_past_due",
    "fen",
    "instant_of",
    "interest_fen",
    "next_watch",
    "overdue_fen",
    "projected",
    "schedule",
    "settled",
]


def fen(amount: float) -> int:
    """The one rounding of money: to whole fen, half up."""
    return int(math.floor(amount + 0.5))


def interest_fen(principal: int, apr: float, days: int) -> int:
    """Interest for `days` days on `principal` fen at `apr` (APR / 365 a day)."""
    return fen(principal * apr * days / 365)


def day_of(ms: int, day_ms: int, offset_ms: int) -> int:
    """The calendar day an instant falls on (days since 1970-01-01 in the loan's time zone)."""
    return (ms + offset_ms) // day_ms


def instant_of(day: int, day_ms: int, offset_ms: int) -> int:
    """When a calendar day begins (ms)."""
    return day * day_ms - offset_ms


def schedule(principal: int, apr: float, start_day: int, due_days: Sequence[int]) -> list[InstalmentState]:
    """Equal instalments of `principal` fen at `apr`, booked on `start_day`, due on `due_days`."""
    factor, total, previous = 1.0, 0.0, start_day
    for day in due_days:
        factor = factor / (1 + apr * (day - previous) / 365)
        total = total + factor
        previous = day
    payment = fen(principal / total) if total > 0 else principal
    remaining, previous = principal, start_day
    out: list[InstalmentState] = []
    for n, day in enumerate(due_days):
        interest = interest_fen(remaining, apr, day - previous)
        part = remaining if n == len(due_days) - 1 else min(remaining, max(0, payment - interest))
        out.append(InstalmentState(due=day, principal=part, planned_interest=interest))
        remaining -= part
        previous = day
    return out


def accrue(loan: Loan, day: int) -> None:
    """Count interest by the day up to `day` (excluded) into the instalments whose periods the days fall in."""
    apr = float(loan.apr)
    while loan.since_day < day and loan.outstanding > 0:
        current = next((i for i in loan.instalments if i.due > loan.since_day), None)
        if current is None:
            return  # no interest after the last due day
        end = min(current.due, day)
        current.interest += interest_fen(loan.outstanding, apr, end - loan.since_day)
        loan.since_day = end


def projected(loan: Loan, day: int) -> Loan:
    """A copy of the loan accrued up to `day`: what would be owed then if nothing were paid before."""
    view = deepcopy(loan)
    accrue(view, day)
    return view


def days_past_due(loan: Loan, day: int) -> int:
    """How many days past due the loan's oldest unpaid instalment is on `day` (accrued up to it); 0: current."""
    return max((day - i.due for i in loan.instalments if i.due < day and i.left > 0), default=0)


def overdue_fen(loan: Loan, day: int) -> int:
    """What is past due of the loan on `day` (accrued up to it)."""
    return sum(i.left for i in loan.instalments if i.due < day and i.left > 0)


def settled(loan: Loan) -> bool:
    """Nothing is owed and nothing more can accrue."""
    return loan.outstanding == 0 and all(i.left == 0 for i in loan.instalments)


def allocate(loans: Sequence[Loan], amount: int, at_ms: int) -> tuple[list[Allocation], list[Episode], int]:
    """Pay `amount` fen into the customer's loans (each accrued up to the day of `at_ms` already):
    the allocations in the order paid, the overdues it cured, and what is left over (fen)."""
    queue = sorted(
        (instant_of(inst.due + 1, loan.day_ms, loan.offset_ms), position, number)
        for position, loan in enumerate(loans)
        for number, inst in enumerate(loan.instalments)
        if inst.left > 0
    )
    allocations: list[Allocation] = []
    cured: list[Episode] = []
    left = amount
    for _, position, number in queue:
        if left == 0:
            break
        loan = loans[position]
        inst = loan.instalments[number]
        today = day_of(at_ms, loan.day_ms, loan.offset_ms)
        interest = min(left, inst.interest - inst.interest_paid)
        inst.interest_paid += interest
        left -= interest
        principal = min(left, inst.principal - inst.principal_paid)
        inst.principal_paid += principal
        loan.outstanding -= principal
        left -= principal
        if interest or principal:
            allocations.append(Allocation(loan.loan_id, number + 1, interest, principal, inst.due <= today))
        if inst.due < today and inst.left == 0:
            cured.append(Episode(loan.loan_id, number + 1, today - inst.due, today, loan.day_ms, loan.offset_ms))
    return allocations, cured, left


def next_watch(loan: Loan, day: int, remind_days: int, steps: Sequence[int]) -> int | None:
    """When the loan's next due-date step comes after `day` (ms), or None: nothing left to tell.

    An instalment's steps are its reminder (`remind_days` before its due day) and each days-past-due
    step after the last one told; one paid by its due day (or since) has none left."""
    view = projected(loan, day)
    found: int | None = None
    for inst, told in zip(view.instalments, loan.instalments, strict=True):
        if inst.due <= day and inst.left == 0:
            continue
        candidates = ([inst.due - remind_days] if told.step < 0 else []) + [inst.due + s for s in steps if s > told.step]
        later = [c for c in candidates if c > day]
        if later and (found is None or later[0] < found):
            found = later[0]
    return None if found is None else instant_of(found, loan.day_ms, loan.offset_ms)
