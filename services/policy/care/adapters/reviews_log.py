"""`credit.reviews` replayed up to its end at start: the desk's suspensions and open reviews as they stand."""

from __future__ import annotations

import structlog

from services.policy.care.clerk import Clerk
from shared.messaging.topic_io import end_offsets, read_to_end
from shared.settings import Settings

__all__ = ["restore_desk"]

log = structlog.get_logger("creditwindow.policy")


async def restore_desk(settings: Settings, clerk: Clerk) -> None:
    """Follow every event on `credit.reviews` up to the end offsets taken first (the live follower
    skips those: `CustomerDesk.history_end`), without closing windows: the sweep at start does."""
    topic = settings.topics.reviews
    ends = await end_offsets(settings, [topic])
    records = await read_to_end(settings, [topic], ends=ends)
    events = [item.event for item in records if item.event is not None]
    await clerk.follow(events, close=False)
    clerk.desk.history_end.update({tp.partition: offset for tp, offset in ends.items()})
    log.info("desk_restored", events=len(events), suspended=len(clerk.desk.suspensions), open_reviews=len(clerk.desk.reviews))
