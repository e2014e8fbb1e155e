"""The fleet's batch poll, in place of FastStream 0.7's, applied explicitly where a broker is built
(`make_broker`): fresh batches, and no sleep after an empty poll.

- **Fresh batches.** aiokafka fetches from a broker while nothing it fetched waits to be consumed:
  the fetch sent when a handler takes its batch comes back at once with what arrived during that
  batch, and then waits in aiokafka's buffer, with no fetch going out, until the handler has finished
  and asks again. Every record thus waited a whole extra batch (measured: each hop took about 2.5
  batch cycles where 1.5 is the least). While the handler runs, the poll now keeps taking records off
  aiokafka's buffer (`Ahead`), so aiokafka keeps fetching, and the next batch is what arrived up to
  the moment the handler finished. It is the same consumer, the same order per partition, one batch
  at a time; records are taken ahead, never handled ahead. A batch that failed is rewound (FastStream
  seeks its partitions back) and what was taken ahead is put back the same way (each partition sought
  to its first record not handled); what was taken for a partition no longer assigned is dropped.
- **No idle sleep.** aiokafka's `getmany` already waits up to the batch timeout and returns as soon
  as records arrive; FastStream 0.7's `BatchSubscriber.get_msg` then slept the same timeout again
  after an empty poll, which added up to that much latency to the next record on every idle hop.

`tests/unit/test_batch_poll.py` is pinned to the FastStream version: when FastStream changes, it
fails and says to check whether the replacement still fits.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from time import perf_counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import AckStatus

from shared.messaging.stages import cycle

__all__ = ["PATCHED_FASTSTREAM", "Ahead", "handed", "original_poll", "skip_idle_sleep"]

# The FastStream versions whose batch poll this replaces (checked by the test).
PATCHED_FASTSTREAM = "0.7."
_ORIGINAL = BatchSubscriber.get_msg


class Ahead:
    """Records taken off a consumer's buffer while its handler runs a batch (see the module)."""

    def __init__(self, consumer: Any, max_records: int) -> None:
        self.records: list[Any] = []
        self.error: BaseException | None = None
        self._task = asyncio.create_task(self._take(consumer, max_records))

    async def _take(self, consumer: Any, max_records: int) -> None:
        try:
            while len(self.records) < max_records:
                taken = await consumer.getmany(timeout_ms=60_000, max_records=max_records - len(self.records))
                self.records.extend(chain(*taken.values()))  # in the step getmany returned: nothing is lost to a cancel
        except Exception as exc:  # noqa: BLE001 - handed to the consumer loop by the next poll (FastStream's handling)
            self.error = exc

    def stop(self) -> list[Any]:
        """Stop taking; the records taken, in order per partition. Not awaited (a loop iteration per
        batch, tens of ms on a busy host): once cancelled, the task takes no more (it appends only in
        the step its `getmany` returns in, and a cancelled task gets the cancellation instead)."""
        self._task.cancel()
        return self.records


@dataclass(slots=True)
class _Loop:
    """One consumer loop's poll state, kept in its task."""

    ahead: Ahead | None = None
    message: Any = None  # the message of the batch handed last (its status says whether it was rewound)
    error: BaseException | None = None  # met while taking ahead: raised by the first poll with nothing to hand


_LOOP: ContextVar[_Loop | None] = ContextVar("creditwindow_poll_loop", default=None)


def _loop() -> _Loop:
    state = _LOOP.get()
    if state is None:
        state = _Loop()
        _LOOP.set(state)
    return state


def handed(message: Any) -> None:
    """The batch of `message` goes to the handler (the decoder says so: it runs in the consumer's task)."""
    state = _LOOP.get()
    if state is not None:
        state.message = message


def _earliest(records: Any) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in first or record.offset < first[tp]:
            first[tp] = record.offset
    return first


def _settle(consumer: Any, taken: list[Any], message: Any) -> list[Any]:
    """What was taken ahead, as the next batch: nothing when the batch before was rewound (each
    partition sought back to its first record not handled), only partitions still assigned, and per
    partition only what follows the last reset of its position (a rebalance that gave it back)."""
    if not taken:
        return taken
    assigned = consumer.assignment()
    if message is not None and getattr(message, "committed", None) == AckStatus.NACKED:
        # FastStream sought the failed batch's partitions to its first records; the rest must follow.
        raw = message.raw_message
        failed = raw if isinstance(raw, (list, tuple)) else (raw,)
        for tp, offset in _earliest(chain(failed, taken)).items():
            if tp in assigned:
                consumer.seek(tp, offset)
        return []
    last: dict[TopicPartition, int] = {}
    kept: list[Any] = []
    for record in taken:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in assigned:
            continue
        if tp in last and record.offset <= last[tp]:
            kept = [r for r in kept if (r.topic, r.partition) != (record.topic, record.partition)]
        last[tp] = record.offset
        kept.append(record)
    return kept


async def _poll_batch(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
    state = _loop()
    clock = cycle()  # the poll wait and the time since the last batch, for the batch's stages (stages.py)
    started = perf_counter()
    if clock.done_at is not None:
        clock.after, clock.done_at = started - clock.done_at, None
    if clock.idle_since is None:
        clock.idle_since = started
    records: list[Any] = []
    if state.ahead is not None:
        ahead, state.ahead = state.ahead, None
        records = _settle(consumer, ahead.stop(), state.message)
        state.error = state.error or ahead.error
    state.message = None
    if not records:
        if state.error is not None:
            error, state.error = state.error, None
            raise error
        messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        records = list(chain(*messages.values()))
        if not records:
            return ()
    clock.polled_at = perf_counter()
    clock.waited, clock.idle_since = clock.polled_at - clock.idle_since, None
    if state.error is None:
        state.ahead = Ahead(consumer, self.max_records or 500)
    return tuple(records)


def skip_idle_sleep() -> None:
    """Use `_poll_batch` for every batch subscriber (idempotent)."""
    BatchSubscriber.get_msg = _poll_batch  # type: ignore[method-assign]


def original_poll() -> Any:
    """FastStream's own `get_msg`, for the test that checks the fix is still needed."""
    return _ORIGINAL
