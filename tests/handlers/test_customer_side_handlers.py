"""The customer's side, through each service's composition root, on the in-memory broker and book:
reviews by a person, suspensions, outage notices, explanations (issue 15)."""

from __future__ import annotations

import time
from datetime import timedelta

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from creditwindow.operator_ops import signed_action
from services.notification.app import compose as compose_notification
from services.notification.memory_ledger import MemoryLedger
from services.notification.memory_webhooks import MemoryWebhookQueue
from services.policy.app import compose
from services.policy.care.reviewing import review_id_for
from services.policy.http_api import explanation_reply
from services.policy.windows.adapters.memory_book import MemoryBook
from shared.contracts import (
    CustomerSuspended,
    DeadLetter,
    DecisionDelayed,
    Event,
    NotificationSent,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    SuspensionLifted,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import Outbox
from shared.references import reference_of
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import Captured, capture
from tests.handlers.fakes import MemoryArchive
from tests.unit.notification.factories import delayed, review_concluded, review_opened
from tests.unit.notification.fakes import FakeSender
from tests.unit.policy.factories import default_policy, score, this_period

CUSTOMER = "cus_unit00000001"


class PolicyWired:
    def __init__(self, store: MemoryBook | None = None, **policy_changes: object) -> None:
        self.settings = Settings(topic_namespace="h", retry_initial_ms=1, retry_max_ms=5)
        self.broker = KafkaBroker()
        self.store = store or MemoryBook()
        self.archive = MemoryArchive()
        self.clock = clock_at(NOW)
        self.policy = compose(
            self.settings, broker=self.broker, store=self.store, publisher=Outbox(self.broker, service="policy", clock=self.clock),
            registry=CollectorRegistry(), policy=default_policy(**policy_changes), clock=self.clock,
            archive=self.archive, references=self.archive,
        )  # fmt: skip
        topics = self.settings.topics
        self.out: Captured = capture(self.broker, topics.windows, topics.review_results, topics.deadletter)

    async def send(self, topic: str, event: Event) -> None:
        # Stamped as the broker stamps the operators' topics: when it reached the log, by the test's clock.
        message = encode(event)
        at = int(self.clock.now().timestamp() * 1000)
        await self.broker.publish(message.value, topic, key=message.key, headers=message.headers, timestamp_ms=at)

    async def apply(self, the_score: object) -> None:
        self.archive.keep_score(the_score)
        await self.send(self.settings.topics.scores, the_score)  # type: ignore[arg-type]

    def review(self, decision: object, outcome: str, limit: int | None = None, **changes: object) -> ReviewDecided:
        reference = reference_of(decision.decision_id)  # type: ignore[attr-defined]
        return signed_action(
            ReviewDecided, self.settings, issued_by="ops_lin", issued_at=NOW - timedelta(minutes=1),
            review_id=review_id_for(reference), reference=reference, decision_id=decision.decision_id,  # type: ignore[attr-defined]
            customer_id=decision.customer_id, outcome=outcome, limit=limit, note="We read your savings again.", **changes,  # type: ignore[attr-defined]
        )  # fmt: skip


def _request(decision: object, text: str | None = None, customer: str = CUSTOMER) -> ReviewRequested:
    return ReviewRequested(correlation_id="req", customer_id=customer, reference=text or reference_of(decision.decision_id), statement="Please look again.")  # type: ignore[attr-defined]


async def test_duplicate_requests_for_review_make_one_review_and_another_customers_reference_leads_nowhere() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score(points=480.0))
        (closed,) = wired.out.of(WindowClosed)
        for text in (reference_of(closed.decision_id), reference_of(closed.decision_id).lower(), str(closed.decision_id)):
            await wired.send(topics.review_requests, _request(closed, text))
        await wired.send(topics.review_requests, _request(closed, customer="cus_someone0000"))
        await wired.send(topics.review_requests, _request(closed, "CW-0000-0000-0000"))
    opened = wired.out.of(ReviewOpened)
    assert {o.event_id for o in opened} == {opened[0].event_id} and opened[0].review_id == review_id_for(reference_of(closed.decision_id))
    assert opened[0].respond_by == NOW + timedelta(days=7) and opened[0].reviewed_category == "credit"  # from when the fleet opened it
    # (the in-memory broker gives every record offset 0, so the two letters share one id here)
    assert {d.error_type for d in wired.out.of(DeadLetter)} == {"review_unknown_reference"}
    assert wired.policy.clerk.desk.reviews.keys() == {opened[0].review_id}


async def test_an_overturn_on_review_is_a_new_decision_through_the_book_that_supersedes_the_reviewed_one() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score(points=480.0))
        (closed,) = wired.out.of(WindowClosed)
        await wired.send(topics.review_requests, _request(closed))
        decided = wired.review(closed, "overturned", limit=5000)
        for _ in range(2):  # redelivered: nothing twice
            await wired.send(topics.operator_actions, decided)
    (opened,) = wired.out.of(WindowOpened)
    assert (opened.trigger, opened.limit, opened.reviewed_decision_id, opened.basis.bound_by) == ("review", 5000, closed.decision_id, "reviewer")
    assert opened.causation_id == decided.event_id and opened.decision_seq > closed.decision_seq
    current = await wired.store.current(CUSTOMER)
    assert current is not None and (current.status, current.limit, current.decision_id) == ("open", 5000, str(opened.decision_id))
    assert wired.store.book.state.budgets[this_period(NOW)].exposure == 5000  # charged to the budget like any other
    concluded = wired.out.of(ReviewConcluded)
    assert {c.event_id for c in concluded} == {concluded[0].event_id}
    assert (concluded[0].outcome, concluded[0].new_decision_id) == ("overturned", opened.decision_id)
    assert len(concluded) == 2 and not wired.out.of(DeadLetter)  # the redelivery concludes again (one id), refuses nothing
    # the rebuild from the log orders the overturn as the decision it reviewed: the same book
    from services.policy.record.rebuild import derive

    decisions = [e for e in wired.out.events if isinstance(e, (WindowOpened, WindowClosed))]
    assert derive(decisions).comparable() == wired.store.book.state.comparable()


async def test_an_overturn_never_supersedes_the_window_of_a_newer_application() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score(points=480.0))
        (closed,) = wired.out.of(WindowClosed)
        await wired.apply(score(application_id="app_unit_000002"))
        (newer,) = wired.out.of(WindowOpened)
        await wired.send(topics.operator_actions, wired.review(closed, "overturned", limit=5000))
    on_review = [d for d in wired.out.of(WindowClosed) if d.trigger == "review"]
    assert [(d.category, d.reason) for d in on_review] == [("strategy", "newer_application")]
    current = await wired.store.current(CUSTOMER)
    assert current is not None and current.decision_id == str(newer.decision_id)


async def test_an_upheld_review_is_concluded_and_a_forged_review_decision_is_refused() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score(points=480.0))
        (closed,) = wired.out.of(WindowClosed)
        forged = wired.review(closed, "overturned", limit=5000).model_copy(update={"limit": 200_000})
        await wired.send(topics.operator_actions, forged)
        unsigned = forged.model_copy(update={"signature": "0" * 128, "key_id": "nobody"})
        await wired.send(topics.operator_actions, unsigned)
        await wired.send(topics.operator_actions, wired.review(closed, "upheld"))
    assert not wired.out.of(WindowOpened)
    assert {d.error_type for d in wired.out.of(DeadLetter)} <= {"operator_forged", "operator_unknown_key"}  # offset 0 here: one id
    (concluded,) = wired.out.of(ReviewConcluded)
    assert (concluded.outcome, concluded.new_decision_id, concluded.note) == ("upheld", None, "We read your savings again.")
    refused = wired.policy.metrics.operator_actions.labels("ReviewDecided", "refused")._value.get()
    assert refused == 2


async def test_a_suspension_closes_the_open_window_and_the_next_applications_until_lifted() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    until = NOW + timedelta(days=14)
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score())
        (first,) = wired.out.of(WindowOpened)
        suspend = signed_action(CustomerSuspended, wired.settings, issued_by="ops_lin", issued_at=NOW - timedelta(minutes=1),
                                customer_id=CUSTOMER, reason="suspected_fraud", until=until)  # fmt: skip
        await wired.send(topics.operator_actions, suspend)
        await wired.apply(score(application_id="app_unit_000002"))
        lift = signed_action(SuspensionLifted, wired.settings, issued_by="ops_lin", issued_at=NOW, customer_id=CUSTOMER)
        await wired.send(topics.operator_actions, lift)
        await wired.apply(score(application_id="app_unit_000003"))
    closures = wired.out.of(WindowClosed)
    by_trigger = {c.trigger: c for c in closures}
    assert (by_trigger["suspension"].reason, by_trigger["suspension"].closes_decision_id, by_trigger["suspension"].retry_after) == ("customer_suspended", first.decision_id, until)
    applied = by_trigger["application"]
    assert (applied.application_id, applied.category, applied.reason, applied.retry_after) == ("app_unit_000002", "strategy", "customer_suspended", until)
    assert [o.application_id for o in wired.out.of(WindowOpened)] == ["app_unit_000001", "app_unit_000003"]  # lifted: decided as any other
    assert wired.store.book.state.budgets[this_period(NOW)].exposure == wired.out.of(WindowOpened)[-1].limit


async def test_a_forged_suspension_is_refused_and_suspends_nobody() -> None:
    wired = PolicyWired()
    async with TestKafkaBroker(wired.broker):
        suspend = signed_action(CustomerSuspended, wired.settings, issued_by="ops_lin", issued_at=NOW, customer_id=CUSTOMER, reason="collections")
        await wired.send(wired.settings.topics.operator_actions, suspend.model_copy(update={"customer_id": "cus_victim000001"}))
        await wired.apply(score(customer_id="cus_victim000001"))
    assert [d.error_type for d in wired.out.of(DeadLetter)] == ["operator_forged"]
    assert len(wired.out.of(WindowOpened)) == 1 and wired.policy.clerk.desk.suspensions == {}


async def test_operators_actions_copied_as_history_are_not_carried_out_again_but_still_keep_the_desk() -> None:
    wired = PolicyWired()
    topics = wired.settings.topics
    history = {"migrated_from": "credit.reviews[0]@3"}
    async with TestKafkaBroker(wired.broker):
        await wired.apply(score(points=480.0))
        (closed,) = wired.out.of(WindowClosed)
        decided = encode(wired.review(closed, "overturned", limit=5000))
        at = int(wired.clock.now().timestamp() * 1000)  # the broker's time on the operators' topic
        await wired.broker.publish(decided.value, topics.operator_actions, key=decided.key, headers={**decided.headers, **history}, timestamp_ms=at)
        suspend = encode(signed_action(CustomerSuspended, wired.settings, issued_by="ops_lin", issued_at=NOW - timedelta(minutes=1),
                                       customer_id="cus_unit00000002", reason="collections"))  # fmt: skip
        await wired.broker.publish(suspend.value, topics.operator_actions, key=suspend.key, headers={**suspend.headers, **history}, timestamp_ms=at)
    assert not wired.out.of(WindowOpened) and not wired.out.of(ReviewConcluded)  # carried out before the split: not again
    assert set(wired.policy.clerk.desk.suspensions) == {"cus_unit00000002"}  # the desk is history: it keeps it


class FlakyBook(MemoryBook):
    """Redis away for the first `away_s` seconds."""

    def __init__(self, away_s: float) -> None:
        super().__init__()
        self.back_at = time.monotonic() + away_s

    async def post(self, requests, budgets=None):  # type: ignore[no-untyped-def]
        if time.monotonic() < self.back_at:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:26390. Connection refused.")
        return await super().post(requests, budgets)


async def test_an_application_that_waits_for_redis_gets_one_delay_notice_then_exactly_one_decision() -> None:
    wired = PolicyWired(store=FlakyBook(away_s=2.0), customer_care__delay_notice_after="PT1S")
    waiting = score().model_copy(update={"occurred_at": NOW - timedelta(seconds=30)})  # already past the bound
    fresh = score(application_id="app_unit_000002", customer_id="cus_unit00000002").model_copy(update={"occurred_at": NOW + timedelta(hours=1)})
    async with TestKafkaBroker(wired.broker):
        wired.archive.keep_score(waiting)
        message = encode(waiting)
        await wired.broker.publish(message.value, wired.settings.topics.scores, key=message.key, headers=message.headers)
        message = encode(fresh)
        await wired.broker.publish(message.value, wired.settings.topics.scores, key=message.key, headers=message.headers)
    (notice,) = wired.out.of(DecisionDelayed)
    assert (notice.application_id, notice.customer_id) == (waiting.application_id, waiting.customer_id)
    assert "ConnectionError" in notice.cause and notice.waiting_since == waiting.occurred_at
    decisions = wired.out.of(WindowOpened)
    assert sorted(d.application_id for d in decisions) == ["app_unit_000001", "app_unit_000002"]
    assert next(d for d in decisions if d.application_id == waiting.application_id).decision_id == notice.decision_id  # the reference told
    assert wired.policy.metrics.delays._value.get() == 1


async def test_an_explanation_is_served_by_reference_and_an_unknown_one_is_a_plain_404() -> None:
    wired = PolicyWired()
    async with TestKafkaBroker(wired.broker):
        the_score = score(inquiries=6)
        await wired.apply(the_score)
    (closed,) = wired.out.of(WindowClosed)
    status, body = await explanation_reply(reference_of(closed.decision_id).lower(), wired.archive, wired.policy.state)
    assert status == 200
    assert (body["reference"], body["reason"], body["policy_version"]) == (reference_of(closed.decision_id), "knockout_inquiries", "default@1")
    assert body["threshold"]["threshold"] == 3 and body["rules"][-1]["rule"] == "knockout_inquiries" and body["score"]["grade"] == "A"
    assert "pd" not in body["score"]  # the customer's view
    missing = await explanation_reply("CW-0000-0000-0000", wired.archive, wired.policy.state)
    garbage = await explanation_reply("<script>", wired.archive, wired.policy.state)
    assert missing[0] == garbage[0] == 404 and set(missing[1]) == set(garbage[1]) == {"reference", "error"}


class NotificationWired:
    def __init__(self, ledger: object | None = None) -> None:
        self.settings = Settings(topic_namespace="h")
        self.broker = KafkaBroker()
        self.ledger = ledger or MemoryLedger(clock_at(NOW))
        compose_notification(
            self.settings, broker=self.broker, ledger=self.ledger, queue=MemoryWebhookQueue(clock_at(NOW)), sender=FakeSender([]),  # type: ignore[arg-type]
            publisher=Outbox(self.broker, service="notification", clock=clock_at(NOW)), registry=CollectorRegistry(), clock=clock_at(NOW),
        )  # fmt: skip
        self.out = capture(self.broker, self.settings.topics.notifications, self.settings.topics.deadletter)

    async def send(self, topic: str, event: Event) -> None:
        message = encode(event)
        await self.broker.publish(message.value, topic, key=message.key, headers=message.headers)


class RedisAway(MemoryLedger):
    async def claim(self, decisions):  # type: ignore[no-untyped-def]
        if decisions:
            raise AssertionError("a delay notice must not need the ledger: Redis may be what is away")
        return []


async def test_a_delay_is_told_once_without_redis() -> None:
    wired = NotificationWired(ledger=RedisAway(clock_at(NOW)))
    async with TestKafkaBroker(wired.broker):
        for _ in range(3):
            await wired.send(wired.settings.topics.windows, delayed("en"))
    (notice,) = wired.out.of(NotificationSent)
    assert (notice.about, notice.outcome, notice.category, notice.decision_seq) == ("delay", "pending", "system", 0)
    assert notice.title == "Your application is taking longer than usual" and "not about your credit" in notice.body
    assert notice.reference == reference_of(delayed().decision_id)


async def test_a_review_received_and_upheld_are_told_once_each_and_an_overturn_by_its_decision_only() -> None:
    wired = NotificationWired()
    topics = wired.settings.topics
    async with TestKafkaBroker(wired.broker):
        for event in (review_opened("zh-CN"), review_opened("zh-CN")):
            await wired.send(topics.review_results, event)
        upheld = review_concluded("en").model_copy(update={"event_id": review_concluded().review_id.__class__(int=99)})
        await wired.send(topics.review_results, upheld)
        await wired.send(topics.review_results, upheld)
        await wired.send(topics.review_results, review_concluded("en", outcome="overturned").model_copy(update={"event_id": upheld.event_id.__class__(int=7)}))
    notices = wired.out.of(NotificationSent)
    assert [(n.about, n.outcome, n.title) for n in notices] == [
        ("review", "pending", "我们已收到您的人工复核申请"),
        ("review", "closed", "Review by a person: the decision stands"),
    ]
    assert not wired.out.of(DeadLetter)
    # a notice is outside the order of decisions: a decision after it is not stale
    assert wired.ledger.ledger.state.seqs == {}  # type: ignore[attr-defined]


async def test_garbage_or_a_request_on_the_review_results_topic_is_dead_lettered_and_the_next_result_told() -> None:
    request = encode(ReviewRequested(correlation_id="r", customer_id=CUSTOMER, reference="CW-7WN9-R6VQ-T175"))
    for poison, headers, error_type in ((b"\x00not json", {}, "undecodable"), (request.value, request.headers, "wrong_topic")):
        wired = NotificationWired()  # one poison each: the in-memory broker gives every record offset 0 (one letter id)
        topics = wired.settings.topics
        async with TestKafkaBroker(wired.broker):
            await wired.broker.publish(poison, topics.review_results, key=CUSTOMER.encode(), headers=headers)
            await wired.send(topics.review_results, review_opened("en"))
        (letter,) = wired.out.of(DeadLetter)
        assert (letter.error_type, letter.failed_by) == (error_type, "notification")
        if error_type == "wrong_topic":
            assert "ReviewRequested does not belong on h.credit.review-results" in letter.error and "credit.review-requests" in letter.error
        assert len(wired.out.of(NotificationSent)) == 1
