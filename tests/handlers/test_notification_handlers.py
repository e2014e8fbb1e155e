"""The notification handler and webhook dispatcher with the in-memory broker, the in-memory ledger and
webhook queue, and a real local HTTP receiver standing in for a partner."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable

import pytest
import structlog
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.notification.app import DispatchTiming, compose
from services.notification.disclosure import Disclosure, render
from services.notification.http_webhook import HttpWebhookSender
from services.notification.memory_ledger import MemoryLedger
from services.notification.memory_webhooks import MemoryWebhookQueue
from services.notification.ports import Answer, DeliverySource
from services.notification.redelivery import redelivery
from services.notification.webhook_queue import QueuedDelivery
from services.notification.webhooks import Backoff
from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from shared.clock import Clock
from shared.contracts import DeadLetter, Decision, NotificationSent, WindowClosed
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import Record, encode
from tests.clocks import NOW, RunningClock, clock_at
from tests.handlers.capture import Captured, capture
from tests.unit.notification.fakes import FakeSender
from tests.unit.notification.receiver import Receiver, running_receiver
from tests.unit.policy.factories import default_policy, score

KEY = b"test-webhook-key"


def _decision(seq: int = 1, partner: str | None = None, locale: str = "zh-CN", **kwargs: object) -> Decision:
    proposal = propose(score(**kwargs), default_policy(), NOW)  # type: ignore[arg-type]
    limit = getattr(proposal.verdict, "limit", 0)
    decision = decision_event(
        proposal,
        Posting(fresh=True, seq=seq, granted=limit, refusal=None, programme_part=0, available=10**7),
        default_policy(),
        NOW,
    )
    return decision.model_copy(update={"partner_id": partner, "locale": locale})


class Wired:
    """The notification service built by its own composition root, in memory, with a quick dispatcher.

    `queue_clock` stands for Redis's TIME (the queue's clock): a test that moves it waits for no real
    time; without one the queue's time runs (the dispatcher in the background waits real backoffs)."""

    def __init__(
        self,
        urls: dict[str, str] | None = None,
        sender: object | None = None,
        timeout_s: float = 0.5,
        queue_clock: Clock | None = None,
        retry_s: float = 2.0,
    ) -> None:
        partners = {name: {"url": url, "key": KEY.decode()} for name, url in (urls or {}).items()}
        self.settings = Settings(topic_namespace="h", webhook_partners=partners, webhook_retry_hours=retry_s / 3600)
        self.broker = KafkaBroker()
        self.clock = clock_at(NOW)
        queue_clock = queue_clock or RunningClock()
        self.ledger = MemoryLedger(queue_clock)
        self.queue = MemoryWebhookQueue(queue_clock)
        self.sender = sender or HttpWebhookSender(timeout_s=timeout_s)
        notification = compose(
            self.settings,
            broker=self.broker,
            ledger=self.ledger,
            queue=self.queue,
            sender=self.sender,  # type: ignore[arg-type]
            publisher=Outbox(self.broker, service="notification", clock=clock_at(NOW)),
            registry=CollectorRegistry(),
            clock=self.clock,
            timing=DispatchTiming(backoff=Backoff(initial_s=0.05, max_s=0.2), poll_s=0.05, lease_margin_s=0.5),
        )
        self.dispatcher = notification.dispatcher
        self.out: Captured = capture(self.broker, self.settings.topics.notifications, self.settings.topics.deadletter)

    async def send(self, decision: Decision, headers: list[tuple[str, str]] | None = None) -> None:
        message = encode(decision)
        await self.broker.publish(
            message.value, self.settings.topics.windows, key=message.key, headers={**message.headers, **dict(headers or ())}
        )

    def notices(self, channel: str) -> list[NotificationSent]:
        return [n for n in self.out.of(NotificationSent) if n.channel == channel]

    def queued(self) -> list[QueuedDelivery]:
        return list(self.queue.queue.state.deliveries.values())


async def _eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- the inbox -------------------------------------------------------------------------------------


async def test_each_decision_is_announced_once_even_when_redelivered() -> None:
    wired = Wired()
    decision = _decision()
    async with TestKafkaBroker(wired.broker):
        for _ in range(3):
            await wired.send(decision)
    (notice,) = wired.out.of(NotificationSent)
    assert notice.decision_id == decision.decision_id
    assert notice.outcome == "opened" and notice.channel == "inbox"


async def test_a_decision_older_than_the_customers_latest_is_not_announced() -> None:
    wired = Wired(urls={"p1": "http://127.0.0.1:9/hook"})
    newer = _decision(seq=2, application_id="app_unit_000002", partner="p1")
    older = _decision(seq=1, application_id="app_unit_000001", partner="p1")
    async with TestKafkaBroker(wired.broker):
        await wired.send(newer)
        await wired.send(older)
    assert [n.decision_id for n in wired.out.of(NotificationSent)] == [newer.decision_id]
    assert [d.decision for d in wired.queued()] == [str(newer.decision_id)]


async def test_a_closure_is_told_in_the_customers_language_with_its_category() -> None:
    wired = Wired()
    async with TestKafkaBroker(wired.broker):
        await wired.send(_decision(overdue=1))
        await wired.send(
            _decision(overdue=1, locale="en", application_id="app_unit_000009", customer_id="cus_unit00000009")
        )
    zh, en = wired.out.of(NotificationSent)
    assert zh.outcome == "closed" and zh.category == "credit"
    assert zh.locale == "zh-CN" and "逾期" in zh.body and "信用评估结果" in zh.body
    assert en.locale == "en" and "overdue" in en.body and "a credit assessment" in en.body


async def test_every_drawdown_outcome_is_told_once_in_the_inbox_in_any_order_and_never_stale() -> None:
    from tests.unit.notification.factories import drawdown

    wired = Wired(urls={"p1": "http://127.0.0.1:9/hook"})
    approved = drawdown("en")
    refused = drawdown("zh-CN", "above_available", event_id=uuid.uuid4(), balance_seq=1)  # an older balance sequence
    repaid = drawdown("en", "repaid", event_id=uuid.uuid4())
    async with TestKafkaBroker(wired.broker):
        for event in (approved, approved, refused, repaid):  # a redelivery, and an outcome of an older sequence
            message = encode(event)
            await wired.broker.publish(message.value, wired.settings.topics.lending_results, key=message.key, headers=message.headers)
    notices = wired.out.of(NotificationSent)
    assert [(n.outcome, n.movement_id) for n in notices] == [
        ("drawdown_approved", "dd_gold_000001"), ("drawdown_refused", "dd_gold_000001"), ("repayment_applied", "rp_gold_000001"),
    ]  # fmt: skip
    assert all(n.channel == "inbox" for n in notices) and not wired.queued()  # partners hear of windows only
    assert "CN¥5,000" in notices[0].body and notices[1].category == "credit" and "可借" in notices[1].body
    assert not wired.out.of(DeadLetter)


async def test_a_lending_result_copied_as_history_by_the_split_is_not_told_again() -> None:
    from tests.unit.notification.factories import drawdown

    wired = Wired()
    history, news = drawdown("en"), drawdown("en", "repaid", event_id=uuid.uuid4())
    async with TestKafkaBroker(wired.broker):
        for event, headers in ((history, {"migrated_from": "credit.drawdowns[0]@12"}), (news, {})):
            message = encode(event)
            await wired.broker.publish(message.value, wired.settings.topics.lending_results, key=message.key, headers={**message.headers, **headers})
    assert [n.movement_id for n in wired.out.of(NotificationSent)] == ["rp_gold_000001"]
    assert not wired.out.of(DeadLetter)


# --- enqueueing webhooks ------------------------------------------------------------------------------


async def test_a_partners_decision_is_enqueued_for_its_webhook_once_even_when_redelivered() -> None:
    wired = Wired(urls={"p1": "http://127.0.0.1:9/hook"})
    decision = _decision(partner="p1")
    async with TestKafkaBroker(wired.broker):
        for _ in range(3):
            await wired.send(decision)
    (entry,) = wired.queued()
    assert entry.partner == "p1" and entry.decision == str(decision.decision_id)
    assert DeliverySource.from_json(entry.source or "").topic == wired.settings.topics.windows
    assert len(wired.notices("inbox")) == 1
    assert wired.notices("webhook") == []  # published only once the partner has it


async def test_a_decision_whose_partner_has_no_webhook_is_told_in_the_inbox_only() -> None:
    wired = Wired(urls={"p1": "http://127.0.0.1:9/hook"})
    async with TestKafkaBroker(wired.broker):
        await wired.send(_decision(partner="p2"))
        await wired.send(_decision(partner=None, application_id="app_unit_000003", customer_id="cus_unit00000003"))
    assert wired.queued() == []
    assert len(wired.notices("inbox")) == 2


# --- delivering them ------------------------------------------------------------------------------------


async def test_a_webhook_failing_at_first_is_delivered_once_signed_and_announced_once() -> None:
    receiver = Receiver(KEY, answer=lambda key, before: 503 if before < 2 else 200, clock=clock_at(NOW))
    with running_receiver(receiver):
        wired = Wired(urls={"p1": receiver.url})
        decision = _decision(partner="p1", locale="en")
        async with TestKafkaBroker(wired.broker):
            await wired.dispatcher.start()
            try:
                await wired.send(decision)
                await wired.send(decision)
                await _eventually(lambda: len(wired.notices("webhook")) == 1)
                # Finished is final: nothing claims a finished delivery, so no second POST can follow.
                await _eventually(lambda: set(wired.queue.states().values()) == {"done"})
            finally:
                await wired.dispatcher.stop()
    tries = receiver.seen
    assert [t.status for t in tries] == [503, 503, 200]
    assert all(t.signature_ok for t in tries)
    assert [t.attempt for t in tries] == [1, 2, 3]
    assert len({t.idempotency_key for t in tries}) == 1
    (sent,) = wired.notices("webhook")
    assert tries[0].idempotency_key == str(sent.notification_id)
    assert sent.decision_id == decision.decision_id and sent.locale == "en"
    body = tries[-1].body
    assert body["decision_id"] == str(decision.decision_id) and body["type"] == "window.opened"
    assert body["title"] == sent.title and body["reference"] == sent.reference
    assert wired.queue.states() == {str(sent.notification_id): "done"}


async def test_a_partner_that_always_fails_ends_in_a_dead_letter_with_the_reason() -> None:
    receiver = Receiver(KEY, answer=lambda key, before: 500, clock=clock_at(NOW))
    with running_receiver(receiver):
        wired = Wired(urls={"p1": receiver.url}, retry_s=0.5)
        decision = _decision(partner="p1", overdue=1)
        async with TestKafkaBroker(wired.broker):
            await wired.dispatcher.start()
            try:
                await wired.send(decision)
                await _eventually(lambda: len(wired.out.of(DeadLetter)) == 1)
                await _eventually(lambda: set(wired.queue.states().values()) == {"dead"})
            finally:
                await wired.dispatcher.stop()
    tries = len(receiver.seen)
    assert tries >= 3  # retried with backoff until the budget (0.5 s) would be passed
    (letter,) = wired.out.of(DeadLetter)
    assert letter.error_type == "webhook_undeliverable" and letter.failed_by == "notification"
    assert "partner p1" in letter.error and "HTTP 500" in letter.error and f"{tries} attempts" in letter.error
    assert "retry budget" in letter.error and letter.headers["webhook_partner"] == "p1"
    assert letter.source_topic == wired.settings.topics.windows and letter.source_key == decision.customer_id
    original = WindowClosed.model_validate_json(__import__("base64").b64decode(letter.payload_b64))
    assert original.decision_id == decision.decision_id
    assert wired.notices("webhook") == [] and len(wired.notices("inbox")) == 1


async def test_a_hanging_partner_does_not_hold_up_other_customers_notifications() -> None:
    # The partner answers after 5 s: an inbox that waited for it would take that long; one that does
    # not wait tells the others in milliseconds, however busy the machine (no tight time bound here).
    receiver = Receiver(KEY, delay_s=5.0, clock=clock_at(NOW))
    with running_receiver(receiver):
        wired = Wired(urls={"slow": receiver.url}, timeout_s=6.0)
        async with TestKafkaBroker(wired.broker):
            await wired.dispatcher.start()
            try:
                await wired.send(_decision(partner="slow"))
                await _eventually(lambda: len(receiver.seen) > 0 or wired.queued()[0].lease is not None, 2)
                started = time.monotonic()
                for n in range(2, 5):
                    await wired.send(_decision(application_id=f"app_unit_00000{n}", customer_id=f"cus_unit0000000{n}"))
                told_in = time.monotonic() - started
            finally:
                await wired.dispatcher.stop(grace_s=0)
    assert len(wired.notices("inbox")) == 4
    assert told_in < receiver.delay_s, f"the inbox waited {told_in:.2f} s for a partner"


async def test_an_answer_the_partner_means_is_not_retried() -> None:
    wired = Wired(urls={"p1": "http://partner.invalid/hook"}, sender=FakeSender([Answer(422)]))
    async with TestKafkaBroker(wired.broker):
        await wired.send(_decision(partner="p1"))
        await wired.dispatcher.run_once()
    assert len(wired.sender.posts) == 1  # type: ignore[attr-defined]
    (letter,) = wired.out.of(DeadLetter)
    assert "HTTP 422: not retried" in letter.error


async def test_a_delivery_whose_dispatcher_died_is_resumed_after_its_lease() -> None:
    sender = FakeSender([Answer(200)])
    clock = clock_at(NOW)
    wired = Wired(urls={"p1": "http://partner.invalid/hook"}, sender=sender, queue_clock=clock)
    async with TestKafkaBroker(wired.broker):
        await wired.send(_decision(partner="p1"))
        abandoned = await wired.queue.claim(10, lease_ms=200)  # a replica that dies holding it
        assert len(abandoned) == 1
        assert await wired.dispatcher.run_once() == 0  # leased: nobody else takes it
        clock.advance(seconds=0.25)  # the lease runs out
        assert await wired.dispatcher.run_once() == 1
        assert not await wired.queue.settle(abandoned[0], "delivered")  # the dead holder's word counts no more
    assert len(sender.posts) == 1
    assert sender.posts[0][2]["X-Creditwindow-Attempt"] == "2"
    assert len(wired.notices("webhook")) == 1


async def test_a_delivery_posted_but_not_announced_is_announced_without_posting_again() -> None:
    sender = FakeSender([Answer(200)])
    clock = clock_at(NOW)
    wired = Wired(urls={"p1": "http://partner.invalid/hook"}, sender=sender, queue_clock=clock)
    async with TestKafkaBroker(wired.broker):
        await wired.send(_decision(partner="p1"))
        (claimed,) = await wired.queue.claim(10, lease_ms=100)
        await wired.queue.settle(claimed, "delivered")  # the POST went through, then the process died
        clock.advance(seconds=0.15)  # its lease runs out
        await wired.dispatcher.run_once()
    assert sender.posts == []
    assert len(wired.notices("webhook")) == 1


async def test_a_webhook_given_up_is_queued_again_once_from_its_decision_and_delivered() -> None:
    sender = FakeSender([Answer(500), Answer(500), Answer(500), Answer(200)])
    clock = clock_at(NOW)
    wired = Wired(urls={"p1": "http://partner.invalid/hook"}, sender=sender, queue_clock=clock)
    decision = _decision(partner="p1", locale="en")
    async with TestKafkaBroker(wired.broker):
        await wired.send(decision)
        for _ in range(3):  # 500 until the 2 s budget is spent
            await wired.dispatcher.run_once()
            clock.advance(seconds=1.0)
        (letter,) = wired.out.of(DeadLetter)
        assert set(wired.queue.states().values()) == {"dead"} and "3 attempts" in letter.error

        # What `creditwindow dlq replay` does: read the decision at the letter's position on the log
        # (here the record as it was), build the delivery from it, and queue it again for the letter.
        at = Record(letter.source_topic, letter.source_partition, letter.source_offset, (letter.source_key or "").encode(),
                    base64.b64decode(letter.payload_b64), tuple((k, v.encode()) for k, v in letter.headers.items() if k != "webhook_partner"))  # fmt: skip
        delivery = redelivery(letter, at, decision, at=NOW)
        assert not isinstance(delivery, str)
        assert [await wired.queue.requeue([delivery]) for _ in range(2)] == [1, 0]  # asked twice: queued again once
        await wired.dispatcher.run_once()
        assert await wired.dispatcher.run_once() == 0
    assert len(sender.posts) == 4 and sender.posts[-1][2]["X-Creditwindow-Attempt"] == "1"
    (sent,) = wired.notices("webhook")
    assert sent.decision_id == decision.decision_id
    assert len(wired.notices("inbox")) == 1  # the customer is not told twice
    assert len(wired.out.of(DeadLetter)) == 1


async def test_a_decision_published_again_with_replay_headers_queues_nothing_again() -> None:
    wired = Wired(urls={"p1": "http://partner.invalid/hook"}, sender=FakeSender([Answer(200)]))
    decision = _decision(partner="p1")
    async with TestKafkaBroker(wired.broker):
        await wired.send(decision, headers=[("replay_of", "some-letter"), ("webhook_partner", "p1")])
        await wired.send(decision, headers=[("replay_of", "another-letter"), ("webhook_partner", "p1")])
    assert wired.queue.queue.state.replayed == {} and len(wired.queued()) == 1
    assert len(wired.notices("inbox")) == 1


# --- poison and privacy ---------------------------------------------------------------------------


async def test_a_decision_that_cannot_be_rendered_is_dead_lettered_and_the_next_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.notification import announcing

    def broken_for_one(decision: Decision) -> Disclosure:
        if decision.customer_id == "cus_unit00000007":
            raise KeyError("template variable")
        return render(decision)

    monkeypatch.setattr(announcing, "render", broken_for_one)
    wired = Wired()
    poison = _decision(application_id="app_unit_000007", customer_id="cus_unit00000007")
    async with TestKafkaBroker(wired.broker):
        await wired.send(poison)
        await wired.send(_decision())
    (letter,) = wired.out.of(DeadLetter)
    assert letter.error_type == "unrenderable" and "KeyError" in letter.error
    assert letter.source_key == "cus_unit00000007"
    assert [n.customer_id for n in wired.notices("inbox")] == ["cus_unit00000001"]


async def test_webhook_logs_name_ids_never_the_message_or_the_partners_url() -> None:
    secret_url = "http://127.0.0.1:9/hook?token=s3cret-partner-token"  # port 9: nothing listens
    clock = clock_at(NOW)
    wired = Wired(urls={"p1": secret_url}, queue_clock=clock)
    decision = _decision(partner="p1", locale="en")
    with structlog.testing.capture_logs() as logs:
        async with TestKafkaBroker(wired.broker):
            await wired.send(decision)
            for _ in range(4):  # tries until the 2 s budget is spent, each due once its backoff has passed
                await wired.dispatcher.run_once()
                clock.advance(seconds=1.0)
    events = [entry["event"] for entry in logs]
    assert "webhook_attempt_failed" in events and "webhook_dead_lettered" in events
    text = repr(logs) + "".join(letter.error for letter in wired.out.of(DeadLetter))
    assert "s3cret" not in text
    assert render(decision).title not in text and "Limit:" not in text
    assert all(entry.get("customer_id") in (None, decision.customer_id) for entry in logs)
