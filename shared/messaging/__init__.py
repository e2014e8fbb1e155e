"""Kafka adapters every service shares, one module per concern:

- `connection`: client arguments, the service's broker, batch subscriber options;
- `batch_poll`: a fix to FastStream's batch poll, applied by `make_broker`;
- `intake`: a consumed batch decoded into events and refused records;
- `outbox`: events published and acknowledged before a batch's offsets are committed;
- `commits`: committing those offsets without making the next batch wait;
- `retries`: transient faults retried with backoff (and, meanwhile, something else: a delay told);
- `health`: a failing batch backed off and reported (`/health`, a metric), never retried in a tight loop;
- `batches`: the one way a handler runs a batch (watched, taken, worked, refusals dead-lettered,
  observed, committed), built from the modules above;
- `topic_admin`: the fleet's topics created, checked against the settings, and looked up.

Delivery rules (ARCHITECTURE.md): handlers consume in batches with `AckPolicy.NACK_ON_ERROR`, so the
offsets of a batch are committed only after the handler returned, i.e. after its Redis writes and
after every record it published was acknowledged by the broker. An exception rewinds the batch.
"""

from shared.messaging.batches import BatchRunner, refusals
from shared.messaging.commits import commit_in_background
from shared.messaging.connection import (
    BATCH_ACK_POLICY,
    Records,
    aiokafka_kwargs,
    batch_subscriber_options,
    follower_options,
    make_broker,
    raw_records,
)
from shared.messaging.health import Problem, ServiceHealth
from shared.messaging.intake import Intake, intake, take
from shared.messaging.outbox import BrokerSender, Outbox, ProducerReplaced, ProducerSender, RecordSender
from shared.messaging.retries import Meanwhile, is_transient, retry_meanwhile, retry_transient
from shared.messaging.topic_admin import TopicDifference, check_topics, ensure_topics, topic_partitions

__all__ = [
    "BATCH_ACK_POLICY",
    "BatchRunner",
    "BrokerSender",
    "Intake",
    "Meanwhile",
    "Outbox",
    "Problem",
    "ProducerReplaced",
    "ProducerSender",
    "RecordSender",
    "Records",
    "ServiceHealth",
    "TopicDifference",
    "aiokafka_kwargs",
    "batch_subscriber_options",
    "check_topics",
    "commit_in_background",
    "ensure_topics",
    "follower_options",
    "intake",
    "is_transient",
    "make_broker",
    "raw_records",
    "refusals",
    "retry_meanwhile",
    "retry_transient",
    "take",
    "topic_partitions",
]
