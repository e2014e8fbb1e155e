"""A batch handler gets its records with the message they came in, so the runner commits that batch's
offsets itself (in the background, after the batch's effects) and FastStream does not commit in the
foreground: the message must survive FastStream's argument handling (a `list` annotation would copy
the records into a plain list and lose it)."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from shared.messaging import Batch, Records, batch_subscriber_options, make_broker
from shared.settings import Settings


async def test_a_handler_gets_its_records_as_a_batch_that_carries_its_message() -> None:
    settings = Settings()
    broker = make_broker(settings, service="test")
    seen: list[object] = []

    @broker.subscriber("test.batch.message", **batch_subscriber_options(settings, "test"))
    async def handler(records: Records) -> None:
        seen.append(records)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(b"one", b"two", topic="test.batch.message")

    [batch] = seen
    assert isinstance(batch, Batch)
    assert [record.value for record in batch] == [b"one", b"two"]
    assert [record.value for record in batch.message.raw_message] == [b"one", b"two"]
