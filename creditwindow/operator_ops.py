"""Operators' actions on customers: sign them like a policy update, publish them, and read the desk back.

A review decided, a suspension and its lifting are `OperatorAction`s: HMAC-SHA256 by the ring's
signing key over every field and this fleet's namespace (`shared.signing.sign_action`); every
policy replica verifies them (`services.policy.control.checks.check_action`) and refuses the unsigned and
the forged to the dead-letter topic. `board` and `suspensions_of` are pure: what `credit.reviews`
says about the reviews under way and the customers suspended.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.policy.care.desk import CustomerDesk
from services.policy.care.reviewing import review_id_for
from services.policy.control.checks import check_action
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
from shared.signing import sign_action

__all__ = ["Review", "board", "publish_action", "read_reviews", "signed_action", "suspensions_of"]

A = TypeVar("A", bound=OperatorAction)


def signed_action(model: type[A], settings: Settings, *, issued_by: str, issued_at: datetime | None = None, **fields: Any) -> A:
    """An operator action signed with the ring's signing key for this fleet's namespace (SigningRefused
    when that key is retired or missing; ValidationError when a field is wrong)."""
    key_id, key = settings.policy_key_ring.signing_key()
    unsigned = model(
        correlation_id=str(fields.get("reference") or fields.get("customer_id") or "operator"),
        producer="creditwindow-cli",
        issued_by=issued_by,
        issued_at=issued_at or settings.clock().now(),
        key_id=key_id,
        namespace=settings.topic_namespace,
        signature="0" * 64,
        **fields,
    )
    signature = sign_action(key, model.EVENT_TYPE, unsigned.signed_fields(settings.topic_namespace))
    return unsigned.model_copy(update={"signature": signature})


async def publish_action(action: OperatorAction, settings: Settings) -> int:
    """Publish a signed action to `credit.reviews` and wait for the broker; returns its offset."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.reviews, action))
    return int(metadata.offset)


async def read_reviews(settings: Settings) -> list[Event]:
    """Everything `credit.reviews` holds, in order per customer."""
    return [r.event for r in await read_to_end(settings, [settings.topics.reviews]) if r.event is not None]


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
    """The reviews by reference, from `credit.reviews` (duplicate requests are one review). Pure."""
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


def suspensions_of(events: Sequence[Event], settings: Settings, now: datetime) -> dict[str, Suspension]:
    """The customers suspended now, as every policy replica sees them (verified actions only)."""
    desk = CustomerDesk()
    ring, namespace = settings.policy_key_ring, settings.topic_namespace
    skew = timedelta(seconds=settings.policy_max_clock_skew_s)
    for event in events:
        if isinstance(event, (CustomerSuspended, SuspensionLifted)) and check_action(event, ring=ring, namespace=namespace, now=now, max_skew=skew) is None:
            if isinstance(event, CustomerSuspended):
                desk.suspend(event)
            else:
                desk.lift(event)
    return {customer: s for customer, s in desk.suspensions.items() if s.active(now)}
