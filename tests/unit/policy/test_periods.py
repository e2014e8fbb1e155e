"""Budget periods: calendar periods in the policy's time zone, with the share gone by."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.policy.windows.decisions import budget_terms
from services.policy.windows.periods import period_span
from tests.unit.policy.factories import default_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("period", "label", "start", "end"),
    [
        ("P1D", "2026-12-01", datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2026, 12, 2, tzinfo=SHANGHAI)),
        ("P1W", "2026-W49", datetime(2026, 11, 30, tzinfo=SHANGHAI), datetime(2026, 12, 7, tzinfo=SHANGHAI)),
        ("P1M", "2026-12", datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)),
        ("P1Q", "2026-Q4", datetime(2026, 10, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)),
        ("P1Y", "2026", datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)),
    ],
)
def test_a_moment_falls_in_its_calendar_period_in_china_time(period: str, label: str, start: datetime, end: datetime) -> None:
    # 17:00 UTC on 30 November is 01:00 on 1 December in Shanghai: December's period.
    span = period_span(period, datetime(2026, 11, 30, 17, tzinfo=UTC), SHANGHAI)
    assert (span.label, span.start, span.end) == (label, start, end)


def test_the_share_of_the_period_gone_by() -> None:
    span = period_span("P1D", datetime(2026, 12, 1, 4, tzinfo=UTC), SHANGHAI)  # noon in Shanghai
    assert span.elapsed(datetime(2026, 12, 1, 4, tzinfo=UTC)) == 0.5
    assert span.elapsed(datetime(2026, 12, 5, tzinfo=UTC)) == 1.0


def test_each_period_has_its_own_budget_key_and_a_budget_without_period_has_one_for_all_time() -> None:
    policy = default_policy()
    november, _ = budget_terms(policy, "individual", datetime(2026, 11, 15, tzinfo=UTC))
    december, terms = budget_terms(policy, "individual", datetime(2026, 12, 15, tzinfo=UTC))
    assert (november, december) == ("individual/2026-11", "individual/2026-12")
    assert terms.exposure == policy.budgets["individual"].exposure and 0.4 < terms.elapsed < 0.5
    timeless = default_policy(budgets__individual={"exposure": 1_000, "expected_loss": 100})
    assert budget_terms(timeless, "individual", datetime(2026, 12, 15, tzinfo=UTC))[0] == "individual"
