"""The outbox writes a batch as one record batch per partition: the partitions and order a send per record gives."""

from __future__ import annotations

from shared.messaging import Outbox, ProducerSender, ensure_topics
from shared.messaging.topic_io import Publisher, TopicReader
from shared.wire import header
from tests.clocks import WALL
from tests.conftest import settings_for
from tests.unit.policy.factories import score


async def test_a_batch_lands_where_a_send_per_record_puts_each_key_in_the_order_published(endpoints: dict[str, str], namespace: str) -> None:
    settings = settings_for(endpoints, namespace)
    await ensure_topics(settings)
    topics = settings.topics
    # 2,000 events of 400 customers, five each, interleaved: more than one record batch per partition
    scores = [
        score(at=WALL.now(), customer_id=f"cus_batch_{n % 400:06d}", application_id=f"app_batch_{n:06d}", region=("CN-SH", "CN-BJ")[n % 2])
        for n in range(2_000)
    ]
    outbox = Outbox(ProducerSender(settings, client_id="test-outbox"), service="test", clock=WALL)
    await outbox.start()
    try:
        assert await outbox.publish((topics.scores, s) for s in scores) == len(scores)
    finally:
        await outbox.stop()
    async with Publisher(settings) as publisher:  # a send per record, the producer's own partitioning
        for s in scores[:400]:
            await (await publisher.send(topics.windows, s))

    async with TopicReader(settings, [topics.scores, topics.windows]) as reader:
        seen = await reader.until(lambda got: len(got) >= len(scores) + 400, timeout_s=60)
    batched = [r for r in seen if r.record.topic == topics.scores]
    single = {r.record.key: r.record.partition for r in seen if r.record.topic == topics.windows}
    assert len(batched) == len(scores)
    assert all(single[r.record.key] == r.record.partition for r in batched)
    by_customer: dict[bytes | None, list[str]] = {}
    for r in sorted(batched, key=lambda r: (r.record.partition, r.record.offset)):
        by_customer.setdefault(r.record.key, []).append(r.event.application_id)  # type: ignore[union-attr]
    for customer, applications in by_customer.items():
        assert applications == [s.application_id for s in scores if s.customer_id.encode() == customer]
    assert {header(r.record, "event_type") for r in batched} == {"ScoreComputed"}
    assert len({r.record.partition for r in batched}) > 1
