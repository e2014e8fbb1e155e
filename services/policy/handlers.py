"""Policy's Kafka adapter: scores in, window decisions out; signed policy updates in.

Two routers, mounted by the composition roots: `scores_router` (the live fleet and a shadow replica)
and `policy_updates_router` (the live fleet only: a shadow keeps its candidate policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.policy.care.clerk import Clerk
from services.policy.care.delays import DelayWatch
from services.policy.control.checks import Accepted, check_update
from services.policy.control.state import PolicyState
from services.policy.lending.lender import Lender
from services.policy.metrics import PolicyMetrics
from services.policy.windows.underwriting import Decided, Underwriter
from shared.clock import Clock
from shared.contracts import (
    REVIEW_EVENTS,
    CustomerSuspended,
    DeadLetter,
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    Event,
    PolicyUpdated,
    Repaid,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    ScoreComputed,
    SuspensionLifted,
    WindowClosed,
    WindowOpened,
)
from shared.logging import event_ids
from shared.messaging import (
    Records,
    ServiceHealth,
    aiokafka_kwargs,
    batch_subscriber_options,
    commit_in_background,
    intake,
    is_transient,
    raw_records,
    retry_transient,
    take,
    topic_partitions,
)
from shared.messaging.topic_io import end_offsets, read_to_end
from shared.ports import EventPublisher
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode

__all__ = [
    "PolicyDeps",
    "desk_router",
    "drawdowns_router",
    "policy_updates_router",
    "refuse_updates",
    "restore_desk",
    "restore_policy",
    "reviews_router",
    "scores_router",
]

# A batch that cannot be decided is retried for this long before it is rewound (and redelivered).
DECIDE_GIVE_UP_S = 120.0

log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True)
class PolicyDeps:
    settings: Settings
    publisher: EventPublisher
    metrics: PolicyMetrics
    underwriter: Underwriter
    state: PolicyState
    health: ServiceHealth
    clerk: Clerk | None = None  # reviews and suspensions (the live fleet; a shadow has none)
    delays: DelayWatch | None = field(default=None)  # tells customers of long delays (the live fleet)
    lender: Lender | None = None  # the live fleet lends; a shadow replica does not


def scores_router(deps: PolicyDeps, *, group: str, dead_letters: bool = True) -> KafkaRouter:
    """Scores in (consumer group of `group`), decisions out to the underwriter's topic."""
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    out_topic = deps.underwriter.out_topic
    router.publisher(out_topic, schema=WindowOpened, title=f"{out_topic}:WindowOpened")
    router.publisher(out_topic, schema=WindowClosed, title=f"{out_topic}:WindowClosed")
    if deps.delays is not None:
        router.publisher(out_topic, schema=DecisionDelayed, title=f"{out_topic}:DecisionDelayed")
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
    decided = await _decide_telling_delays(deps, [score for _, score in batch.events])
    # An application id another customer's application already holds: never skipped in silence.
    await _refuse_conflicts(
        deps, batch.events, decided.conflicts, "application_id_reused",
        lambda score: f"application {score.application_id} belongs to another customer's application",
    )  # fmt: skip
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


async def _decide_telling_delays(deps: PolicyDeps, scores: Sequence[ScoreComputed]) -> Decided:
    """Decide, retrying transient faults; meanwhile tell each customer whose application has waited
    longer than the policy's bound, once (Redis or the broker is away: see `delays.py`)."""
    settings = deps.settings
    watch = deps.delays
    if watch is None:
        return await retry_transient(lambda: deps.underwriter.decide(scores), settings=settings, what="decide", give_up_after_s=DECIDE_GIVE_UP_S)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DECIDE_GIVE_UP_S
    while True:
        bound = deps.state.active.customer_care.delay_notice_after
        due_in = watch.next_due_s(scores, deps.underwriter.clock.now(), bound)
        slice_s = max(0.5, min(give_up - loop.time(), DECIDE_GIVE_UP_S if due_in is None else due_in))
        try:
            return await retry_transient(lambda: deps.underwriter.decide(scores), settings=settings, what="decide", give_up_after_s=slice_s)
        except Exception as exc:
            if not is_transient(exc) or loop.time() >= give_up:
                raise
            await _tell_delays(deps, watch, scores, f"{type(exc).__name__}: {exc}")


async def _tell_delays(deps: PolicyDeps, watch: DelayWatch, scores: Sequence[ScoreComputed], cause: str) -> None:
    notices = watch.due(scores, deps.underwriter.clock.now(), deps.state.active.customer_care.delay_notice_after, cause)
    if not notices:
        return
    try:
        await deps.publisher.publish((deps.underwriter.out_topic, n) for n in notices)
    except Exception as exc:  # the broker may be away too: told on the next try
        log.warning("decision_delay_not_told", applications=len(notices), error=repr(exc)[:300])
        return
    watch.told(notices)
    deps.metrics.delays.inc(len(notices))
    for notice in notices:
        log.warning("decision_delayed", **event_ids(notice), waiting_since=notice.waiting_since.isoformat(), cause=notice.cause)


def reviews_router(deps: PolicyDeps) -> KafkaRouter:
    """`credit.reviews` in, one replica per record (a group of its own): requests acknowledged, signed
    review decisions carried out, forged operator actions dead-lettered."""
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    router.publisher(topics.reviews, schema=ReviewOpened, title="credit.reviews:ReviewOpened")
    router.publisher(topics.reviews, schema=ReviewConcluded, title="credit.reviews:ReviewConcluded")

    @router.subscriber(
        topics.reviews,
        **batch_subscriber_options(settings, "policy-reviews"),
        title="credit.reviews:" + "|".join(e.EVENT_TYPE for e in REVIEW_EVENTS),
        description="Acknowledges requests for review by a person, carries out signed review decisions, refuses forged operator actions.",
    )
    async def on_reviews(records: Records, message: KafkaMessage) -> None:
        await deps.health.guard(f"{topics.reviews}:act", lambda: _act_on_reviews(deps, records, message))

    return router


async def _refuse_conflicts(
    deps: PolicyDeps, events: Sequence[tuple[Any, Any]], conflicts: Sequence[Any], error_type: str, why: Callable[[Any], str]
) -> None:
    """Dead-letter each event the book refused because its id belongs to another customer (the
    record it came in, with `error_type` and why), once the batch is decided."""
    if not conflicts:
        return
    owners = {id(event): record for record, event in events}
    refused = [RefusedRecord(owners[id(event)], error_type, why(event)) for event in conflicts]
    await retry_transient(lambda: deps.publisher.dead_letter(deps.settings.topics.deadletter, refused), settings=deps.settings, what="dead_letter")


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
        await _refuse_conflicts(
            deps, batch.events, lent.conflicts, "movement_id_reused", lambda event: f"{event.EVENT_TYPE} id belongs to another customer's request"
        )
        deps.metrics.observe_lending(lent.outcomes)
    commit_in_background(message)


async def _act_on_reviews(deps: PolicyDeps, records: Records, message: KafkaMessage) -> None:
    settings = deps.settings
    clerk = deps.clerk
    assert clerk is not None
    batch = await take(records, REVIEW_EVENTS, publisher=deps.publisher, settings=settings)
    handled = await retry_transient(lambda: clerk.act(batch.events), settings=settings, what="reviews")
    if handled.refused:
        await retry_transient(lambda: deps.publisher.dead_letter(settings.topics.deadletter, handled.refused), settings=settings, what="dead_letter")
    for action, result in handled.actions:
        deps.metrics.operator_actions.labels(action, result).inc()
    deps.metrics.observe(handled.decisions)
    commit_in_background(message)


def desk_router(deps: PolicyDeps) -> KafkaRouter:
    """`credit.reviews` followed by every replica (no group): suspensions and open reviews kept in memory."""
    router = KafkaRouter()
    topics = deps.settings.topics

    @router.subscriber(
        topics.reviews,
        batch=True,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # no group: every replica reads every record, nothing to commit
        decoder=raw_records,
        title="credit.reviews:CustomerSuspended|SuspensionLifted|ReviewOpened|ReviewConcluded",
        description="Every replica keeps each customer's suspension and the open reviews; a suspension closes the customer's open window.",
    )
    async def on_desk(records: Records) -> None:
        clerk = deps.clerk
        assert clerk is not None
        fresh = [raw for raw in records if raw.offset >= clerk.desk.history_end.get(raw.partition, 0)]
        events = [event for _, event in intake(fresh, REVIEW_EVENTS).events]
        closures = await retry_transient(lambda: clerk.follow(events), settings=deps.settings, what="desk")
        deps.metrics.observe(closures)

    return router


async def restore_desk(settings: Settings, clerk: Clerk) -> None:
    """Replay `credit.reviews` up to its end at start: suspensions and open reviews as they stand."""
    ends = await end_offsets(settings, [settings.topics.reviews])
    applied = 0
    for item in await read_to_end(settings, [settings.topics.reviews]):
        event: Event | None = item.event
        if isinstance(event, ReviewOpened):
            clerk.desk.opened(event)
        elif isinstance(event, ReviewConcluded):
            clerk.desk.concluded(event)
        elif isinstance(event, (CustomerSuspended, SuspensionLifted)) and clerk.verify(event) is None:
            await clerk.apply_suspension(event, close=False)
        applied += event is not None
    clerk.desk.history_end.update({tp.partition: offset for tp, offset in ends.items()})
    log.info("desk_restored", events=applied, suspended=len(clerk.desk.suspensions), open_reviews=len(clerk.desk.reviews))


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


def _check(deps_settings: Settings, record: Record, active: Any, now: datetime) -> Accepted | RefusedRecord:
    decoded = decode(record, (PolicyUpdated,))
    if isinstance(decoded, RefusedRecord):
        return decoded
    checked = check_update(
        decoded,
        active,
        ring=deps_settings.policy_key_ring,
        namespace=deps_settings.topic_namespace,
        now=now,
        max_skew=timedelta(seconds=deps_settings.policy_max_clock_skew_s),
    )
    return (
        checked
        if isinstance(checked, Accepted)
        else RefusedRecord(record, f"policy_{checked.error_type}", checked.error)
    )


async def _apply_update(deps: PolicyDeps, record: Record) -> None:
    settings = deps.settings
    verdict = _check(settings, record, deps.state.active, deps.underwriter.clock.now())
    if isinstance(verdict, RefusedRecord):
        await refuse_updates(deps, [verdict])
        return
    previous = deps.state.active
    deps.state.adopt(verdict.document, f"{settings.topics.policy}@{record.offset}")
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


async def restore_policy(settings: Settings, state: PolicyState, clock: Clock) -> list[RefusedRecord]:
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
                    verdict = _check(settings, record, state.active, clock.now())
                    if isinstance(verdict, Accepted):
                        state.adopt(verdict.document, f"{settings.topics.policy}@{raw.offset}")
                    else:
                        refused.append(verdict)
            state.history_end[tp.partition] = ends[tp]
        log.info("policy_restored", policy=state.active.label, source=state.source, refused=len(refused))
        return refused
    finally:
        await consumer.stop()
