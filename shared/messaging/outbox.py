"""The outbox: events published keyed by customer, with headers, acknowledged before the batch commits.

The producer is idempotent (acks=all): a leader that moves, a broker or a controller killed, never
duplicates nor reorders a customer's records; and a batch that fails is never followed by a later
batch of the same partition (the broker refuses the gap). aiokafka has one weak spot there (no
KIP-360 epoch bump): a partition left without a leader longer than the request timeout makes the
producer fail a batch it had numbered, and every later batch to that partition is refused with
`OutOfOrderSequenceNumber`, forever. The outbox then replaces the producer (a new producer id,
numbering from zero) and the caller publishes the batch again: nothing of it was written after the
gap, so nothing is reordered, and what was written before is a copy every consumer dedupes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from shared.clock import Clock
from shared.contracts import DeadLetter, Event
from shared.logging import event_ids
from shared.messaging.connection import aiokafka_kwargs
from shared.messaging.retries import is_transient
from shared.settings import Settings
from shared.wire import RefusedRecord, dead_letter_for, encode

__all__ = ["BrokerSender", "Outbox", "ProducerReplaced", "ProducerSender", "RecordSender", "breaks_sequence"]

log = structlog.get_logger("creditwindow.messaging")

# Errors after which an idempotent aiokafka producer may never write to a partition again: a refused
# sequence, or a batch it numbered and then failed without sending (no leader for too long).
_SEQUENCE_BREAKERS = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
)


def breaks_sequence(error: BaseException) -> bool:
    """Whether `error` from an idempotent producer's send means its sequence has a gap (replace it)."""
    return isinstance(error, _SEQUENCE_BREAKERS)


class ProducerReplaced(ConnectionError):
    """A publication failed and the producer was replaced: nothing after the failure was written. Retry."""


class RecordSender(Protocol):
    """Where the outbox hands records: a dedicated aiokafka producer, or a FastStream broker in tests."""

    @property
    def generation(self) -> int:
        """Which producer sends now (it changes when one is replaced)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any: ...

    async def recover(self, error: BaseException, generation: int) -> bool:
        """After `error` from sends made by producer `generation`: replace that producer if the error
        left it unable to write. True when a new producer sends now (replaced here or before)."""
        ...


class BrokerSender:
    """Through a FastStream broker: the in-memory `TestKafkaBroker` of handler tests delivers inline."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    @property
    def generation(self) -> int:
        return 0

    async def start(self) -> None:
        """The broker connects itself."""

    async def stop(self) -> None:
        """The broker disconnects itself."""

    async def recover(self, error: BaseException, generation: int) -> bool:
        return False

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any:
        return await self._broker.publish(
            value, topic, key=key, headers=headers, correlation_id=correlation_id, no_confirm=True
        )


# One record as the outbox hands it to a sender: topic, key, value, headers.
OutRecord = tuple[str, bytes, bytes, dict[str, str]]


class ProducerSender:
    """A dedicated idempotent aiokafka producer: a batch of sends, acknowledged together (the fast
    path), replaced when a gap in its sequence would keep it from writing again.

    `send_all` writes a whole batch as one record batch per partition (aiokafka's `create_batch` /
    `send_batch`): the same partitions as a `send` per record (the producer's own partitioner on the
    key), the same order within each, but no future, partitioner call through the producer and
    accumulator round per record, which made a third of the outbox's cost.
    """

    def __init__(self, settings: Settings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None  # made at start: aiokafka needs the running loop
        self._partitioner = DefaultPartitioner()
        self._generation = 0
        self._replacing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()

    def _make(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **aiokafka_kwargs(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._settings.producer_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=self._settings.producer_request_timeout_ms,
            partitioner=self._partitioner,
        )

    @property
    def generation(self) -> int:
        return self._generation

    async def start(self) -> None:
        self._producer = self._make()
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        for task in list(self._retired):
            with contextlib.suppress(Exception):
                await task

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any:
        if self._producer is None:
            raise RuntimeError("the outbox's producer is not started")
        return await self._producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])

    async def send_all(self, records: list[OutRecord]) -> list[asyncio.Future[Any]]:
        """Queue every record; the futures resolve when the broker has acknowledged them (all of them
        when every future has). Each key goes to the partition `send` would choose."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("the outbox's producer is not started")
        partitioner = self._partitioner  # the producer's own: the partition `send` would choose for each key
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for topic, key, value, headers in records:
            known = partitions.get(topic)
            if known is None:
                # bounded: a producer whose client lost the cluster must fail, not wait, so the batch is retried
                wait_s = self._settings.producer_request_timeout_ms / 1000
                known = partitions[topic] = list(await asyncio.wait_for(producer.partitions_for(topic), wait_s))
            partition = partitioner(key, known, known)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = producer.create_batch()
            encoded = [(k, v.encode()) for k, v in headers.items()]
            if batch.append(timestamp=None, key=key, value=value, headers=encoded) is None:
                # full: send it, and start the next one with this record (a first record always fits)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                batch.append(timestamp=None, key=key, value=value, headers=encoded)
        for (topic, partition), batch in open_batches.items():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def recover(self, error: BaseException, generation: int) -> bool:
        if not (breaks_sequence(error) or isinstance(error, ProducerClosed)):
            return False
        async with self._replacing:
            if generation != self._generation:
                return True  # another publication replaced it already
            fresh = self._make()
            try:
                await fresh.start()
            except BaseException:
                # The broker is away (a new producer cannot even bootstrap): keep the old one in
                # place, so the next publication fails fast again and tries again. Never leave an
                # unstarted producer behind: its sends would wait for metadata forever.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(fresh.stop(), 5)
                raise
            old, self._producer = self._producer, fresh
            self._generation += 1
        log.warning("producer_replaced", client_id=self._client_id, generation=self._generation, error=repr(error)[:300])
        if old is not None:  # its pending sends fail (their callers retry); never wait for it on the message path
            task = asyncio.create_task(self._retire(old))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        return True

    async def _retire(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self._settings.producer_request_timeout_ms / 1000 + 5)
        except Exception as exc:  # noqa: BLE001 - a broken producer may fail to stop cleanly; it is gone either way
            log.info("retired_producer_stop_failed", error=repr(exc)[:200])


# Dead letters this process published lately, by id: a batch rewound and redelivered does not
# publish them again (their ids are derived from the refused record, so a copy would change nothing,
# but a poison batch retried in a loop would flood the topic).
RECENT_LETTERS = 10_000


class Outbox:
    """Publishes events keyed by customer with type/version/correlation headers, and waits for acks.

    All records of a batch are sent at once (the producer batches them) and the call returns only
    when the broker acknowledged every one, so the caller can commit its input offsets after it.
    """

    def __init__(
        self, sender: RecordSender | KafkaBroker, *, service: str, clock: Clock, registry: CollectorRegistry | None = None
    ) -> None:
        self._sender: RecordSender = BrokerSender(sender) if isinstance(sender, KafkaBroker) else sender
        self._service = service
        self._clock = clock  # stamps the dead letters it writes
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._published: Counter | None = None
        self._dead_letters: Counter | None = None
        self._lost_letters: Counter | None = None
        if registry is not None:
            self._published = Counter("creditwindow_published_records_total", "Records published, by topic.", ["topic"], registry=registry)
            self._dead_letters = Counter(
                "creditwindow_dead_letters_total",
                "Records refused to the dead-letter topic, by source topic and error type.",
                ["source", "error_type"],
                registry=registry,
            )
            self._lost_letters = Counter(
                "creditwindow_dead_letter_failures_total",
                "Dead letters the broker would not take (logged with their source; the batch goes on).",
                ["source", "error_type"],
                registry=registry,
            )

    async def start(self) -> None:
        await self._sender.start()

    async def stop(self) -> None:
        await self._sender.stop()

    async def publish(self, items: Iterable[tuple[str, Event]]) -> int:
        sent: list[tuple[str, Event]] = []
        generation = self._sender.generation
        try:
            if isinstance(self._sender, ProducerSender):
                records: list[OutRecord] = []
                for topic, event in items:
                    message = encode(event)
                    records.append((topic, message.key, message.value, message.headers))
                    sent.append((topic, event))
                pending = await self._sender.send_all(records) if records else []
            else:
                futures = []
                for topic, event in items:
                    message = encode(event)
                    futures.append(await self._sender.send(topic, message.key, message.value, message.headers, message.correlation_id))
                    sent.append((topic, event))
                pending = [f for f in futures if f is not None]  # the in-memory test broker delivers inline
            if pending:
                await asyncio.gather(*pending)
        except Exception as exc:
            if await self._sender.recover(exc, generation):
                raise ProducerReplaced(f"publication failed ({type(exc).__name__}); the producer was replaced") from exc
            raise
        if self._published is not None and self._dead_letters is not None:
            for topic, event in sent:
                self._published.labels(topic).inc()
                if isinstance(event, DeadLetter):  # every path to the dead-letter topic is counted here
                    self._dead_letters.labels(event.source_topic, event.error_type).inc()
        return len(sent)

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        """Publish a dead letter per refused record, once per process lifetime of its id.

        A letter the broker refuses for good (not a transient fault) is logged and counted, and the
        caller goes on: one crafted record must never stop its partition. Transient faults propagate,
        so the caller retries them like any other publication.
        """
        now = self._clock.now()
        letters = [dead_letter_for(r, failed_by=self._service, at=now) for r in refused]
        letters = [letter for letter in letters if str(letter.event_id) not in self._recent]
        for letter in letters:
            log.warning(
                "dead_lettered",
                **event_ids(letter),
                source_topic=letter.source_topic,
                source_partition=letter.source_partition,
                source_offset=letter.source_offset,
                error_type=letter.error_type,
                error=letter.error,
            )
        if not letters:
            return 0
        try:
            sent = await self.publish((topic, letter) for letter in letters)
        except Exception as exc:
            if is_transient(exc):
                raise
            for letter in letters:
                log.error(
                    "dead_letter_not_published", **event_ids(letter), source_topic=letter.source_topic,
                    source_partition=letter.source_partition, source_offset=letter.source_offset, error=repr(exc)[:300],
                )  # fmt: skip
                if self._lost_letters is not None:
                    self._lost_letters.labels(letter.source_topic, letter.error_type).inc()
            sent = 0
        for letter in letters:
            self._recent[str(letter.event_id)] = None
        while len(self._recent) > RECENT_LETTERS:
            self._recent.popitem(last=False)
        return sent
