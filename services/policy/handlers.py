"""Policy's Kafka adapter: scores in, window decisions out; signed policy updates in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.params import NoCast

from services.policy.control import Accepted, check_update, newly_paused
from services.policy.deciding import Decider, PolicyState
from services.policy.metrics import PolicyMetrics
from shared.contracts import DeadLetter, PolicyUpdated, ScoreComputed, WindowClosed, WindowOpened
from shared.messaging import (
    Outbox,
    aiokafka_kwargs,
    batch_subscriber_options,
    intake,
    raw_records,
    retry_transient,
    topic_partitions,
)
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode

__all__ = ["PolicyDeps", "build_router", "restore_policy"]

Records = Annotated[list[Any], NoCast]
log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True)
class PolicyDeps:
    settings: Settings
    outbox: Outbox
    metrics: PolicyMetrics
    decider: Decider
    state: PolicyState


def build_router(deps: PolicyDeps) -> KafkaRouter:
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    out_topic = topics.shadow_windows if settings.shadow else topics.windows
    router.publisher(out_topic, schema=WindowOpened, title=f"{out_topic}:WindowOpened")
    router.publisher(out_topic, schema=WindowClosed, title=f"{out_topic}:WindowClosed")
    router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")
    service = "policy-shadow" if settings.shadow else "policy"

    @router.subscriber(
        topics.scores,
        **batch_subscriber_options(settings, service),
        title="credit.scores:ScoreComputed",
        description="Decides each scored application: open a window with a limit, or close it with a category.",
    )
    async def on_scores(records: Records) -> None:
        batch = intake(records, (ScoreComputed,))
        await retry_transient(
            lambda: deps.outbox.dead_letter(topics.deadletter, batch.refused), settings=settings, what="dead_letter"
        )
        decisions = await retry_transient(
            lambda: deps.decider.decide([score for _, score in batch.events]), settings=settings, what="decide"
        )
        deps.metrics.observe(decisions, refused=batch.refused)

    @router.subscriber(
        topics.policy,
        batch=True,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # no group: every replica reads every update, nothing to commit
        decoder=raw_records,
        title="credit.policy:PolicyUpdated",
        description="Signed policy versions; every replica applies each one that verifies.",
    )
    async def on_policy_updates(records: Records) -> None:
        for raw in records:
            if raw.offset < deps.state.history_end.get(raw.partition, 0):
                continue  # applied (or refused) while restoring at start
            record = Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))
            await _apply_update(deps, record)

    return router


async def _apply_update(deps: PolicyDeps, record: Record) -> None:
    settings = deps.settings
    decoded = decode(record, (PolicyUpdated,))
    if isinstance(decoded, RefusedRecord):
        verdict: Any = decoded
    else:
        checked = check_update(
            decoded,
            deps.state.active,
            key=settings.policy_signing_key.get_secret_value().encode(),
            key_id=settings.policy_signing_key_id,
        )
        verdict = checked if isinstance(checked, Accepted) else RefusedRecord(record, f"policy_{checked.error_type}", checked.error)
    if isinstance(verdict, RefusedRecord):
        deps.metrics.policy_updates.labels(verdict.error_type).inc()
        log.error("policy_update_refused", error_type=verdict.error_type, error=verdict.error, offset=record.offset)
        await retry_transient(
            lambda: deps.outbox.dead_letter(settings.topics.deadletter, [verdict]), settings=settings, what="dead_letter"
        )
        return
    previous = deps.state.active
    deps.state.active = verdict.document
    deps.state.source = f"{settings.topics.policy}@{record.offset}"
    deps.metrics.policy_updates.labels("applied").inc()
    log.info("policy_applied", policy=verdict.document.label, previous=previous.label)
    closures = await retry_transient(
        lambda: deps.decider.close_paused(newly_paused(previous, verdict.document)), settings=settings, what="close_paused"
    )
    deps.metrics.observe(closures)


async def restore_policy(settings: Settings, state: PolicyState) -> None:
    """Replay `credit.policy` up to its end at start, so decisions use the latest valid version."""
    partitions = (await topic_partitions(settings, [settings.topics.policy]))[settings.topics.policy]
    assigned = [TopicPartition(settings.topics.policy, p) for p in partitions]
    if not assigned:
        return
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        key = settings.policy_signing_key.get_secret_value().encode()
        for tp in assigned:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for raw in batch.get(tp, []):
                    if raw.offset >= ends[tp]:
                        break
                    record = Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))
                    decoded = decode(record, (PolicyUpdated,))
                    if isinstance(decoded, PolicyUpdated):
                        checked = check_update(decoded, state.active, key=key, key_id=settings.policy_signing_key_id)
                        if isinstance(checked, Accepted):
                            state.active = checked.document
                            state.source = f"{settings.topics.policy}@{raw.offset}"
            state.history_end[tp.partition] = ends[tp]
        log.info("policy_restored", policy=state.active.label, source=state.source)
    finally:
        await consumer.stop()
