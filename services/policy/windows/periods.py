"""Budget periods: calendar days, ISO weeks, months, quarters and years in the policy's time zone. Pure.

A period has a label (the budget's key in the book: ``2026-11-29``, ``2026-W48``, ``2026-11``,
``2026-Q4``, ``2026``), a start and an end; `elapsed` is the share of it gone by at a moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["PeriodSpan", "period_span"]


@dataclass(frozen=True, slots=True)
class PeriodSpan:
    label: str
    start: datetime
    end: datetime

    def elapsed(self, now: datetime) -> float:
        """The share of the period gone by at `now`, 0 to 1."""
        total = (self.end - self.start).total_seconds()
        return min(1.0, max(0.0, (now - self.start).total_seconds() / total))


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


def period_span(period: str, now: datetime, zone: ZoneInfo) -> PeriodSpan:
    """The period of kind `period` (P1D, P1W, P1M, P1Q, P1Y) that `now` falls in, counted in `zone`."""
    if now.utcoffset() is None:
        raise ValueError("now needs a time zone")
    today = now.astimezone(zone).date()
    if period == "P1D":
        first, after, label = today, today + timedelta(days=1), today.isoformat()
    elif period == "P1W":
        year, week, weekday = today.isocalendar()
        first = today - timedelta(days=weekday - 1)
        after, label = first + timedelta(days=7), f"{year}-W{week:02d}"
    elif period == "P1M":
        first, after, label = today.replace(day=1), _month_start(today.year, today.month + 1), f"{today:%Y-%m}"
    elif period == "P1Q":
        quarter = (today.month - 1) // 3
        first = date(today.year, quarter * 3 + 1, 1)
        after, label = _month_start(today.year, quarter * 3 + 4), f"{today.year}-Q{quarter + 1}"
    elif period == "P1Y":
        first, after, label = date(today.year, 1, 1), date(today.year + 1, 1, 1), str(today.year)
    else:
        raise ValueError(f"unknown budget period {period!r} (P1D, P1W, P1M, P1Q or P1Y)")
    # Midnight in the zone (a DST jump at midnight moves it, which fromisoformat/replace handles).
    return PeriodSpan(label, datetime.combine(first, time(), zone), datetime.combine(after, time(), zone))
