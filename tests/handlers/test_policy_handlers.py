"""The policy service, built by its own composition root, on the in-memory broker and the in-memory book."""

from __future__ import annotations

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.app import compose
from services.policy.windows.adapters.memory_book import MemoryBook
from shared.contracts import DeadLetter, WindowClosed, WindowOpened
from shared.messaging import Outbox, ServiceHealth
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import capture
from tests.unit.policy.factories import default_policy, score, this_period


def _wire() -> tuple[KafkaBroker, MemoryBook, Settings]:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    store = MemoryBook()
    publisher = Outbox(broker, service="policy", clock=clock_at(NOW))
    compose(settings, broker=broker, store=store, publisher=publisher, registry=CollectorRegistry(), policy=default_policy(), clock=clock_at(NOW))
    return broker, store, settings


async def _send(broker: KafkaBroker, topic: str, value: bytes, key: bytes = b"cus_unit00000001", headers: dict[str, str] | None = None) -> None:
    await broker.publish(value, topic, key=key, headers=headers or {})


async def test_a_scored_application_opens_a_window_with_the_policy_version() -> None:
    broker, store, settings = _wire()
    out = capture(broker, settings.topics.windows)
    async with TestKafkaBroker(broker):
        message = encode(score())
        await _send(broker, settings.topics.scores, message.value, headers=message.headers)
    (opened,) = out.of(WindowOpened)
    assert opened.policy_version == "default@1"
    assert opened.limit > 0 and opened.decision_seq == 1
    assert store.book.state.windows["cus_unit00000001"].limit == opened.limit


async def test_a_duplicated_score_gives_one_decision() -> None:
    broker, store, settings = _wire()
    out = capture(broker, settings.topics.windows)
    async with TestKafkaBroker(broker):
        message = encode(score())
        for _ in range(3):
            await _send(broker, settings.topics.scores, message.value, headers=message.headers)
    assert len(out.events) == 1
    assert store.book.state.budgets[this_period(NOW)].exposure == out.of(WindowOpened)[0].limit


async def test_a_knocked_out_application_is_closed_with_category_and_reasons() -> None:
    broker, _, settings = _wire()
    out = capture(broker, settings.topics.windows)
    async with TestKafkaBroker(broker):
        message = encode(score(overdue=2))
        await _send(broker, settings.topics.scores, message.value, headers=message.headers)
    (closed,) = out.of(WindowClosed)
    assert (closed.category, closed.reason) == ("credit", "knockout_recent_overdue")
    assert closed.reasons


async def test_garbage_goes_to_the_dead_letter_topic_and_the_next_score_is_decided() -> None:
    broker, _, settings = _wire()
    out = capture(broker, settings.topics.windows, settings.topics.deadletter)
    async with TestKafkaBroker(broker):
        await _send(broker, settings.topics.scores, b"\x00not json")
        message = encode(score())
        await _send(broker, settings.topics.scores, message.value, headers=message.headers)
    (letter,) = out.of(DeadLetter)
    assert letter.source_topic == settings.topics.scores and letter.error_type == "undecodable"
    assert len(out.of(WindowOpened)) == 1


async def test_a_batch_that_keeps_failing_backs_off_and_shows_the_consumer_stuck_and_why() -> None:
    class BrokenBook(MemoryBook):
        async def post(self, requests, budgets):  # type: ignore[no-untyped-def]
            raise RuntimeError("OOM command not allowed when used memory > 'maxmemory'")

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    registry = CollectorRegistry()
    health = ServiceHealth(registry, sleep=sleep, clock=clock_at(NOW))
    compose(
        settings, broker=broker, store=BrokenBook(), publisher=Outbox(broker, service="policy", clock=clock_at(NOW)), registry=registry,
        policy=default_policy(), clock=clock_at(NOW), health=health,
    )  # fmt: skip
    async with TestKafkaBroker(broker):
        message = encode(score())
        with pytest.raises(RuntimeError):
            await _send(broker, settings.topics.scores, message.value, headers=message.headers)
    assert waits and waits[0] >= 0.5  # backed off before the batch is redelivered
    problem = health.problems[settings.topics.scores]
    assert "OOM" in problem.reason and problem.reason.startswith("error: RuntimeError")
    assert registry.get_sample_value("creditwindow_consumer_stuck", {"consumer": settings.topics.scores}) == 1
