"""Reading and writing the fleet's topics outside a consumer group: rebuilds, the CLI, tools and tests.

A `TopicReader` reads every partition of some topics without a consumer group (it changes nothing
for the services), decoding each record with the fleet's own wire format.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from shared.contracts import EVENT_TYPES, Event
from shared.messaging.connection import aiokafka_kwargs
from shared.messaging.topic_admin import topic_partitions
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, decode, encode

__all__ = ["Publisher", "ReadRecord", "TopicReader", "end_offsets", "offsets_at", "read_to_end", "scan_key"]


@dataclass(frozen=True, slots=True)
class ReadRecord:
    record: Record
    event: Event | None
    refused: RefusedRecord | None
    timestamp_ms: int


@asynccontextmanager
async def _offset_lookup(settings: Settings, topics: Sequence[str]) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A group-less consumer for offset queries, and every partition of `topics` (none: no consumer)."""
    found = await topic_partitions(settings, topics)
    partitions = [TopicPartition(topic, p) for topic, ps in found.items() for p in ps]
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False)
    if partitions:
        await consumer.start()
    try:
        yield consumer, partitions
    finally:
        if partitions:
            await consumer.stop()


async def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    async with _offset_lookup(settings, topics) as (consumer, partitions):
        return dict(await consumer.end_offsets(partitions)) if partitions else {}


async def offsets_at(settings: Settings, topics: Sequence[str], timestamp_ms: int) -> dict[TopicPartition, int]:
    """Per partition, the first offset written at or after `timestamp_ms` (the end where there is none)."""
    async with _offset_lookup(settings, topics) as (consumer, partitions):
        if not partitions:
            return {}
        at = await consumer.offsets_for_times({tp: max(0, timestamp_ms) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        return {tp: (at[tp].offset if at.get(tp) is not None else ends[tp]) for tp in partitions}


class TopicReader:
    """Reads topics from given offsets (default: the beginning), decoding every record."""

    def __init__(
        self, settings: Settings, topics: Sequence[str], *, start: dict[TopicPartition, int] | None = None, decode: bool = True
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.start = start
        self.decode = decode  # False: raw records only (a benchmark must not spend CPU the fleet needs)
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            **aiokafka_kwargs(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        found = await topic_partitions(self.settings, self.topics)
        partitions = [TopicPartition(topic, p) for topic, ps in found.items() for p in ps]
        self._consumer.assign(partitions)
        # explicit offsets: seek_to_beginning can lose a race with the reset that assign() starts
        beginnings = await self._consumer.beginning_offsets(partitions) if partitions else {}
        for tp in partitions:
            self._consumer.seek(tp, self.start[tp] if self.start and tp in self.start else beginnings[tp])
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> list[ReadRecord]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        out = []
        for records in batches.values():
            for raw in records:
                record = Record.of(raw)
                if not self.decode:
                    out.append(ReadRecord(record, None, None, raw.timestamp))
                    continue
                decoded = decode(record, EVENT_TYPES.values())
                if isinstance(decoded, RefusedRecord):
                    out.append(ReadRecord(record, None, decoded, raw.timestamp))
                else:
                    out.append(ReadRecord(record, decoded, None, raw.timestamp))
        return out

    async def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether every assigned partition has been read up to `ends` (offsets taken earlier)."""
        assert self._consumer is not None
        for tp in self._consumer.assignment():
            if await self._consumer.position(tp) < ends.get(tp, 0):
                return False
        return True

    async def until(
        self,
        done: Callable[[list[ReadRecord]], bool],
        *,
        timeout_s: float,
        on_batch: Callable[[list[ReadRecord]], None] | None = None,
        settle_s: float = 0.0,
    ) -> list[ReadRecord]:
        """Read until `done(everything read)` is true or the timeout passes; returns everything read.

        With `settle_s`, keep reading after that until nothing new arrives for `settle_s`, so that
        anything extra (a duplicate, a second decision) would be seen too.
        """
        seen: list[ReadRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await self.poll()
            if batch:
                seen.extend(batch)
                if on_batch is not None:
                    on_batch(batch)
            if done(seen):
                break
        if settle_s > 0:
            extra = await self.drain(idle_s=settle_s, timeout_s=max(settle_s * 10, 30))
            seen.extend(extra)
            if extra and on_batch is not None:
                on_batch(extra)
        return seen

    async def drain(self, *, idle_s: float = 1.0, timeout_s: float = 30.0) -> list[ReadRecord]:
        """Read until nothing new arrives for `idle_s`."""
        seen: list[ReadRecord] = []
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < idle_s:
            batch = await self.poll()
            if batch:
                seen.extend(batch)
                quiet_since = time.monotonic()
        return seen


async def read_to_end(
    settings: Settings,
    topics: Sequence[str],
    *,
    start: dict[TopicPartition, int] | None = None,
    ends: dict[TopicPartition, int] | None = None,
    decode: bool = True,
    on_batch: Callable[[list[ReadRecord], int], None] | None = None,
    timeout_s: float = 600.0,
) -> list[ReadRecord]:
    """Everything the topics hold from `start` (default: the beginning) up to their end now (or up
    to `ends`, end offsets the caller took: it then knows exactly where the replay stopped).

    `decode=False` leaves decoding to the caller (a topic with a decoder of its own).
    `on_batch(batch, total)` reports progress: `total` is how many records there are to read.
    """
    ends = await end_offsets(settings, topics) if ends is None else ends
    seen: list[ReadRecord] = []
    async with TopicReader(settings, topics, start=start, decode=decode) as reader:
        assert reader._consumer is not None
        first = {tp: await reader._consumer.position(tp) for tp in reader._consumer.assignment()}
        total = sum(max(0, ends.get(tp, 0) - offset) for tp, offset in first.items())
        deadline = time.monotonic() + timeout_s
        while not await reader.caught_up(ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {', '.join(topics)} took longer than {timeout_s:.0f} s")
            batch = [r for r in await reader.poll() if r.record.offset < ends.get(TopicPartition(r.record.topic, r.record.partition), 0)]
            seen.extend(batch)
            if on_batch is not None and batch:
                on_batch(batch, total)
    return seen


async def scan_key(
    settings: Settings,
    topic: str,
    key: str,
    *,
    since_ms: int,
    stop: Callable[[ReadRecord], bool],
    timeout_s: float = 30.0,
) -> list[ReadRecord]:
    """The records of `key` on `topic` from `since_ms` on, up to the first for which `stop` is true
    (included) or the end of the partition; only the key's partition is read (the producers'
    partitioner, murmur2), from the first offset at `since_ms`."""
    partitions = (await topic_partitions(settings, [topic]))[topic]
    if not partitions:
        return []
    raw_key = key.encode()
    tp = TopicPartition(topic, DefaultPartitioner()(raw_key, partitions, partitions))
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: list[ReadRecord] = []
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        at = (await consumer.offsets_for_times({tp: max(0, since_ms)})).get(tp)
        consumer.seek(tp, at.offset if at is not None else end)
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} for {key} took longer than {timeout_s:.0f} s")
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=2000)
            for raw in batch.get(tp, []):
                if raw.offset >= end or raw.key != raw_key:
                    continue
                record = Record.of(raw)
                decoded = decode(record, EVENT_TYPES.values())
                item = ReadRecord(record, None, decoded, raw.timestamp) if isinstance(decoded, RefusedRecord) else ReadRecord(record, decoded, None, raw.timestamp)
                found.append(item)
                if stop(item):
                    return found
        return found
    finally:
        await consumer.stop()


class Publisher:
    """Publishes events (or raw bytes) the way upstream apps do: keyed, with headers, acks=all."""

    def __init__(self, settings: Settings, *, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            **aiokafka_kwargs(settings), acks="all", linger_ms=linger_ms, max_batch_size=256 * 1024
        )

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def send(self, topic: str, event: Event) -> asyncio.Future:  # type: ignore[type-arg]
        message = encode(event)
        return await self._producer.send(
            topic, message.value, key=message.key, headers=[(k, v.encode()) for k, v in message.headers.items()]
        )

    async def send_raw(
        self, topic: str, value: bytes, *, key: bytes | None, headers: Iterable[tuple[str, bytes]] = (), partition: int | None = None
    ) -> asyncio.Future:  # type: ignore[type-arg]
        return await self._producer.send(topic, value, key=key, headers=list(headers), partition=partition)

    async def flush(self) -> None:
        await self._producer.flush()
