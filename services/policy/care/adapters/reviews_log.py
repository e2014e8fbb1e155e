"""The review results and the operators' actions replayed up to their end at start: the desk's
suspensions and open reviews as they stand."""

from __future__ import annotations

import structlog

from services.policy.care.clerk import Clerk
from shared.messaging.topic_io import end_offsets, read_to_end
from shared.settings import Settings

__all__ = ["restore_desk"]

log = structlog.get_logger("creditwindow.policy")


async def restore_desk(settings: Settings, clerk: Clerk) -> None:
    """Follow every event on `credit.review-results` and `credit.operator-actions` up to the end
    offsets taken first (the live followers skip those: `CustomerDesk.history_end`), without closing
    windows: the sweep at start does. Each topic is read as what it carries (results only from the
    results topic), per customer in order."""
    topics = [settings.topics.review_results, settings.topics.operator_actions]
    ends = await end_offsets(settings, topics)
    records = await read_to_end(settings, topics, ends=ends)
    events = [(item.record, item.event) for item in records if item.event is not None]
    await clerk.follow(events, close=False)
    clerk.desk.history_end.update({(tp.topic, tp.partition): offset for tp, offset in ends.items()})
    log.info("desk_restored", events=len(events), suspended=len(clerk.desk.suspensions), open_reviews=len(clerk.desk.reviews))
