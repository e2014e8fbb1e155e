"""Signed control events on `credit.policy` followed: each policy update that verifies becomes the
active version, each key retirement that verifies retires its key in this replica's ring, each one
refused is dead-lettered with why; a new version's pauses close the windows they cover.

Every replica reads every record (no consumer group) and applies each in turn: at start, replayed
from `credit.policy` up to its end (`adapters/policy_log.py`, the refusals dead-lettered once the
broker is up), then live from there on. Each is judged at the time it reached the log, so a replica
that restores judges it as the replicas that read it live. The checks themselves are
`checks.check_update` and `checks.check_retirement`; `read_control` is the one reading of a record,
which the operators' CLI shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.policy.control.checks import Accepted, Refused, Retirement, Signatures, check_retirement, check_update
from services.policy.control.document import PolicyDocument
from services.policy.control.ports import PauseEnforcer, Retry
from services.policy.control.state import PolicyState
from shared.clock import Clock
from shared.contracts import KeyRetired, PolicyUpdated, WindowClosed
from shared.ports import EventPublisher
from shared.wire import Record, RefusedRecord, decode

__all__ = ["CONTROL_EVENTS", "PolicyUpdates", "read_control"]

log = structlog.get_logger("creditwindow.policy")

# What `credit.policy` carries. A key's retirement is read where the policy is, in the same order;
# to move it to the operators' own topic, move it from here and from the CLI's `keys retire`.
CONTROL_EVENTS = (PolicyUpdated, KeyRetired)


def read_control(
    record: Record, active: PolicyDocument, signatures: Signatures, now: datetime, environment: str = "local"
) -> Accepted | Retirement | RefusedRecord:
    """What a record of `credit.policy` comes to: a policy version to adopt, a key's retirement, or
    why it is refused. Judged at the time it reached the log (`now` for a record without one); a
    fleet in production (`environment`) refuses a testing policy."""
    decoded = decode(record, CONTROL_EVENTS)
    if isinstance(decoded, RefusedRecord):
        return decoded
    s, logged_at = signatures, record.logged_at(now)
    if isinstance(decoded, KeyRetired):
        checked: Accepted | Retirement | Refused = check_retirement(
            decoded, ring=s.ring, namespace=s.namespace, logged_at=logged_at, max_skew=s.max_skew
        )
        prefix = "key"
    else:
        checked = check_update(
            decoded, active, ring=s.ring, namespace=s.namespace, logged_at=logged_at, max_skew=s.max_skew, environment=environment
        )
        prefix = "policy"
    if isinstance(checked, Refused):
        return RefusedRecord(record, f"{prefix}_{checked.error_type}", checked.error)
    return checked

@dataclass(slots=True, kw_only=True)
class PolicyUpdates:
    """Applies signed `credit.policy` records to this replica's `PolicyState` and its key ring."""

    state: PolicyState
    signatures: Signatures
    clock: Clock
    publisher: EventPublisher
    deadletter_topic: str
    pauses: PauseEnforcer
    retry: Retry
    counted: Callable[[str], None] = lambda result: None  # each record's result: "applied", "key_retired" or why refused (the metric)
    environment: str = "local"  # CW_ENVIRONMENT: production refuses a testing policy

    def check(self, record: Record, now: datetime) -> Accepted | Retirement | RefusedRecord:
        """What `record` comes to at `now` (`read_control`)."""
        return read_control(record, self.state.active, self.signatures, now, self.environment)

    def adopt(self, record: Record) -> Accepted | Retirement | RefusedRecord:
        """Check `record` now and, if it verifies, make it the active version (its source: topic@offset)
        or retire its key in this replica's ring."""
        verdict = self.check(record, self.clock.now())
        if isinstance(verdict, Accepted):
            self.state.adopt(verdict.document, f"{record.topic}@{record.offset}")
        elif isinstance(verdict, Retirement):
            self.signatures.ring = self.signatures.ring.retire(verdict.key_id, verdict.at)
            log.info("operator_key_retired", key_id=verdict.key_id, at=verdict.at.isoformat(), offset=record.offset)
        return verdict

    def replayed(self, partition: int, offset: int) -> bool:
        """Whether the record at `offset` was applied (or refused) while restoring at start."""
        return offset < self.state.history_end.get(partition, 0)

    async def follow(self, record: Record) -> list[WindowClosed]:
        """Apply one live record: a version adopted (then the windows its pauses cover closed), a key
        retired, or refused."""
        previous = self.state.active
        verdict = self.adopt(record)
        if isinstance(verdict, RefusedRecord):
            await self.refuse([verdict])
            return []
        if isinstance(verdict, Retirement):
            self.counted("key_retired")
            return []
        self.counted("applied")
        log.info("policy_applied", policy=verdict.document.label, previous=previous.label)
        return await self.retry(self.pauses.enforce_pauses, what="close_paused")

    async def refuse(self, refused: Sequence[RefusedRecord]) -> None:
        """Dead-letter refused updates (ids are per record: replicas and restarts write the same letter)."""
        for verdict in refused:
            self.counted(verdict.error_type)
            log.error("control_event_refused", error_type=verdict.error_type, error=verdict.error, offset=verdict.record.offset)
        if refused:
            await self.retry(lambda: self.publisher.dead_letter(self.deadletter_topic, refused), what="dead_letter")
