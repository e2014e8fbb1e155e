"""Every event the fleet publishes carries the time of the clock it was given, never the wall's.

The three services are built by their own composition roots on one in-memory broker, with one
clock standing years away from any date this suite runs on. Applications go through scoring,
policy and notification; drawdowns (booked as loans), a repayment, a review, an expiry, and the
loan's due dates watched across a reminder, a miss and its days-past-due step follow. Any event stamped
from the wall clock (a constructor left to its default, a `datetime.now` somewhere) shows here as
an `occurred_at` outside the test clock's times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from devtools.germancredit import applications
from services.notification.app import DispatchTiming
from services.notification.app import compose as compose_notification
from services.notification.memory_ledger import MemoryLedger
from services.notification.memory_webhooks import MemoryWebhookQueue
from services.policy.app import compose as compose_policy
from services.policy.windows.adapters.memory_book import MemoryBook
from services.scoring.app import compose as compose_scoring
from services.scoring.scorecard import Scorecard
from shared.clock import ManualClock
from shared.contracts import (
    DeadLetter,
    DrawdownApproved,
    DrawdownRequested,
    Event,
    InstalmentDueSoon,
    InstalmentOverdue,
    LoanBooked,
    NotificationSent,
    Repaid,
    ReviewRequested,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import Outbox
from shared.references import reference_of
from shared.settings import Settings
from shared.wire import encode
from tests.handlers.capture import capture
from tests.handlers.fakes import MemoryArchive
from tests.unit.notification.fakes import FakeSender
from tests.unit.policy.factories import default_policy

FAR = datetime(2031, 7, 15, 3, 0, tzinfo=UTC)  # no run of this suite happens near it


async def _publish(broker: KafkaBroker, topic: str, event: Event) -> None:
    message = encode(event)
    await broker.publish(message.value, topic, key=message.key, headers=message.headers)


async def test_every_event_the_fleet_publishes_carries_the_time_of_its_clock() -> None:
    clock = ManualClock(FAR)
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    registry = CollectorRegistry
    compose_scoring(
        settings, broker=broker, scorecard=Scorecard.load(settings.model_path), publisher=Outbox(broker, service="scoring", clock=clock),
        registry=registry(), clock=clock,
    )  # fmt: skip
    archive = MemoryArchive()  # the decisions read back, so a review finds the decision it is about
    policy = compose_policy(
        settings, broker=broker, store=MemoryBook(), publisher=Outbox(broker, service="policy", clock=clock), registry=registry(),
        policy=default_policy(timing__window_validity=timedelta(days=1)), clock=clock, archive=archive, references=archive,
    )  # fmt: skip
    compose_notification(
        settings, broker=broker, ledger=MemoryLedger(clock), queue=MemoryWebhookQueue(clock), sender=FakeSender([]),  # type: ignore[arg-type]
        publisher=Outbox(broker, service="notification", clock=clock), registry=registry(), clock=clock, timing=DispatchTiming(poll_s=0.05),
    )  # fmt: skip
    topics = settings.topics
    out = capture(
        broker, topics.scores, topics.windows, topics.lending_results, topics.loans, topics.review_results, topics.notifications, topics.deadletter
    )
    batch = [a.model_copy(update={"occurred_at": FAR}) for a in applications("clock", count=40)]
    async with TestKafkaBroker(broker):
        for application in batch:
            await _publish(broker, topics.applications, application)
        await broker.publish(b"\xff not an application", topics.applications, key=b"cus_clock_garbage")  # a dead letter
        opened = out.of(WindowOpened)
        closed = out.of(WindowClosed)
        assert opened and closed, "the German Credit rows open some windows and close others"
        clock.advance(minutes=5)
        window = opened[0]
        await _publish(broker, topics.lending_requests, DrawdownRequested(
            correlation_id="dd_clock_000001", drawdown_id="dd_clock_000001", customer_id=window.customer_id, amount=1_000, occurred_at=clock.now(),
        ))  # fmt: skip
        await _publish(broker, topics.lending_requests, Repaid(
            correlation_id="rp_clock_000001", repayment_id="rp_clock_000001", customer_id=window.customer_id, amount=400, occurred_at=clock.now(),
        ))  # fmt: skip
        clock.advance(minutes=5)
        await _publish(broker, topics.review_requests, ReviewRequested(
            correlation_id="rv_clock_000001", customer_id=closed[0].customer_id, reference=reference_of(closed[0].decision_id),
            statement="Please look again.", occurred_at=clock.now(),
        ))  # fmt: skip
        clock.advance(days=2)  # every window has expired
        policy.metrics.observe(await policy.underwriter.sweep())
        swept = clock.now()
        (loan,) = out.of(LoanBooked)
        reminded = clock.advance(loan.instalments[0].pay_by - timedelta(days=1) - clock.now())  # the reminder's sweep
        await policy.servicer.watch()
        missed = clock.advance(days=31)  # missed, and 30 days past due
        await policy.servicer.watch()
    assert out.of(DrawdownApproved) and any(n.about == "review" for n in out.of(NotificationSent)) and out.of(DeadLetter)
    assert any(isinstance(e, WindowClosed) and e.trigger == "expiry" for e in out.events)
    steps = [(e.instalment, e.days_past_due) for e in out.of(InstalmentDueSoon) + out.of(InstalmentOverdue)]
    assert {(1, 0), (1, 1), (1, 30)} <= set(steps)  # the first instalment's reminder, its miss and its 30 days
    assert {n.outcome for n in out.of(NotificationSent)} >= {"loan_booked", "instalment_due_soon", "instalment_overdue", "repayment_applied"}
    ours = [e for e in out.events if e.producer in ("scoring", "policy", "notification")]
    stamped = {e.occurred_at for e in ours}
    expected = {FAR, FAR + timedelta(minutes=5), FAR + timedelta(minutes=10), swept, reminded, missed}
    assert stamped <= expected, sorted((e.event_type, e.occurred_at.isoformat()) for e in ours if e.occurred_at not in expected)
