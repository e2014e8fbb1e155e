"""Signed policy updates followed: each one that verifies becomes the active version, each one
refused is dead-lettered with why; a new version's pauses close the windows they cover.

Every replica reads every update (no consumer group) and applies each in turn: at start, replayed
from `credit.policy` up to its end (`adapters/policy_log.py`, the refusals dead-lettered once the
broker is up), then live from there on. The checks themselves are `checks.check_update`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.policy.control.checks import Accepted, Signatures, check_update
from services.policy.control.ports import PauseEnforcer, Retry
from services.policy.control.state import PolicyState
from shared.clock import Clock
from shared.contracts import PolicyUpdated, WindowClosed
from shared.ports import EventPublisher
from shared.wire import Record, RefusedRecord, decode

__all__ = ["PolicyUpdates"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(slots=True, kw_only=True)
class PolicyUpdates:
    """Applies signed `PolicyUpdated` records to this replica's `PolicyState`."""

    state: PolicyState
    signatures: Signatures
    clock: Clock
    publisher: EventPublisher
    deadletter_topic: str
    pauses: PauseEnforcer
    retry: Retry
    counted: Callable[[str], None] = lambda result: None  # each update's result: "applied" or why refused (the metric)

    def check(self, record: Record, now: datetime) -> Accepted | RefusedRecord:
        """Whether `record` holds an update that may replace the active policy at `now`, or why not."""
        decoded = decode(record, (PolicyUpdated,))
        if isinstance(decoded, RefusedRecord):
            return decoded
        s = self.signatures
        checked = check_update(decoded, self.state.active, ring=s.ring, namespace=s.namespace, now=now, max_skew=s.max_skew)
        if isinstance(checked, Accepted):
            return checked
        return RefusedRecord(record, f"policy_{checked.error_type}", checked.error)

    def adopt(self, record: Record) -> Accepted | RefusedRecord:
        """Check `record` now and, if it verifies, make it the active version (its source: topic@offset)."""
        verdict = self.check(record, self.clock.now())
        if isinstance(verdict, Accepted):
            self.state.adopt(verdict.document, f"{record.topic}@{record.offset}")
        return verdict

    def replayed(self, partition: int, offset: int) -> bool:
        """Whether the record at `offset` was applied (or refused) while restoring at start."""
        return offset < self.state.history_end.get(partition, 0)

    async def follow(self, record: Record) -> list[WindowClosed]:
        """Apply one live update: adopted (then the windows its pauses cover closed), or refused."""
        previous = self.state.active
        verdict = self.adopt(record)
        if isinstance(verdict, RefusedRecord):
            await self.refuse([verdict])
            return []
        self.counted("applied")
        log.info("policy_applied", policy=verdict.document.label, previous=previous.label)
        return await self.retry(self.pauses.enforce_pauses, what="close_paused")

    async def refuse(self, refused: Sequence[RefusedRecord]) -> None:
        """Dead-letter refused updates (ids are per record: replicas and restarts write the same letter)."""
        for verdict in refused:
            self.counted(verdict.error_type)
            log.error("policy_update_refused", error_type=verdict.error_type, error=verdict.error, offset=verdict.record.offset)
        if refused:
            await self.retry(lambda: self.publisher.dead_letter(self.deadletter_topic, refused), what="dead_letter")
