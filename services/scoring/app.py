"""The scoring service process: `creditwindow run scoring` or `faststream run services.scoring.app:create_app --factory`."""

from __future__ import annotations

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from services.scoring.handlers import ScoringDeps, build_router
from services.scoring.metrics import ScoringMetrics
from services.scoring.scorecard import Scorecard
from shared.logging import configure_logging
from shared.messaging import Outbox, ProducerSender, make_broker
from shared.redis_connection import make_redis
from shared.runtime import FleetApp, build_app, serve
from shared.settings import Settings

__all__ = ["create_app", "main"]


def create_app(settings: Settings | None = None) -> FleetApp:
    settings = settings or Settings()
    configure_logging(service="scoring", level=settings.log_level, fmt=settings.log_format, instance=settings.instance_id)
    # A missing or broken artifact stops the service at start (fail fast) instead of closing every window.
    scorecard = Scorecard.load(settings.model_path)
    registry = CollectorRegistry()
    broker = make_broker(settings, service="scoring", middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name="scoring")])
    outbox = Outbox(ProducerSender(settings, client_id="creditwindow-scoring-out"), service="scoring", registry=registry)
    metrics = ScoringMetrics(registry, model_id=scorecard.model_id, reference=scorecard.score_distribution)
    broker.include_router(build_router(ScoringDeps(settings, outbox, metrics, scorecard)))
    return build_app(
        service="scoring",
        settings=settings,
        broker=broker,
        registry=registry,
        outbox=outbox,
        # Scoring itself needs no Redis, but the fleet decides nothing without it: /health says so.
        redis=make_redis(settings),
        description=f"Scores applications with the {scorecard.model_id} scorecard.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.scoring_http_port if port is None else port)
