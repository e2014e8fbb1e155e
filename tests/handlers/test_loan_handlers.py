"""After the drawdown (issue 25), through the policy and notification services' own composition roots
on one in-memory broker and one test clock: a drawdown becomes a loan with its schedule, due dates are
watched by the sweeper's servicer, a missed instalment closes the window and refuses drawdowns, the
cure is told with the date it stops counting, and the next application reads our own record beside
the bureau's; every notice is told once in the inbox, and partners hear of drawdowns, loans and
overdue steps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.notification.app import DispatchTiming
from services.notification.app import compose as compose_notification
from services.notification.memory_ledger import MemoryLedger
from services.notification.memory_webhooks import MemoryWebhookQueue
from services.policy.app import Policy
from services.policy.app import compose as compose_policy
from services.policy.lending.servicing import Servicer
from services.policy.record.explanation import explain
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.model import WatchRequest
from shared.clock import ManualClock
from shared.contracts import (
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    Event,
    InstalmentDueSoon,
    InstalmentOverdue,
    LoanBooked,
    NotificationSent,
    OverdueCured,
    Repaid,
    RepaymentApplied,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
)
from shared.environments import UnsafeEnvironment
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW
from tests.handlers.capture import Captured, capture
from tests.unit.notification.fakes import FakeSender
from tests.unit.policy.factories import default_policy, score

CUSTOMER = "cus_story0000001"
PARTNER = "bank_partner_01"


@dataclass
class Fleet:
    broker: KafkaBroker
    clock: ManualClock
    policy: Policy
    store: MemoryBook
    queue: MemoryWebhookQueue
    settings: Settings
    out: Captured

    async def publish(self, topic: str, event: Event) -> None:
        message = encode(event)
        await self.broker.publish(message.value, topic, key=message.key, headers=message.headers)

    async def apply(self, application: str) -> ScoreComputed:
        the_score: ScoreComputed = score(application_id=application, customer_id=CUSTOMER, at=self.clock.now())
        facts = the_score.facts.model_copy(update={"partner_id": PARTNER, "locale": "en"})  # type: ignore[union-attr]
        scored = the_score.model_copy(update={"facts": facts})
        await self.publish(self.settings.topics.scores, scored)
        return scored

    def draw(self, ident: str, amount: int, term: int | None = 3) -> DrawdownRequested:
        return DrawdownRequested(
            correlation_id=ident, drawdown_id=ident, customer_id=CUSTOMER, amount=amount, locale="en", term_months=term, occurred_at=self.clock.now()
        )

    def repay(self, ident: str, amount: int) -> Repaid:
        return Repaid(correlation_id=ident, repayment_id=ident, customer_id=CUSTOMER, amount=amount, locale="en", occurred_at=self.clock.now())


def _fleet() -> Fleet:
    clock = ManualClock(NOW)
    partners = {PARTNER: {"url": "https://partner.example/hook", "key": "k" * 40}}
    settings = Settings(topic_namespace="h", webhook_partners=partners)
    broker = KafkaBroker()
    store = MemoryBook()
    policy = compose_policy(
        settings, broker=broker, store=store, publisher=Outbox(broker, service="policy", clock=clock), registry=CollectorRegistry(),
        policy=default_policy(), clock=clock,
    )  # fmt: skip
    queue = MemoryWebhookQueue(clock)
    compose_notification(
        settings, broker=broker, ledger=MemoryLedger(clock), queue=queue, sender=FakeSender([]),  # type: ignore[arg-type]
        publisher=Outbox(broker, service="notification", clock=clock), registry=CollectorRegistry(), clock=clock, timing=DispatchTiming(poll_s=0.05),
    )  # fmt: skip
    topics = settings.topics
    out = capture(broker, topics.windows, topics.lending_results, topics.loans, topics.notifications, topics.deadletter)
    return Fleet(broker, clock, policy, store, queue, settings, out)


def _told(out: Captured, kind: str) -> list[NotificationSent]:
    return [n for n in out.of(NotificationSent) if n.outcome == kind and n.channel == "inbox"]


async def test_a_customers_story_from_window_to_loan_to_missed_instalment_to_cure_and_the_next_application() -> None:
    fleet = _fleet()
    topics = fleet.settings.topics
    async with TestKafkaBroker(fleet.broker):
        await fleet.apply("app_story_000001")
        (opened,) = fleet.out.of(WindowOpened)

        # The drawdown becomes a loan of three monthly instalments at the window's APR, booked once.
        draw = fleet.draw("dd_story_000001", 6_000)
        await fleet.publish(topics.lending_requests, draw)
        await fleet.publish(topics.lending_requests, draw)  # redelivered: the same outcome and the same loan
        approved = fleet.out.of(DrawdownApproved)
        booked = fleet.out.of(LoanBooked)
        assert len({e.event_id for e in approved}) == 1 and len({e.event_id for e in booked}) == 1 and approved[0] == approved[1]
        loan = booked[0]
        assert (loan.loan_id, loan.apr, loan.term_months, loan.principal_fen, loan.partner_id) == ("dd_story_000001", opened.apr, 3, 600_000, PARTNER)
        assert sum(i.principal_fen for i in loan.instalments) == 600_000
        assert loan.total_repayable_fen == 600_000 + loan.total_interest_fen == sum(i.amount_fen for i in loan.instalments)
        assert approved[0].loan_id == loan.loan_id and approved[0].occurred_at == loan.occurred_at == NOW.replace(microsecond=NOW.microsecond // 1000 * 1000)
        first = loan.instalments[0]

        # Three days before the first due date: the reminder, once (a second replica's servicer finds nothing new).
        fleet.clock.set(first.pay_by - timedelta(days=3, hours=1))
        servicer = fleet.policy.servicer
        other = Servicer(store=fleet.store, windows=fleet.policy.underwriter, publisher=Outbox(fleet.broker, service="policy", clock=fleet.clock),
                         out_topic=topics.loans, state=fleet.policy.state, clock=fleet.clock)  # fmt: skip
        (reminder,) = (await servicer.watch()).notices
        assert isinstance(reminder, InstalmentDueSoon) and (reminder.amount_due_fen, reminder.pay_by) == (first.amount_fen, first.pay_by)
        assert (await other.watch()).notices == []

        # Unpaid at the end of the due date: the miss closes the window (credit, own_overdue), then is told.
        fleet.clock.set(first.pay_by)
        serviced = await other.watch()
        (missed,) = serviced.notices
        (closure,) = serviced.closures
        assert isinstance(missed, InstalmentOverdue) and (missed.step, missed.days_past_due, missed.closes_window) == (1, 1, True)
        assert (closure.category, closure.reason, closure.trigger, closure.closes_decision_id) == ("credit", "own_overdue", "overdue", opened.decision_id)
        published = [e for e in fleet.out.events if isinstance(e, WindowClosed | InstalmentOverdue)]
        assert [type(e).__name__ for e in published] == ["WindowClosed", "InstalmentOverdue"]  # the notice is true when read
        assert (await servicer.watch()).notices == []

        await fleet.publish(topics.lending_requests, fleet.draw("dd_story_000002", 1_000))
        (refused,) = fleet.out.of(DrawdownRefused)
        assert (refused.category, refused.reason, refused.window_reason) == ("credit", "window_closed", "own_overdue")

        # Five days late the customer pays it all: interest then principal of the instalment due, then
        # the rest early; the cure is told with the date it stops counting.
        fleet.clock.set(first.pay_by + timedelta(days=4, hours=2))
        await fleet.publish(topics.lending_requests, fleet.repay("rp_story_000001", 7_000))
        (repaid,) = fleet.out.of(RepaymentApplied)
        (cured,) = fleet.out.of(OverdueCured)
        assert repaid.allocations[0].due and (repaid.allocations[0].instalment, repaid.allocations[0].interest_fen) == (1, first.interest_fen)
        assert repaid.balance == 0 and repaid.credit_fen == 700_000 - repaid.interest_fen - 600_000 > 0
        assert (cured.worst_days_past_due, cured.loan_ids) == (5, ("dd_story_000001",))
        assert cured.counts_until - cured.occurred_at > timedelta(days=364)

        # The next application reads our own record beside the bureau's: knocked out until it stops counting.
        fleet.clock.advance(days=1)
        scored = await fleet.apply("app_story_000002")
        later = [d for d in fleet.out.of(WindowClosed) if d.application_id == "app_story_000002"]
        (knocked,) = later
        assert (knocked.category, knocked.reason, knocked.retry_after) == ("credit", "own_overdue", cured.counts_until)
        assert knocked.own_record is not None and (knocked.own_record.days_past_due, knocked.own_record.worst_days_past_due_12m) == (0, 5)
        explanation = explain(knocked, scored, default_policy(), [])
        assert explanation.own_record is not None and explanation.own_record["worst_days_past_due_12m"] == 5
        assert (explanation.rules[-1].rule, explanation.rules[-1].passed, explanation.rules[-1].value) == ("own_overdue", False, "0 days past due now, worst 5")

        fleet.clock.set(cured.counts_until)
        await fleet.apply("app_story_000003")
        assert [d.application_id for d in fleet.out.of(WindowOpened)] == ["app_story_000001", "app_story_000003"]

    # Every notice told once in the customer's inbox, in their language.
    for kind, count in (("loan_booked", 1), ("instalment_due_soon", 1), ("instalment_overdue", 1), ("overdue_cured", 1),
                        ("drawdown_approved", 1), ("drawdown_refused", 1), ("repayment_applied", 1)):  # fmt: skip
        told = _told(fleet.out, kind)
        assert len({n.notification_id for n in told}) == count and all(n.locale == "en" for n in told), kind
    (schedule,) = {n.notification_id: n for n in _told(fleet.out, "loan_booked")}.values()
    assert "Your instalments:" in schedule.body and "Total to repay:" in schedule.body and schedule.loan_id == loan.loan_id
    closed_notice = next(n for n in fleet.out.of(NotificationSent) if n.decision_id == knocked.decision_id)
    assert "On your record with us: 5 days past due at worst" in closed_notice.body
    # Partners hear of the drawdown outcomes, the loan and the overdue step, each once; not of reminders or repayments.
    kinds = sorted(json.loads(entry.body or b"{}")["type"] for entry in fleet.queue.queue.state.deliveries.values())
    assert kinds == ["drawdown.approved", "drawdown.refused", "loan.booked", "loan.overdue", "window.closed", "window.closed", "window.opened", "window.opened"]

    # The book is derived state: a rebuild from the log gives back the loan and the customer's own record.
    decisions = [e for e in fleet.out.events if isinstance(e, WindowOpened | WindowClosed)]
    movements: list[Any] = [e for e in fleet.out.events if isinstance(e, DrawdownApproved | DrawdownRefused | RepaymentApplied)]
    loans: list[Any] = [e for e in fleet.out.events if isinstance(e, LoanBooked | InstalmentDueSoon | InstalmentOverdue | OverdueCured)]
    rebuilt = derive(decisions, movements=movements, loans=loans)
    live = fleet.store.book.state
    assert rebuilt.comparable()["loans"] == live.comparable()["loans"] and rebuilt.episodes == live.episodes
    assert rebuilt.balances == live.balances


async def test_a_repayment_redelivered_is_allocated_once_and_a_term_not_offered_is_refused_with_its_reason() -> None:
    fleet = _fleet()
    topics = fleet.settings.topics
    async with TestKafkaBroker(fleet.broker):
        await fleet.apply("app_story_000001")
        await fleet.publish(topics.lending_requests, fleet.draw("dd_story_000009", 2_000, term=5))
        (refused,) = fleet.out.of(DrawdownRefused)
        assert (refused.category, refused.reason, refused.balance) == ("strategy", "term_not_offered", 0)
        await fleet.publish(topics.lending_requests, fleet.draw("dd_story_000001", 6_000, term=None))  # the policy's default term
        (loan,) = fleet.out.of(LoanBooked)
        assert loan.term_months == default_policy().lending.default_term_months
        fleet.clock.advance(days=10)
        repayment = fleet.repay("rp_story_000001", 1_000)
        await fleet.publish(topics.lending_requests, repayment)
        fleet.clock.advance(days=1)
        await fleet.publish(topics.lending_requests, repayment)  # redelivered a day later: the first answer, not a second allocation
    first, again = fleet.out.of(RepaymentApplied)
    assert first == again and first.interest_fen > 0 and first.allocations[0].due is False  # early: ten days of interest, then principal
    assert fleet.store.book.state.balances[CUSTOMER].principal_fen == 600_000 - first.principal_fen


async def test_a_step_recorded_by_a_replica_that_stopped_before_publishing_is_published_later_by_another_once() -> None:
    fleet = _fleet()
    topics = fleet.settings.topics
    async with TestKafkaBroker(fleet.broker):
        await fleet.apply("app_story_000001")
        await fleet.publish(topics.lending_requests, fleet.draw("dd_story_000001", 3_000))
        (loan,) = fleet.out.of(LoanBooked)
        fleet.clock.set(loan.instalments[0].pay_by + timedelta(hours=1))
        request_time = int(fleet.clock.now().timestamp() * 1000)
        lending = fleet.policy.state.active.lending
        # a replica records the miss in the book, then dies before publishing it
        (recorded,) = (await fleet.store.watch(WatchRequest(request_time, lending.remind_before_days, lending.overdue_steps_days, 1))).notices
        assert (await fleet.policy.servicer.watch()).notices == []  # too fresh: its own replica may still publish it
        fleet.clock.advance(minutes=1)
        (published,) = (await fleet.policy.servicer.watch()).notices
        assert (await fleet.policy.servicer.watch()).notices == []
    assert isinstance(published, InstalmentOverdue) and published.step == recorded.step == 1
    assert published.occurred_at.timestamp() * 1000 == request_time  # stamped when the book recorded it, as the first replica would have
    assert len(fleet.out.of(InstalmentOverdue)) == 1


def test_a_production_fleet_refuses_to_start_with_a_testing_policy() -> None:
    testing = default_policy(lending__testing=True, lending__instalment_interval="PT20S", lending__day_length="PT1S")
    broker = KafkaBroker()
    clock = ManualClock(NOW)
    with pytest.raises(UnsafeEnvironment, match="testing policy"):
        compose_policy(
            Settings(topic_namespace="h", environment="production"), broker=broker, store=MemoryBook(),
            publisher=Outbox(broker, service="policy", clock=clock), registry=CollectorRegistry(), policy=testing, clock=clock,
        )  # fmt: skip
