"""The notification service layer: claim each decision once, render it, publish it, remember it.

Same pattern as the policy's decider: claim (atomic, in order) -> render -> remember the rendered
event -> publish and wait for the broker -> mark published. A redelivered decision finds its claim:
published means nothing to do; not yet published means the remembered event is published.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog

from services.notification.disclosure import render
from services.notification.redis_ledger import Claim
from shared.contracts import Decision, NotificationSent, Topics, deterministic_id, utc_now
from shared.messaging import Outbox

__all__ = ["Announcer", "Ledger", "notification_for"]

log = structlog.get_logger("creditwindow.notification")

PRODUCER = "notification"


class Ledger(Protocol):
    async def claim(self, decisions: Sequence[tuple[str, str, int]]) -> list[Claim]: ...

    async def remember(self, notices: Sequence[tuple[str, bytes]]) -> None: ...

    async def mark_published(self, decision_ids: Sequence[str]) -> None: ...


def notification_for(decision: Decision, channel: str = "inbox") -> NotificationSent:
    disclosure = render(decision)
    closed = decision.event_type == "WindowClosed"
    return NotificationSent(
        event_id=deterministic_id("notification", decision.decision_id, channel),
        correlation_id=decision.correlation_id,
        causation_id=decision.event_id,
        producer=PRODUCER,
        occurred_at=utc_now(),
        notification_id=deterministic_id("notification", decision.decision_id, channel),
        decision_id=decision.decision_id,
        decision_seq=decision.decision_seq,
        application_id=decision.application_id,
        customer_id=decision.customer_id,
        channel=channel,  # type: ignore[arg-type]
        locale=decision.locale,
        outcome="closed" if closed else "opened",
        category=getattr(decision, "category", None),
        reference=disclosure.reference,
        title=disclosure.title,
        body=disclosure.body,
        policy_version=decision.policy_version,
        model_id=decision.model_id,
    )


class Announcer:
    def __init__(self, *, ledger: Ledger, outbox: Outbox, topics: Topics) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.topics = topics

    async def announce(self, decisions: Sequence[Decision]) -> list[NotificationSent]:
        unique: dict[str, Decision] = {}
        for decision in decisions:
            unique.setdefault(str(decision.decision_id), decision)
        claims = await self.ledger.claim([(d, x.customer_id, x.decision_seq) for d, x in unique.items()])
        notices: list[NotificationSent] = []
        new: list[tuple[str, bytes]] = []
        for (decision_id, decision), claim in zip(unique.items(), claims, strict=True):
            if claim.state in ("done", "stale"):
                continue
            if claim.stored_event is not None:
                notices.append(NotificationSent.model_validate_json(claim.stored_event))
                continue
            notice = notification_for(decision)
            notices.append(notice)
            new.append((decision_id, notice.model_dump_json().encode()))
        await self.ledger.remember(new)
        await self.outbox.publish((self.topics.notifications, n) for n in notices)
        await self.ledger.mark_published([str(n.decision_id) for n in notices])
        for n in notices:
            log.info(
                "notification_sent",
                event_id=str(n.event_id),
                correlation_id=n.correlation_id,
                customer_id=n.customer_id,
                channel=n.channel,
                outcome=n.outcome,
                locale=n.locale,
            )
        return notices
