"""The scoring service's composition root: `creditwindow run scoring` or
`faststream run services.scoring.app:create_app --factory`.

`compose` wires the handler to whatever scorer and publisher it is given (the handler tests give it
the in-memory broker); `create_app` loads the scorecard artifact and gives it the Kafka outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.scoring.handlers import ScoringDeps, build_router
from services.scoring.metrics import ScoringMetrics
from services.scoring.ports import EventPublisher, Scorer
from services.scoring.scorecard import Scorecard
from shared.clock import Clock
from shared.messaging import ServiceHealth
from shared.runtime import FleetApp, build_app, plumbing, serve
from shared.settings import Settings

__all__ = ["Scoring", "compose", "create_app", "main"]

SERVICE = "scoring"


@dataclass(slots=True)
class Scoring:
    """The wired scoring service: its broker with the router mounted, and its parts."""

    broker: KafkaBroker
    deps: ScoringDeps


def compose(
    settings: Settings,
    *,
    broker: KafkaBroker,
    scorecard: Scorecard,
    publisher: EventPublisher,
    registry: CollectorRegistry,
    clock: Clock,
    scorer: Scorer | None = None,
    health: ServiceHealth | None = None,
) -> Scoring:
    """The scoring service on `broker`; `scorer` defaults to the scorecard (None there: model unavailable)."""
    metrics = ScoringMetrics(registry, model_id=scorecard.model_id, reference=scorecard.score_distribution)
    deps = ScoringDeps(
        settings, publisher, metrics, scorer if scorer is not None else scorecard, health or ServiceHealth(registry, clock=clock), clock
    )
    broker.include_router(build_router(deps))
    return Scoring(broker, deps)


def create_app(settings: Settings | None = None) -> FleetApp:
    parts = plumbing(settings or Settings(), SERVICE, policy_keys=False)
    # A missing or broken artifact stops the service at start (fail fast) instead of closing every window.
    scorecard = Scorecard.load(parts.settings.model_path)
    compose(
        parts.settings, broker=parts.broker, scorecard=scorecard, publisher=parts.outbox, registry=parts.registry,
        clock=parts.clock, health=parts.health,
    )  # fmt: skip
    return build_app(parts, description=f"Scores applications with the {scorecard.model_id} scorecard.")


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.scoring_http_port if port is None else port)
