"""The notification service layer: claim each decision once, render it, tell it on every channel.

Same pattern as the policy's decider: claim (atomic, in order) -> render -> remember the inbox
event -> enqueue the partner's webhook delivery (durable, idempotent) -> publish the inbox event and
wait for the broker -> mark published. A redelivered decision finds its claim: published means
nothing to do; not yet published means the remembered event is published and the webhook enqueued
again, which finds it already there. A decision older than the customer's latest is stale: no
channel hears of it.

Webhooks are only enqueued here, never sent: the dispatcher (`dispatching.py`) posts them in the
background, so a slow or failing partner never holds up the batch, nor any customer's inbox.

Drawdown outcomes and repayments (`tell_movements`) are told the same way, in the inbox only, each
once by its event id and never stale (a customer hears of every drawdown, in any order).

A decision re-published by `creditwindow dlq replay` from a webhook give-up (headers `replay_of` and
`webhook_partner`) is told to nobody again: its delivery to that partner is queued again, once per
replayed letter (the queue remembers the letter).
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace

import structlog

from services.notification.channels import movement_notification, notification_for, webhook_delivery_for
from services.notification.disclosure import Movement, render, render_movement
from services.notification.ports import DeliverySource, EventPublisher, Ledger, WebhookDelivery, WebhookOutbox
from services.notification.webhooks import REDELIVER_HEADER
from shared.contracts import Decision, NotificationSent, Topics
from shared.logging import event_ids
from shared.wire import REPLAY_HEADER, Record, RefusedRecord

__all__ = ["Announcement", "Announcer", "source_of"]

log = structlog.get_logger("creditwindow.notification")


@dataclass(slots=True)
class Announcement:
    """What a batch told: inbox notices published now, webhook deliveries newly enqueued, codes that
    had no wording (rendered generically), and decisions that could not be rendered (dead-lettered)."""

    notices: list[NotificationSent] = field(default_factory=list)
    webhooks_enqueued: int = 0
    webhooks_requeued: int = 0
    unknown_codes: list[tuple[str, str]] = field(default_factory=list)
    unrenderable: list[RefusedRecord] = field(default_factory=list)


def _header(record: Record, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def source_of(record: Record) -> DeliverySource:
    return DeliverySource(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key else None,
        value=record.value or b"",
        headers={
            str(k): (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers or ()
        },
    )


def _log_sent(notices: Sequence[NotificationSent], *, webhooks: int = 0) -> None:
    """One line per batch at INFO: every notice is on `credit.notifications` (the inbox and the audit
    trail) with its text, so a line per notice only repeated it, at a tenth of the service's CPU.
    The per-notice lines are there at DEBUG; warnings (a wording missing, ...) stay per notice."""
    if not notices:
        return
    outcomes: dict[str, int] = {}
    for n in notices:
        outcomes[n.outcome] = outcomes.get(n.outcome, 0) + 1
    log.info("notifications_sent", notices=len(notices), outcomes=outcomes, webhooks_enqueued=webhooks)
    if log.is_enabled_for(logging.DEBUG):
        for n in notices:
            log.debug("notification_sent", **event_ids(n), channel=n.channel, outcome=n.outcome, locale=n.locale)


class Announcer:
    def __init__(
        self, *, ledger: Ledger, webhooks: WebhookOutbox, partners: Container[str], publisher: EventPublisher, topics: Topics
    ) -> None:
        self.ledger = ledger
        self.webhooks = webhooks
        self.partners = partners
        self.publisher = publisher
        self.topics = topics

    async def announce(self, events: Sequence[tuple[Record, Decision]]) -> Announcement:
        unique: dict[str, tuple[Record, Decision]] = {}
        for record, decision in events:
            unique.setdefault(str(decision.decision_id), (record, decision))
        claims = await self.ledger.claim([(d, x.customer_id, x.decision_seq) for d, (_, x) in unique.items()])
        result = Announcement()
        remembered: list[tuple[str, bytes]] = []
        deliveries: list[WebhookDelivery] = []
        for (decision_id, (record, decision)), claim in zip(unique.items(), claims, strict=True):
            if claim.state in ("done", "stale"):
                continue
            try:
                disclosure = render(decision)
                if claim.stored_event is not None:
                    notice = NotificationSent.model_validate_json(claim.stored_event)
                else:
                    notice = notification_for(decision, disclosure, "inbox")
                    remembered.append((decision_id, notice.model_dump_json().encode()))
                delivery = webhook_delivery_for(decision, disclosure, source_of(record), self.partners)
            except Exception as exc:  # noqa: BLE001 - rendering is pure: what fails once fails on every redelivery
                # A decision we cannot put into words must not block the partition: dead-letter it.
                # Its claim stays unpublished, so a replay after the fix tells it.
                result.unrenderable.append(RefusedRecord(record, "unrenderable", f"{type(exc).__name__}: {exc}"[:1000]))
                continue
            result.notices.append(notice)
            if delivery is not None:
                deliveries.append(delivery)
            for code in disclosure.unknown_codes:
                # Told generically; the wording belongs in shared.reasons.
                log.warning("wording_missing", code=code, decision_id=decision_id, customer_id=decision.customer_id)
                result.unknown_codes.append((decision_id, code))
        if result.unrenderable:
            await self.publisher.dead_letter(self.topics.deadletter, result.unrenderable)
        await self.ledger.remember(remembered)
        result.webhooks_enqueued = await self.webhooks.enqueue(deliveries) if deliveries else 0
        await self.publisher.publish((self.topics.notifications, n) for n in result.notices)
        await self.ledger.mark_published([str(n.decision_id) for n in result.notices])
        _log_sent(result.notices, webhooks=result.webhooks_enqueued)
        result.webhooks_requeued = await self._requeue_replayed(events)
        return result

    async def tell_movements(self, events: Sequence[tuple[Record, Movement]]) -> Announcement:
        """Tell each drawdown outcome and repayment once, in the customer's inbox."""
        unique: dict[str, tuple[Record, Movement]] = {}
        for record, event in events:
            unique.setdefault(str(event.event_id), (record, event))
        claims = await self.ledger.claim([(i, e.customer_id, -1) for i, (_, e) in unique.items()])
        result = Announcement()
        remembered: list[tuple[str, bytes]] = []
        for (event_id, (record, event)), claim in zip(unique.items(), claims, strict=True):
            if claim.state in ("done", "stale"):
                continue
            try:
                if claim.stored_event is not None:
                    notice = NotificationSent.model_validate_json(claim.stored_event)
                else:
                    notice = movement_notification(event, render_movement(event))
                    remembered.append((event_id, notice.model_dump_json().encode()))
            except Exception as exc:  # noqa: BLE001 - rendering is pure: what fails once fails on every redelivery
                result.unrenderable.append(RefusedRecord(record, "unrenderable", f"{type(exc).__name__}: {exc}"[:1000]))
                continue
            result.notices.append(notice)
        if result.unrenderable:
            await self.publisher.dead_letter(self.topics.deadletter, result.unrenderable)
        await self.ledger.remember(remembered)
        await self.publisher.publish((self.topics.notifications, n) for n in result.notices)
        await self.ledger.mark_published([str(n.decision_id) for n in result.notices])
        _log_sent(result.notices)
        return result

    async def _requeue_replayed(self, events: Sequence[tuple[Record, Decision]]) -> int:
        """Deliveries of replayed webhook give-ups, queued again (the queue keeps it to once per letter)."""
        again: dict[str, WebhookDelivery] = {}
        for record, decision in events:
            letter, partner = _header(record, REPLAY_HEADER), _header(record, REDELIVER_HEADER)
            if not letter or not partner:
                continue
            ids = event_ids(decision)
            if partner != decision.partner_id or partner not in self.partners:
                log.warning("webhook_replay_skipped", **ids, partner_id=partner, replay_of=letter, why="no such partner webhook")
                continue
            delivery = webhook_delivery_for(decision, render(decision), source_of(record), self.partners)
            if delivery is not None:
                again.setdefault(letter, replace(delivery, replay_of=letter))
        queued = await self.webhooks.requeue(list(again.values())) if again else 0
        if again:
            log.info("webhook_replay_queued", letters=sorted(again), queued=queued)
        return queued
