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

Notices that are not decisions go the same way in the inbox only: a review received or upheld is
claimed under its own event id, outside the customer's order of decisions (never stale). A decision
delayed by an outage is told without the ledger (Redis may be what is away): once per process, under
an id derived from the application, so a copy from another replica is the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from services.notification.channels import movement_notification, notice_for, notification_for, webhook_delivery_for
from services.notification.disclosure import Disclosure, Notice, render, render_movement, render_notice, tells
from services.notification.ports import DeliverySource, EventPublisher, Ledger, WebhookDelivery, WebhookOutbox
from services.notification.webhooks import REDELIVER_HEADER
from shared.clock import Clock
from shared.contracts import Decision, DecisionDelayed, LendingOutcome, NotificationSent, Topics
from shared.logging import event_ids
from shared.wire import REPLAY_HEADER, Record, RefusedRecord, serialised

__all__ = ["Announcement", "Announcer", "source_of"]

_DELAYS_REMEMBERED = 100_000

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
            log.debug("notification_sent", **event_ids(n), channel=n.channel, outcome=n.outcome, about=n.about, locale=n.locale)


class Announcer:
    def __init__(
        self,
        *,
        ledger: Ledger,
        webhooks: WebhookOutbox,
        partners: Container[str],
        publisher: EventPublisher,
        topics: Topics,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.webhooks = webhooks
        self.partners = partners
        self.publisher = publisher
        self.topics = topics
        self.clock = clock
        self._delays_told: dict[str, None] = {}

    async def announce(self, events: Sequence[tuple[Record, Decision]]) -> Announcement:
        """Tell each decision once, in the inbox and to its partner's webhook."""
        items = [(str(d.decision_id), d.customer_id, d.decision_seq, record, d) for record, d in events]
        result = await self._tell(items)
        result.webhooks_requeued = await self._requeue_replayed(events)
        return result

    async def announce_notices(self, events: Sequence[tuple[Record, Notice]]) -> Announcement:
        """Tell each notice (a review received or upheld) once, in the inbox: claimed under its event id, unordered."""
        return await self._tell([(str(n.event_id), n.customer_id, 0, record, n) for record, n in events if tells(n)])

    async def tell_delays(self, delays: Sequence[DecisionDelayed]) -> list[NotificationSent]:
        """Tell each delayed decision once (this process); no Redis: it may be what is away."""
        fresh: dict[str, DecisionDelayed] = {}
        for delay in delays:
            if str(delay.event_id) not in self._delays_told:
                fresh.setdefault(str(delay.event_id), delay)
        now = self.clock.now()
        notices = [notice_for(d, render_notice(d), at=now) for d in fresh.values()]
        await self.publisher.publish((self.topics.notifications, n) for n in notices)
        for key in fresh:
            self._delays_told[key] = None
        while len(self._delays_told) > _DELAYS_REMEMBERED:
            del self._delays_told[next(iter(self._delays_told))]
        for n in notices:
            log.info("notification_sent", **event_ids(n), channel=n.channel, about=n.about, locale=n.locale)
        return notices

    async def _tell(self, items: Sequence[tuple[str, str, int, Record, Decision | Notice | LendingOutcome]]) -> Announcement:
        unique: dict[str, tuple[str, int, Record, Decision | Notice | LendingOutcome]] = {}
        for claim_id, customer, seq, record, event in items:
            unique.setdefault(claim_id, (customer, seq, record, event))
        claims = await self.ledger.claim([(c, customer, seq) for c, (customer, seq, _, _) in unique.items()]) if unique else []
        result = Announcement()
        remembered: list[tuple[str, bytes]] = []
        deliveries: list[WebhookDelivery] = []
        told: list[str] = []
        now = self.clock.now()
        for (claim_id, (_, _, record, event)), claim in zip(unique.items(), claims, strict=True):
            if claim.state in ("done", "stale"):
                continue
            try:
                disclosure, built, delivery = self._rendered(event, record, now)
                if claim.stored_event is not None:
                    notice = NotificationSent.model_validate_json(claim.stored_event)
                else:
                    notice = built
                    remembered.append((claim_id, serialised(notice)))  # the same bytes go to Kafka
            except Exception as exc:  # noqa: BLE001 - rendering is pure: what fails once fails on every redelivery
                # A decision we cannot put into words must not block the partition: dead-letter it.
                # Its claim stays unpublished, so a replay after the fix tells it.
                result.unrenderable.append(RefusedRecord(record, "unrenderable", f"{type(exc).__name__}: {exc}"[:1000]))
                continue
            result.notices.append(notice)
            told.append(claim_id)
            if delivery is not None:
                deliveries.append(delivery)
            for code in disclosure.unknown_codes:
                # Told generically; the wording belongs in shared.reasons.
                log.warning("wording_missing", code=code, decision_id=claim_id, customer_id=event.customer_id)
                result.unknown_codes.append((claim_id, code))
        if result.unrenderable:
            await self.publisher.dead_letter(self.topics.deadletter, result.unrenderable)
        await self.ledger.remember(remembered)
        result.webhooks_enqueued = await self.webhooks.enqueue(deliveries) if deliveries else 0
        await self.publisher.publish((self.topics.notifications, n) for n in result.notices)
        await self.ledger.mark_published(told)
        _log_sent(result.notices, webhooks=result.webhooks_enqueued)
        return result

    async def tell_movements(self, events: Sequence[tuple[Record, LendingOutcome]]) -> Announcement:
        """Tell each drawdown outcome and repayment once, in the customer's inbox: claimed under the
        outcome's event id with sequence 0 (outside the order of decisions, never stale)."""
        return await self._tell([(str(e.event_id), e.customer_id, 0, record, e) for record, e in events])

    def _rendered(
        self, event: Decision | Notice | LendingOutcome, record: Record, now: datetime
    ) -> tuple[Disclosure, NotificationSent, WebhookDelivery | None]:
        """The words, the inbox notice and (decisions only) the partner's webhook delivery."""
        if isinstance(event, Decision):
            disclosure = render(event)
            return (
                disclosure,
                notification_for(event, disclosure, "inbox", at=now),
                webhook_delivery_for(event, disclosure, source_of(record), self.partners, at=now),
            )
        if isinstance(event, LendingOutcome):
            disclosure = render_movement(event)
            return disclosure, movement_notification(event, disclosure, at=now), None
        disclosure = render_notice(event)
        return disclosure, notice_for(event, disclosure, "inbox", at=now), None

    async def _requeue_replayed(self, events: Sequence[tuple[Record, Decision]]) -> int:
        """Deliveries of replayed webhook give-ups, queued again (the queue keeps it to once per letter)."""
        again: dict[str, WebhookDelivery] = {}
        now = self.clock.now()
        for record, decision in events:
            letter, partner = _header(record, REPLAY_HEADER), _header(record, REDELIVER_HEADER)
            if not letter or not partner:
                continue
            ids = event_ids(decision)
            if partner != decision.partner_id or partner not in self.partners:
                log.warning("webhook_replay_skipped", **ids, partner_id=partner, replay_of=letter, why="no such partner webhook")
                continue
            delivery = webhook_delivery_for(decision, render(decision), source_of(record), self.partners, at=now)
            if delivery is not None:
                again.setdefault(letter, replace(delivery, replay_of=letter))
        queued = await self.webhooks.requeue(list(again.values())) if again else 0
        if again:
            log.info("webhook_replay_queued", letters=sorted(again), queued=queued)
        return queued
