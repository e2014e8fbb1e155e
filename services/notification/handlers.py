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
    DeadLetter,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    NotificationSent,
    Repaid,
    RepaymentApplied,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import (
    Records,
    ServiceHealth,
    batch_subscriber_options,
    commit_in_background,
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
        title="credit.windows:WindowOpened|WindowClosed",
        description="Tells each customer the decision and its basis, once per decision, in the inbox and to partners.",
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

    return router


async def _announce_batch(deps: NotificationDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    batch = await take(records, (WindowOpened, WindowClosed), publisher=deps.publisher, settings=settings)
    told = await retry_transient(lambda: deps.announcer.announce(batch.events), settings=settings, what="announce")
    deps.metrics.observe(told.notices, webhooks=told.webhooks_enqueued)
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
        deps.metrics.observe(told.notices)
    commit_in_background(message)
