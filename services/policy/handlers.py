"""Policy's Kafka adapter: scores in, window decisions out; signed policy updates in.

Two routers, mounted by the composition roots: `scores_router` (the live fleet and a shadow replica)
and `policy_updates_router` (the live fleet only: a shadow keeps its candidate policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.policy.control import Accepted, check_update
from services.policy.lending import Lender
from services.policy.metrics import PolicyMetrics
from services.policy.ports import EventPublisher
from services.policy.underwriting import PolicyState, Underwriter
from shared.contracts import (
    DeadLetter,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    PolicyUpdated,
    Repaid,
    RepaymentApplied,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
    utc_now,
)
from shared.messaging import (
    Records,
    ServiceHealth,
    aiokafka_kwargs,
    batch_subscriber_options,
    commit_in_background,
    raw_records,
    retry_transient,
    take,
    topic_partitions,
)
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode

__all__ = ["PolicyDeps", "drawdowns_router", "policy_updates_router", "refuse_updates", "restore_policy", "scores_router"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True)
class PolicyDeps:
    settings: Settings
    publisher: EventPublisher
    metrics: PolicyMetrics
    underwriter: Underwriter
    state: PolicyState
    health: ServiceHealth
    lender: Lender | None = None  # the live fleet lends; a shadow replica does not


def scores_router(deps: PolicyDeps, *, group: str, dead_letters: bool = True) -> KafkaRouter:
    """Scores in (consumer group of `group`), decisions out to the underwriter's topic."""
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    out_topic = deps.underwriter.out_topic
    router.publisher(out_topic, schema=WindowOpened, title=f"{out_topic}:WindowOpened")
    router.publisher(out_topic, schema=WindowClosed, title=f"{out_topic}:WindowClosed")
    if dead_letters:
        router.publisher(topics.deadletter, schema=DeadLetter, title="credit.deadletter:DeadLetter")

    @router.subscriber(
        topics.scores,
        **batch_subscriber_options(settings, group),
        title="credit.scores:ScoreComputed",
        description="Decides each scored application: open a window with a limit, or close it with a category.",
    )
    async def on_scores(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(topics.scores, lambda: _decide_batch(deps, records, message))

    return router


async def _decide_batch(deps: PolicyDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    batch = await take(records, (ScoreComputed,), publisher=deps.publisher, settings=settings)
    decided = await retry_transient(
        lambda: deps.underwriter.decide([score for _, score in batch.events]), settings=settings, what="decide"
    )
    if decided.conflicts:
        # An application id another customer's application already holds: never skipped in silence.
        owners = {id(score): record for record, score in batch.events}
        refused = [
            RefusedRecord(
                owners[id(score)],
                "application_id_reused",
                f"application {score.application_id} belongs to another customer's application",
            )
            for score in decided.conflicts
        ]
        await retry_transient(
            lambda: deps.publisher.dead_letter(settings.topics.deadletter, refused),
            settings=settings,
            what="dead_letter",
        )
    deps.metrics.observe(decided.decisions)
    commit_in_background(message)


def drawdowns_router(deps: PolicyDeps, *, group: str) -> KafkaRouter:
    """Drawdown requests and repayments in, their outcomes out, on the same topic (`credit.drawdowns`)."""
    topics = deps.settings.topics
    router = KafkaRouter()
    for outcome in (DrawdownApproved, DrawdownRefused, RepaymentApplied):
        router.publisher(topics.drawdowns, schema=outcome, title=f"{topics.drawdowns}:{outcome.EVENT_TYPE}")

    @router.subscriber(
        topics.drawdowns,
        **batch_subscriber_options(deps.settings, group),
        title="credit.drawdowns:DrawdownRequested|Repaid",
        description="Decides each drawdown at once against the customer's window and balance; applies each repayment.",
    )
    async def on_drawdowns(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(topics.drawdowns, lambda: _lend_batch(deps, records, message))

    return router


async def _lend_batch(deps: PolicyDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    assert deps.lender is not None
    lender = deps.lender
    # The topic carries the outcomes this service writes too: those are skipped, not refused.
    batch = await take(
        records, (DrawdownRequested, Repaid), publisher=deps.publisher, settings=settings,
        ignored=(DrawdownApproved, DrawdownRefused, RepaymentApplied),
    )  # fmt: skip
    if batch.events:
        lent = await retry_transient(lambda: lender.lend([event for _, event in batch.events]), settings=settings, what="lend")
        if lent.conflicts:
            owners = {id(event): record for record, event in batch.events}
            refused = [
                RefusedRecord(owners[id(event)], "movement_id_reused", f"{event.EVENT_TYPE} id belongs to another customer's request")
                for event in lent.conflicts
            ]
            await retry_transient(lambda: deps.publisher.dead_letter(settings.topics.deadletter, refused), settings=settings, what="dead_letter")
        deps.metrics.observe_lending(lent.outcomes)
    commit_in_background(message)


def policy_updates_router(deps: PolicyDeps) -> KafkaRouter:
    """Signed policy updates in: every replica reads every one (no group) and applies those that verify."""
    router = KafkaRouter()

    @router.subscriber(
        deps.settings.topics.policy,
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


def _check(deps_settings: Settings, record: Record, active: Any) -> Accepted | RefusedRecord:
    decoded = decode(record, (PolicyUpdated,))
    if isinstance(decoded, RefusedRecord):
        return decoded
    checked = check_update(
        decoded,
        active,
        ring=deps_settings.policy_key_ring,
        namespace=deps_settings.topic_namespace,
        now=utc_now(),
        max_skew=timedelta(seconds=deps_settings.policy_max_clock_skew_s),
    )
    return (
        checked
        if isinstance(checked, Accepted)
        else RefusedRecord(record, f"policy_{checked.error_type}", checked.error)
    )


async def _apply_update(deps: PolicyDeps, record: Record) -> None:
    settings = deps.settings
    verdict = _check(settings, record, deps.state.active)
    if isinstance(verdict, RefusedRecord):
        await refuse_updates(deps, [verdict])
        return
    previous = deps.state.active
    deps.state.active = verdict.document
    deps.state.source = f"{settings.topics.policy}@{record.offset}"
    deps.metrics.policy_updates.labels("applied").inc()
    log.info("policy_applied", policy=verdict.document.label, previous=previous.label)
    closures = await retry_transient(deps.underwriter.enforce_pauses, settings=settings, what="close_paused")
    deps.metrics.observe(closures)


async def refuse_updates(deps: PolicyDeps, refused: list[RefusedRecord]) -> None:
    """Dead-letter refused updates (ids are per record: replicas and restarts write the same letter)."""
    for verdict in refused:
        deps.metrics.policy_updates.labels(verdict.error_type).inc()
        log.error(
            "policy_update_refused", error_type=verdict.error_type, error=verdict.error, offset=verdict.record.offset
        )
    if refused:
        await retry_transient(
            lambda: deps.publisher.dead_letter(deps.settings.topics.deadletter, refused),
            settings=deps.settings,
            what="dead_letter",
        )


async def restore_policy(settings: Settings, state: PolicyState) -> list[RefusedRecord]:
    """Replay `credit.policy` up to its end at start, so decisions use the latest valid version.

    Returns the refused updates met on the way: the caller dead-letters them once the broker is up
    (a forged update published while no replica ran still leaves its trace).
    """
    partitions = (await topic_partitions(settings, [settings.topics.policy]))[settings.topics.policy]
    assigned = [TopicPartition(settings.topics.policy, p) for p in partitions]
    refused: list[RefusedRecord] = []
    if not assigned:
        return refused
    consumer = AIOKafkaConsumer(
        **aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        # explicit offsets: seek_to_beginning can lose a race with the reset that assign() starts
        for tp, offset in (await consumer.beginning_offsets(assigned)).items():
            consumer.seek(tp, offset)
        for tp in assigned:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for raw in batch.get(tp, []):
                    if raw.offset >= ends[tp]:
                        break
                    record = Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))
                    verdict = _check(settings, record, state.active)
                    if isinstance(verdict, Accepted):
                        state.active = verdict.document
                        state.source = f"{settings.topics.policy}@{raw.offset}"
                    else:
                        refused.append(verdict)
            state.history_end[tp.partition] = ends[tp]
        log.info("policy_restored", policy=state.active.label, source=state.source, refused=len(refused))
        return refused
    finally:
        await consumer.stop()
