"""Connecting to Kafka: client arguments (TLS, SASL), the broker of a service, its batch subscribers."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Annotated, Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.params import NoCast
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.messaging.batch_poll import skip_idle_sleep
from shared.settings import Settings

__all__ = ["BATCH_ACK_POLICY", "Records", "aiokafka_kwargs", "batch_subscriber_options", "follower_options", "make_broker", "raw_records"]

# A batch handler's records, as aiokafka gave them (`raw_records` decodes nothing: the fleet does).
Records = Annotated[list[Any], NoCast]

# At-least-once in: commit after the handler, rewind on error. Never ACK_FIRST.
BATCH_ACK_POLICY = AckPolicy.NACK_ON_ERROR


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
    skip_idle_sleep()  # FastStream 0.7 sleeps after an empty batch poll: see batch_poll.py
    return KafkaBroker(
        # a list: FastStream takes one string for one server, where aiokafka splits it on commas
        [server.strip() for server in settings.kafka_servers.split(",") if server.strip()],
        client_id=f"creditwindow-{service}{'-' + settings.instance_id if settings.instance_id else ''}",
        security=_security(settings),
        acks="all",
        # The services publish through the outbox's own idempotent producer, which is replaced when
        # aiokafka's sequence breaks (outbox.py); this one, which nothing can replace, publishes nothing
        # in production, so it stays non-idempotent.
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


def follower_options() -> dict[str, Any]:
    """Subscriber arguments of a topic every replica reads whole (no group): from the beginning, in
    batches of raw records, nothing to commit (signed policy updates, the desk's `credit.reviews`)."""
    return {"batch": True, "auto_offset_reset": "earliest", "ack_policy": AckPolicy.MANUAL, "decoder": raw_records}


async def raw_records(message: Any, _: Any = None) -> list[Any]:
    """FastStream decoder that hands the handler the records themselves: the fleet decodes them."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


