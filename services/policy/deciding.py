"""The policy service layer: rules, the atomic limit store and the outbox, in the order that keeps
every application to exactly one decision.

For a batch of scores: propose (pure rules) -> allocate (one Lua call per application, pipelined:
budget, sequence, superseding, idempotency) -> build the events -> remember them -> publish and wait
for the broker -> mark them published. A redelivered score finds its application already decided:
if that decision was published nothing happens; if not, the remembered event is published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from services.policy.decisions import Allocation, Proposal, closure_id, decide, lifecycle_closure, propose
from services.policy.document import PolicyDocument
from services.policy.redis_limits import LifecycleClosure
from shared.contracts import Decision, ScoreComputed, Topics, Trigger, WindowClosed, WindowOpened, utc_now
from shared.messaging import Outbox

__all__ = ["Decider", "LimitStore", "PolicyState"]

log = structlog.get_logger("creditwindow.policy")


class LimitStore(Protocol):
    """Budgets, current windows and decision records (Redis in production, a fake in handler tests)."""

    async def allocate(self, proposals: Sequence[Proposal], policy: PolicyDocument) -> list[Allocation]: ...

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None: ...

    async def mark_published(self, application_ids: Sequence[str]) -> None: ...

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]: ...

    async def open_applications(self) -> list[str]: ...

    async def application(self, application_id: str) -> dict[str, str]: ...

    async def close(
        self, application_id: str, *, closure_id: str, category: str, reason: str, trigger: str, now: datetime
    ) -> LifecycleClosure | None: ...

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]: ...

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]: ...

    async def redecided(self, record_keys: Sequence[str]) -> None: ...

    async def closure_published(self, application_ids: Sequence[str]) -> None: ...


@dataclass(slots=True)
class PolicyState:
    """The active policy of this replica, and where it came from."""

    active: PolicyDocument
    source: str
    history_end: dict[int, int] = field(default_factory=dict)


class Decider:
    def __init__(
        self,
        *,
        store: LimitStore,
        outbox: Outbox,
        topics: Topics,
        state: PolicyState,
        shadow: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.topics = topics
        self.state = state
        self.shadow = shadow
        self.clock = clock

    @property
    def _out_topic(self) -> str:
        return self.topics.shadow_windows if self.shadow else self.topics.windows

    async def decide(self, scores: Sequence[ScoreComputed], trigger: Trigger = "application") -> list[Decision]:
        """Decide a batch; returns the decisions published now (not those published before)."""
        policy = self.state.active
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
        began = time.perf_counter()
        unique: dict[str, ScoreComputed] = {}
        for score in scores:
            unique.setdefault(score.application_id, score)  # a duplicate in the same batch is the same application
        proposals = [propose(score, policy, now, trigger) for score in unique.values()]
        allocations = await self.store.allocate(proposals, policy)
        decisions: list[Decision] = []
        new_records: list[tuple[str, bytes]] = []
        for proposal, allocation in zip(proposals, allocations, strict=True):
            if allocation.published:
                continue
            if allocation.stored_event is not None:
                decisions.append(_parse_decision(allocation.stored_event))
                continue
            if not allocation.fresh and allocation.decided_at_ms:
                # Decided before but never remembered (a crash in between): build it as it was then.
                then = datetime.fromtimestamp(allocation.decided_at_ms / 1000, UTC)
                proposal = propose(proposal.score, policy, then, trigger)
                decision = decide(proposal, allocation, policy, then)
            else:
                decision = decide(proposal, allocation, policy, now)
            decisions.append(decision)
            new_records.append((proposal.record_key, decision.model_dump_json().encode()))
        keys = {p.decision_id: p.record_key for p in proposals}
        allocated = time.perf_counter()
        await self.store.remember(new_records)
        remembered = time.perf_counter()
        await self.outbox.publish((self._out_topic, d) for d in decisions)
        published = time.perf_counter()
        await self.store.mark_published([keys[d.decision_id] for d in decisions])
        log.debug(
            "batch_decided",
            size=len(scores),
            allocate_ms=round((allocated - began) * 1000, 2),
            remember_ms=round((remembered - allocated) * 1000, 2),
            publish_ms=round((published - remembered) * 1000, 2),
            total_ms=round((time.perf_counter() - began) * 1000, 2),
        )
        for d in decisions:
            _log_decision(d)
        return decisions

    async def sweep(self) -> list[Decision]:
        """Close expired windows, decide again what maintenance deferred, announce pending closures."""
        now = self.clock()
        for record in await self.store.due_expiries(now):
            await self.store.close(
                record,
                closure_id=str(closure_id(record, "expiry")),
                category="strategy",
                reason="expired",
                trigger="expiry",
                now=now,
            )
        redecided: list[Decision] = []
        in_maintenance = any(w.start <= now < w.end for w in self.state.active.maintenance)
        due = [] if in_maintenance else await self.store.due_deferred(now)
        if due:
            scores = [ScoreComputed.model_validate_json(payload) for _, payload in due]
            redecided = await self.decide(scores, trigger="redecision")
            await self.store.redecided([record for record, _ in due])
        return [*redecided, *await self._announce_closures()]

    async def close_paused(self, paused: dict[str, set[str]]) -> list[WindowClosed]:
        """Close the open windows in newly paused segments, regions or channels (category strategy)."""
        if not any(paused.values()):
            return []
        now = self.clock()
        for record in await self.store.open_applications():
            fields = await self.store.application(record)
            for dimension in ("segment", "region", "channel"):
                if fields.get(dimension) in paused[dimension]:
                    await self.store.close(
                        record,
                        closure_id=str(closure_id(record, "pause")),
                        category="strategy",
                        reason=f"{dimension}_paused",
                        trigger="pause",
                        now=now,
                    )
                    break
        return await self._announce_closures()

    async def _announce_closures(self) -> list[WindowClosed]:
        pending = await self.store.pending_closures()
        closures = [lifecycle_closure(c.fields, policy_label=self.state.active.label) for c in pending]
        if closures:
            await self.outbox.publish((self._out_topic, c) for c in closures)
            await self.store.closure_published([c.record for c in pending])
            for closure in closures:
                _log_decision(closure)
        return closures


def _log_decision(decision: Decision) -> None:
    ids = {
        "event_id": str(decision.event_id),
        "correlation_id": decision.correlation_id,
        "customer_id": decision.customer_id,
        "decision_seq": decision.decision_seq,
        "policy_version": decision.policy_version,
        "trigger": decision.trigger,
    }
    if isinstance(decision, WindowOpened):
        log.info("window_opened", **ids, limit=decision.limit, grade=decision.grade, bound_by=decision.basis.bound_by)
    elif isinstance(decision, WindowClosed):
        log.info("window_closed", **ids, category=decision.category, reason=decision.reason)


def _parse_decision(payload: bytes) -> Decision:
    model = WindowOpened if b'"event_type":"WindowOpened"' in payload else WindowClosed
    return model.model_validate_json(payload)
