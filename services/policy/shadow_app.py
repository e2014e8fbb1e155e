"""A shadow policy replica's composition root: a candidate policy live, beside the active one, with no effects.

`creditwindow shadow run --policy FILE` runs it. Same rules and underwriter as the live service, put
together differently: its own consumer group on `credit.scores` (`policy-shadow`), decisions to
`credit.windows.shadow`, an in-memory book seeded read-only from the fleet's Redis book, refused
records logged rather than dead-lettered (the live replicas dead-letter them), no sweeper, and it
does not follow `credit.policy` (the candidate file is its policy).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import structlog
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.app import Policy
from services.policy.control.document import PolicyDocument, load_policy
from services.policy.control.state import PolicyState
from services.policy.handlers import PolicyDeps, scores_router
from services.policy.metrics import PolicyMetrics
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.ports import LiveBook
from services.policy.windows.underwriting import Underwriter
from shared.clock import Clock
from shared.contracts import Event
from shared.messaging import BatchRunner, ServiceHealth
from shared.ports import EventPublisher
from shared.runtime import FleetApp, build_app, plumbing
from shared.settings import Settings
from shared.wire import RefusedRecord

__all__ = ["SERVICE", "RefusalsLogged", "compose_shadow", "create_shadow_app"]

log = structlog.get_logger("creditwindow.policy")
SERVICE = "policy-shadow"


class RefusalsLogged:
    """Publishes the shadow's decisions; a record it refuses is logged, not dead-lettered a second time."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def publish(self, items: Iterable[tuple[str, Event]]) -> int:
        return await self._publisher.publish(items)

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        count = 0
        for item in refused:
            count += 1
            record = item.record
            log.info("shadow_refused", topic=record.topic, partition=record.partition, offset=record.offset, error_type=item.error_type)
        return count


def compose_shadow(
    settings: Settings,
    *,
    candidate: PolicyDocument,
    broker: KafkaBroker,
    live: LiveBook,
    publisher: EventPublisher,
    registry: CollectorRegistry,
    clock: Clock,
    health: ServiceHealth | None = None,
) -> Policy:
    """The candidate on `broker`: scores decided in memory into `credit.windows.shadow`."""
    store = MemoryBook(live, programmes=[p.name for p in candidate.programmes])
    state = PolicyState(candidate, source="candidate")
    shadow_publisher = RefusalsLogged(publisher)
    underwriter = Underwriter(store=store, publisher=shadow_publisher, out_topic=settings.topics.shadow_windows, state=state, clock=clock)
    batches = BatchRunner(settings=settings, publisher=shadow_publisher, health=health or ServiceHealth(registry, clock=clock))
    deps = PolicyDeps(settings, batches, PolicyMetrics(registry), underwriter, state)
    broker.include_router(scores_router(deps, group=SERVICE, dead_letters=False))
    return Policy(broker, deps, store)


def create_shadow_app(settings: Settings, candidate_path: Path) -> FleetApp:
    parts = plumbing(settings, SERVICE)
    candidate = load_policy(candidate_path)
    live = RedisBook(parts.redis, settings.redis_prefix)
    compose_shadow(
        settings, candidate=candidate, broker=parts.broker, live=live, publisher=parts.outbox, registry=parts.registry, health=parts.health,
        clock=parts.clock,
    )

    async def announce() -> None:
        log.info("shadow_policy", policy=candidate.label, source=str(candidate_path), topic=settings.topics.shadow_windows)

    return build_app(
        parts,
        on_startup=[announce],
        description="A candidate policy in shadow: decisions to credit.windows.shadow, nothing written to Redis.",
    )
