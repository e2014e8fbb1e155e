"""A loan's calendar: the length of its days, the time zone they are counted in, and its due days. Pure.

Days are calendar days in the policy's time zone (China time), numbered from 1970-01-01, so the
book counts them as ``floor((ms + offset) / day_ms)`` (`windows.loans.day_of`). A monthly loan falls
due on the drawdown's day of the month, or on the month's last day when it has none (a drawdown on
the 31st is due on 30 April and on 28 or 29 February). A testing policy may give shorter days and a
shorter interval, so that the fault suite and the demo see instalments fall due within minutes:
then the instalments fall every `instalment_interval`, counted in those days, in UTC.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.policy.control.document import DAY, Lending, PolicyDocument

__all__ = ["LoanCalendar", "add_months", "loan_calendar"]

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class LoanCalendar:
    """How the book counts a loan's days, and the days its instalments fall due on."""

    day_ms: int
    offset_ms: int
    due_days: tuple[int, ...]
    interval: str  # P1M, or the testing interval as ISO 8601 seconds (PT20S)


def add_months(day: date, months: int, on: int) -> date:
    """The date `months` months after `day`'s month, on day `on` of the month (its last day if shorter)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(on, calendar.monthrange(year, month)[1]))


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def loan_calendar(policy: PolicyDocument, at: datetime, term: int) -> LoanCalendar:
    """The calendar of a loan of `term` instalments booked at `at` under `policy`."""
    lending: Lending = policy.lending
    local = at.astimezone(policy.zone)
    offset = local.utcoffset() or timedelta(0)
    if lending.instalment_interval == "P1M" and lending.day_length == DAY:
        start = local.date()
        dues = tuple((add_months(start, k, start.day) - _EPOCH).days for k in range(1, term + 1))
        return LoanCalendar(_ms(DAY), _ms(offset), dues, "P1M")
    day_ms = _ms(lending.day_length)
    offset_ms = _ms(offset) if lending.day_length == DAY else 0  # shorter days are counted in UTC
    interval = lending.instalment_interval
    every = _ms(interval) // day_ms if isinstance(interval, timedelta) else 30  # a month of shorter days: 30 of them
    first = (int(at.timestamp() * 1000) + offset_ms) // day_ms
    label = f"PT{every * day_ms // 1000}S"
    return LoanCalendar(day_ms, offset_ms, tuple(first + every * k for k in range(1, term + 1)), label)
