"""The notification service's composition root: `creditwindow run notification` or
`faststream run services.notification.app:create_app --factory`.

`compose` wires the logic to whatever ledger, webhook queue, HTTP sender and publisher it is given
(the handler tests give it the memory ledger and queue, and the in-memory broker); `create_app` gives it Redis, httpx and
the Kafka outbox, and runs the webhook dispatcher beside the handler.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.notification.announcing import Announcer
from services.notification.dispatching import WebhookDispatcher
from services.notification.handlers import NotificationDeps, build_router
from services.notification.http_webhook import HttpWebhookSender
from services.notification.metrics import NotificationMetrics
from services.notification.ports import EventPublisher, Ledger, Partner, WebhookQueue, WebhookSender
from services.notification.recovery import notification_recovery
from services.notification.redis_ledger import RedisLedger
from services.notification.redis_webhooks import STATE, RedisWebhookQueue
from services.notification.webhooks import Backoff
from shared.clock import Clock
from shared.messaging import ServiceHealth
from shared.redis_state import Durability, StateGuard
from shared.runtime import FleetApp, build_app, plumbing, serve
from shared.settings import Settings

__all__ = ["DispatchTiming", "Notification", "compose", "create_app", "main"]

SERVICE = "notification"


@dataclass(slots=True)
class Notification:
    """The wired notification service: its broker with the router mounted, and the parts tests look at."""

    broker: KafkaBroker
    deps: NotificationDeps
    dispatcher: WebhookDispatcher


@dataclass(frozen=True, slots=True)
class DispatchTiming:
    """How the webhook dispatcher paces itself (tests shorten it; None: from the settings)."""

    backoff: Backoff | None = None
    poll_s: float = 0.5
    lease_margin_s: float = 10.0


def compose(
    settings: Settings,
    *,
    broker: KafkaBroker,
    ledger: Ledger,
    queue: WebhookQueue,
    sender: WebhookSender,
    publisher: EventPublisher,
    registry: CollectorRegistry,
    clock: Clock,
    timing: DispatchTiming = DispatchTiming(),
    health: ServiceHealth | None = None,
) -> Notification:
    """The notification service on `broker`: decisions told in the inbox, partners' webhooks queued and posted."""
    metrics = NotificationMetrics(registry)
    partners = {
        name: Partner(url=partner.url, key=partner.key.get_secret_value().encode())
        for name, partner in settings.webhook_partners.items()
    }
    dispatcher = WebhookDispatcher(
        queue=queue,
        sender=sender,
        publisher=publisher,
        topics=settings.topics,
        partners=partners,
        retry_budget_s=settings.webhook_retry_hours * 3600,
        backoff=timing.backoff or Backoff(max_s=settings.webhook_backoff_max_s),
        poll_s=timing.poll_s,
        lease_margin_s=timing.lease_margin_s,
        metrics=metrics,
        clock=clock,
    )
    announcer = Announcer(
        ledger=ledger,
        webhooks=queue,
        partners=partners.keys(),
        publisher=publisher,
        topics=settings.topics,
        clock=clock,
    )
    deps = NotificationDeps(settings, publisher, metrics, announcer, health or ServiceHealth(registry, clock=clock), dispatcher.wake)
    broker.include_router(build_router(deps))
    return Notification(broker, deps, dispatcher)


def create_app(settings: Settings | None = None) -> FleetApp:
    parts = plumbing(settings or Settings(), SERVICE, operator_keys=False)
    settings = parts.settings
    sender = HttpWebhookSender(timeout_s=settings.webhook_timeout_s)
    guard = StateGuard(parts.redis, settings.redis_prefix, STATE, Durability.of(settings))  # the ledger and the queue: one state
    ledger = RedisLedger(parts.redis, settings.redis_prefix, guard)
    queue = RedisWebhookQueue(parts.redis, settings.redis_prefix, guard)
    recovery = notification_recovery(ledger, queue, settings, parts.health, parts.clock)
    notification = compose(
        settings,
        broker=parts.broker,
        ledger=ledger,
        queue=queue,
        sender=sender,
        publisher=parts.outbox,
        registry=parts.registry,
        health=parts.health,
        clock=parts.clock,
    )

    async def recover() -> None:
        await recovery.recover()  # a ledger to work on (rebuilt from the topics if Redis has none) before consuming

    async def start_dispatcher() -> None:
        await notification.dispatcher.start()

    async def stop_dispatcher() -> None:
        await recovery.stop()
        await notification.dispatcher.stop()
        await sender.aclose()

    return build_app(
        parts,
        on_startup=[recover],
        after_startup=[start_dispatcher],
        on_shutdown=[stop_dispatcher],
        description="Tells every customer the decision on their window and its basis, once per decision, "
        "in the inbox and to partners' webhooks.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.notification_http_port if port is None else port)
