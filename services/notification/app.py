"""The notification service process: `creditwindow run notification` or `faststream run services.notification.app:create_app --factory`."""

from __future__ import annotations

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from services.notification.announcing import Announcer
from services.notification.handlers import NotificationDeps, build_router
from services.notification.metrics import NotificationMetrics
from services.notification.redis_ledger import RedisLedger
from shared.logging import configure_logging
from shared.messaging import Outbox, make_broker
from shared.redis_connection import make_redis
from shared.runtime import FleetApp, build_app, serve
from shared.settings import Settings

__all__ = ["create_app", "main"]


def create_app(settings: Settings | None = None) -> FleetApp:
    settings = settings or Settings()
    configure_logging(service="notification", level=settings.log_level, fmt=settings.log_format, instance=settings.instance_id)
    registry = CollectorRegistry()
    broker = make_broker(
        settings, service="notification", middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name="notification")]
    )
    redis = make_redis(settings)
    outbox = Outbox(broker, service="notification")
    announcer = Announcer(ledger=RedisLedger(redis, settings.redis_prefix), outbox=outbox, topics=settings.topics)
    broker.include_router(build_router(NotificationDeps(settings, outbox, NotificationMetrics(registry), announcer)))
    return build_app(
        service="notification",
        settings=settings,
        broker=broker,
        registry=registry,
        redis=redis,
        description="Tells every customer the decision on their window and its basis, once per decision.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.notification_http_port if port is None else port)
