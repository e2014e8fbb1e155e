"""`credit.policy` replayed up to its end at start, so decisions use the latest valid version."""

from __future__ import annotations

import structlog

from services.policy.control.updates import PolicyUpdates
from shared.messaging.topic_io import end_offsets, read_to_end
from shared.settings import Settings
from shared.wire import RefusedRecord

__all__ = ["restore_policy"]

log = structlog.get_logger("creditwindow.policy")


async def restore_policy(settings: Settings, updates: PolicyUpdates) -> list[RefusedRecord]:
    """Apply every update on `credit.policy` in turn, up to the end offsets taken first (the live
    subscriber skips those: `PolicyUpdates.replayed`).

    Returns the refused updates met on the way: the caller dead-letters them once the broker is up
    (a forged update published while no replica ran still leaves its trace).
    """
    topic = settings.topics.policy
    ends = await end_offsets(settings, [topic])
    refused: list[RefusedRecord] = []
    for item in await read_to_end(settings, [topic], ends=ends, decode=False):  # checked as updates, not decoded as any event
        verdict = updates.adopt(item.record)
        if isinstance(verdict, RefusedRecord):
            refused.append(verdict)
    updates.state.history_end.update({tp.partition: offset for tp, offset in ends.items()})
    log.info("policy_restored", policy=updates.state.active.label, source=updates.state.source, refused=len(refused))
    return refused
