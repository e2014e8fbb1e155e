"""Noticing a lost notification state (ledger and webhook queue) and rebuilding it from the log.

The ledger and the webhook queue are guarded like the policy's book (`shared/redis_state.py`): a
state that was lost, or is being rebuilt, is refused; the service stops telling (`/health` not
ready, the batch waits on Kafka) and recovery adopts a complete copy or rebuilds one under the
fence, from the topics:

- every inbox `NotificationSent` on `credit.notifications` is a decision (or drawdown outcome)
  told: claimed and published again, and each customer's highest decision sequence told is
  restored, so a redelivered or stale decision is still not told twice;
- a decision told in the inbox whose partner has a webhook and that has no webhook
  `NotificationSent` yet is owed a delivery: it is queued again from its record on
  `credit.windows` (a partner sees its Idempotency-Key again if the delivery had been given up).

Notices older than the ledger's 30 days are not restored (a redelivery that old cannot happen).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container, Iterable
from datetime import datetime

import structlog

from services.notification.announcing import source_of
from services.notification.channels import webhook_delivery_for
from services.notification.disclosure import render
from services.notification.ledger import TTL_S, installed
from services.notification.ports import WebhookDelivery
from services.notification.redis_ledger import RedisLedger
from services.notification.redis_webhooks import RedisWebhookQueue
from services.notification.webhook_queue import restored
from shared.clock import Clock
from shared.contracts import Decision, NotificationSent
from shared.messaging import ServiceHealth
from shared.messaging.topic_io import ReadRecord, end_offsets, offsets_at, read_to_end
from shared.redis_state import Recovery
from shared.settings import Settings

__all__ = ["owed_webhooks", "notification_recovery", "rebuild_into", "told"]

log = structlog.get_logger("creditwindow.notification")


def told(notices: Iterable[NotificationSent], *, since_s: float) -> tuple[dict[str, float], dict[str, int]]:
    """The decisions told in the inbox (decision id -> when) since `since_s`, and each customer's
    highest sequence told (all of them: a stale decision must stay stale). Pure."""
    kept: dict[str, float] = {}
    seqs: dict[str, int] = {}
    for notice in notices:
        if notice.channel != "inbox":
            continue
        if notice.about == "decision":
            seqs[notice.customer_id] = max(seqs.get(notice.customer_id, 0), notice.decision_seq)
        moment = notice.occurred_at.timestamp()
        if moment >= since_s:
            kept.setdefault(str(notice.decision_id), moment)  # a notice's is the event it told: its claim
    return kept, seqs


def owed_webhooks(
    notices: Iterable[NotificationSent], decisions: Iterable[ReadRecord], partners: Container[str], *, at: datetime
) -> list[WebhookDelivery]:
    """Deliveries still owed: told in the inbox, a partner with a webhook, no webhook notice yet. Pure."""
    notices = list(notices)
    inbox = {n.decision_id for n in notices if n.channel == "inbox" and n.about == "decision"}
    delivered = {n.decision_id for n in notices if n.channel == "webhook" and n.about == "decision"}
    owed: dict[str, WebhookDelivery] = {}
    for item in decisions:
        decision = item.event
        if not isinstance(decision, Decision) or decision.decision_id not in inbox or decision.decision_id in delivered:
            continue
        delivery = webhook_delivery_for(decision, render(decision), source_of(item.record), partners, at=at)
        if delivery is not None:
            owed.setdefault(delivery.notification_id, delivery)
    return list(owed.values())


async def rebuild_into(ledger: RedisLedger, queue: RedisWebhookQueue, settings: Settings, generation: str, clock: Clock) -> None:
    """Derive the notification state from the topics and install it as `generation` (under the fence)."""
    began = time.monotonic()
    topics = settings.topics
    if any((await end_offsets(settings, [topics.notifications])).values()):
        await asyncio.sleep(settings.book_rebuild_grace_s)  # notices in flight when the state was lost land first
    at = clock.now()
    now = at.timestamp()
    notices = [r.event for r in await read_to_end(settings, [topics.notifications]) if isinstance(r.event, NotificationSent)]
    kept, seqs = told(notices, since_s=now - TTL_S)
    decisions: list[ReadRecord] = []
    if settings.webhook_partners and kept:
        oldest = min(kept.values())
        start = await offsets_at(settings, [topics.windows], int(oldest * 1000) - 3_600_000)
        decisions = await read_to_end(settings, [topics.windows], start=start)
    deliveries = owed_webhooks(notices, decisions, settings.webhook_partners.keys(), at=at)
    # The state keeps Redis's time, which the fleet's clock may not be (CW_CLOCK_OFFSET_S): ages carry over.
    state_now_ms = await ledger.now_ms()
    told_ago_ms = {decision_id: int((now - told_at) * 1000) for decision_id, told_at in kept.items()}
    await ledger.install(installed(told_ago_ms, seqs, state_now_ms), queue, restored(deliveries, state_now_ms), generation)
    log.info(
        "notification_state_rebuilt", generation=generation, told=len(kept), customers=len(seqs),
        webhooks_owed=len(deliveries), seconds=round(time.monotonic() - began, 3),
    )  # fmt: skip


def notification_recovery(ledger: RedisLedger, queue: RedisWebhookQueue, settings: Settings, health: ServiceHealth, clock: Clock) -> Recovery:
    """Adopt the notification state in Redis, or rebuild it from the topics."""
    return Recovery(ledger.guard, health, lambda generation: rebuild_into(ledger, queue, settings, generation, clock), owner=settings.instance_id or "notification")


