"""Drawdowns and repayments through the policy service (in-memory broker and book), and their notices
through the notification service: decided at once, once per id, told once."""

from __future__ import annotations

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.app import compose
from services.policy.windows.adapters.memory_book import MemoryBook
from shared.contracts import (
    DeadLetter,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    Repaid,
    RepaymentApplied,
    WindowOpened,
)
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import capture
from tests.unit.policy.factories import default_policy, score

CUSTOMER = "cus_unit00000001"


def _wire() -> tuple[KafkaBroker, MemoryBook, Settings]:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    store = MemoryBook()
    compose(settings, broker=broker, store=store, publisher=Outbox(broker, service="policy", clock=clock_at(NOW)), registry=CollectorRegistry(), policy=default_policy(), clock=clock_at(NOW))
    return broker, store, settings


async def _publish(broker: KafkaBroker, topic: str, event: object) -> None:
    message = encode(event)  # type: ignore[arg-type]
    await broker.publish(message.value, topic, key=message.key, headers=message.headers)


def _draw(ident: str, amount: int, customer: str = CUSTOMER) -> DrawdownRequested:
    return DrawdownRequested(correlation_id=ident, drawdown_id=ident, customer_id=customer, amount=amount, locale="en")


async def test_drawdowns_are_decided_at_once_against_the_window_and_each_is_decided_once() -> None:
    broker, store, settings = _wire()
    out = capture(broker, settings.topics.windows, settings.topics.drawdowns, settings.topics.deadletter)
    async with TestKafkaBroker(broker):
        await _publish(broker, settings.topics.scores, score())
        (opened,) = out.of(WindowOpened)
        first = _draw("dd_hand_000001", opened.limit - 1_000)
        await _publish(broker, settings.topics.drawdowns, first)
        await _publish(broker, settings.topics.drawdowns, first)  # redelivered
        await _publish(broker, settings.topics.drawdowns, _draw("dd_hand_000002", 2_000))  # above what is left
        await _publish(broker, settings.topics.drawdowns, Repaid(correlation_id="rp_hand_000001", repayment_id="rp_hand_000001", customer_id=CUSTOMER, amount=1_500))
        await _publish(broker, settings.topics.drawdowns, _draw("dd_hand_000003", 2_000))  # fits after the repayment
    approved = out.of(DrawdownApproved)
    assert [a.drawdown_id for a in approved] == ["dd_hand_000001", "dd_hand_000001", "dd_hand_000003"]
    assert approved[0] == approved[1]  # the redelivery republishes the first answer, same event id
    (refused,) = out.of(DrawdownRefused)
    assert (refused.category, refused.reason, refused.available, refused.balance) == ("credit", "above_available", 1_000, opened.limit - 1_000)
    (repaid,) = out.of(RepaymentApplied)
    assert (repaid.applied, repaid.balance) == (1_500, opened.limit - 2_500)
    assert approved[-1].balance == opened.limit - 500 and approved[-1].available == 500
    assert store.book.state.balances[CUSTOMER].balance == opened.limit - 500
    assert not out.of(DeadLetter)  # the service's own outcomes on the topic are skipped, not refused
    current = await store.current(CUSTOMER)
    assert current is not None and (current.balance, current.available) == (opened.limit - 500, 500)


async def test_a_drawdown_without_a_window_is_refused_and_one_of_another_customers_id_is_dead_lettered() -> None:
    broker, _, settings = _wire()
    out = capture(broker, settings.topics.drawdowns, settings.topics.deadletter)
    async with TestKafkaBroker(broker):
        await _publish(broker, settings.topics.drawdowns, _draw("dd_hand_000009", 1_000))
        await _publish(broker, settings.topics.drawdowns, _draw("dd_hand_000009", 1_000, customer="cus_other_000001"))
    (refused,) = out.of(DrawdownRefused)
    assert (refused.category, refused.reason, refused.limit) == ("strategy", "no_window", 0)
    reasons = sorted(letter.error_type for letter in out.of(DeadLetter))
    assert reasons == ["movement_id_reused"]
