"""The outbox: events published keyed by customer, with headers, acknowledged before the batch commits."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from shared.contracts import DeadLetter, Event
from shared.logging import event_ids
from shared.messaging.connection import aiokafka_kwargs
from shared.messaging.retries import is_transient
from shared.settings import Settings
from shared.wire import RefusedRecord, dead_letter_for, encode

__all__ = ["BrokerSender", "Outbox", "ProducerSender", "RecordSender"]

log = structlog.get_logger("creditwindow.messaging")


class RecordSender(Protocol):
    """Where the outbox hands records: a dedicated aiokafka producer, or a FastStream broker in tests."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any: ...


class BrokerSender:
    """Through a FastStream broker: the in-memory `TestKafkaBroker` of handler tests delivers inline."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def start(self) -> None:
        """The broker connects itself."""

    async def stop(self) -> None:
        """The broker disconnects itself."""

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any:
        return await self._broker.publish(
            value, topic, key=key, headers=headers, correlation_id=correlation_id, no_confirm=True
        )


# One record as the outbox hands it to a sender: topic, key, value, headers.
OutRecord = tuple[str, bytes, bytes, dict[str, str]]


class ProducerSender:
    """A dedicated aiokafka producer: a batch of sends, acknowledged together (the fast path).

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

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **aiokafka_kwargs(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,  # see make_broker: idempotent aiokafka producers hang after a broker restart
            linger_ms=self._settings.producer_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=self._settings.producer_request_timeout_ms,
            partitioner=self._partitioner,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

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
                known = partitions[topic] = list(await producer.partitions_for(topic))
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


# Dead letters this process published lately, by id: a batch rewound and redelivered does not
# publish them again (their ids are derived from the refused record, so a copy would change nothing,
# but a poison batch retried in a loop would flood the topic).
RECENT_LETTERS = 10_000


class Outbox:
    """Publishes events keyed by customer with type/version/correlation headers, and waits for acks.

    All records of a batch are sent at once (the producer batches them) and the call returns only
    when the broker acknowledged every one, so the caller can commit its input offsets after it.
    """

    def __init__(self, sender: RecordSender | KafkaBroker, *, service: str, registry: CollectorRegistry | None = None) -> None:
        self._sender: RecordSender = BrokerSender(sender) if isinstance(sender, KafkaBroker) else sender
        self._service = service
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
        letters = [dead_letter_for(r, failed_by=self._service) for r in refused]
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
