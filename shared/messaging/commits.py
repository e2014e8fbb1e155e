"""Committing a batch's offsets after its effects, without making the next batch wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.message import AckStatus

__all__ = ["commit_in_background"]

log = structlog.get_logger("creditwindow.messaging")

_COMMITS: set[asyncio.Task[None]] = set()


def commit_in_background(message: Any, took: Callable[[float], None] | None = None) -> None:
    """Commit this batch's offsets without making the next batch wait for the round trip.

    Called by a handler after its effects (Redis written, outputs acknowledged by the broker), so
    at-least-once holds: the offsets are explicit (this batch's last + 1), never the consumer's
    position. If the commit fails or the process dies first, the batch is redelivered and the
    idempotent handlers change nothing twice. Marking the message acknowledged stops FastStream from
    committing again in the foreground. With the in-memory test broker it does nothing. `took` is
    told the seconds a commit that succeeded took.
    """
    consumer = getattr(message, "consumer", None)
    if not isinstance(consumer, AIOKafkaConsumer):
        return
    raw = message.raw_message
    offsets: dict[TopicPartition, int] = {}
    for record in raw if isinstance(raw, (list, tuple)) else (raw,):
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    task = asyncio.create_task(consumer.commit(offsets))
    _COMMITS.add(task)
    task.add_done_callback(_commit_done)
    if took is not None:
        started = perf_counter()
        task.add_done_callback(lambda done: None if done.cancelled() or done.exception() else took(perf_counter() - started))
    message.committed = AckStatus.ACKED


def _commit_done(task: asyncio.Task[None]) -> None:
    _COMMITS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("commit_failed_will_redeliver", error=repr(task.exception())[:300])
