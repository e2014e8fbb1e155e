"""Operators' signed actions on customers, and the desk every policy replica keeps from them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from creditwindow.operator_ops import signed_action
from services.policy.care.desk import CustomerDesk
from services.policy.control.checks import check_action
from shared.contracts import CustomerSuspended, ReviewConcluded, ReviewDecided, ReviewOpened, SuspensionLifted
from shared.settings import Settings
from tests.clocks import NOW

SETTINGS = Settings(topic_namespace="ns1", policy_signing_key="unit-test-key-of-enough-length-0123456789")
RING = SETTINGS.policy_key_ring


def _suspend(at: datetime = NOW - timedelta(minutes=5), until: datetime | None = None, customer: str = "cus_desk00000001") -> CustomerSuspended:
    return signed_action(CustomerSuspended, SETTINGS, issued_by="ops1", issued_at=at, customer_id=customer, reason="identity_check", until=until)


def _lift(at: datetime = NOW, customer: str = "cus_desk00000001") -> SuspensionLifted:
    return signed_action(SuspensionLifted, SETTINGS, issued_by="ops1", issued_at=at, customer_id=customer)


def test_an_action_signed_by_the_ring_for_this_namespace_takes_effect() -> None:
    assert check_action(_suspend(), ring=RING, namespace="ns1", now=NOW) is None


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"reason": "suspected_fraud"}, "forged"),  # a signed field changed after signing
        ({"customer_id": "cus_other0000001"}, "forged"),
        ({"until": NOW + timedelta(days=99)}, "forged"),
        ({"signature": "0" * 64}, "forged"),
        ({"key_id": "k9"}, "unknown_key"),
    ],
)
def test_a_tampered_unsigned_or_unknown_key_action_is_refused(change: dict[str, object], error_type: str) -> None:
    forged = _suspend().model_copy(update=change)
    refused = check_action(forged, ring=RING, namespace="ns1", now=NOW)
    assert refused is not None and refused.error_type == error_type


def test_an_action_signed_for_another_namespace_or_from_the_future_is_refused() -> None:
    other = check_action(_suspend(), ring=RING, namespace="prod", now=NOW)
    assert other is not None and other.error_type == "other_namespace"
    future = check_action(_suspend(at=NOW + timedelta(hours=1)), ring=RING, namespace="ns1", now=NOW)
    assert future is not None and future.error_type == "future"


def test_a_review_decision_is_signed_over_its_outcome_and_limit() -> None:
    decided = signed_action(
        ReviewDecided, SETTINGS, issued_by="ops1", issued_at=NOW, review_id=uuid.uuid4(), reference="CW-0000-0000-0001",
        decision_id=uuid.uuid4(), customer_id="cus_desk00000001", outcome="overturned", limit=3000, note="ok",
    )  # fmt: skip
    assert check_action(decided, ring=RING, namespace="ns1", now=NOW) is None
    raised = decided.model_copy(update={"limit": 300_000})
    assert check_action(raised, ring=RING, namespace="ns1", now=NOW).error_type == "forged"  # type: ignore[union-attr]


def test_a_suspension_holds_until_it_ends_or_is_lifted() -> None:
    desk = CustomerDesk()
    assert desk.suspend(_suspend(until=NOW + timedelta(days=1))) is not None
    assert desk.suspension("cus_desk00000001", NOW) is not None
    assert desk.suspension("cus_desk00000001", NOW + timedelta(days=2)) is None  # ended by itself
    assert desk.lift(_lift(at=NOW))
    assert desk.suspension("cus_desk00000001", NOW) is None


def test_an_old_action_replayed_after_a_newer_one_changes_nothing() -> None:
    desk = CustomerDesk()
    old = _suspend(at=NOW - timedelta(hours=2))
    desk.suspend(old)
    desk.lift(_lift(at=NOW - timedelta(hours=1)))
    assert desk.suspend(old) is None  # the suspension replayed after its lifting
    assert desk.suspension("cus_desk00000001", NOW) is None


def _opened(review_id: uuid.UUID, requested_at: datetime) -> ReviewOpened:
    return ReviewOpened(
        correlation_id="app_desk_000001", review_id=review_id, reference="CW-0000-0000-0001", decision_id=uuid.uuid4(),
        application_id="app_desk_000001", customer_id="cus_desk00000001", requested_at=requested_at,
        respond_by=requested_at + timedelta(days=7), reviewed_outcome="closed",
    )  # fmt: skip


def test_reviews_open_longer_than_the_policy_allows_are_overdue_until_concluded() -> None:
    desk = CustomerDesk()
    old, new = uuid.uuid4(), uuid.uuid4()
    desk.opened(_opened(old, NOW - timedelta(days=8)))
    desk.opened(_opened(new, NOW - timedelta(days=1)))
    assert [r.review_id for r in desk.overdue(NOW, timedelta(days=7))] == [old]
    concluded = ReviewConcluded(
        correlation_id="app_desk_000001", review_id=old, reference="CW-0000-0000-0001", decision_id=uuid.uuid4(),
        application_id="app_desk_000001", customer_id="cus_desk00000001", outcome="upheld", decided_by="ops1", reviewed_outcome="closed",
    )  # fmt: skip
    desk.concluded(concluded)
    desk.opened(_opened(old, NOW - timedelta(days=8)))  # a duplicate acknowledgement after the outcome
    assert desk.overdue(NOW, timedelta(days=7)) == [] and len(desk.reviews) == 1
