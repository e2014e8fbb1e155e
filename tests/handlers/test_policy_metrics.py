"""Policy's business metrics count what its handlers did, dead letters by source included."""

from __future__ import annotations

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from creditwindow.policy_ops import signed_update
from services.policy.app import compose
from services.policy.windows.adapters.memory_book import MemoryBook
from shared.contracts import DeadLetter
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import capture
from tests.unit.policy.factories import default_policy, score


async def test_a_forged_policy_update_is_counted_as_a_dead_letter_from_the_policy_topic() -> None:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    registry = CollectorRegistry()
    outbox = Outbox(broker, service="policy", registry=registry, clock=clock_at(NOW))  # the outbox counts what it dead-letters
    compose(settings, broker=broker, store=MemoryBook(), publisher=outbox, registry=registry, policy=default_policy(), clock=clock_at(NOW))
    out = capture(broker, settings.topics.deadletter)
    text = default_policy().model_dump_json().replace('"version":1', '"version":2')
    forged = signed_update(text, Settings(topic_namespace="h", policy_signing_key="not-the-fleets-key"))
    async with TestKafkaBroker(broker):
        message = encode(forged)
        await broker.publish(message.value, settings.topics.policy, key=message.key, headers=message.headers)
        scored = encode(score())
        await broker.publish(scored.value, settings.topics.scores, key=scored.key, headers=scored.headers)
    (letter,) = out.of(DeadLetter)
    assert letter.error_type == "policy_forged"
    labels = {"source": settings.topics.policy, "error_type": "policy_forged"}
    assert registry.get_sample_value("creditwindow_dead_letters_total", labels) == 1
    opened = {"outcome": "opened", "category": "-", "reason": "income_cap", "trigger": "application"}
    assert registry.get_sample_value("creditwindow_decisions_total", opened) == 1  # the forged update stopped nothing
