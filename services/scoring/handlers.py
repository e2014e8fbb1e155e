"""Scoring's Kafka adapter: applications in, scores (and dead letters) out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.params import NoCast

from services.scoring.assessment import Scorer, assess, unreadable
from services.scoring.metrics import ScoringMetrics
from shared.contracts import ApplicationReceived, DeadLetter, ScoreComputed
from shared.messaging import Outbox, batch_subscriber_options, commit_in_background, intake, retry_transient
from shared.settings import Settings

__all__ = ["ScoringDeps", "build_router"]

Records = Annotated[list[Any], NoCast]
log = structlog.get_logger("creditwindow.scoring")


@dataclass(slots=True)
class ScoringDeps:
    settings: Settings
    outbox: Outbox
    metrics: ScoringMetrics
    scorer: Scorer | None


def build_router(deps: ScoringDeps) -> KafkaRouter:
    topics = deps.settings.topics
    router = KafkaRouter()
    router.publisher(topics.scores, schema=ScoreComputed, title="credit.scores:ScoreComputed")
    router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")

    @router.subscriber(
        topics.applications,
        **batch_subscriber_options(deps.settings, "scoring"),
        title="credit.applications:ApplicationReceived",
        description="Scores each application; unreadable ones are dead-lettered and still get an outcome.",
    )
    async def on_applications(records: Records, message: KafkaMessage) -> None:
        batch = intake(records, (ApplicationReceived,))
        scores = [assess(application, deps.scorer) for _, application in batch.events]
        scores += [score for refused in batch.refused if (score := unreadable(refused)) is not None]

        async def publish() -> None:
            await deps.outbox.dead_letter(topics.deadletter, batch.refused)
            await deps.outbox.publish((topics.scores, score) for score in scores)

        await retry_transient(publish, settings=deps.settings, what="publish_scores")
        commit_in_background(message)
        deps.metrics.observe(scores)
        for score in scores:
            log.log(
                logging.INFO if score.outcome != "scored" else logging.DEBUG,
                "application_scored",
                event_id=str(score.event_id),
                correlation_id=score.correlation_id,
                customer_id=score.customer_id,
                outcome=score.outcome,
                grade=score.grade,
                model_id=score.model_id,
            )

    return router
