"""The customer's side of the rules: thresholds told, suspensions, overturns on review, delay notices."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from creditwindow.operator_ops import signed_action
from services.policy.care.delays import DelayWatch
from services.policy.care.reviewing import conclusion, open_review, overturn, review_id_for, reviewed_record
from services.policy.windows.decisions import decision_event, propose, request_for
from services.policy.windows.model import Posting
from services.policy.windows.ports import Suspension
from services.policy.windows.rules import Close, Offer, evaluate
from shared.contracts import ReviewDecided, ReviewRequested, RuleThreshold, WindowClosed, WindowOpened
from shared.references import reference_of
from shared.settings import Settings
from tests.unit.policy.factories import NOW, default_policy, score

SETTINGS = Settings(policy_signing_key="unit-test-key-of-enough-length-0123456789")


@pytest.mark.parametrize(
    ("kwargs", "rule", "threshold", "value", "months"),
    [
        ({"inquiries": 5}, "knockout_inquiries", 3, 5, 3),
        ({"overdue": 2}, "knockout_recent_overdue", 0, 2, 12),
        ({"points": 480.0}, "score_below_cutoff", 518, 480.0, None),
    ],
)
def test_a_credit_closure_carries_its_rule_threshold_and_the_customers_figure(kwargs: dict, rule: str, threshold: float, value: float, months: int | None) -> None:
    closed = evaluate(score(**kwargs), default_policy(), NOW)
    assert isinstance(closed, Close) and closed.reason == rule
    assert closed.threshold == RuleThreshold(rule=rule, threshold=threshold, value=value, period_months=months)


def test_a_regulatory_closure_carries_the_policys_own_share_of_income() -> None:
    policy = default_policy(regulatory__income_fraction=0.25, limits__min_limit=20_000)
    closed = evaluate(score(income=60_000), policy, NOW)
    assert isinstance(closed, Close) and (closed.category, closed.reason) == ("regulatory", "income_cap")
    assert closed.threshold == RuleThreshold(rule="income_cap", threshold=0.25)


def test_the_decision_event_carries_the_threshold_and_whether_the_score_may_be_told() -> None:
    policy = default_policy()
    proposal = propose(score(inquiries=5), policy, NOW)
    allocation = Posting(fresh=True, seq=1, granted=0, refusal=None, programme_part=0, available=0)
    closed = decision_event(proposal, allocation, policy, NOW)
    assert isinstance(closed, WindowClosed) and closed.threshold is not None and closed.threshold.value == 5
    assert closed.score_disclosed is True  # the shipped policy lets customers see their score
    quiet = default_policy(customer_care__show_score=False)
    assert decision_event(propose(score(inquiries=5), quiet, NOW), allocation, quiet, NOW).score_disclosed is False


def test_a_suspended_customer_closes_as_strategy_until_the_suspension_ends() -> None:
    until = NOW + timedelta(days=3)
    suspension = Suspension("cus_unit00000001", "identity_check", NOW - timedelta(hours=1), until, "ops1")
    closed = evaluate(score(), default_policy(), NOW, suspension)
    assert isinstance(closed, Close) and (closed.category, closed.reason, closed.retry_after) == ("strategy", "customer_suspended", until)
    assert isinstance(evaluate(score(), default_policy(), until + timedelta(seconds=1), suspension), Offer)  # ended by itself


def test_maintenance_comes_before_a_suspension_and_a_suspension_before_pauses() -> None:
    suspension = Suspension("cus_unit00000001", "collections", NOW - timedelta(hours=1), None, "ops1")
    window = {"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1), "note": ""}
    assert evaluate(score(), default_policy(maintenance=[window]), NOW, suspension).reason == "maintenance"  # type: ignore[union-attr]
    assert evaluate(score(), default_policy(pauses__segments=["individual"]), NOW, suspension).reason == "customer_suspended"  # type: ignore[union-attr]


def _closed_decision(**kwargs: object) -> WindowClosed:
    proposal = propose(score(points=480.0, **kwargs), default_policy(), NOW)  # type: ignore[arg-type]
    closed = decision_event(proposal, Posting(fresh=True, seq=4, granted=0, refusal=None, programme_part=0, available=0), default_policy(), NOW)
    assert isinstance(closed, WindowClosed)
    return closed


def _decided(reviewed: WindowClosed, limit: int | None = 5000, outcome: str = "overturned") -> ReviewDecided:
    reference = reference_of(reviewed.decision_id)
    return signed_action(
        ReviewDecided, SETTINGS, issued_by="ops1", issued_at=NOW, review_id=review_id_for(reference), reference=reference,
        decision_id=reviewed.decision_id, customer_id=reviewed.customer_id, outcome=outcome, limit=limit, note="Your savings were misread.",
    )  # fmt: skip


def test_duplicate_requests_for_the_same_decision_make_one_review() -> None:
    reviewed = _closed_decision()
    requests = [
        # An upstream app's clock, or a backdated request: it sets no deadline.
        ReviewRequested(
            correlation_id="x", customer_id=reviewed.customer_id, reference=text, statement="please look again",
            occurred_at=NOW - timedelta(days=30),
        )  # fmt: skip
        for text in (reference_of(reviewed.decision_id), reference_of(reviewed.decision_id).lower().replace("-", ""), str(reviewed.decision_id))
    ]
    opened = {open_review(r, reviewed, default_policy(), NOW).review_id for r in requests}
    assert len(opened) == 1
    ack = open_review(requests[0], reviewed, default_policy(), NOW)
    assert ack.respond_by == NOW + default_policy().customer_care.review_within  # from when the fleet opened it
    assert ack.requested_at == NOW - timedelta(days=30)  # what the app said, kept as said


def test_an_overturn_opens_the_reviewers_limit_ordered_as_the_decision_it_reviews() -> None:
    reviewed = _closed_decision()
    record = reviewed_record(reviewed)
    decided = _decided(reviewed)
    proposal = overturn(decided, reviewed, score(points=480.0), default_policy(), NOW, record=record or "")
    assert isinstance(proposal.verdict, Offer) and proposal.verdict.limit == 5000 and proposal.verdict.basis.bound_by == "reviewer"
    request = request_for(proposal, default_policy())
    assert request.redecides == reviewed.application_id and request.supersedes
    assert request.record == f"{reviewed.application_id}~review:{reviewed.decision_id}"
    opened = decision_event(proposal, Posting(fresh=True, seq=5, granted=5000, refusal=None, programme_part=0, available=10**6), default_policy(), NOW)
    assert isinstance(opened, WindowOpened) and opened.trigger == "review" and opened.reviewed_decision_id == reviewed.decision_id
    assert opened.review_note == "Your savings were misread." and opened.causation_id == decided.event_id


def test_an_overturn_stays_under_the_regulatory_caps() -> None:
    reviewed = _closed_decision(income=30_000)
    capped = overturn(_decided(reviewed, limit=50_000), reviewed, score(points=480.0, income=30_000), default_policy(), NOW, record="r")
    assert isinstance(capped.verdict, Offer) and (capped.verdict.limit, capped.verdict.basis.bound_by) == (10_000, "income_cap")
    tiny = overturn(_decided(reviewed), reviewed, score(points=480.0, income=1_200), default_policy(), NOW, record="r")
    assert isinstance(tiny.verdict, Close) and (tiny.verdict.category, tiny.verdict.reason) == ("regulatory", "income_cap")


def test_a_review_concluded_names_the_new_decision_of_an_overturn() -> None:
    reviewed = _closed_decision()
    upheld = conclusion(_decided(reviewed, limit=None, outcome="upheld"), reviewed, None, NOW)
    overturned = conclusion(_decided(reviewed), reviewed, uuid.UUID(int=5), NOW)
    assert (overturned.outcome, overturned.new_decision_id) == ("overturned", uuid.UUID(int=5))
    assert (upheld.outcome, upheld.new_decision_id, upheld.reviewed_outcome, upheld.reviewed_category) == ("upheld", None, "closed", "credit")
    assert upheld.event_id == conclusion(_decided(reviewed, limit=None, outcome="upheld"), reviewed, None, NOW).event_id  # copies are one


def test_a_delay_is_told_once_per_application_after_the_bound() -> None:
    watch = DelayWatch()
    waiting = score().model_copy(update={"occurred_at": NOW - timedelta(minutes=3)})
    fresh = score(application_id="app_unit_000002").model_copy(update={"occurred_at": NOW - timedelta(seconds=10)})
    bound = timedelta(minutes=2)
    (notice,) = watch.due([waiting, fresh], NOW, bound, "ConnectionError")
    assert notice.application_id == waiting.application_id and notice.waiting_since == waiting.occurred_at
    assert notice.decision_id == propose(waiting, default_policy(), NOW).decision_id  # the reference told is the decision's
    assert notice.event_id == watch.due([waiting], NOW, bound, "other")[0].event_id  # another replica's copy is the same notice
    watch.told([notice])
    assert watch.due([waiting, fresh], NOW, bound, "ConnectionError") == []
    assert watch.next_due_s([waiting, fresh], NOW, bound) == pytest.approx(110)


def test_a_reference_is_the_same_in_every_service() -> None:
    from services.notification.disclosure import reference_for

    reviewed = _closed_decision()
    assert reference_for(reviewed) == reference_of(reviewed.decision_id)
    assert uuid.UUID(str(reviewed.decision_id)) == reviewed.decision_id
