"""Kafka adapters every service shares: broker factory, topic admin, batch intake, outbox, retries.

Delivery rules (ARCHITECTURE.md): handlers consume in batches with `AckPolicy.NACK_ON_ERROR`, so the
offsets of a batch are committed only after the handler returned, i.e. after its Redis writes and
after every record it published was acknowledged by the broker. An exception rewinds the batch.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import AckStatus
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry, Counter
from redis import exceptions as redis_errors

from shared.contracts import DeadLetter, Event, Topics
from shared.settings import Settings
from shared.wire import Record, RefusedRecord, dead_letter_for, decode, encode

__all__ = [
    "BATCH_ACK_POLICY",
    "BrokerSender",
    "ProducerSender",
    "RecordSender",
    "Intake",
    "Outbox",
    "aiokafka_kwargs",
    "batch_subscriber_options",
    "commit_in_background",
    "delete_namespace",
    "ensure_topics",
    "intake",
    "is_transient",
    "make_broker",
    "raw_records",
    "retry_transient",
    "topic_partitions",
]

E = TypeVar("E", bound=Event)
T = TypeVar("T")

# At-least-once in: commit after the handler, rewind on error. Never ACK_FIRST.
BATCH_ACK_POLICY = AckPolicy.NACK_ON_ERROR

log = structlog.get_logger("creditwindow.messaging")


# --- connection ------------------------------------------------------------------------------------


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        )
    return context


def _security(settings: Settings) -> BaseSecurity | None:
    context = _ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ValueError("CW_KAFKA_SASL_USERNAME and CW_KAFKA_SASL_PASSWORD are required for SASL")
        kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
            settings.kafka_sasl_mechanism
        ]
        return kind(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
        )
    return BaseSecurity(ssl_context=context) if context else None


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection arguments for plain aiokafka clients (admin, CLI, benchmark relay)."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = _ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    return kwargs


def make_broker(settings: Settings, *, service: str, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """A broker for one service process. Nothing connects until the app starts it."""
    return KafkaBroker(
        settings.kafka_servers,
        client_id=f"creditwindow-{service}{'-' + settings.instance_id if settings.instance_id else ''}",
        security=_security(settings),
        acks="all",
        # Not idempotent: aiokafka's idempotent producer never recovers from the OutOfOrderSequence
        # a broker restart can cause (its futures hang). Retries may then duplicate a record; every
        # event id is derived from its input and every consumer dedupes, so a copy changes nothing.
        enable_idempotence=False,
        linger_ms=settings.producer_linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
        graceful_timeout=15.0,
        middlewares=middlewares,
        logger=logging.getLogger(f"creditwindow.{service}.faststream"),
    )


def batch_subscriber_options(settings: Settings, service: str) -> dict[str, Any]:
    """Subscriber arguments every service uses: its own group, batches, commit after effects.

    A replica with an instance id is a static member (KIP-345): restarted after a crash under the same
    id, it takes its partitions back at once instead of stopping the whole group for a rebalance.
    """
    return {
        "group_id": settings.topics.group(service),
        "group_instance_id": f"{service}-{settings.instance_id}" if settings.instance_id else None,
        "batch": True,
        "max_records": settings.batch_max_records,
        "batch_timeout_ms": settings.batch_timeout_ms,
        "auto_offset_reset": "earliest",
        "ack_policy": BATCH_ACK_POLICY,
        "decoder": raw_records,
        "session_timeout_ms": 6_000,  # the broker's minimum: a dead replica's partitions move soonest
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 300_000,
    }


async def raw_records(message: Any, _: Any = None) -> list[Any]:
    """FastStream decoder that hands the handler the records themselves: the fleet decodes them."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


async def _poll_batch(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
    # aiokafka's getmany already waits up to the timeout and returns as soon as records arrive;
    # FastStream 0.7 then sleeps the same timeout again after an empty poll, which only adds that
    # much latency to the next record on every idle hop. Same call, without the extra sleep.
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    return tuple(chain(*messages.values()))


BatchSubscriber.get_msg = _poll_batch  # type: ignore[method-assign]

_COMMITS: set[asyncio.Task[None]] = set()


def commit_in_background(message: Any) -> None:
    """Commit this batch's offsets without making the next batch wait for the round trip.

    Called by a handler after its effects (Redis written, outputs acknowledged by the broker), so
    at-least-once holds: the offsets are explicit (this batch's last + 1), never the consumer's
    position. If the commit fails or the process dies first, the batch is redelivered and the
    idempotent handlers change nothing twice. Marking the message acknowledged stops FastStream from
    committing again in the foreground. With the in-memory test broker it does nothing.
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
    message.committed = AckStatus.ACKED


def _commit_done(task: asyncio.Task[None]) -> None:
    _COMMITS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("commit_failed_will_redeliver", error=repr(task.exception())[:300])


# --- topics ----------------------------------------------------------------------------------------


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the fleet's topics if missing (never by broker auto-creation). Returns those created."""
    topics: Topics = settings.topics
    keep_forever = {topics.windows, topics.policy}
    single_partition = {topics.policy}
    wanted = [
        NewTopic(
            name,
            num_partitions=1 if name in single_partition else settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            topic_configs={"retention.ms": "-1" if name in keep_forever else str(settings.topic_retention_ms)},
        )
        for name in topics.all()
    ]
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            deadline = asyncio.get_running_loop().time() + 15
            while asyncio.get_running_loop().time() < deadline:
                if {t.name for t in missing} <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def delete_namespace(settings: Settings) -> None:
    """Delete a namespace's topics and Redis keys (test and benchmark runs clean up after themselves)."""
    if not settings.topic_namespace:
        raise ValueError("refusing to delete the production namespace")
    from redis.asyncio import Redis

    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in existing if t.startswith(f"{settings.topic_namespace}.")]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    redis = Redis.from_url(settings.redis_dsn)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
    finally:
        await redis.aclose()


async def topic_partitions(settings: Settings, topics: Sequence[str]) -> dict[str, list[int]]:
    """Partition numbers of each existing topic (a missing topic maps to an empty list)."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    found = {
        d["topic"]: sorted(p["partition"] for p in d.get("partitions", ())) for d in described if d.get("error_code") == 0
    }
    return {topic: found.get(topic, []) for topic in topics}


# --- intake ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Intake(Generic[E]):
    """A batch split into decoded events (with their records) and refused records."""

    events: list[tuple[Record, E]] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)


def intake(records: Iterable[Any], accepted: Sequence[type[E]]) -> Intake[E]:
    result: Intake[E] = Intake()
    for raw in records:
        record = Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))
        decoded = decode(record, accepted)
        if isinstance(decoded, RefusedRecord):
            result.refused.append(decoded)
        else:
            result.events.append((record, decoded))  # type: ignore[arg-type]
    return result


# --- outbox ----------------------------------------------------------------------------------------


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


class ProducerSender:
    """A dedicated aiokafka producer: a batch of sends, acknowledged together (the fast path)."""

    def __init__(self, settings: Settings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None  # made at start: aiokafka needs the running loop

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **aiokafka_kwargs(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,  # see make_broker: idempotent aiokafka producers hang after a broker restart
            linger_ms=self._settings.producer_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=15_000,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any:
        if self._producer is None:
            raise RuntimeError("the outbox's producer is not started")
        return await self._producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])


class Outbox:
    """Publishes events keyed by customer with type/version/correlation headers, and waits for acks.

    All records of a batch are sent at once (the producer batches them) and the call returns only
    when the broker acknowledged every one, so the caller can commit its input offsets after it.
    """

    def __init__(self, sender: RecordSender | KafkaBroker, *, service: str, registry: CollectorRegistry | None = None) -> None:
        self._sender: RecordSender = BrokerSender(sender) if isinstance(sender, KafkaBroker) else sender
        self._service = service
        self._published: Counter | None = None
        self._dead_letters: Counter | None = None
        if registry is not None:
            self._published = Counter("creditwindow_published_records_total", "Records published, by topic.", ["topic"], registry=registry)
            self._dead_letters = Counter(
                "creditwindow_dead_letters_total",
                "Records refused to the dead-letter topic, by source topic and error type.",
                ["source", "error_type"],
                registry=registry,
            )

    async def start(self) -> None:
        await self._sender.start()

    async def stop(self) -> None:
        await self._sender.stop()

    async def publish(self, items: Iterable[tuple[str, Event]]) -> int:
        futures = []
        sent: list[tuple[str, Event]] = []
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
        return len(futures)

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        letters = [dead_letter_for(r, failed_by=self._service) for r in refused]
        for letter in letters:
            log.warning(
                "dead_lettered",
                event_id=str(letter.event_id),
                correlation_id=letter.correlation_id,
                source_topic=letter.source_topic,
                source_partition=letter.source_partition,
                source_offset=letter.source_offset,
                error_type=letter.error_type,
                error=letter.error,
            )
        return await self.publish((topic, letter) for letter in letters)


# --- retries ---------------------------------------------------------------------------------------

_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    KafkaConnectionError,
    KafkaTimeoutError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """A fault that goes away by itself: a dependency restarting, a leader moving, a timeout."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(("LOADING", "MASTERDOWN", "READONLY")):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    settings: Settings,
    what: str,
    give_up_after_s: float = 120.0,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `operation`, retrying transient faults with exponential backoff.

    After `give_up_after_s` the fault is raised: the batch is then rewound (never acked as done) and
    redelivered, so a long outage costs a redelivery, never a lost or half-done decision.
    """
    delay = settings.retry_initial_ms / 1000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            log.warning("transient_fault_retrying", what=what, attempt=attempt, delay_s=round(delay, 3), error=repr(exc)[:300])
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.retry_max_ms / 1000)
