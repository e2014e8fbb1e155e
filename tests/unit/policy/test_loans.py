"""The book's loan rules: the schedule, interest by the day, repayment allocation, days past due, the
due-date steps and the customer's own record (`windows/loans.py`, `Book.draw`, `Book.repay`,
`Book.watch`), with the loan's calendar (`lending/calendar.py`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.policy.control.checks import unsafe_for
from services.policy.control.document import PolicyError, parse_policy
from services.policy.lending.calendar import loan_calendar
from services.policy.windows.book import Book
from services.policy.windows.loans import day_of, fen, instant_of, interest_fen, schedule
from services.policy.windows.model import (
    BudgetTerms,
    DrawRequest,
    OfferTerms,
    RepayRequest,
    WatchRequest,
    WindowRequest,
)
from tests.unit.policy.factories import default_policy

CUSTOMER = "cus_loan00000001"
DAY_MS = 86_400_000
CHINA_MS = 8 * 3_600_000
# A drawdown at 10:00 China time on 31 January 2027: its instalments fall on the months' last days.
DRAWN = datetime(2027, 1, 31, 2, 0, tzinfo=UTC)
STEPS = (1, 30, 60, 90)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _days(*dates: date) -> tuple[int, ...]:
    return tuple((d - date(1970, 1, 1)).days for d in dates)


def _book(apr: str = "0.1095", limit: int = 50_000) -> Book:
    book = Book()
    book.post(
        WindowRequest(
            record="app_loan_000001", customer=CUSTOMER, segment="individual", decision_id=str(uuid.UUID(int=7)),
            application_id="app_loan_000001", policy_version="default@1", decided_at_ms=_ms(DRAWN) - 1, budget="individual",
            offer=OfferTerms(limit=limit, el_rate=0.01, margin=0.05, apr=apr, valid_until_ms=_ms(DRAWN) + 400 * DAY_MS),
            partner="bank_partner_01",
        ),
        BudgetTerms(exposure=10_000_000, expected_loss=1_000_000),
    )  # fmt: skip
    return book


def _draw(book: Book, ident: str, amount: int, at: datetime = DRAWN, *, term: int | None = 3):
    policy = default_policy()
    granted = policy.lending.term(term) or 0
    calendar = loan_calendar(policy, at, granted)
    request = DrawRequest(
        drawdown_id=ident, customer=CUSTOMER, amount=amount, at_ms=_ms(at), absolute_cap=200_000, income_fraction="", term=granted,
        due_days=calendar.due_days, day_ms=calendar.day_ms, offset_ms=calendar.offset_ms,
    )  # fmt: skip
    return book.draw(request)


def _repay(book: Book, ident: str, amount: int, at: datetime):
    return book.repay(RepayRequest(repayment_id=ident, customer=CUSTOMER, amount=amount, at_ms=_ms(at)))


def _watch(book: Book, at: datetime):
    return book.watch(WatchRequest(_ms(at), 3, STEPS, 1)).notices


def test_money_is_rounded_once_to_whole_fen_half_up() -> None:
    assert (fen(0.5), fen(1.49999), fen(2.5), fen(99.5)) == (1, 1, 3, 100)
    assert interest_fen(1_000_000, 0.1095, 30) == 9_000  # 10,000 CNY for 30 days at 10.95%: 0.03% a day
    assert interest_fen(1_000_000, 0.1095, 31) == 9_300


def test_instalments_fall_on_the_drawdowns_day_of_the_month_in_china_time_or_the_months_last_day() -> None:
    calendar = loan_calendar(default_policy(), DRAWN, 6)
    assert calendar.due_days == _days(
        date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30), date(2027, 7, 31)
    )
    # 23:30 on 31 January in China is still 31 January there (15:30 UTC), and 00:30 on 1 February is not.
    late = loan_calendar(default_policy(), datetime(2027, 1, 31, 15, 30, tzinfo=UTC), 1)
    early = loan_calendar(default_policy(), datetime(2027, 1, 31, 16, 30, tzinfo=UTC), 1)
    assert late.due_days == _days(date(2027, 2, 28)) and early.due_days == _days(date(2027, 3, 1))
    assert (late.day_ms, late.offset_ms, late.interval) == (DAY_MS, CHINA_MS, "P1M")
    assert day_of(_ms(datetime(2027, 1, 31, 15, 59, 59, 999_000, tzinfo=UTC)), DAY_MS, CHINA_MS) == _days(date(2027, 1, 31))[0]
    assert day_of(_ms(datetime(2027, 1, 31, 16, tzinfo=UTC)), DAY_MS, CHINA_MS) == _days(date(2027, 2, 1))[0]
    # a leap year's February has its 29th
    assert loan_calendar(default_policy(), datetime(2028, 1, 30, 4, tzinfo=UTC), 1).due_days == _days(date(2028, 2, 29))


def test_a_schedule_is_equal_instalments_with_interest_by_the_actual_days_and_the_last_absorbs_the_rounding() -> None:
    start = _days(date(2027, 1, 31))[0]
    dues = _days(date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30))
    instalments = schedule(1_000_000, 0.1095, start, dues)
    assert sum(i.principal for i in instalments) == 1_000_000
    # each period's interest is on the principal still owed, over its own days (28, 31, 30)
    owed = 1_000_000
    for instalment, days in zip(instalments, (28, 31, 30), strict=True):
        assert instalment.planned_interest == interest_fen(owed, 0.1095, days)
        owed -= instalment.principal
    totals = [i.principal + i.planned_interest for i in instalments]
    assert totals[0] == totals[1] and abs(totals[2] - totals[0]) <= 2  # equal, the last one absorbing the rounding


def test_an_approved_drawdown_is_booked_as_a_loan_in_the_same_step_at_the_windows_apr() -> None:
    book = _book(apr="0.1095")
    movement = _draw(book, "dd_loan_000001", 10_000)
    assert movement.approved and movement.loan_id == "dd_loan_000001" and movement.partner == "bank_partner_01"
    loan = book.state.loans["dd_loan_000001"]
    assert (loan.principal, loan.outstanding, loan.apr, len(loan.instalments), loan.balance_seq) == (1_000_000, 1_000_000, "0.1095", 3, 1)
    assert book.state.balances[CUSTOMER].balance == 10_000 and book.state.balances[CUSTOMER].principal_fen == 1_000_000
    assert book.state.watch["dd_loan_000001"] == instant_of(loan.instalments[0].due - 3, DAY_MS, CHINA_MS)  # its first reminder
    again = _draw(book, "dd_loan_000001", 10_000)
    assert not again.fresh and again.loan_id == movement.loan_id and len(book.state.loans) == 1  # asked twice, booked once


def test_a_term_not_offered_is_refused_with_its_reason() -> None:
    book = _book()
    refused = _draw(book, "dd_loan_000002", 1_000, term=5)
    assert (refused.approved, refused.category, refused.reason) == (False, "strategy", "term_not_offered")
    assert not book.state.loans and default_policy().lending.term(None) == 3


def test_a_repayment_pays_interest_then_principal_of_the_oldest_instalment_due_first_then_what_is_not_yet_due() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 10_000)
    due_day = DRAWN + timedelta(days=28)  # the first due date, 28 February
    paid = _repay(book, "rp_loan_000001", 5_000, due_day)
    loan = book.state.loans["dd_loan_000001"]
    first = loan.instalments[0]
    assert paid.allocations[0].loan_id == "dd_loan_000001" and paid.allocations[0].instalment == 1 and paid.allocations[0].due
    assert (paid.allocations[0].interest, paid.allocations[0].principal) == (first.planned_interest, first.principal)
    # what was left paid the second instalment's principal early: it was not due
    early = paid.allocations[1]
    assert (early.instalment, early.interest, early.due) == (2, 0, False)
    assert early.principal == 500_000 - first.planned_interest - first.principal
    assert paid.interest_fen == first.planned_interest and paid.principal_fen == 500_000 - first.planned_interest
    assert loan.outstanding == 1_000_000 - paid.principal_fen and book.state.balances[CUSTOMER].principal_fen == loan.outstanding


def test_an_early_repayment_lowers_the_principal_outstanding_and_the_interest_that_follows_by_the_day() -> None:
    late, early = _book(), _book()
    _draw(late, "dd_loan_000001", 10_000)
    _draw(early, "dd_loan_000001", 10_000)
    _repay(early, "rp_loan_000001", 4_000, DRAWN + timedelta(days=10))  # ten days in: 10 days of interest, then principal
    for book in (late, early):
        _repay(book, "rp_loan_000009", 20_000, DRAWN + timedelta(days=28))  # the due date: pays everything owed
    first_late, first_early = late.state.loans["dd_loan_000001"].instalments[0], early.state.loans["dd_loan_000001"].instalments[0]
    paid_first = interest_fen(1_000_000, 0.1095, 10)
    assert first_early.interest == paid_first + interest_fen(1_000_000 - (400_000 - paid_first), 0.1095, 18)
    assert first_late.interest == interest_fen(1_000_000, 0.1095, 28) > first_early.interest


def test_an_overpayment_is_never_lost_it_is_a_credit_balance_the_next_drawdown_uses() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 1_000)
    paid = _repay(book, "rp_loan_000001", 3_000, DRAWN + timedelta(days=5))
    owed = 100_000 + interest_fen(100_000, 0.1095, 5)
    assert (paid.credit_fen, paid.credit_balance_fen, paid.balance, paid.balance_fen) == (300_000 - owed, 300_000 - owed, 0, 0)
    assert CUSTOMER not in book.state.active and book.state.watch == {}  # the loan is settled
    again = _draw(book, "dd_loan_000002", 5_000, DRAWN + timedelta(days=6))
    loan = book.state.loans["dd_loan_000002"]
    assert (loan.credit_used, loan.principal) == (300_000 - owed, 500_000 - (300_000 - owed))
    assert again.balance == -(-loan.principal // 100) and book.state.balances[CUSTOMER].credit_fen == 0


def test_days_past_due_count_china_calendar_days_from_the_day_after_the_due_date() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 10_000)
    end_of_due_day = datetime(2027, 2, 28, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on 28 February in China
    assert book.days_past_due(CUSTOMER, _ms(end_of_due_day)) == 0
    assert book.days_past_due(CUSTOMER, _ms(end_of_due_day + timedelta(seconds=1))) == 1  # 00:00 on 1 March
    assert book.days_past_due(CUSTOMER, _ms(end_of_due_day + timedelta(days=30, seconds=1))) == 31


def test_each_due_date_step_is_told_once_and_a_sweep_after_a_long_outage_tells_each_missed_step_once_in_order() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 10_000)
    assert _watch(book, DRAWN + timedelta(days=20)) == []
    (reminder,) = _watch(book, datetime(2027, 2, 25, 0, tzinfo=UTC))  # 08:00 on 25 February: three days ahead
    assert (reminder.step, reminder.instalment, reminder.closes_window) == (0, 1, False)
    assert reminder.amount_due == book.state.loans["dd_loan_000001"].instalments[0].principal + book.state.loans["dd_loan_000001"].instalments[0].planned_interest
    assert _watch(book, datetime(2027, 2, 26, tzinfo=UTC)) == []  # told already
    (missed,) = _watch(book, datetime(2027, 2, 28, 16, tzinfo=UTC))  # midnight: one day past due
    assert (missed.step, missed.closes_window, missed.pay_by_ms) == (1, True, _ms(datetime(2027, 2, 28, 16, tzinfo=UTC)))
    # A sweeper away for months tells every step that came meanwhile, once, in the order they came.
    later = _watch(book, datetime(2027, 6, 15, tzinfo=UTC))
    assert [(n.instalment, n.step) for n in later] == [(1, 30), (2, 1), (1, 60), (2, 30), (3, 1), (1, 90), (2, 60), (3, 30)]
    assert _watch(book, datetime(2027, 6, 15, tzinfo=UTC)) == []
    assert [n.notice_id for n in book.pending_notices(_ms(datetime(2028, 1, 1, tzinfo=UTC)))][:2] == ["dd_loan_000001|1|0", "dd_loan_000001|1|1"]


def test_an_instalment_paid_by_its_due_date_is_never_overdue() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 10_000)
    _repay(book, "rp_loan_000001", 3_400, datetime(2027, 2, 28, 15, tzinfo=UTC))  # on the due date, China time
    assert _watch(book, datetime(2027, 3, 20, tzinfo=UTC)) == []  # no reminder (paid), no miss
    assert book.own_record(CUSTOMER, _ms(datetime(2027, 3, 20, tzinfo=UTC)), 365).worst_days_past_due_12m == 0


def test_the_own_record_counts_an_overdue_while_it_lasts_and_for_its_days_after_the_cure() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 10_000)
    overdue = book.own_record(CUSTOMER, _ms(datetime(2027, 3, 5, 4, tzinfo=UTC)), 365)  # 5 March: 5 days past due
    assert (overdue.days_past_due, overdue.worst_days_past_due_12m, overdue.counts_until) == (5, 5, None)
    assert overdue.overdue_fen == book.state.loans["dd_loan_000001"].instalments[0].principal + book.state.loans["dd_loan_000001"].instalments[0].planned_interest
    cure = _repay(book, "rp_loan_000001", 11_000, datetime(2027, 3, 10, 4, tzinfo=UTC))  # all of it, the rest early
    assert (cure.cured_days, cure.cured_loans, cure.cured_day) == (10, ("dd_loan_000001",), _days(date(2027, 3, 10))[0])
    cured = book.own_record(CUSTOMER, _ms(datetime(2027, 3, 11, tzinfo=UTC)), 365)
    until = datetime(2028, 3, 8, 16, tzinfo=UTC)  # 9 March 2028 begins in China: 365 days after the cure (a leap year)
    assert (cured.days_past_due, cured.worst_days_past_due_12m, cured.counts_until) == (0, 10, until)
    assert book.own_records([CUSTOMER], _ms(until) - 1, 365)[CUSTOMER].worst_days_past_due_12m == 10
    assert book.own_records([CUSTOMER], _ms(until), 365) == {}  # it stopped counting: nothing on record


def test_a_customer_as_many_days_past_due_as_closes_a_window_is_refused_a_drawdown() -> None:
    book = _book()
    _draw(book, "dd_loan_000001", 1_000)
    refused = _draw(book, "dd_loan_000002", 1_000, datetime(2027, 3, 1, 4, tzinfo=UTC))
    assert (refused.approved, refused.category, refused.reason) == (False, "credit", "own_overdue")


def test_a_testing_policy_shortens_instalments_and_days_and_a_production_fleet_refuses_it() -> None:
    policy = default_policy(lending__testing=True, lending__instalment_interval="PT20S", lending__day_length="PT1S")
    calendar = loan_calendar(policy, DRAWN, 3)
    first = _ms(DRAWN) // 1000
    assert (calendar.day_ms, calendar.offset_ms, calendar.interval) == (1000, 0, "PT20S")
    assert calendar.due_days == (first + 20, first + 40, first + 60)
    assert unsafe_for(policy, "local") is None and unsafe_for(policy, "test") is None
    assert "testing policy" in (unsafe_for(policy, "production") or "")
    assert unsafe_for(default_policy(), "production") is None
    with pytest.raises(PolicyError, match="for tests only"):
        parse_policy(default_policy().model_dump_json().replace('"instalment_interval":"P1M"', '"instalment_interval":"P2D"'))
    with pytest.raises(ValueError, match="close_window_at_days"):
        default_policy(lending__close_window_at_days=7)
