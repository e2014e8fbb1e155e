"""The fix to FastStream's batch poll (shared/messaging/batch_poll.py): why it exists, and that it still must.

Pinned to the FastStream version it was written for. When FastStream changes, the first test fails:
read the new `BatchSubscriber.get_msg`, and drop the fix if it no longer sleeps after an empty poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from importlib.metadata import version
from typing import Any

import anyio
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import AckStatus

from shared.messaging import make_broker
from shared.messaging.batch_poll import PATCHED_FASTSTREAM, _poll_batch, handed, original_poll
from shared.settings import Settings


class EmptyConsumer:
    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return {}


def test_the_fix_is_for_this_faststream_whose_batch_poll_sleeps_after_an_empty_poll() -> None:
    installed = version("faststream")
    assert installed.startswith(PATCHED_FASTSTREAM), (
        f"FastStream {installed}: check whether BatchSubscriber.get_msg still sleeps after an "
        "empty poll, then renew or drop shared/messaging/batch_poll.py"
    )
    assert "sleep" in inspect.getsource(original_poll())


async def test_a_broker_made_by_the_fleet_polls_without_the_extra_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    make_broker(Settings(), service="test")  # applies the fix, explicitly

    async def no_sleep(_: float) -> None:
        raise AssertionError("slept after an empty poll")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    subscriber = BatchSubscriber.__new__(BatchSubscriber)
    subscriber.batch_timeout_ms, subscriber.max_records = 100, 10
    assert await BatchSubscriber.get_msg(subscriber, EmptyConsumer()) == ()  # type: ignore[arg-type]


# --- fresh batches: records taken ahead while the handler runs (shared/messaging/batch_poll.py) ---


class Fetched:
    """A consumer whose buffer gets records when the test says (`arrive`), and that records its seeks."""

    def __init__(self, *partitions: int) -> None:
        self.buffer: list[ConsumerRecord] = []
        self.arrived = asyncio.Event()
        self.assigned = {TopicPartition("t", p) for p in partitions}
        self.sought: dict[TopicPartition, int] = {}

    def arrive(self, partition: int, *offsets: int) -> None:
        self.buffer += [ConsumerRecord("t", partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]
        self.arrived.set()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if not self.buffer:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), timeout_ms / 1000)
        taken, self.buffer = self.buffer[:max_records], self.buffer[max_records:]
        by_partition: dict[TopicPartition, list[ConsumerRecord]] = {}
        for record in taken:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        return by_partition

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.sought[partition] = offset


def poller() -> Any:
    subscriber = BatchSubscriber.__new__(BatchSubscriber)
    subscriber.batch_timeout_ms, subscriber.max_records = 50, 100
    return subscriber


def offsets(batch: tuple[Any, ...]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in batch]


class Message:
    def __init__(self, records: tuple[Any, ...], committed: AckStatus | None) -> None:
        self.raw_message, self.committed = records, committed


async def in_a_consumer_task(steps: Any) -> Any:
    return await asyncio.create_task(steps())  # a consumer loop is a task of its own (its poll state too)


async def test_what_arrives_while_the_handler_runs_is_the_next_batch_in_order() -> None:
    consumer, subscriber = Fetched(0, 1), poller()

    async def steps() -> list[list[tuple[int, int]]]:
        consumer.arrive(0, 10, 11)
        first = await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]
        handed(Message(first, AckStatus.ACKED))
        consumer.arrive(1, 5)  # while the handler runs: taken ahead, so aiokafka fetches again
        await asyncio.sleep(0.01)
        consumer.arrive(0, 12)
        await asyncio.sleep(0.01)
        assert consumer.buffer == []  # nothing left waiting in the client's buffer
        second = await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]
        return [offsets(first), offsets(second)]

    assert await in_a_consumer_task(steps) == [[(0, 10), (0, 11)], [(1, 5), (0, 12)]]


async def test_after_a_rewound_batch_what_was_taken_ahead_is_put_back_partition_by_partition() -> None:
    consumer, subscriber = Fetched(0, 1), poller()

    async def steps() -> tuple[Any, ...]:
        consumer.arrive(0, 10, 11)
        first = await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]
        handed(Message(first, AckStatus.NACKED))  # the handler failed: FastStream sought partition 0 to 10
        consumer.arrive(1, 5, 6)
        consumer.arrive(0, 12)
        await asyncio.sleep(0.01)
        return await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]

    assert await in_a_consumer_task(steps) == ()  # nothing taken ahead is handed: it comes again, from the broker
    assert consumer.sought == {TopicPartition("t", 0): 10, TopicPartition("t", 1): 5}


async def test_records_of_a_partition_taken_away_or_reset_meanwhile_are_not_handed_twice() -> None:
    consumer, subscriber = Fetched(0, 1), poller()

    async def steps() -> tuple[Any, ...]:
        consumer.arrive(0, 10)
        first = await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]
        handed(Message(first, AckStatus.ACKED))
        consumer.arrive(1, 7, 8)
        consumer.arrive(0, 11, 12)
        await asyncio.sleep(0.01)
        consumer.arrive(0, 11, 12, 13)  # a rebalance gave partition 0 back from its committed offset
        consumer.assigned = {TopicPartition("t", 0)}  # and took partition 1 away
        await asyncio.sleep(0.01)
        return await _poll_batch(subscriber, consumer)  # type: ignore[arg-type]

    assert offsets(await in_a_consumer_task(steps)) == [(0, 11), (0, 12), (0, 13)]
