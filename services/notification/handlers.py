"""Notification's Kafka adapter: window decisions in, notifications (and dead letters) out.

The handler only enqueues partners' webhooks (in Redis, before the batch's offsets are committed);
the dispatcher posts them in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.notification.announcing import Announcement, Announcer
from services.notification.metrics import NotificationMetrics
from services.notification.ports import EventPublisher
from shared.contracts import (
    REVIEW_EVENTS,
    DeadLetter,
    Decision,
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    Event,
    NotificationSent,
    Repaid,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import BatchRunner, Intake, Records, ServiceHealth, batch_subscriber_options
from shared.settings import Settings
from shared.wire import Record

__all__ = ["NotificationDeps", "build_router"]

@dataclass(slots=True)
class NotificationDeps:
    settings: Settings
    publisher: EventPublisher
    metrics: NotificationMetrics
    announcer: Announcer
    health: ServiceHealth
    webhooks_waiting: Callable[[], None] = lambda: None  # wakes the dispatcher


def build_router(deps: NotificationDeps) -> KafkaRouter:
    settings = deps.settings
    topics = settings.topics
    batches = BatchRunner(settings=settings, publisher=deps.publisher, health=deps.health)
    router = KafkaRouter()
    router.publisher(topics.notifications, schema=NotificationSent, title="credit.notifications:NotificationSent")
    router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")

    async def announce(batch: Intake[Decision | DecisionDelayed]) -> Announcement:
        delays = [event for _, event in batch.events if isinstance(event, DecisionDelayed)]
        decisions = [(record, event) for record, event in batch.events if not isinstance(event, DecisionDelayed)]
        # Delays first, without Redis: an outage of Redis is what they are about. Each step retried on its own.
        delayed = await batches.retry(lambda: deps.announcer.tell_delays(delays), what="tell_delays") if delays else []
        told = await batches.retry(lambda: deps.announcer.announce(decisions), what="announce")  # type: ignore[arg-type]
        return Announcement([*delayed, *told.notices], told.webhooks_enqueued)

    def observe(told: Announcement) -> None:
        deps.metrics.observe(told.notices, webhooks=told.webhooks_enqueued)
        deps.webhooks_waiting()

    @router.subscriber(
        topics.windows,
        **batch_subscriber_options(settings, "notification"),
        title="credit.windows:WindowOpened|WindowClosed|DecisionDelayed",
        description="Tells each customer the decision and its basis, once per decision, in the inbox and to partners; "
        "and, once, that a decision is delayed by an outage.",
    )
    async def on_windows(records: Records, message: KafkaMessage) -> None:
        await batches.run(topics.windows, records, message, (WindowOpened, WindowClosed, DecisionDelayed), announce, what=None, observe=observe)

    @router.subscriber(
        topics.drawdowns,
        **batch_subscriber_options(settings, "notification-drawdowns"),
        title="credit.drawdowns:DrawdownApproved|DrawdownRefused|RepaymentApplied",
        description="Tells each customer every drawdown outcome and repayment, once, in the inbox.",
    )
    async def on_drawdowns(records: Records, message: KafkaMessage) -> None:
        # The requests share the topic (the policy service decides them): skipped, not refused.
        await batches.run(
            topics.drawdowns, records, message, (DrawdownApproved, DrawdownRefused, RepaymentApplied),
            lambda batch: deps.announcer.tell_movements(batch.events), what="tell",
            observe=lambda told: deps.metrics.observe(told.notices, webhooks=0), ignored=(DrawdownRequested, Repaid), skip_empty=True,
        )  # fmt: skip

    @router.subscriber(
        topics.reviews,
        **batch_subscriber_options(settings, "notification-reviews"),
        title="credit.reviews:" + "|".join(e.EVENT_TYPE for e in REVIEW_EVENTS),
        description="Tells each customer that their request for review was received, and a review's outcome when the decision stands.",
    )
    async def on_reviews(records: Records, message: KafkaMessage) -> None:
        # No dead letters here: the policy service owns credit.reviews and dead-letters what it refuses.
        await batches.run(
            topics.reviews, records, message, REVIEW_EVENTS, lambda batch: deps.announcer.announce_notices(_notices(batch)),
            what="announce_reviews", observe=lambda told: deps.metrics.observe(told.notices, webhooks=0), dead_letters=False,
        )  # fmt: skip

    return router


def _notices(batch: Intake[Event]) -> list[tuple[Record, ReviewOpened | ReviewConcluded]]:
    return [(record, event) for record, event in batch.events if isinstance(event, (ReviewOpened, ReviewConcluded))]
