"""Policy's Kafka adapter: each router translates records into calls on a room, nothing more.

- `scores_router` (the live fleet and a shadow replica): scores -> `Underwriter.decide` (windows),
  telling customers of a long outage meanwhile (care's `DelayNotices`);
- `lending_router`: drawdown and repayment requests -> `Lender.lend` (lending), results out to
  `credit.lending-results`;
- `reviews_router` (one replica per record): review requests and the operators' signed actions ->
  `Clerk.act` (care), results out to `credit.review-results`;
- `desk_router` (every replica): the review results and the operators' actions -> `Clerk.follow` (care);
- `policy_updates_router` (every replica of the live fleet: a shadow keeps its candidate policy):
  `credit.policy` (policy updates, key retirements) -> `PolicyUpdates.follow` (control).

Each subscriber takes what its topic carries (shared/contracts/topics.py) and nothing else: a result
written to a request topic is dead-lettered as `wrong_topic`, never taken nor skipped. Batches of a
consumer group run through `BatchRunner` (watched, taken, worked, refusals dead-lettered, observed,
committed); the routers every replica follows have no group, so nothing to commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from faststream.kafka import KafkaRouter

from services.policy.care.clerk import Clerk, Handled
from services.policy.care.delay_notices import DelayNotices
from services.policy.control.state import PolicyState
from services.policy.control.updates import PolicyUpdates
from services.policy.lending.lender import Lender
from services.policy.lending.servicing import Servicer
from services.policy.metrics import PolicyMetrics
from services.policy.windows.underwriting import Decided, Underwriter
from shared.contracts import (
    LENDING_REQUESTS,
    LENDING_RESULTS,
    LOAN_EVENTS,
    OPERATOR_ACTIONS,
    REVIEW_RESULTS,
    DeadLetter,
    DecisionDelayed,
    DrawdownRequested,
    Event,
    Repaid,
    ReviewRequested,
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

__all__ = ["PolicyDeps", "desk_router", "lending_router", "policy_updates_router", "reviews_router", "scores_router"]

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
    servicer: Servicer | None = None  # the live fleet watches its loans' due dates (run by the sweeper)


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
    async def on_scores(records: Records) -> None:
        await deps.batches.run(
            topics.scores, records, (ScoreComputed,), decide, what=None,
            # An application id another customer's application already holds: never skipped in silence.
            refused=lambda batch, decided: refusals(batch.events, decided.conflicts, "application_id_reused", _application_reused),
            observe=lambda decided: deps.metrics.observe(decided.decisions),
        )  # fmt: skip

    return router


def lending_router(deps: PolicyDeps, *, group: str) -> KafkaRouter:
    """Drawdown and repayment requests in (`credit.lending-requests`), their results out to the topic
    only this service writes (`credit.lending-results`); the loans booked and the overdues cured to
    `credit.loans`, another result topic only it writes, where the sweeper's due-date steps go too."""
    topics = deps.settings.topics
    router = KafkaRouter()
    lender = deps.lender
    assert lender is not None
    for result in LENDING_RESULTS:
        router.publisher(lender.out_topic, schema=result, title=f"{lender.out_topic}:{result.EVENT_TYPE}")
    for event in LOAN_EVENTS:
        router.publisher(lender.loans_topic, schema=event, title=f"{lender.loans_topic}:{event.EVENT_TYPE}")

    @router.subscriber(
        topics.lending_requests,
        **batch_subscriber_options(deps.settings, group),
        title=f"{topics.lending_requests}:DrawdownRequested|Repaid",
        description="Decides each drawdown at once against the customer's window and balance; applies each repayment. "
        "Anything else on the topic (a result above all) is dead-lettered.",
    )
    async def on_lending_requests(records: Records) -> None:
        await deps.batches.run(
            topics.lending_requests, records, LENDING_REQUESTS,
            lambda batch: lender.lend([event for _, event in batch.events]), what="lend",
            refused=lambda batch, lent: refusals(batch.events, lent.conflicts, "movement_id_reused", _movement_reused),
            observe=lambda lent: deps.metrics.observe_lending(lent.outcomes),
        )  # fmt: skip

    return router


def reviews_router(deps: PolicyDeps) -> KafkaRouter:
    """Review requests (`credit.review-requests`) and the operators' signed actions
    (`credit.operator-actions`) in, each topic in a group of its own (one replica per record):
    requests acknowledged, signed review decisions carried out, forged operator actions
    dead-lettered; the results out to `credit.review-results`, which only this service writes."""
    settings = deps.settings
    topics = settings.topics
    router = KafkaRouter()
    clerk = deps.clerk
    assert clerk is not None
    for result in REVIEW_RESULTS:
        router.publisher(clerk.results_topic, schema=result, title=f"{clerk.results_topic}:{result.EVENT_TYPE}")

    def observe(handled: Handled) -> None:
        for action, result in handled.actions:
            deps.metrics.operator_actions.labels(action, result).inc()
        deps.metrics.observe(handled.decisions)

    def act(topic: str, accepted: tuple[type[Event], ...]) -> Callable[[Records], Awaitable[None]]:
        async def on_batch(records: Records) -> None:
            await deps.batches.run(
                f"{topic}:act", records, accepted, lambda batch: clerk.act(batch.events), what="reviews",
                refused=lambda batch, handled: handled.refused, observe=observe,
            )  # fmt: skip

        return on_batch

    router.subscriber(
        topics.review_requests,
        **batch_subscriber_options(settings, "policy-reviews"),
        title=f"{topics.review_requests}:ReviewRequested",
        description="Acknowledges requests for review by a person. Anything else on the topic (a result above all) is dead-lettered.",
    )(act(topics.review_requests, (ReviewRequested,)))
    router.subscriber(
        topics.operator_actions,
        **batch_subscriber_options(settings, "policy-actions"),
        title=f"{topics.operator_actions}:" + "|".join(e.EVENT_TYPE for e in OPERATOR_ACTIONS),
        description="Carries out signed review decisions; refuses forged or unsigned operator actions.",
    )(act(topics.operator_actions, OPERATOR_ACTIONS))
    return router


def desk_router(deps: PolicyDeps) -> KafkaRouter:
    """The review results and the operators' actions followed by every replica (no group): suspensions
    and open reviews kept in memory. Each topic is read as what it carries (no dead letters here: the
    groups that act on these topics dead-letter once what does not belong)."""
    router = KafkaRouter()
    clerk = deps.clerk
    assert clerk is not None
    topics = deps.settings.topics

    def follow(topic: str, carried: tuple[type[Event], ...]) -> Callable[[Records], Awaitable[None]]:
        async def on_batch(records: Records) -> None:
            fresh = [raw for raw in records if raw.offset >= clerk.desk.history_end.get((topic, raw.partition), 0)]  # not restored at start
            events: list[tuple[Record, Event]] = list(intake(fresh, carried).events)
            deps.metrics.observe(await deps.batches.retry(lambda: clerk.follow(events), what="desk"))

        return on_batch

    router.subscriber(
        topics.review_results,
        **follower_options(),  # no group: every replica reads every record
        title=f"{topics.review_results}:ReviewOpened|ReviewConcluded",
        description="Every replica keeps the open reviews.",
    )(follow(topics.review_results, REVIEW_RESULTS))
    router.subscriber(
        topics.operator_actions,
        **follower_options(),
        title=f"{topics.operator_actions}:CustomerSuspended|SuspensionLifted",
        description="Every replica keeps each customer's suspension; a suspension closes the customer's open window.",
    )(follow(topics.operator_actions, OPERATOR_ACTIONS))
    return router


def policy_updates_router(deps: PolicyDeps) -> KafkaRouter:
    """Signed policy updates and key retirements in: every replica reads every one (no group) and
    applies those that verify."""
    router = KafkaRouter()
    updates = deps.updates
    assert updates is not None

    @router.subscriber(
        deps.settings.topics.policy,
        **follower_options(),  # no group: every replica reads every update
        title="credit.policy:PolicyUpdated|KeyRetired",
        description="Signed policy versions and retirements of operators' keys; every replica applies each one that verifies.",
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
