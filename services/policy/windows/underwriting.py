"""The underwriter: the rules, the portfolio book and the publisher, in the order that keeps every
application to exactly one decision; and the windows' lifecycle (expiry, pauses, re-decisions).

For a batch of scores: propose (pure rules) -> plan the book's requests (each charged to its
budget) -> post them to the book (one atomic step for the batch: budget, sequence, superseding,
idempotency) -> the events it booked -> remember them -> publish and wait for the broker -> mark
them published. A redelivered score finds its application already
decided: if that decision was published nothing happens; if not, the remembered event is published.
The same underwriter serves the live fleet (Redis book, `credit.windows`) and a shadow replica
(in-memory book, `credit.windows.shadow`): the composition root decides which.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from services.policy.control.checks import paused
from services.policy.control.state import PolicyState
from services.policy.windows.decisions import Proposal, booked, close_request, lifecycle_closure, plan, propose
from services.policy.windows.ports import DecisionIndex, Suspensions, WindowBook
from shared.clock import Clock
from shared.contracts import Decision, ScoreComputed, Trigger, WindowClosed, WindowOpened
from shared.logging import event_ids
from shared.ports import EventPublisher

__all__ = ["Decided", "Underwriter"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(frozen=True, slots=True)
class Decided:
    """A batch's outcome: the decisions published now, and the scores refused as conflicts."""

    decisions: list[Decision]
    conflicts: list[ScoreComputed]


@dataclass(slots=True, kw_only=True)
class Underwriter:
    """Decides batches of scores, and runs the windows' lifecycle (expiry, re-decision, pauses)."""

    store: WindowBook
    publisher: EventPublisher
    out_topic: str
    state: PolicyState
    clock: Clock
    suspensions: Suspensions | None = None  # customer care's (None: a shadow replica, which follows none)
    references: DecisionIndex | None = None  # where each decision is, by reference (None: not indexed)
    # The pauses whose windows are closed already: a pause that starts later (scheduled) is enforced
    # by the sweep that first sees it in force.
    enforced: dict[str, set[str]] = field(default_factory=lambda: {"segment": set(), "region": set(), "channel": set()}, init=False)

    async def decide(self, scores: Sequence[ScoreComputed], trigger: Trigger = "application") -> Decided:
        """Decide a batch; returns the decisions published now (not those published before), and the
        scores refused because their application id belongs to another customer's application."""
        policy = self.state.active
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
        unique: dict[str, ScoreComputed] = {}
        for score in scores:
            unique.setdefault(score.application_id, score)  # a duplicate in the same batch is the same application

        def proposal(score: ScoreComputed, at: datetime) -> Proposal:
            suspension = self.suspensions.suspension(score.customer_id, at) if self.suspensions is not None else None
            return propose(score, policy, at, trigger, suspension=suspension)

        proposals = [proposal(score, now) for score in unique.values()]
        return await self.put_to_book(proposals, lambda p, then: proposal(p.score, then), size=len(scores))

    async def put_to_book(
        self, proposals: Sequence[Proposal], again: Callable[[Proposal, datetime], Proposal], *, size: int = 0
    ) -> Decided:
        """Put proposals to the book, build their decisions, remember, index and publish them.

        `again` rebuilds a proposal as it was at an earlier time: a record decided before but never
        remembered (a crash in between) is announced as it was decided then.
        """
        policy = self.state.active
        now = proposals[0].decided_at if proposals else self.clock.now()
        began = time.perf_counter()
        requests = plan(proposals, policy)
        answers = booked(requests, await self.store.post(requests.requests, requests.budgets), policy, now, again)
        decisions, conflicts = answers.decisions, answers.conflicts
        posted = time.perf_counter()
        if self.references is not None:
            # Both before publishing (a published decision is always remembered and always found), and
            # independent of each other (other keys): sent together, the batch waits one round trip, not two.
            await asyncio.gather(self.store.remember(answers.new), self.references.record(decisions))
        else:
            await self.store.remember(answers.new)
        remembered = time.perf_counter()
        await self.publisher.publish((self.out_topic, d) for d in decisions)
        published = time.perf_counter()
        await self.store.mark_published(answers.records)
        # One line per batch at INFO: each decision is on `credit.windows` (the audit trail, kept
        # forever) with its reasons, so a line per decision only repeated it, at a tenth of the
        # policy's CPU. The per-decision lines are there at DEBUG; warnings and errors are unchanged.
        if decisions or conflicts:
            log.info(
                "batch_decided",
                size=size or len(proposals),
                decisions=len(decisions),
                conflicts=len(conflicts),
                policy_version=policy.label,
                trigger=proposals[0].trigger if proposals else "",
                outcomes=_outcomes(decisions),
                post_ms=round((posted - began) * 1000, 2),
                remember_ms=round((remembered - posted) * 1000, 2),
                publish_ms=round((published - remembered) * 1000, 2),
                total_ms=round((time.perf_counter() - began) * 1000, 2),
            )
        if log.is_enabled_for(logging.DEBUG):
            for d in decisions:
                _log_decision(d, level=logging.DEBUG)
        return Decided(decisions, conflicts)

    async def enforce_pauses(self) -> list[WindowClosed]:
        """Close the open windows every pause in force now covers, unless closed for it already."""
        in_force = paused(self.state.active, self.clock.now())
        newly = {dimension: values - self.enforced[dimension] for dimension, values in in_force.items()}
        closures = await self.close_paused(newly)
        self.enforced = in_force  # only once the windows are closed: a failure tries again next sweep
        return closures

    async def sweep(self) -> list[Decision]:
        """Close expired windows and those of pauses that came in force, decide again what maintenance
        deferred, announce pending closures."""
        paused_now = await self.enforce_pauses()
        now = self.clock.now()
        for record in await self.store.due_expiries(now):
            await self.store.close(close_request(record, trigger="expiry", reason="expired", now=now))
        redecided: list[Decision] = []
        in_maintenance = any(w.start <= now < w.end for w in self.state.active.maintenance)
        due = [] if in_maintenance else await self.store.due_deferred(now)
        if due:
            scores = [ScoreComputed.model_validate_json(payload) for _, payload in due]
            redecided = (await self.decide(scores, trigger="redecision")).decisions
            await self.store.redecided([record for record, _ in due])
        return [*paused_now, *redecided, *await self._announce_closures()]

    async def close_paused(self, paused: dict[str, set[str]]) -> list[WindowClosed]:
        """Close the open windows in newly paused segments, regions or channels (category strategy)."""
        if not any(paused.values()):
            return []
        now = self.clock.now()
        for record in await self.store.open_records():
            facts = await self.store.record(record)
            if facts is None:
                continue
            for dimension, value in (("segment", facts.segment), ("region", facts.region), ("channel", facts.channel)):
                if value in paused[dimension]:
                    await self.store.close(
                        close_request(record, trigger="pause", reason=f"{dimension}_paused", now=now)
                    )
                    break
        return await self._announce_closures()

    async def close_suspended(self, customer_id: str) -> list[WindowClosed]:
        """Close the customer's open window, if any, because an operator suspended them (strategy)."""
        record = await self.store.open_record(customer_id)
        if record is not None:
            await self.store.close(close_request(record, trigger="suspension", reason="customer_suspended", now=self.clock.now()))
        return await self._announce_closures()

    def _retry_after(self, customer_id: str, trigger: str) -> datetime | None:
        # A suspension's closure says when the customer may apply again, if the suspension ends by itself.
        if trigger != "suspension" or self.suspensions is None:
            return None
        return self.suspensions.suspended_until(customer_id)

    async def _announce_closures(self) -> list[WindowClosed]:
        pending = await self.store.pending_closures()
        closures = [
            lifecycle_closure(c.facts, policy_label=self.state.active.label, retry_after=self._retry_after(c.facts.customer, c.facts.closure_trigger))
            for c in pending
        ]
        if closures:
            if self.references is not None:
                await self.references.record(closures)
            await self.publisher.publish((self.out_topic, c) for c in closures)
            await self.store.closure_published([c.record for c in pending])
            for closure in closures:
                _log_decision(closure)
        return closures


def _outcomes(decisions: Sequence[Decision]) -> dict[str, int]:
    """How many windows a batch opened, and closed by category: `{"opened": 310, "closed_credit": 150, ...}`."""
    counts: dict[str, int] = {}
    for d in decisions:
        key = "opened" if isinstance(d, WindowOpened) else f"closed_{getattr(d, 'category', '')}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _log_decision(decision: Decision, *, level: int = logging.INFO) -> None:
    ids = {
        **event_ids(decision),
        "decision_seq": decision.decision_seq,
        "policy_version": decision.policy_version,
        "trigger": decision.trigger,
    }
    if isinstance(decision, WindowOpened):
        log.log(level, "window_opened", **ids, limit=decision.limit, grade=decision.grade, bound_by=decision.basis.bound_by)
    elif isinstance(decision, WindowClosed):
        log.log(level, "window_closed", **ids, category=decision.category, reason=decision.reason)
