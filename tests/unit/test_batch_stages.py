"""Where a batch's time goes (shared/messaging/stages.py): every batch is counted with its records,
its stages are summed per consumer, the poll wait spans the empty polls before the records, and only
the Redis round trips and publications of the batch itself are added to it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from shared.contracts import Event, ScoreComputed
from shared.messaging import BatchRunner, Intake, ServiceHealth, stages
from shared.messaging.batch_poll import _poll_batch
from shared.settings import Settings
from shared.wire import RefusedRecord, encode
from tests.clocks import NOW, clock_at
from tests.unit.policy.factories import score


@dataclass
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def raw(event: Event, offset: int) -> Raw:
    message = encode(event)
    return Raw("credit.scores", 0, offset, message.key, message.value, tuple((k, v.encode()) for k, v in message.headers.items()))


class SlowPublisher:
    """Publishes after a pause, as the outbox does, timing the pause as the batch's produce stage."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, items: Iterable[tuple[str, Event]]) -> int:
        events = [event for _, event in items]
        await asyncio.sleep(0.02)
        stages.add("produce", 0.02)
        self.published += events
        return len(events)

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        return 0


def stage_seconds(registry: CollectorRegistry, consumer: str, stage: str) -> float:
    value = registry.get_sample_value("creditwindow_batch_stage_seconds_total", {"consumer": consumer, "stage": stage})
    return value or 0.0


async def test_each_batch_is_counted_with_its_records_and_its_stages_summed_per_consumer() -> None:
    registry = CollectorRegistry()
    publisher = SlowPublisher()
    runner = BatchRunner(settings=Settings(), publisher=publisher, health=ServiceHealth(registry, clock=clock_at(NOW)))

    async def work(batch: Intake[ScoreComputed]) -> int:
        stages.add("redis", 0.005)  # what the Redis client adds for a round trip of this batch
        return await publisher.publish(("credit.windows", event) for _, event in batch.events)

    batch = [raw(score(application_id=f"app_unit_{n:06d}", customer_id=f"cus_unit{n:08d}"), n) for n in range(3)]
    await runner.run("credit.scores", batch, (ScoreComputed,), work, what=None)
    await runner.run("credit.scores", batch[:1], (ScoreComputed,), work, what=None)

    assert len(publisher.published) == 4
    assert registry.get_sample_value("creditwindow_batch_records_count", {"consumer": "credit.scores"}) == 2
    assert registry.get_sample_value("creditwindow_batch_records_sum", {"consumer": "credit.scores"}) == 4
    assert stage_seconds(registry, "credit.scores", "produce") == 0.04
    assert stage_seconds(registry, "credit.scores", "redis") == 0.01
    assert stage_seconds(registry, "credit.scores", "decode") > 0
    # the work's own time is what is left of it: the produce pause is not counted twice
    assert stage_seconds(registry, "credit.scores", "logic") < 0.02


async def test_time_spent_outside_a_batch_is_added_to_none() -> None:
    registry = CollectorRegistry()
    runner = BatchRunner(settings=Settings(), publisher=SlowPublisher(), health=ServiceHealth(registry, clock=clock_at(NOW)))

    async def nothing(batch: Intake[ScoreComputed]) -> None:
        return None

    await runner.run("credit.scores", [raw(score(), 0)], (ScoreComputed,), nothing, what=None)
    stages.add("redis", 1.0)  # e.g. a background task's round trip, after the batch ended
    await runner.run("credit.scores", [raw(score(), 1)], (ScoreComputed,), nothing, what=None)
    assert stage_seconds(registry, "credit.scores", "redis") == 0.0


class Polled:
    """A consumer whose first polls find nothing, then records."""

    def __init__(self, empty: int) -> None:
        self.empty = empty

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        await asyncio.sleep(timeout_ms / 1000)
        if self.empty:
            self.empty -= 1
            return {}
        return {"tp": ["record"]}


async def test_the_poll_wait_spans_the_empty_polls_before_the_records_came() -> None:
    async def consume() -> float:
        subscriber: Any = type("Subscriber", (), {"batch_timeout_ms": 10, "max_records": 10})()
        consumer = Polled(empty=3)
        while not await _poll_batch(subscriber, consumer):  # type: ignore[arg-type]
            pass
        return stages.cycle().waited

    waited = await asyncio.create_task(consume())  # a consumer loop is a task of its own
    assert waited >= 0.04  # three empty polls and the one that found records
