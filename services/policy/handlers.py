"""Policy's Kafka adapter: each router translates records into calls on a room, nothing more.

- `scores_router` (the live fleet and a shadow replica): scores -> `Underwriter.decide` (windows),
  telling customers of a long outage meanwhile (care's `DelayNotices`);
- `drawdowns_router`: drawdown requests and repayments -> `Lender.lend` (lending);
- `reviews_router` (one replica per record): `credit.reviews` -> `Clerk.act` (care);
- `desk_router` (every replica): `credit.reviews` -> `Clerk.follow` (care);
- `policy_updates_router` (every replica of the live fleet: a shadow keeps its candidate policy):
  `credit.policy` -> `PolicyUpdates.follow` (control).

Batches of a consumer group run through `BatchRunner` (watched, taken, worked, refusals
dead-lettered, observed, committed); the two routers every replica follows have no group, so
nothing to commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.policy.care.clerk import Clerk, Handled
from services.policy.care.delay_notices import DelayNotices
from services.policy.control.state import PolicyState
from services.policy.control.updates import PolicyUpdates
from services.policy.lending.lender import Lender
from services.policy.metrics import PolicyMetrics
from services.policy.windows.underwriting import Decided, Underwriter
from shared.contracts import (
    REVIEW_EVENTS,
    DeadLetter,
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    Event,
    Repaid,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import (
    BatchRunner,
    Intake,
    Records,
    batch_subscriber_options,
    follower_options,
    intake,
    refusals,
    retry_meanwhile,
)
from shared.settings import Settings
from shared.wire import Record

__all__ = ["PolicyDeps", "desk_router", "drawdowns_router", "policy_updates_router", "reviews_router", "scores_router"]

# A batch that cannot be decided is retried for this long before it is rewound (and redelivered).
DECIDE_GIVE_UP_S = 120.0


@dataclass(slots=True)
class PolicyDeps:
    settings: Settings
    batches: BatchRunner
    metrics: PolicyMetrics
    underwriter: Underwriter
    state: PolicyState
    clerk: Clerk | None = None  # reviews and suspensions (the live fleet; a shadow has none)
    delays: DelayNotices | None = None  # tells customers of long delays (the live fleet)
    lender: Lender | None = None  # the live fleet lends; a shadow replica does not
    updates: PolicyUpdates | None = None  # the live fleet follows signed updates; a shadow keeps its candidate


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

    async def decide(batch: Intake[ScoreComputed]) -> Decided:
        scores = [score for _, score in batch.events]
        waiting = deps.delays.waiting(scores) if deps.delays is not None else None
        return await retry_meanwhile(
            lambda: deps.underwriter.decide(scores), waiting, settings=settings, what="decide", give_up_after_s=DECIDE_GIVE_UP_S
        )

    @router.subscriber(
        topics.scores,
        **batch_subscriber_options(settings, group),
        title="credit.scores:ScoreComputed",
        description="Decides each scored application: open a window with a limit, or close it with a category.",
    )
    async def on_scores(records: Records, message: KafkaMessage) -> None:
        await deps.batches.run(
            topics.scores, records, message, (ScoreComputed,), decide, what=None,
            # An application id another customer's application already holds: never skipped in silence.
            refused=lambda batch, decided: refusals(batch.events, decided.conflicts, "application_id_reused", _application_reused),
            observe=lambda decided: deps.metrics.observe(decided.decisions),
        )  # fmt: skip

    return router


def drawdowns_router(deps: PolicyDeps, *, group: str) -> KafkaRouter:
    """Drawdown requests and repayments in, their outcomes out, on the same topic (`credit.drawdowns`)."""
    topics = deps.settings.topics
    router = KafkaRouter()
    for outcome in (DrawdownApproved, DrawdownRefused, RepaymentApplied):
        router.publisher(topics.drawdowns, schema=outcome, title=f"{topics.drawdowns}:{outcome.EVENT_TYPE}")
    lender = deps.lender
    assert lender is not None

    @router.subscriber(
        topics.drawdowns,
        **batch_subscriber_options(deps.settings, group),
        title="credit.drawdowns:DrawdownRequested|Repaid",
        description="Decides each drawdown at once against the customer's window and balance; applies each repayment.",
    )
    async def on_drawdowns(records: Records, message: KafkaMessage) -> None:
        # The topic carries the outcomes this service writes too: those are skipped, not refused.
        await deps.batches.run(
            topics.drawdowns, records, message, (DrawdownRequested, Repaid),
            lambda batch: lender.lend([event for _, event in batch.events]), what="lend",
            refused=lambda batch, lent: refusals(batch.events, lent.conflicts, "movement_id_reused", _movement_reused),
            observe=lambda lent: deps.metrics.observe_lending(lent.outcomes),
            ignored=(DrawdownApproved, DrawdownRefused, RepaymentApplied), skip_empty=True,
        )  # fmt: skip

    return router


def reviews_router(deps: PolicyDeps) -> KafkaRouter:
    """`credit.reviews` in, one replica per record (a group of its own): requests acknowledged, signed
    review decisions carried out, forged operator actions dead-lettered."""
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    router.publisher(topics.reviews, schema=ReviewOpened, title="credit.reviews:ReviewOpened")
    router.publisher(topics.reviews, schema=ReviewConcluded, title="credit.reviews:ReviewConcluded")
    clerk = deps.clerk
    assert clerk is not None

    def observe(handled: Handled) -> None:
        for action, result in handled.actions:
            deps.metrics.operator_actions.labels(action, result).inc()
        deps.metrics.observe(handled.decisions)

    @router.subscriber(
        topics.reviews,
        **batch_subscriber_options(settings, "policy-reviews"),
        title="credit.reviews:" + "|".join(e.EVENT_TYPE for e in REVIEW_EVENTS),
        description="Acknowledges requests for review by a person, carries out signed review decisions, refuses forged operator actions.",
    )
    async def on_reviews(records: Records, message: KafkaMessage) -> None:
        await deps.batches.run(
            f"{topics.reviews}:act", records, message, REVIEW_EVENTS, lambda batch: clerk.act(batch.events), what="reviews",
            refused=lambda batch, handled: handled.refused, observe=observe,
        )  # fmt: skip

    return router


def desk_router(deps: PolicyDeps) -> KafkaRouter:
    """`credit.reviews` followed by every replica (no group): suspensions and open reviews kept in memory."""
    router = KafkaRouter()
    clerk = deps.clerk
    assert clerk is not None

    @router.subscriber(
        deps.settings.topics.reviews,
        **follower_options(),  # no group: every replica reads every record
        title="credit.reviews:CustomerSuspended|SuspensionLifted|ReviewOpened|ReviewConcluded",
        description="Every replica keeps each customer's suspension and the open reviews; a suspension closes the customer's open window.",
    )
    async def on_desk(records: Records) -> None:
        fresh = [raw for raw in records if raw.offset >= clerk.desk.history_end.get(raw.partition, 0)]  # not restored at start
        events: list[Event] = [event for _, event in intake(fresh, REVIEW_EVENTS).events]
        deps.metrics.observe(await deps.batches.retry(lambda: clerk.follow(events), what="desk"))

    return router


def policy_updates_router(deps: PolicyDeps) -> KafkaRouter:
    """Signed policy updates in: every replica reads every one (no group) and applies those that verify."""
    router = KafkaRouter()
    updates = deps.updates
    assert updates is not None

    @router.subscriber(
        deps.settings.topics.policy,
        **follower_options(),  # no group: every replica reads every update
        title="credit.policy:PolicyUpdated",
        description="Signed policy versions; every replica applies each one that verifies.",
    )
    async def on_policy_updates(records: Records) -> None:
        for raw in records:
            if not updates.replayed(raw.partition, raw.offset):
                deps.metrics.observe(await updates.follow(Record.of(raw)))

    return router


def _application_reused(score: ScoreComputed) -> str:
    return f"application {score.application_id} belongs to another customer's application"


def _movement_reused(event: DrawdownRequested | Repaid) -> str:
    return f"{event.EVENT_TYPE} id belongs to another customer's request"
