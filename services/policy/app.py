"""The policy service's composition root: `creditwindow run policy` or
`faststream run services.policy.app:create_app --factory`.

`compose` wires the rooms to whatever book and publisher it is given (the handler tests give it an
in-memory book and the in-memory broker); `create_app` gives it the Redis book and the Kafka outbox
and adds the process around them: the policy and the desk restored at start, the book recovered,
the sweeper (`sweeper.py`), `/health` and `/metrics`, and the customer-data API (`http_api.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.care.adapters.reviews_log import restore_desk
from services.policy.care.clerk import Clerk
from services.policy.care.delay_notices import DelayNotices
from services.policy.care.desk import CustomerDesk
from services.policy.control.adapters.policy_log import restore_policy
from services.policy.control.checks import Signatures
from services.policy.control.document import PolicyDocument, load_policy
from services.policy.control.state import PolicyState
from services.policy.control.updates import PolicyUpdates
from services.policy.handlers import (
    PolicyDeps,
    desk_router,
    drawdowns_router,
    policy_updates_router,
    reviews_router,
    scores_router,
)
from services.policy.http_api import customer_api
from services.policy.lending.lender import Lender
from services.policy.lending.ports import LendingBook
from services.policy.metrics import PolicyMetrics
from services.policy.record.adapters.kafka_archive import KafkaArchive
from services.policy.record.adapters.recovery import book_recovery
from services.policy.record.adapters.redis_references import RedisReferences
from services.policy.record.ports import DecisionArchive, NoArchive, ReferenceIndex
from services.policy.sweeper import Sweeper
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.ports import WindowBook
from services.policy.windows.underwriting import Underwriter
from shared.clock import Clock
from shared.messaging import BatchRunner, ServiceHealth
from shared.ports import EventPublisher
from shared.redis_state import Durability
from shared.runtime import FleetApp, build_app, plumbing, serve
from shared.settings import Settings
from shared.wire import RefusedRecord

__all__ = ["FleetBook", "Policy", "compose", "create_app", "main"]

log = structlog.get_logger("creditwindow.policy")
SERVICE = "policy"


class FleetBook(WindowBook, LendingBook, Protocol):
    """The one book the windows and lending rooms keep (`RedisBook` for the fleet, `MemoryBook` in tests)."""


@dataclass(slots=True)
class Policy:
    """The wired policy service: its broker with the routers mounted, and the parts tests look at."""

    broker: KafkaBroker
    deps: PolicyDeps
    store: FleetBook
    archive: DecisionArchive | None = None

    @property
    def state(self) -> PolicyState:
        return self.deps.state

    @property
    def underwriter(self) -> Underwriter:
        return self.deps.underwriter

    @property
    def metrics(self) -> PolicyMetrics:
        return self.deps.metrics

    @property
    def clerk(self) -> Clerk:
        assert self.deps.clerk is not None
        return self.deps.clerk

    @property
    def updates(self) -> PolicyUpdates:
        assert self.deps.updates is not None
        return self.deps.updates


def compose(
    settings: Settings,
    *,
    broker: KafkaBroker,
    store: FleetBook,
    publisher: EventPublisher,
    registry: CollectorRegistry,
    policy: PolicyDocument | None = None,
    clock: Clock,
    health: ServiceHealth | None = None,
    archive: DecisionArchive | None = None,
    references: ReferenceIndex | None = None,
) -> Policy:
    """The live policy service on `broker`: scores decided into `credit.windows`, signed updates
    followed, reviews and suspensions on `credit.reviews` carried out (`archive` reads decisions back)."""
    source = "given" if policy is not None else f"file:{settings.policy_path.name}"
    state = PolicyState(policy or load_policy(settings.policy_path), source=source)
    topics = settings.topics
    metrics = PolicyMetrics(registry)
    batches = BatchRunner(settings=settings, publisher=publisher, health=health or ServiceHealth(registry, clock=clock))
    desk = CustomerDesk()
    underwriter = Underwriter(
        store=store, publisher=publisher, out_topic=topics.windows, state=state, clock=clock, suspensions=desk, references=references
    )
    signatures = Signatures(settings.policy_key_ring, settings.topic_namespace, timedelta(seconds=settings.policy_max_clock_skew_s))
    clerk = Clerk(
        underwriter=underwriter, archive=archive or NoArchive(), publisher=publisher, reviews_topic=topics.reviews,
        desk=desk, signatures=signatures, clock=clock,
    )  # fmt: skip
    updates = PolicyUpdates(
        state=state, signatures=signatures, clock=clock, publisher=publisher, deadletter_topic=topics.deadletter,
        pauses=underwriter, retry=batches.retry, counted=lambda result: metrics.policy_updates.labels(result).inc(),
    )  # fmt: skip
    delays = DelayNotices(publisher=publisher, out_topic=topics.windows, state=state, clock=clock, counted=metrics.delays.inc)
    lender = Lender(store=store, publisher=publisher, out_topic=topics.drawdowns, state=state, clock=clock)
    deps = PolicyDeps(settings, batches, metrics, underwriter, state, clerk, delays, lender, updates)
    broker.include_router(scores_router(deps, group=SERVICE))
    broker.include_router(drawdowns_router(deps, group=f"{SERVICE}-drawdowns"))
    broker.include_router(policy_updates_router(deps))
    broker.include_router(reviews_router(deps))
    broker.include_router(desk_router(deps))
    return Policy(broker, deps, store, archive)


def create_app(settings: Settings | None = None) -> FleetApp:
    parts = plumbing(settings or Settings(), SERVICE)
    settings = parts.settings
    store = RedisBook(parts.redis, settings.redis_prefix, retention_ms=settings.book_retention_ms, durability=Durability.of(settings))
    references = RedisReferences(parts.redis, settings.redis_prefix, parts.clock)
    archive = KafkaArchive(settings, references)
    recovery = book_recovery(store, settings, parts.health, clock=parts.clock, references=references)
    policy = compose(
        settings, broker=parts.broker, store=store, publisher=parts.outbox, registry=parts.registry, health=parts.health,
        archive=archive, references=references, clock=parts.clock,
    )  # fmt: skip
    sweeper = Sweeper(underwriter=policy.underwriter, book=store, state=policy.state, metrics=policy.metrics, desk=policy.clerk.desk)
    api = customer_api(settings, store, archive, policy.state)
    tasks: list[asyncio.Task[None]] = []
    refused_at_start: list[RefusedRecord] = []

    async def restore() -> None:
        refused_at_start.extend(await restore_policy(settings, policy.updates))
        await restore_desk(settings, policy.clerk)
        await recovery.recover()  # a book to work on (rebuilt from the log if Redis has none) before consuming

    async def start_sweeper() -> None:
        await policy.updates.refuse(refused_at_start)
        retry = policy.deps.batches.retry
        # A pause applied while no replica ran still closes the windows it covers.
        policy.metrics.observe(await retry(policy.underwriter.enforce_pauses, what="close_paused"))
        # A suspension applied while no replica ran closes the customer's open window too.
        policy.metrics.observe(await retry(policy.clerk.close_all_suspended, what="close_suspended"))
        tasks.append(asyncio.create_task(sweeper.forever(), name="policy-sweeper"))

    async def stop_sweeper() -> None:
        await recovery.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def start_api() -> None:
        if not settings.api_tokens:
            log.warning("api_without_tokens", hint="set CW_API_TOKENS: every request to the customer-data API is refused")
        await api.start()

    return build_app(
        parts,
        on_startup=[restore],
        after_startup=[start_sweeper, start_api],
        on_shutdown=[api.stop, stop_sweeper],
        description="Decides borrowing windows under the active signed policy and the portfolio budget.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.policy_http_port if port is None else port)
