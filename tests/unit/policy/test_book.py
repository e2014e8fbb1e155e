"""The portfolio book: grants fit the budget, pacing prices it as it fills, windows supersede, expire and release."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from services.policy.book import Book, expected_loss_fen, grant, required_margin, utilisation
from services.policy.decisions import budget_terms, close_request, propose, request_for
from services.policy.ports import BudgetTerms, DecideRequest, OfferTerms, Reserved
from tests.unit.policy.factories import NOW, default_policy, score


def _request(policy: object = None, **kwargs: object) -> DecideRequest:
    policy = policy or default_policy()
    return request_for(propose(score(**kwargs), policy, NOW), policy)  # type: ignore[arg-type]


def _offer(**kwargs: object) -> tuple[OfferTerms, BudgetTerms]:
    request = _request(**kwargs)
    assert request.offer is not None
    return request.offer, request.budget


def test_an_empty_budget_grants_the_whole_offer() -> None:
    offer, terms = _offer(grade="D", pd=0.18, income=100_000)
    result = grant(offer, Reserved(), 0, terms)
    assert (result.limit, result.refusal) == (offer.limit, "")


def test_the_budget_bounds_the_limit_when_little_is_left() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000)
    assert request.offer is not None
    result = grant(request.offer, Reserved(exposure=request.budget.exposure - 5_000), 0, request.budget)
    assert (result.limit, result.budget_bound) == (5_000, True)


def test_a_spent_budget_refuses_as_exhausted() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy)
    assert request.offer is not None
    result = grant(request.offer, Reserved(exposure=request.budget.exposure - 100), 0, request.budget)
    assert (result.limit, result.refusal) == (0, "budget_exhausted")


def test_the_expected_loss_budget_binds_too() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000)
    assert request.offer is not None
    left_fen = 100_000
    result = grant(request.offer, Reserved(el_fen=request.budget.expected_loss * 100 - left_fen), 0, request.budget)
    assert 0 < result.limit and expected_loss_fen(result.limit, request.offer.el_rate) <= left_fen


def test_pacing_refuses_thin_margins_as_the_budget_fills_but_not_rich_ones() -> None:
    thin, terms = _offer(grade="E", pd=0.30)  # margin barely positive
    rich, _ = _offer(grade="A", pd=0.01)
    nearly_full = Reserved(exposure=int(terms.exposure * 0.8))
    assert grant(thin, Reserved(), 0, terms).refusal == ""
    assert grant(thin, nearly_full, 0, terms).refusal == "budget_paced"
    assert grant(rich, nearly_full, 0, terms).refusal == ""


def test_the_required_margin_rises_with_utilisation() -> None:
    terms = BudgetTerms(exposure=1, expected_loss=1, pacing=True, max_margin=0.1, steepness=2)
    assert required_margin(0.0, terms) == 0
    assert required_margin(0.5, terms) < required_margin(0.9, terms) <= 0.1
    assert required_margin(0.9, replace(terms, pacing=False)) == 0


def test_utilisation_is_the_larger_of_exposure_and_loss_shares() -> None:
    terms = budget_terms(default_policy(), "individual")
    reserved = Reserved(exposure=terms.exposure // 4, el_fen=terms.expected_loss * 100 // 2)
    assert utilisation(reserved, terms) == 0.5


def test_a_programme_out_of_budget_loses_its_boost_not_the_window() -> None:
    policy = default_policy(pacing__enabled=False)
    request = _request(policy, grade="D", pd=0.18, income=100_000, segment="small_business")
    assert request.offer is not None and request.offer.part > 0
    result = grant(request.offer, Reserved(), request.budget.programme_budget, request.budget)
    assert result.limit == request.offer.limit - request.offer.part
    assert result.part == 0


def test_expected_loss_is_whole_fen_rounded_half_up() -> None:
    assert expected_loss_fen(10_000, 0.012345) == 12_345
    assert expected_loss_fen(100, 0.00005) == 1  # half a fen rounds up
    assert expected_loss_fen(100, 0.00004) == 0


def test_a_new_window_supersedes_and_releases_the_customers_previous_one() -> None:
    book = Book()
    first = book.decide(_request(application_id="app_book_000001", income=120_000))
    second = book.decide(_request(application_id="app_book_000002", income=60_000))
    assert first.granted > second.granted > 0
    assert book.state.budgets["individual"].exposure == second.granted
    assert book.state.records["app_book_000001"].status == "released"
    assert book.state.windows["cus_unit00000001"].record == "app_book_000002"
    assert book.state.open == {"app_book_000002"}


def test_a_system_closure_leaves_the_customers_window_open() -> None:
    book = Book()
    opened = book.decide(_request(application_id="app_book_000001"))
    book.decide(_request(application_id="app_book_000002", outcome="unscorable"))
    assert book.state.windows["cus_unit00000001"].limit == opened.granted
    assert book.state.budgets["individual"].exposure == opened.granted


def test_deciding_a_record_again_gives_the_first_answer_and_changes_nothing() -> None:
    book = Book()
    request = _request()
    first = book.decide(request)
    again = book.decide(request)
    assert (again.fresh, again.seq, again.granted) == (False, first.seq, first.granted)
    assert book.state.budgets["individual"].exposure == first.granted
    assert book.state.seqs["cus_unit00000001"] == 1


def test_an_expired_window_closes_releases_and_waits_to_be_announced() -> None:
    book = Book()
    request = _request()
    assert request.offer is not None
    book.decide(request)
    assert book.due_expiries(request.offer.valid_until_ms - 1) == []
    (due,) = book.due_expiries(request.offer.valid_until_ms)
    seq = book.close(close_request(due, trigger="expiry", reason="expired", now=NOW))
    assert seq == 2 and book.pending_closures() == [due]
    assert book.state.budgets["individual"].exposure == 0
    assert book.state.windows["cus_unit00000001"].status == "closed"
    assert book.close(close_request(due, trigger="expiry", reason="expired", now=NOW)) is None  # once


def test_a_re_decision_never_supersedes_the_window_of_a_newer_application_whatever_the_order() -> None:
    for order in (("a", "b"), ("b", "a")):
        book = Book()
        maintenance = default_policy(maintenance=[{"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1)}])
        older = _request(maintenance, application_id="app_order_00000a")
        newer = _request(maintenance, application_id="app_order_00000b")
        book.decide(older)
        book.decide(newer)  # both closed for maintenance, to be decided again
        later = NOW + timedelta(hours=2)
        redecided = {
            app: request_for(propose(score(application_id=f"app_order_00000{app}"), default_policy(), later, "redecision"), default_policy())
            for app in order
        }
        answers = {app: book.decide(redecided[app]) for app in order}
        assert book.state.windows["cus_unit00000001"].application_id == "app_order_00000b"  # the newer application stands
        assert answers["b"].granted > 0 and book.state.budgets["individual"].exposure == answers["b"].granted
        if order == ("b", "a"):  # the older one, decided last, does not take the window back
            assert (answers["a"].granted, answers["a"].refusal) == (0, "newer_application")
        else:  # decided first, then superseded by the newer one
            assert book.state.records["app_order_00000a~r"].status == "released"


def test_an_application_id_of_another_customer_is_a_conflict_and_changes_nothing() -> None:
    book = Book()
    first = book.decide(_request(application_id="app_twice_000001", customer_id="cus_owner_000001"))
    other = book.decide(_request(application_id="app_twice_000001", customer_id="cus_other_000001"))
    assert other.conflict and not first.conflict
    assert "cus_other_000001" not in book.state.windows and book.state.budgets["individual"].exposure == first.granted


def test_an_unreadable_attempt_does_not_block_the_corrected_application_nor_follow_it() -> None:
    book = Book()
    unreadable = _request(application_id="app_fix_0000001", outcome="unscorable", failure="application_invalid: invalid")
    assert unreadable.record == "app_fix_0000001~invalid" and unreadable.fallback_of == "app_fix_0000001"
    closed = book.decide(unreadable)
    corrected = book.decide(_request(application_id="app_fix_0000001"))
    assert closed.fresh and corrected.fresh and corrected.granted > 0  # the corrected resubmission is decided
    again = book.decide(_request(application_id="app_fix_0000002"))
    late_garbage = book.decide(_request(application_id="app_fix_0000002", outcome="unscorable", failure="application_invalid: x"))
    assert again.granted > 0 and late_garbage.decided_as_read  # garbage after a real decision adds nothing
