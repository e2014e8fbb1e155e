"""Producer idempotence on three brokers: a customer's records keep their order and are not doubled
when the partition leader is killed, and when the whole cluster is down longer than the request
timeout (aiokafka's idempotent producer then breaks; the outbox replaces it and the batch is retried)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict

from devtools.cluster import LocalCluster, leadership, live_brokers
from shared.contracts import WindowClosed
from shared.messaging import Outbox, ProducerSender, ensure_topics, retry_transient
from shared.messaging.topic_io import TopicReader
from shared.settings import Settings
from tests.clocks import WALL

CUSTOMERS = 40


def _decision(customer: int, seq: int, run: str) -> WindowClosed:
    return WindowClosed(
        correlation_id=f"app_o{run}_{customer:03d}_{seq:04d}",
        producer="order-test",
        decision_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{customer}/{seq}"),
        decision_seq=seq,
        application_id=f"app_o{run}_{customer:03d}_{seq:04d}",
        customer_id=f"cus_o{run}_{customer:04d}",
        policy_version="default@1",
        category="system",
        reason="order_test",
    )


async def _stream(settings: Settings, stop: asyncio.Event, run: str) -> tuple[int, ProducerSender]:
    """Batches of one decision per customer, each batch published (and retried) until acknowledged."""
    sender = ProducerSender(settings, client_id="order-test")
    outbox = Outbox(sender, service="order-test", clock=WALL)
    await outbox.start()
    rounds = 0
    try:
        while not stop.is_set():
            rounds += 1
            batch = [(settings.topics.windows, _decision(c, rounds, run)) for c in range(CUSTOMERS)]
            await retry_transient(lambda b=batch: outbox.publish(b), settings=settings, what="order-test", give_up_after_s=120)
            await asyncio.sleep(0.02)
    finally:
        await outbox.stop()
    return rounds, sender


async def _check(settings: Settings, rounds: int, run: str) -> Counter[str]:
    async with TopicReader(settings, [settings.topics.windows]) as reader:
        records = await reader.drain(idle_s=3.0, timeout_s=120)
    by_customer: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for r in records:
        assert isinstance(r.event, WindowClosed)
        by_customer[r.event.customer_id].append((r.record.partition, r.record.offset, r.event.decision_seq))
    copies: Counter[str] = Counter()
    assert len(by_customer) == CUSTOMERS
    for customer, seen in by_customer.items():
        assert len({p for p, _, _ in seen}) == 1, f"{customer} spread over partitions"
        first: list[int] = []
        for _, _, seq in sorted(seen):
            if seq in first:
                copies[customer] += 1
            else:
                first.append(seq)
        assert first == list(range(1, rounds + 1)), f"{customer}: order or completeness broken: {first[:20]}"
    return copies


async def _wait_in_sync(settings: Settings, node: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if node in await live_brokers(settings):
                leaders = await leadership(settings, [settings.topics.windows])
                if all(node in isr for partitions in leaders.values() for _, isr in partitions.values()):
                    return
        except Exception:  # noqa: BLE001 - the cluster is still coming back
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"kafka-{node} did not come back in sync")


async def test_killing_the_partition_leader_neither_reorders_nor_doubles_a_customers_records(cluster: LocalCluster, settings: Settings) -> None:
    await ensure_topics(settings)
    run, stop = uuid.uuid4().hex[:6], asyncio.Event()
    streaming = asyncio.create_task(_stream(settings, stop, run))
    await asyncio.sleep(4)
    led = Counter(leader for leader, _ in (await leadership(settings, [settings.topics.windows]))[settings.topics.windows].values())
    victim = led.most_common(1)[0][0]
    await asyncio.to_thread(cluster.kill_node, victim)
    await asyncio.sleep(8)  # leaders move while the stream goes on
    await asyncio.to_thread(cluster.start_node, victim)
    await _wait_in_sync(settings, victim)
    await asyncio.sleep(3)
    stop.set()
    rounds, sender = await streaming
    copies = await _check(settings, rounds, run)
    assert rounds > 20
    assert sender.generation == 0 and not copies  # idempotent: no copy, and nothing to replace


async def test_a_cluster_down_longer_than_the_request_timeout_keeps_order_once_it_is_back(cluster: LocalCluster, settings: Settings) -> None:
    settings = settings.model_copy(update={"producer_request_timeout_ms": 2_000, "retry_max_ms": 1_000})
    await ensure_topics(settings)
    run, stop = uuid.uuid4().hex[:6], asyncio.Event()
    streaming = asyncio.create_task(_stream(settings, stop, run))
    await asyncio.sleep(4)
    for node in cluster.nodes:
        await asyncio.to_thread(cluster.kill_node, node)
    await asyncio.sleep(8)  # longer than the request timeout: aiokafka fails batches it had numbered
    for node in cluster.nodes:
        await asyncio.to_thread(cluster.start_node, node)
    for node in cluster.nodes:
        await _wait_in_sync(settings, node)
    await asyncio.sleep(5)
    stop.set()
    rounds, sender = await streaming
    copies = await _check(settings, rounds, run)
    # Whether aiokafka broke its sequence this time or not, every customer's records are in order;
    # copies can only come from a batch retried after the producer was replaced.
    assert not copies or sender.generation > 0, copies
    print(f"[order] rounds={rounds} producer replaced {sender.generation} times, copies {sum(copies.values())}")
