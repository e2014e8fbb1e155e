"""Operators' actions on customers: sign them like a policy update, publish them, and read the desk back.

A review decided, a suspension and its lifting are `OperatorAction`s: Ed25519 by the operator's key
over every field and this fleet's namespace (`shared.signing.action_bytes`); every policy replica
verifies them (`services.policy.control.checks.check_action`) and refuses the unsigned, the forged
and the stale to the dead-letter topic. They are published to `credit.operator-actions`, which only
operators write. `board` and `suspensions_of` are pure: what the review requests, the policy
service's review results and the operators' actions say about the reviews under way and the
customers suspended.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from creditwindow.key_ops import signing_key
from services.policy.care.desk import CustomerDesk
from services.policy.care.reviewing import review_id_for
from services.policy.control.checks import Signatures, check_action
from services.policy.control.document import PolicyDocument
from services.policy.windows.ports import Suspension
from shared.contracts import (
    CustomerSuspended,
    Event,
    OperatorAction,
    ReviewConcluded,
    ReviewOpened,
    ReviewRequested,
    SuspensionLifted,
)
from shared.messaging.topic_io import Publisher, read_to_end
from shared.references import normalise_reference
from shared.settings import Settings
from shared.signing import action_bytes
from shared.wire import Record

__all__ = ["Review", "board", "publish_action", "read_reviews", "signed_action", "suspensions_of", "verified_desk"]

A = TypeVar("A", bound=OperatorAction)


def signed_action(model: type[A], settings: Settings, *, issued_by: str, issued_at: datetime | None = None, **fields: Any) -> A:
    """An operator action signed with this operator's key for this fleet's namespace (SigningRefused
    when there is no key to sign with or the ring refuses it; ValidationError when a field is wrong)."""
    key = signing_key(settings)
    unsigned = model(
        correlation_id=str(fields.get("reference") or fields.get("customer_id") or "operator"),
        producer="creditwindow-cli",
        issued_by=issued_by,
        issued_at=issued_at or settings.clock().now(),
        key_id=key.key_id,
        namespace=settings.topic_namespace,
        signature="0" * 128,
        **fields,
    )
    signature = key.sign(action_bytes(model.EVENT_TYPE, unsigned.signed_fields(settings.topic_namespace)))
    return unsigned.model_copy(update={"signature": signature})


async def publish_action(action: OperatorAction, settings: Settings) -> int:
    """Publish a signed action to `credit.operator-actions` and wait for the broker; returns its offset."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.operator_actions, action))
    return int(metadata.offset)


async def read_reviews(settings: Settings) -> list[tuple[Record, Event]]:
    """Everything customer care's topics hold (review requests, review results, operators' actions),
    each read as what its topic carries, in order per customer and topic, each event with its record."""
    topics = settings.topics
    records = await read_to_end(settings, [topics.review_requests, topics.review_results, topics.operator_actions])
    return [(r.record, r.event) for r in records if r.event is not None]


@dataclass(slots=True)
class Review:
    """A review as the desk sees it: the requests, the acknowledgement and the outcome, if any."""

    reference: str
    review_id: uuid.UUID
    customer_id: str
    requests: list[ReviewRequested] = field(default_factory=list)
    opened: ReviewOpened | None = None
    concluded: ReviewConcluded | None = None

    @property
    def requested_at(self) -> datetime:
        if self.opened is not None:
            return self.opened.requested_at
        return min(r.occurred_at for r in self.requests)

    @property
    def status(self) -> str:
        if self.concluded is not None:
            return self.concluded.outcome
        return "open" if self.opened is not None else "not_acknowledged"

    def overdue(self, now: datetime, within: timedelta) -> bool:
        return self.status == "open" and now - self.requested_at > within

    def as_dict(self, now: datetime, within: timedelta) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "review_id": str(self.review_id),
            "customer_id": self.customer_id,
            "status": self.status,
            "requested_at": self.requested_at.isoformat(),
            "respond_by": self.opened.respond_by.isoformat() if self.opened else None,
            "age_hours": round((now - self.requested_at).total_seconds() / 3600, 1),
            "overdue": self.overdue(now, within),
            "requests": len(self.requests),
            "statements": [r.statement for r in self.requests if r.statement],
            "outcome": self.concluded.outcome if self.concluded else None,
            "decided_by": self.concluded.decided_by if self.concluded else None,
            "new_decision_id": str(self.concluded.new_decision_id) if self.concluded and self.concluded.new_decision_id else None,
        }


def board(events: Iterable[Event]) -> dict[str, Review]:
    """The reviews by reference, from the requests and the review results (duplicate requests are one review). Pure."""
    reviews: dict[str, Review] = {}

    def review(reference: str, customer: str) -> Review:
        return reviews.setdefault(reference, Review(reference, review_id_for(reference), customer))

    for event in events:
        if isinstance(event, ReviewRequested):
            reference = normalise_reference(event.reference)
            if reference is not None:
                review(reference, event.customer_id).requests.append(event)
        elif isinstance(event, ReviewOpened):
            review(event.reference, event.customer_id).opened = event
        elif isinstance(event, ReviewConcluded):
            review(event.reference, event.customer_id).concluded = event
    return reviews


def verified_desk(
    events: Sequence[tuple[Record, Event]], signatures: Signatures, policy: PolicyDocument, now: datetime, *, issued_by: datetime | None = None
) -> CustomerDesk:
    """The desk's suspensions as every policy replica keeps them: the actions (issued by `issued_by`,
    if given) that verify with the fleet's ring (retirements applied) and the active policy's maximum
    age, each judged when its record reached the log (`now` for one without a time)."""
    desk = CustomerDesk()
    s, max_age = signatures, policy.customer_care.max_action_age
    for record, event in events:
        if not isinstance(event, (CustomerSuspended, SuspensionLifted)) or (issued_by is not None and event.issued_at > issued_by):
            continue
        at = record.logged_at(now)
        if check_action(event, ring=s.ring, namespace=s.namespace, logged_at=at, max_age=max_age, max_skew=s.max_skew) is not None:
            continue
        if isinstance(event, CustomerSuspended):
            desk.suspend(event)
        else:
            desk.lift(event)
    return desk


def suspensions_of(events: Sequence[tuple[Record, Event]], signatures: Signatures, policy: PolicyDocument, now: datetime) -> dict[str, Suspension]:
    """The customers suspended at `now`, as every policy replica sees them."""
    desk = verified_desk(events, signatures, policy, now)
    return {customer: s for customer, s in desk.suspensions.items() if s.active(now)}
