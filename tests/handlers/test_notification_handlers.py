"""The notification handler with the in-memory broker and a fake ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.notification.announcing import Announcer
from services.notification.handlers import NotificationDeps, build_router
from services.notification.metrics import NotificationMetrics
from services.policy.decisions import Allocation, decide, propose
from shared.contracts import Decision, NotificationSent
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.handlers.capture import capture
from tests.handlers.fakes import FakeLedger
from tests.unit.policy.factories import default_policy, score

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _decision(seq: int = 1, **kwargs: object) -> Decision:
    proposal = propose(score(**kwargs), default_policy(), NOW)  # type: ignore[arg-type]
    limit = getattr(proposal.verdict, "limit", 0)
    return decide(proposal, Allocation(fresh=True, seq=seq, granted=limit, refusal=None, programme_part=0, available=10**7), default_policy(), NOW)


def _wire() -> tuple[KafkaBroker, Settings]:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    outbox = Outbox(broker, service="notification")
    announcer = Announcer(ledger=FakeLedger(), outbox=outbox, topics=settings.topics)
    broker.include_router(build_router(NotificationDeps(settings, outbox, NotificationMetrics(CollectorRegistry()), announcer)))
    return broker, settings


async def _send(broker: KafkaBroker, topic: str, decision: Decision) -> None:
    message = encode(decision)
    await broker.publish(message.value, topic, key=message.key, headers=message.headers)


async def test_each_decision_is_announced_once_even_when_redelivered() -> None:
    broker, settings = _wire()
    out = capture(broker, settings.topics.notifications)
    decision = _decision()
    async with TestKafkaBroker(broker):
        for _ in range(3):
            await _send(broker, settings.topics.windows, decision)
    (notice,) = out.of(NotificationSent)
    assert notice.decision_id == decision.decision_id
    assert notice.outcome == "opened" and notice.channel == "inbox"


async def test_a_decision_older_than_the_customers_latest_is_not_announced() -> None:
    broker, settings = _wire()
    out = capture(broker, settings.topics.notifications)
    newer = _decision(seq=2, application_id="app_unit_000002")
    older = _decision(seq=1, application_id="app_unit_000001")
    async with TestKafkaBroker(broker):
        await _send(broker, settings.topics.windows, newer)
        await _send(broker, settings.topics.windows, older)
    assert [n.decision_id for n in out.of(NotificationSent)] == [newer.decision_id]


async def test_a_closure_is_told_in_the_customers_language_with_its_category() -> None:
    broker, settings = _wire()
    out = capture(broker, settings.topics.notifications)
    async with TestKafkaBroker(broker):
        await _send(broker, settings.topics.windows, _decision(overdue=1))
    (notice,) = out.of(NotificationSent)
    assert notice.outcome == "closed" and notice.category == "credit"
    assert notice.locale == "zh-CN" and "逾期" in notice.body
