"""Notification's Kafka adapter: window decisions in, notifications (and dead letters) out.

The handler only enqueues partners' webhooks (in Redis, before the batch's offsets are committed);
the dispatcher posts them in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.notification.announcing import Announcer
from services.notification.metrics import NotificationMetrics
from services.notification.ports import EventPublisher
from shared.contracts import (
    REVIEW_EVENTS,
    DeadLetter,
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    NotificationSent,
    Repaid,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import (
    Records,
    ServiceHealth,
    batch_subscriber_options,
    commit_in_background,
    intake,
    retry_transient,
    take,
)
from shared.settings import Settings

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
    router = KafkaRouter()
    router.publisher(topics.notifications, schema=NotificationSent, title="credit.notifications:NotificationSent")
    router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")

    @router.subscriber(
        topics.windows,
        **batch_subscriber_options(settings, "notification"),
        title="credit.windows:WindowOpened|WindowClosed|DecisionDelayed",
        description="Tells each customer the decision and its basis, once per decision, in the inbox and to partners; "
        "and, once, that a decision is delayed by an outage.",
    )
    async def on_windows(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(topics.windows, lambda: _announce_batch(deps, records, message))

    @router.subscriber(
        topics.drawdowns,
        **batch_subscriber_options(settings, "notification-drawdowns"),
        title="credit.drawdowns:DrawdownApproved|DrawdownRefused|RepaymentApplied",
        description="Tells each customer every drawdown outcome and repayment, once, in the inbox.",
    )
    async def on_drawdowns(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(topics.drawdowns, lambda: _tell_batch(deps, records, message))

    @router.subscriber(
        topics.reviews,
        **batch_subscriber_options(settings, "notification-reviews"),
        title="credit.reviews:" + "|".join(e.EVENT_TYPE for e in REVIEW_EVENTS),
        description="Tells each customer that their request for review was received, and a review's outcome when the decision stands.",
    )
    async def on_reviews(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(topics.reviews, lambda: _announce_reviews(deps, records, message))

    return router


async def _announce_batch(deps: NotificationDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    batch = await take(records, (WindowOpened, WindowClosed, DecisionDelayed), publisher=deps.publisher, settings=settings)
    delays = [event for _, event in batch.events if isinstance(event, DecisionDelayed)]
    decisions = [(record, event) for record, event in batch.events if not isinstance(event, DecisionDelayed)]
    # Delays first, without Redis: an outage of Redis is what they are about.
    delayed = await retry_transient(lambda: deps.announcer.tell_delays(delays), settings=settings, what="tell_delays") if delays else []
    told = await retry_transient(lambda: deps.announcer.announce(decisions), settings=settings, what="announce")
    deps.metrics.observe([*delayed, *told.notices], webhooks=told.webhooks_enqueued)
    deps.webhooks_waiting()
    commit_in_background(message)


async def _tell_batch(deps: NotificationDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    # The requests share the topic (the policy service decides them): skipped, not refused.
    batch = await take(
        records, (DrawdownApproved, DrawdownRefused, RepaymentApplied), publisher=deps.publisher, settings=settings,
        ignored=(DrawdownRequested, Repaid),
    )  # fmt: skip
    if batch.events:
        told = await retry_transient(lambda: deps.announcer.tell_movements(batch.events), settings=settings, what="tell")
        deps.metrics.observe(told.notices, webhooks=0)
    commit_in_background(message)


async def _announce_reviews(deps: NotificationDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    # No dead letters here: the policy service owns credit.reviews and dead-letters what it refuses.
    batch = intake(records, REVIEW_EVENTS)
    notices = [(record, event) for record, event in batch.events if isinstance(event, (ReviewOpened, ReviewConcluded))]
    told = await retry_transient(lambda: deps.announcer.announce_notices(notices), settings=settings, what="announce_reviews")  # type: ignore[arg-type]
    deps.metrics.observe(told.notices, webhooks=0)
    commit_in_background(message)
