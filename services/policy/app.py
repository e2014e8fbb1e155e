"""The policy service's composition root: `creditwindow run policy` or
`faststream run services.policy.app:create_app --factory`.

`compose` wires the logic to whatever book and publisher it is given (the handler tests give it an
in-memory book and the in-memory broker); `create_app` gives it the Redis book and the Kafka outbox
and adds the process around them: policy restored from `credit.policy` at start, the lifecycle
sweeper, `/health` and `/metrics`, and the customer-data API (`/limits/{customer_id}` and
`/explanations/{reference}`, bearer tokens only) on a listener of its own
(`CW_API_HOST`:`CW_POLICY_API_PORT`). The explanations are served here because this service holds
what explains a decision: every policy version it applied, and the index from references to the
decision log; the message as sent is read back from `credit.notifications`.
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

from services.policy.care.clerk import Clerk, Signatures
from services.policy.care.delays import DelayWatch
from services.policy.care.desk import CustomerDesk
from services.policy.control.document import PolicyDocument, load_policy
from services.policy.control.state import PolicyState
from services.policy.handlers import (
    PolicyDeps,
    desk_router,
    drawdowns_router,
    policy_updates_router,
    refuse_updates,
    restore_desk,
    restore_policy,
    reviews_router,
    scores_router,
)
from services.policy.lending.lender import Lender
from services.policy.lending.ports import LendingBook
from services.policy.metrics import PolicyMetrics
from services.policy.record.adapters.kafka_archive import KafkaArchive
from services.policy.record.adapters.recovery import book_recovery
from services.policy.record.adapters.redis_references import RedisReferences
from services.policy.record.explanation import explain, no_decision
from services.policy.record.ports import DecisionArchive, NoArchive, ReferenceIndex
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.decisions import budgets_now
from services.policy.windows.model import Reserved
from services.policy.windows.ports import WindowBook
from services.policy.windows.underwriting import Underwriter
from shared.clock import Clock
from shared.customer_api import ApiListener, CustomerApi, Reply
from shared.messaging import ServiceHealth, is_transient, retry_transient
from shared.ports import EventPublisher
from shared.redis_state import Durability
from shared.references import normalise_reference
from shared.runtime import FleetApp, build_app, plumbing, serve
from shared.settings import Settings
from shared.wire import RefusedRecord

__all__ = ["Policy", "compose", "create_app", "explanation_reply", "main", "sweep_forever"]

log = structlog.get_logger("creditwindow.policy")
SWEEP_INTERVAL_S = 1.0
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
    desk = CustomerDesk()
    underwriter = Underwriter(
        store=store, publisher=publisher, out_topic=settings.topics.windows, state=state, clock=clock, suspensions=desk, references=references
    )
    signatures = Signatures(settings.policy_key_ring, settings.topic_namespace, timedelta(seconds=settings.policy_max_clock_skew_s))
    clerk = Clerk(
        underwriter=underwriter, archive=archive or NoArchive(), publisher=publisher, reviews_topic=settings.topics.reviews,
        desk=desk, signatures=signatures, clock=clock,
    )  # fmt: skip
    lender = Lender(store=store, publisher=publisher, out_topic=settings.topics.drawdowns, state=state, clock=clock)
    deps = PolicyDeps(
        settings, publisher, PolicyMetrics(registry), underwriter, state, health or ServiceHealth(registry, clock=clock), clerk, DelayWatch(), lender
    )
    broker.include_router(scores_router(deps, group=SERVICE))
    broker.include_router(drawdowns_router(deps, group=f"{SERVICE}-drawdowns"))
    broker.include_router(policy_updates_router(deps))
    broker.include_router(reviews_router(deps))
    broker.include_router(desk_router(deps))
    return Policy(broker, deps, store, archive)


async def explanation_reply(reference_text: str, archive: DecisionArchive, state: PolicyState) -> Reply:
    """`GET /explanations/{reference}`: a decision explained (404, the same body, for an unknown
    reference and for a malformed one)."""
    reference = normalise_reference(reference_text)
    decision = await archive.decision(reference) if reference else None
    if decision is None:
        return 404, no_decision(reference or reference_text[:40])
    score = await archive.score(decision)
    messages = await archive.notices(decision)
    return 200, explain(decision, score, state.versions.get(decision.policy_version), messages).as_dict()


async def sweep_forever(policy: Policy, interval_s: float = SWEEP_INTERVAL_S) -> None:
    """Expire windows, re-decide what maintenance deferred, announce closures, refresh the budget gauges."""
    while True:
        try:
            if not await policy.store.usable():
                await asyncio.sleep(interval_s)  # recovery runs; nothing to sweep on a book being rebuilt
                continue
            policy.metrics.observe(await policy.underwriter.sweep())
            _desk_gauges(policy)
            terms = budgets_now(policy.state.active, policy.underwriter.clock.now())  # this period's budgets
            reserved = await policy.store.budgets([key for key, _ in terms.values()])
            for segment, (key, budget) in terms.items():
                used = reserved.get(key, Reserved())
                policy.metrics.budget_reserved.labels(segment).set(used.exposure)
                if budget.exposure:
                    policy.metrics.budget_utilisation.labels(segment).set(used.exposure / budget.exposure)
        except Exception as exc:  # the sweeper must outlive any fault; it retries next tick
            log.warning("sweep_failed", error=repr(exc)[:300], transient=is_transient(exc))
        await asyncio.sleep(interval_s)


def _desk_gauges(policy: Policy) -> None:
    if policy.deps.clerk is None:
        return
    desk, now = policy.clerk.desk, policy.underwriter.clock.now()
    policy.metrics.reviews_open.set(len(desk.reviews))
    policy.metrics.reviews_overdue.set(len(desk.overdue(now, policy.state.active.customer_care.review_within)))
    policy.metrics.suspended.set(sum(1 for s in desk.suspensions.values() if s.active(now)))


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
    tasks: list[asyncio.Task[None]] = []
    refused_at_start: list[RefusedRecord] = []

    async def restore() -> None:
        refused_at_start.extend(await restore_policy(settings, policy.state, parts.clock))
        await restore_desk(settings, policy.clerk)
        await recovery.recover()  # a book to work on (rebuilt from the log if Redis has none) before consuming

    async def start_sweeper() -> None:
        await refuse_updates(policy.deps, refused_at_start)
        # A pause applied while no replica ran still closes the windows it covers.
        policy.metrics.observe(
            await retry_transient(policy.underwriter.enforce_pauses, settings=settings, what="close_paused")
        )
        # A suspension applied while no replica ran closes the customer's open window too.
        policy.metrics.observe(await retry_transient(policy.clerk.close_all_suspended, settings=settings, what="close_suspended"))
        tasks.append(asyncio.create_task(sweep_forever(policy), name="policy-sweeper"))

    async def stop_sweeper() -> None:
        await recovery.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def limits(customer_id: str) -> Reply:
        window = await policy.store.current(customer_id)
        if window is None:
            return 404, {"customer_id": customer_id, "status": "none"}
        return 200, window.as_dict()

    async def explanations(reference: str) -> Reply:
        return await explanation_reply(reference, archive, policy.state)

    api = ApiListener(
        CustomerApi.from_settings(
            settings, [("/limits/", "/limits/{customer_id}", limits), ("/explanations/", "/explanations/{reference}", explanations)]
        ),
        host=settings.api_host,
        port=settings.policy_api_port,
    )

    async def start_api() -> None:
        if not settings.api_tokens:
            log.warning(
                "api_without_tokens", hint="set CW_API_TOKENS: every request to the customer-data API is refused"
            )
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
