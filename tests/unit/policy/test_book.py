"""The portfolio book: grants fit the budget, pacing keeps it for the better offers the period will
bring, windows supersede, expire and release, drawdowns stay within the window and the caps."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from services.policy.control.document import PolicyDocument
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.book import (
    Book,
    balance_cap,
    budget_key,
    expected_loss_fen,
    grant,
    required_margin,
    utilisation,
)
from services.policy.windows.decisions import budget_period, budget_terms, close_request, propose, request_for
from services.policy.windows.model import (
    BudgetTerms,
    DrawRequest,
    OfferTerms,
    Posting,
    RepayRequest,
    Reserved,
    WindowRequest,
)
from tests.unit.policy.factories import NOW, default_policy, score

# The default policy's budgets are monthly: this month's individual budget.
KEY = budget_key("individual", budget_period(default_policy(), "individual", NOW))


def _request(policy: object = None, **kwargs: object) -> WindowRequest:
    policy = policy or default_policy()
    return request_for(propose(score(**kwargs), policy, NOW), policy)  # type: ignore[arg-type]


def _terms(request: WindowRequest, policy: PolicyDocument | None = None) -> BudgetTerms:
    return budget_terms(policy or default_policy(), request.segment, NOW)[1]


def decide(book: Book, request: WindowRequest, policy: PolicyDocument | None = None) -> Posting:
    return book.post(request, _terms(request, policy))


def _offer(**kwargs: object) -> tuple[OfferTerms, BudgetTerms]:
    request = _request(**kwargs)
    assert request.offer is not None
    return request.offer, _terms(request)


def test_an_empty_budget_grants_the_whole_offer() -> None:
    offer, terms = _offer(grade="D", pd=0.18, income=100_000)
    result = grant(offer, Reserved(), 0, terms)
    assert (result.limit, result.refusal) == (offer.limit, "")


def test_the_budget_bounds_the_limit_when_little_is_left() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000)
    assert request.offer is not None
    result = grant(request.offer, Reserved(exposure=_terms(request).exposure - 5_000), 0, _terms(request))
    assert (result.limit, result.budget_bound) == (5_000, True)


def test_a_spent_budget_refuses_as_exhausted() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy)
    assert request.offer is not None
    result = grant(request.offer, Reserved(exposure=_terms(request).exposure - 100), 0, _terms(request))
    assert (result.limit, result.refusal) == (0, "budget_exhausted")


def test_the_expected_loss_budget_binds_too() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000)
    assert request.offer is not None
    left_fen = 100_000
    result = grant(request.offer, Reserved(el_fen=_terms(request).expected_loss * 100 - left_fen), 0, _terms(request))
    assert 0 < result.limit and expected_loss_fen(result.limit, request.offer.el_rate) <= left_fen


# A forecast of the period: offers earning at least 1% would take 100,000 CNY, at least 2% 50,000, 3% 10,000.
DEMAND = ((0.01, 100_000.0, 5_000.0), (0.02, 50_000.0, 2_000.0), (0.03, 10_000.0, 300.0))
PACED = BudgetTerms(exposure=60_000, expected_loss=10_000, pacing=True, demand=DEMAND)


def test_the_required_margin_is_the_smallest_whose_demand_to_come_fits_the_room() -> None:
    assert required_margin(PACED, Reserved()) == 0.02  # 100,000 will not fit in 60,000; 50,000 will
    assert required_margin(replace(PACED, elapsed=0.5), Reserved()) == -math.inf  # half the period left: all fits
    assert required_margin(PACED, Reserved(exposure=55_000)) == 0.03  # nothing fits: only the best
    assert required_margin(PACED, Reserved(el_fen=9_000 * 100)) == 0.03  # the expected-loss room binds too
    assert required_margin(replace(PACED, slack=1.0), Reserved()) == -math.inf  # pace only beyond twice the room
    assert required_margin(replace(PACED, pacing=False), Reserved()) == -math.inf
    assert required_margin(replace(PACED, demand=()), Reserved()) == -math.inf  # no forecast, no pacing


def test_pacing_keeps_the_budget_for_better_offers_only_when_demand_will_exceed_it() -> None:
    thin = OfferTerms(limit=5_000, el_rate=0.05, margin=0.015, apr="0.1", valid_until_ms=1)
    rich = replace(thin, margin=0.025)
    assert grant(thin, Reserved(), 0, PACED).refusal == "budget_paced"
    assert grant(rich, Reserved(), 0, PACED).refusal == ""
    assert grant(thin, Reserved(), 0, replace(PACED, exposure=200_000)).refusal == ""  # the budget will not bind


def test_utilisation_is_the_larger_of_exposure_and_loss_shares() -> None:
    terms = budget_terms(default_policy(), "individual", NOW)[1]
    reserved = Reserved(exposure=terms.exposure // 4, el_fen=terms.expected_loss * 100 // 2)
    assert utilisation(reserved, terms) == 0.5


def test_a_programme_out_of_budget_loses_its_boost_not_the_window() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000, segment="small_business")
    assert request.offer is not None and request.offer.part > 0
    result = grant(request.offer, Reserved(), _terms(request).programme_budget, _terms(request))
    assert result.limit == request.offer.limit - request.offer.part
    assert result.part == 0


def test_expected_loss_is_whole_fen_rounded_half_up() -> None:
    assert expected_loss_fen(10_000, 0.012345) == 12_345
    assert expected_loss_fen(100, 0.00005) == 1  # half a fen rounds up
    assert expected_loss_fen(100, 0.00004) == 0


def test_a_new_window_supersedes_and_releases_the_customers_previous_one() -> None:
    book = Book()
    first = decide(book, _request(application_id="app_book_000001", income=120_000))
    second = decide(book, _request(application_id="app_book_000002", income=60_000))
    assert first.granted > second.granted > 0
    assert book.state.budgets[KEY].exposure == second.granted
    assert book.state.records["app_book_000001"].status == "released"
    assert book.state.windows["cus_unit00000001"].record == "app_book_000002"
    assert book.state.open == {"app_book_000002"}


def test_a_system_closure_leaves_the_customers_window_open() -> None:
    book = Book()
    opened = decide(book, _request(application_id="app_book_000001"))
    decide(book, _request(application_id="app_book_000002", outcome="unscorable"))
    assert book.state.windows["cus_unit00000001"].limit == opened.granted
    assert book.state.budgets[KEY].exposure == opened.granted


def test_deciding_a_record_again_gives_the_first_answer_and_changes_nothing() -> None:
    book = Book()
    request = _request()
    first = decide(book, request)
    again = decide(book, request)
    assert (again.fresh, again.seq, again.granted) == (False, first.seq, first.granted)
    assert book.state.budgets[KEY].exposure == first.granted
    assert book.state.seqs["cus_unit00000001"] == 1


def test_an_expired_window_closes_releases_and_waits_to_be_announced() -> None:
    book = Book()
    request = _request()
    assert request.offer is not None
    decide(book, request)
    assert book.due_expiries(request.offer.valid_until_ms - 1) == []
    (due,) = book.due_expiries(request.offer.valid_until_ms)
    seq = book.close(close_request(due, trigger="expiry", reason="expired", now=NOW))
    assert seq == 2 and book.pending_closures() == [due]
    assert book.state.budgets[KEY].exposure == 0
    assert book.state.windows["cus_unit00000001"].status == "closed"
    assert book.close(close_request(due, trigger="expiry", reason="expired", now=NOW)) is None  # once


def test_a_re_decision_never_supersedes_the_window_of_a_newer_application_whatever_the_order() -> None:
    for order in (("a", "b"), ("b", "a")):
        book = Book()
        maintenance = default_policy(maintenance=[{"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1)}])
        older = _request(maintenance, application_id="app_order_00000a")
        newer = _request(maintenance, application_id="app_order_00000b")
        decide(book, older)
        decide(book, newer)  # both closed for maintenance, to be decided again
        later = NOW + timedelta(hours=2)
        redecided = {
            app: request_for(
                propose(score(application_id=f"app_order_00000{app}"), default_policy(), later, "redecision"),
                default_policy(),
            )
            for app in order
        }
        answers = {app: decide(book, redecided[app]) for app in order}
        assert (
            book.state.windows["cus_unit00000001"].application_id == "app_order_00000b"
        )  # the newer application stands
        # charged to the period of the application (received at NOW), even if the month turned since
        assert answers["b"].granted > 0 and book.state.budgets[KEY].exposure == answers["b"].granted
        if order == ("b", "a"):  # the older one, decided last, does not take the window back
            assert (answers["a"].granted, answers["a"].refusal) == (0, "newer_application")
        else:  # decided first, then superseded by the newer one
            assert book.state.records["app_order_00000a~r"].status == "released"


def test_an_application_id_of_another_customer_is_a_conflict_and_changes_nothing() -> None:
    book = Book()
    first = decide(book, _request(application_id="app_twice_000001", customer_id="cus_owner_000001"))
    other = decide(book, _request(application_id="app_twice_000001", customer_id="cus_other_000001"))
    assert other.conflict and not first.conflict
    assert "cus_other_000001" not in book.state.windows and book.state.budgets[KEY].exposure == first.granted


def test_an_unreadable_attempt_does_not_block_the_corrected_application_nor_follow_it() -> None:
    book = Book()
    unreadable = _request(
        application_id="app_fix_0000001", outcome="unscorable", failure="application_invalid: invalid"
    )
    assert unreadable.record == "app_fix_0000001~invalid" and unreadable.fallback_of == "app_fix_0000001"
    closed = decide(book, unreadable)
    corrected = decide(book, _request(application_id="app_fix_0000001"))
    assert closed.fresh and corrected.fresh and corrected.granted > 0  # the corrected resubmission is decided
    again = decide(book, _request(application_id="app_fix_0000002"))
    late_garbage = decide(
        book, _request(application_id="app_fix_0000002", outcome="unscorable", failure="application_invalid: x")
    )
    assert again.granted > 0 and late_garbage.decided_as_read  # garbage after a real decision adds nothing


# --- drawdowns -------------------------------------------------------------------------------------


def _opened(book: Book, customer: str = "cus_unit00000001") -> int:
    opened = decide(book, _request(customer_id=customer, application_id="app_draw_000001"))
    assert opened.granted > 0
    return opened.granted


def _draw(
    ident: str,
    amount: int,
    *,
    at_ms: int | None = None,
    cap: int = 200_000,
    fraction: str = "0.3333333333",
    customer: str = "cus_unit00000001",
) -> DrawRequest:
    at = at_ms if at_ms is not None else int(NOW.timestamp() * 1000)
    return DrawRequest(
        drawdown_id=ident, customer=customer, amount=amount, at_ms=at, absolute_cap=cap, income_fraction=fraction
    )


def test_drawdowns_are_approved_up_to_the_limit_and_refused_above_what_is_available() -> None:
    book = Book()
    limit = _opened(book)
    first = book.draw(_draw("dd_unit_0001", limit - 1_000))
    assert (first.approved, first.balance, first.available, first.balance_seq) == (True, limit - 1_000, 1_000, 1)
    above = book.draw(_draw("dd_unit_0002", 1_100))
    assert (above.approved, above.category, above.reason, above.balance, above.available) == (
        False,
        "credit",
        "above_available",
        limit - 1_000,
        1_000,
    )
    edge = book.draw(_draw("dd_unit_0003", 1_000))  # exactly what is left
    assert edge.approved and edge.balance == limit and edge.available == 0


def test_a_drawdown_asked_twice_is_decided_once_and_another_customers_id_is_a_conflict() -> None:
    book = Book()
    _opened(book)
    first = book.draw(_draw("dd_unit_0001", 5_000))
    again = book.draw(_draw("dd_unit_0001", 5_000))
    assert first.fresh and not again.fresh and (again.approved, again.balance) == (True, 5_000)
    assert book.state.balances["cus_unit00000001"].balance == 5_000
    stolen = book.draw(_draw("dd_unit_0001", 5_000, customer="cus_other_000001"))
    assert stolen.conflict and "cus_other_000001" not in book.state.balances


def test_a_closed_or_expired_window_refuses_in_its_own_category() -> None:
    book = Book()
    assert book.draw(_draw("dd_unit_0001", 1_000)).reason == "no_window"
    decide(book, _request(application_id="app_draw_000002", points=400))  # below the cut-off: closed as credit
    refused = book.draw(_draw("dd_unit_0002", 1_000))
    assert (refused.category, refused.reason, refused.window_reason) == (
        "credit",
        "window_closed",
        "score_below_cutoff",
    )
    book2 = Book()
    request = _request(application_id="app_draw_000003")
    decide(book2, request)
    assert request.offer is not None
    late = book2.draw(_draw("dd_unit_0003", 1_000, at_ms=request.offer.valid_until_ms))
    assert (late.category, late.reason) == ("strategy", "window_expired")


def test_the_regulatory_cap_in_force_now_caps_the_balance() -> None:
    book = Book()
    limit = _opened(book)
    capped = book.draw(_draw("dd_unit_0001", limit, cap=limit // 2))  # the absolute cap was lowered since
    assert (capped.approved, capped.category, capped.reason) == (False, "regulatory", "balance_cap")
    assert capped.available == limit // 2
    # A tighter income rule than the window was opened under scales the limit down by the same ratio.
    assert balance_cap(30_000, 200_000, "0.3333333333", "0.25") == math.floor(30_000 * 0.25 / 0.3333333333)
    assert balance_cap(30_000, 200_000, "0.25", "0.3333333333") == 200_000  # a looser rule changes nothing
    assert balance_cap(30_000, 20_000, "", "0.25") == 20_000
    tighter = book.draw(_draw("dd_unit_0002", limit, fraction="0.25"))
    assert (tighter.approved, tighter.reason) == (False, "balance_cap")


def test_repayments_lower_the_balance_never_below_zero_and_the_balance_outlives_the_window() -> None:
    book = Book()
    _opened(book)
    book.draw(_draw("dd_unit_0001", 4_000))
    paid = book.repay(RepayRequest(repayment_id="rp_unit_0001", customer="cus_unit00000001", amount=6_000, at_ms=1))
    assert (paid.applied, paid.balance, paid.balance_seq) == (4_000, 0, 2)
    book.draw(_draw("dd_unit_0002", 3_000))
    decide(book, _request(application_id="app_draw_000009", income=60_000))  # a new, smaller window
    window = book.state.windows["cus_unit00000001"]
    assert book.state.balances["cus_unit00000001"].balance == 3_000  # still owed under the new window
    after = book.draw(_draw("dd_unit_0003", window.limit))
    assert not after.approved and after.available == window.limit - 3_000


async def test_limits_still_show_a_balance_owed_when_the_windows_record_is_gone() -> None:
    store = MemoryBook()
    _opened(store.book)
    store.book.draw(_draw("dd_unit_0001", 4_000))
    assert (await store.current("cus_unit00000001")).status == "open"  # type: ignore[union-attr]
    del store.book.state.windows["cus_unit00000001"]  # the record outlived its retention
    owing = await store.current("cus_unit00000001")
    assert owing is not None and (owing.status, owing.limit, owing.balance, owing.available) == ("none", 0, 4_000, 0)
    store.book.repay(RepayRequest(repayment_id="rp_unit_0001", customer="cus_unit00000001", amount=4_000, at_ms=1))
    assert await store.current("cus_unit00000001") is None  # nothing owed and nothing on record
