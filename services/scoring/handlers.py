"""Scoring's Kafka adapter: applications in, scores (and dead letters) out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import structlog
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.scoring.assessment import assess, unreadable
from services.scoring.metrics import ScoringMetrics
from services.scoring.ports import EventPublisher, Scorer
from shared.clock import Clock
from shared.contracts import ApplicationReceived, DeadLetter, ScoreComputed
from shared.logging import event_ids
from shared.messaging import BatchRunner, Intake, Records, ServiceHealth, batch_subscriber_options
from shared.settings import Settings

__all__ = ["ScoringDeps", "build_router"]

log = structlog.get_logger("creditwindow.scoring")


@dataclass(slots=True)
class ScoringDeps:
    settings: Settings
    publisher: EventPublisher
    metrics: ScoringMetrics
    scorer: Scorer | None
    health: ServiceHealth
    clock: Clock


def build_router(deps: ScoringDeps) -> KafkaRouter:
    topics = deps.settings.topics
    batches = BatchRunner(settings=deps.settings, publisher=deps.publisher, health=deps.health)
    router = KafkaRouter()
    router.publisher(topics.scores, schema=ScoreComputed, title="credit.scores:ScoreComputed")
    router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")

    async def score(batch: Intake[ApplicationReceived]) -> list[ScoreComputed]:
        now = deps.clock.now()
        scores = [assess(application, deps.scorer, now) for _, application in batch.events]
        scores += [score for refused in batch.refused if (score := unreadable(refused, now)) is not None]
        await batches.retry(lambda: deps.publisher.publish((topics.scores, score) for score in scores), what="publish_scores")
        return scores

    @router.subscriber(
        topics.applications,
        **batch_subscriber_options(deps.settings, "scoring"),
        title="credit.applications:ApplicationReceived",
        description="Scores each application; unreadable ones are dead-lettered and still get an outcome.",
    )
    async def on_applications(records: Records, message: KafkaMessage) -> None:
        await batches.run(
            topics.applications, records, message, (ApplicationReceived,), score, what=None, observe=lambda scores: _observe(deps, scores)
        )

    return router


def _observe(deps: ScoringDeps, scores: list[ScoreComputed]) -> None:
    deps.metrics.observe(scores)
    debug = log.is_enabled_for(logging.DEBUG)  # a scored application's line is DEBUG: build it only then
    for score in scores:
        if debug or score.outcome != "scored":
            level = logging.INFO if score.outcome != "scored" else logging.DEBUG
            log.log(level, "application_scored", **event_ids(score), outcome=score.outcome, grade=score.grade, model_id=score.model_id)
