"""The notification service process: `creditwindow run notification` or `faststream run services.notification.app:create_app --factory`."""

from __future__ import annotations

import structlog
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from services.notification.announcing import Announcer
from services.notification.dispatching import WebhookDispatcher
from services.notification.handlers import NotificationDeps, build_router
from services.notification.http_webhook import HttpWebhookSender
from services.notification.metrics import NotificationMetrics
from services.notification.redis_ledger import RedisLedger
from services.notification.redis_webhooks import RedisWebhookQueue
from shared.logging import configure_logging
from shared.messaging import Outbox, ProducerSender, make_broker
from shared.redis_connection import make_redis
from shared.runtime import FleetApp, build_app, serve
from shared.settings import Settings

__all__ = ["create_app", "main"]

log = structlog.get_logger("creditwindow.notification")
_DEV_WEBHOOK_KEY = "creditwindow-local-webhook-key"


def create_app(settings: Settings | None = None) -> FleetApp:
    settings = settings or Settings()
    configure_logging(
        service="notification", level=settings.log_level, fmt=settings.log_format, instance=settings.instance_id
    )
    registry = CollectorRegistry()
    metrics = NotificationMetrics(registry)
    broker = make_broker(
        settings,
        service="notification",
        middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name="notification")],
    )
    redis = make_redis(settings)
    outbox = Outbox(ProducerSender(settings, client_id="creditwindow-notification-out"), service="notification", registry=registry)
    queue = RedisWebhookQueue(redis, settings.redis_prefix)
    sender = HttpWebhookSender(timeout_s=settings.webhook_timeout_s)
    dispatcher = WebhookDispatcher(
        queue=queue,
        sender=sender,
        outbox=outbox,
        topics=settings.topics,
        urls=settings.webhook_urls,
        signing_key=settings.webhook_signing_key.get_secret_value().encode(),
        max_attempts=settings.webhook_max_attempts,
        metrics=metrics,
    )
    announcer = Announcer(
        ledger=RedisLedger(redis, settings.redis_prefix),
        webhooks=queue,
        partners=settings.webhook_urls.keys(),
        outbox=outbox,
        topics=settings.topics,
    )
    broker.include_router(build_router(NotificationDeps(settings, outbox, metrics, announcer, dispatcher.wake)))

    async def start_dispatcher() -> None:
        if settings.webhook_urls and settings.webhook_signing_key.get_secret_value() == _DEV_WEBHOOK_KEY:
            log.warning("webhook_dev_signing_key", hint="set CW_WEBHOOK_SIGNING_KEY in production")
        await dispatcher.start()

    async def stop_dispatcher() -> None:
        await dispatcher.stop()
        await sender.aclose()

    return build_app(
        service="notification",
        settings=settings,
        broker=broker,
        registry=registry,
        outbox=outbox,
        redis=redis,
        after_startup=[start_dispatcher],
        on_shutdown=[stop_dispatcher],
        description="Tells every customer the decision on their window and its basis, once per decision, "
        "in the inbox and to partners' webhooks.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.notification_http_port if port is None else port)
