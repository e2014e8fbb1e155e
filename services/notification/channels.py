"""Where a decision is told, and what each channel carries. Pure.

Every decision goes to the customer's in-app inbox (a `NotificationSent` on `credit.notifications`).
A decision whose `partner_id` has a webhook URL also goes to that partner (see `webhooks.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from datetime import datetime
from typing import Any

from services.notification import PRODUCER
from services.notification.disclosure import Disclosure, Notice
from services.notification.ports import DeliverySource, WebhookDelivery
from services.notification.webhooks import notification_id, webhook_payload
from shared.contracts import (
    Decision,
    DecisionDelayed,
    DrawdownApproved,
    LendingOutcome,
    NotificationSent,
    RepaymentApplied,
    ReviewConcluded,
    deterministic_id,
)

__all__ = ["movement_notification", "notice_for", "notification_for", "webhook_delivery_for"]



def notification_for(decision: Decision, disclosure: Disclosure, channel: str = "inbox", *, at: datetime) -> NotificationSent:
    """The record that the customer was told on `channel` at `at`; its ids are the same for every copy."""
    closed = decision.event_type == "WindowClosed"
    the_id = notification_id(decision, channel)
    return _told(
        decision, the_id, disclosure, channel, at,
        decision_id=decision.decision_id, decision_seq=decision.decision_seq, application_id=decision.application_id,
        outcome="closed" if closed else "opened", category=getattr(decision, "category", None),
        policy_version=decision.policy_version, model_id=decision.model_id,
    )  # fmt: skip


def movement_notification(event: LendingOutcome, disclosure: Disclosure, *, at: datetime) -> NotificationSent:
    """The inbox record that the customer was told of a drawdown outcome or a repayment (inbox only:
    partners hear of windows, not of each drawdown)."""
    the_id = deterministic_id("notification", event.event_id, "inbox")
    if isinstance(event, RepaymentApplied):
        outcome, movement, application, category, policy = "repayment_applied", event.repayment_id, None, None, ""
    else:
        outcome = "drawdown_approved" if isinstance(event, DrawdownApproved) else "drawdown_refused"
        movement, application, policy = event.drawdown_id, event.application_id, event.policy_version
        category = getattr(event, "category", None)
    return _told(
        event, the_id, disclosure, "inbox", at,
        decision_id=event.event_id, decision_seq=event.balance_seq, application_id=application, outcome=outcome,
        category=category, policy_version=policy or "-", movement_id=movement, about="drawdown",
    )  # fmt: skip


def webhook_delivery_for(
    decision: Decision, disclosure: Disclosure, source: DeliverySource, partners: Container[str], *, at: datetime
) -> WebhookDelivery | None:
    """The webhook delivery of a decision, when its partner has a webhook; None otherwise."""
    partner = decision.partner_id
    if not partner or partner not in partners:
        return None
    payload = webhook_payload(decision, disclosure, partner)
    notice = notification_for(decision, disclosure, "webhook", at=at)  # stamped again when delivered
    return WebhookDelivery(
        notification_id=str(payload.notification_id),
        partner_id=partner,
        customer_id=decision.customer_id,
        decision_id=str(decision.decision_id),
        correlation_id=decision.correlation_id,
        body=payload.model_dump_json().encode(),
        notice=notice.model_dump_json().encode(),
        source=source,
    )


def notice_for(notice: Notice, disclosure: Disclosure, channel: str = "inbox", *, at: datetime) -> NotificationSent:
    """The record that the customer was told a notice that is not a decision (a delay, a review)."""
    the_id = deterministic_id("notice", notice.event_id, channel)
    delayed = isinstance(notice, DecisionDelayed)
    upheld = isinstance(notice, ReviewConcluded)
    return _told(
        notice, the_id, disclosure, channel, at,
        decision_id=notice.event_id, decision_seq=0, application_id=notice.application_id,
        outcome=notice.reviewed_outcome if upheld else "pending",  # type: ignore[union-attr]
        category="system" if delayed else getattr(notice, "reviewed_category", None),
        policy_version="", about="delay" if delayed else "review", about_decision_id=notice.decision_id,
    )  # fmt: skip


def _told(
    cause: Decision | Notice | LendingOutcome, the_id: uuid.UUID, disclosure: Disclosure, channel: str, at: datetime, **about: Any
) -> NotificationSent:
    """The record that the customer `cause` is about was told `disclosure` on `channel` at `at` (in the
    language it names); `about` says what it was about."""
    return NotificationSent.caused_by(
        cause, key=the_id, producer=PRODUCER, occurred_at=at, notification_id=the_id, customer_id=cause.customer_id,
        channel=channel, locale=cause.locale, reference=disclosure.reference, title=disclosure.title, body=disclosure.body,
        **about,
    )  # fmt: skip
