"""Notifications on the real broker and Redis: each category told once, in the customer's language,
in the inbox and to partners' webhooks (a real local HTTP receiver), with dead letters for a partner
that never answers well, and a webhook queue shared safely by several dispatchers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml
from redis.asyncio import Redis

from creditwindow.policy_ops import signed_update
from services.notification.channels import webhook_delivery_for
from services.notification.disclosure import render
from services.notification.dispatching import WebhookDispatcher
from services.notification.http_webhook import HttpWebhookSender
from services.notification.ports import DeliverySource, Partner, WebhookDelivery
from services.notification.redis_webhooks import STATE, RedisWebhookQueue
from services.notification.webhooks import Backoff
from services.policy.control.document import load_policy
from shared.contracts import (
    ApplicationFacts,
    DeadLetter,
    NotificationSent,
    PolicyUpdated,
    Reason,
    RecourseAction,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
    deterministic_id,
)
from shared.messaging import Outbox, ensure_topics, make_broker
from shared.messaging.topic_io import TopicReader
from shared.reasons import CATEGORIES
from shared.redis_state import StateGuard
from shared.settings import Settings
from tests.clocks import WALL
from tests.conftest import settings_for
from tests.e2e.conftest import start_fleet
from tests.unit.notification.factories import opened
from tests.unit.notification.receiver import Receiver, running_receiver

WEBHOOK_KEYS = {"p1": "e2e-webhook-key-of-partner-one", "p2": "e2e-webhook-key-of-partner-two"}
# Tries at about 0, 1 and 3 s (backoff 1 s, doubled, with jitter): a 5.4 s budget allows three.
RETRY_HOURS = "0.0015"
PAUSED_REGION = "CN-XZ"


def _score(n: int, *, locale: str, partner: str | None = None, region: str = "CN-SH", income: int = 120_000,
           points: float = 600.0, outcome: str = "scored") -> ScoreComputed:  # fmt: skip
    application_id = f"app_e2enote_{n:04d}"
    scored = outcome == "scored"
    return ScoreComputed(
        correlation_id=application_id,
        producer="e2e",
        application_id=application_id,
        customer_id=f"cus_e2enote_{n:04d}",
        facts=ApplicationFacts(
            segment="individual",
            region=region,
            channel="app",
            annual_income=income,
            requested_amount=5000,
            locale=locale,
            partner_id=partner,  # type: ignore[arg-type]
        ),
        outcome=outcome,  # type: ignore[arg-type]
        failure=None if scored else "scoring_error: RuntimeError",
        model_id="german-woe@1+e2e" if scored else None,
        points=points if scored else None,
        pd=0.04 if scored else None,
        grade="A" if scored else None,
        reasons=(
            (
                Reason(code="R_CHECKING_ACCOUNT", characteristic="checking_account", points_lost=40.0),
                Reason(code="R_CREDIT_HISTORY", characteristic="credit_history", points_lost=25.0),
            )
            if scored
            else ()
        ),
        recourse=(
            (
                RecourseAction(
                    code="A_SHORTER_DURATION",
                    characteristic="duration_months",
                    current="48",
                    target="24",
                    points_gain=20.0,
                ),
            )
            if scored
            else ()
        ),
    )


def _pause_region(settings: Settings) -> PolicyUpdated:
    data = load_policy(settings.policy_path).model_dump(mode="json")
    data["version"] = data["version"] + 1
    data["pauses"]["regions"] = [PAUSED_REGION]
    return signed_update(yaml.safe_dump(data), settings, issued_by="op_e2e")


async def test_each_category_is_told_once_in_the_customers_language_in_the_inbox_and_to_partners(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    # Each partner checks signatures with its own key: a message signed for one fails at the other.
    flaky = Receiver(WEBHOOK_KEYS["p1"].encode(), answer=lambda key, before: 503 if before < 2 else 200)
    broken = Receiver(WEBHOOK_KEYS["p2"].encode(), answer=lambda key, before: 500)
    with running_receiver(flaky), running_receiver(broken):
        partners = {"p1": {"url": flaky.url, "key": WEBHOOK_KEYS["p1"]}, "p2": {"url": broken.url, "key": WEBHOOK_KEYS["p2"]}}
        running = await start_fleet(
            endpoints, namespace, log_root, services=("policy", "notification"),
            env={"CW_WEBHOOK_PARTNERS": json.dumps(partners), "CW_WEBHOOK_RETRY_HOURS": RETRY_HOURS},
        )  # fmt: skip
        topics = running.settings.topics
        watched = [topics.windows, topics.notifications, topics.deadletter]
        try:
            scores = [
                _score(1, locale="zh-CN", partner="p1"),  # opened
                _score(2, locale="en", partner="p2", points=400.0),  # credit (below the cut-off)
                _score(3, locale="zh-CN", outcome="unscorable"),  # system
                _score(4, locale="en", income=1_000),  # regulatory (income cap)
                _score(5, locale="en", region=PAUSED_REGION, partner="p1"),  # opened, then closed by the pause
            ]
            await running.publish(topics.scores, [*scores, scores[0]])  # one duplicated
            await running.read(watched, lambda seen: len(_decisions(seen)) >= 5, timeout_s=30)

            # A signed policy update pauses the region: the open window there closes (strategy),
            # and a new application from there is closed as strategy too.
            await running.publish(topics.policy, [_pause_region(running.settings)])
            await running.read(watched, lambda seen: any(d.trigger == "pause" for d in _decisions(seen)), timeout_s=20)
            await running.publish(topics.scores, [_score(6, locale="en", region=PAUSED_REGION)])

            def complete(seen: list) -> bool:  # type: ignore[type-arg]
                return (
                    len(_notices(seen, "inbox")) >= 7
                    and len(_notices(seen, "webhook")) >= 3
                    and len(_letters(seen)) >= 1
                )

            seen = await running.read(watched, complete, timeout_s=30)
            decisions = [r for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))]
            assert len(decisions) == 7

            # Every decision again, and a stale one (an older sequence for customer 5).
            closure = next(d for d in _decisions(seen) if d.trigger == "pause")
            stale = closure.model_copy(
                update={
                    "decision_id": deterministic_id("stale", closure.decision_id),
                    "decision_seq": closure.decision_seq - 1,
                }
            )
            for record in decisions:
                await running.publish_raw(
                    topics.windows, record.record.value or b"", key=record.record.key, headers=record.record.headers
                )
            await running.publish(topics.windows, [stale])
            # Consumed and committed: were anything told twice, it was published before the commit.
            await running.consumed("notification", [topics.windows])
            seen = await running.drain(watched, idle_s=2)
            assert not running.fleet.exited()
        finally:
            running.fleet.stop()

    decisions = {d.decision_id: d for d in _decisions(seen)}
    inbox, webhook, letters = _notices(seen, "inbox"), _notices(seen, "webhook"), _letters(seen)
    locale_of = {s.customer_id: s.facts.locale for s in scores} | {"cus_e2enote_0006": "en"}  # type: ignore[union-attr]
    kinds = {n.customer_id: [] for n in inbox}  # type: dict[str, list[str]]

    # Once per decision and channel, nothing for the stale one.
    assert len(inbox) == 7 and {n.decision_id for n in inbox} == set(decisions) - {stale.decision_id}
    assert stale.decision_id not in {n.decision_id for n in inbox + webhook}
    for notice in sorted(inbox, key=lambda n: n.decision_seq):
        decision = decisions[notice.decision_id]
        locale = locale_of[notice.customer_id]
        assert notice.locale == locale
        kind = decision.category if isinstance(decision, WindowClosed) else "opened"
        kinds[notice.customer_id].append(kind)
        if kind != "opened":
            assert notice.category == kind and CATEGORIES[kind](locale) in notice.body
        assert notice.reference in notice.body and notice.policy_version in notice.body
        assert any("\u4e00" <= ch <= "\u9fff" for ch in notice.title) == (locale == "zh-CN")
    assert kinds == {
        "cus_e2enote_0001": ["opened"],
        "cus_e2enote_0002": ["credit"],
        "cus_e2enote_0003": ["system"],
        "cus_e2enote_0004": ["regulatory"],
        "cus_e2enote_0005": ["opened", "strategy"],
        "cus_e2enote_0006": ["strategy"],
    }

    # Partner p1 (fails twice, then takes it): each of its decisions POSTed until accepted, once.
    assert sorted(n.customer_id for n in webhook) == ["cus_e2enote_0001", "cus_e2enote_0005", "cus_e2enote_0005"]
    assert sorted(s.idempotency_key for s in flaky.accepted()) == sorted(str(n.notification_id) for n in webhook)
    assert all(s.signature_ok for s in flaky.seen)
    for notice in webhook:
        assert [t.attempt for t in flaky.tries(str(notice.notification_id))] == [1, 2, 3]

    # Partner p2 (always 500, its own key): tried until the retry budget, then dead-lettered with the reason.
    (letter,) = letters
    assert all(t.signature_ok for t in broken.seen)
    assert [t.status for t in broken.seen] == [500, 500, 500]
    assert letter.error_type == "webhook_undeliverable" and "partner p2" in letter.error and "HTTP 500" in letter.error
    assert "retry budget" in letter.error and letter.headers["webhook_partner"] == "p2"
    assert letter.source_topic == topics.windows
    assert json.loads(base64.b64decode(letter.payload_b64))["customer_id"] == "cus_e2enote_0002"


def _decisions(seen: list) -> list:  # type: ignore[type-arg]
    return [r.event for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))]


def _notices(seen: list, channel: str) -> list[NotificationSent]:  # type: ignore[type-arg]
    return [r.event for r in seen if isinstance(r.event, NotificationSent) and r.event.channel == channel]


def _letters(seen: list) -> list[DeadLetter]:  # type: ignore[type-arg]
    return [r.event for r in seen if isinstance(r.event, DeadLetter)]


async def test_dispatchers_sharing_one_redis_post_each_delivery_once_and_resume_after_a_restart(
    endpoints: dict[str, str], namespace: str
) -> None:
    settings = settings_for(endpoints, namespace)
    await ensure_topics(settings)
    receiver = Receiver(b"shared-key", answer=lambda key, before: 503 if before == 0 else 200)
    broker = make_broker(settings, service="notification-e2e")
    redis = Redis.from_url(settings.redis_dsn)
    await broker.start()
    try:
        with running_receiver(receiver):
            urls = {"p1": receiver.url}
            generation = await _fresh_state(redis, settings.redis_prefix)
            queue = _queue(redis, settings.redis_prefix, generation)

            def dispatcher() -> WebhookDispatcher:
                return WebhookDispatcher(
                    queue=_queue(redis, settings.redis_prefix, generation),
                    sender=HttpWebhookSender(timeout_s=1.0),
                    publisher=Outbox(broker, service="notification", clock=WALL),
                    topics=settings.topics,
                    partners={name: Partner(url, b"shared-key") for name, url in urls.items()},
                    retry_budget_s=60,
                    backoff=Backoff(initial_s=0.2, max_s=1.0),
                    concurrency=4,
                    poll_s=0.05,
                    clock=WALL,  # the partner's receiver checks the signature's time against the wall
                )

            deliveries = _deliveries(24)
            assert await queue.enqueue(deliveries) == 24
            assert await queue.enqueue(deliveries[:5]) == 0  # a redelivered decision adds nothing

            first = dispatcher()
            await first.start()
            await _until(lambda: len(receiver.seen) >= 6)
            await first.stop()  # a restart: what it did not finish stays in Redis
            left = await queue.waiting()
            assert 0 < left <= 24

            replicas = [dispatcher(), dispatcher()]
            for replica in replicas:
                await replica.start()
            await _until(lambda: len(receiver.accepted()) >= 24, timeout_s=30)
            await _until_true(lambda: _is_zero(queue.waiting()), timeout_s=30)  # every delivery announced and finished
            for replica in replicas:
                await replica.stop()
            assert await queue.waiting() == 0
    finally:
        await broker.stop()

    keys = {d.notification_id for d in deliveries}
    assert sorted(s.idempotency_key for s in receiver.accepted()) == sorted(keys)  # one 2xx each
    for key in keys:
        tries = receiver.tries(key)
        # Never two tries of one delivery at once: each try has its own, higher number; the last took it.
        attempts = [t.attempt for t in tries]
        assert attempts == sorted(set(attempts)) and len(attempts) >= 2 and tries[-1].status == 200
        assert (await queue.state(key))["state"] == "done"
    await redis.aclose()

    async with TopicReader(settings, [settings.topics.notifications]) as reader:
        records = await reader.until(lambda seen: len(seen) >= 24, timeout_s=20)
        records += await reader.drain(idle_s=1)
    announced = [r.event.notification_id for r in records if isinstance(r.event, NotificationSent)]
    assert sorted(str(n) for n in set(announced)) == sorted(keys)


async def test_claims_on_one_redis_never_overlap_and_a_lease_runs_out(
    endpoints: dict[str, str], namespace: str
) -> None:
    settings = settings_for(endpoints, namespace)
    redis = Redis.from_url(settings.redis_dsn)
    try:
        generation = await _fresh_state(redis, settings.redis_prefix)
        queue = _queue(redis, settings.redis_prefix, generation)
        await queue.enqueue(_deliveries(50))
        claims = await asyncio.gather(*(_queue(redis, settings.redis_prefix, generation).claim(20, 300) for _ in range(5)))
        ids = [c.delivery.notification_id for batch in claims for c in batch]
        assert len(ids) == 50 and len(set(ids)) == 50
        assert await queue.claim(50, 300) == []  # all leased
        (seconds, micros) = await redis.time()
        leased_until = seconds * 1000 + micros // 1000 + 300
        await _until_true(lambda: _redis_ms_past(redis, leased_until))  # the queue keeps Redis's time
        again = await queue.claim(50, 300)
        assert len(again) == 50 and {c.attempts for c in again} == {2}
        stale_holder = claims[0][0]
        assert not await queue.settle(stale_holder, "delivered")  # its lease was taken over
        claimed = next(c for c in again if c.delivery.notification_id == stale_holder.delivery.notification_id)
        assert claimed.delivery == stale_holder.delivery  # body, notice and source kept intact
    finally:
        await redis.aclose()


async def _fresh_state(redis: Redis, prefix: str) -> str:
    """An empty notification state in Redis, complete, as a first start leaves it."""
    pipe = redis.pipeline(transaction=False)
    StateGuard(redis, prefix, STATE).mark_complete(pipe, "g1")
    await pipe.execute()
    return "g1"


def _queue(redis: Redis, prefix: str, generation: str) -> RedisWebhookQueue:
    """A replica's queue on that state."""
    queue = RedisWebhookQueue(redis, prefix)
    queue.guard.adopt(generation)
    return queue


def _deliveries(count: int) -> list[WebhookDelivery]:
    out = []
    for n in range(count):
        decision = opened(
            "en", partner_id="p1", decision_id=deterministic_id("e2e-webhook", n), customer_id=f"cus_e2ewh_{n:04d}"
        )
        source = DeliverySource("credit.windows", 0, n, decision.customer_id, decision.model_dump_json().encode(), {})
        delivery = webhook_delivery_for(decision, render(decision), source, {"p1"}, at=WALL.now())
        assert delivery is not None
        out.append(delivery)
    return out


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _redis_ms_past(redis: Redis, moment_ms: int) -> bool:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000 > moment_ms


async def _until_true(condition: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _until(condition, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_webhook_given_up_is_queued_again_once_by_dlq_replay_and_delivered(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    key = "e2e-webhook-key-of-the-replayed-partner"
    partner_up = {"now": False}
    receiver = Receiver(key.encode(), answer=lambda idempotency_key, before: 200 if partner_up["now"] else 503)
    with running_receiver(receiver):
        running = await start_fleet(
            endpoints, namespace, log_root, services=("policy", "notification"),
            env={"CW_WEBHOOK_PARTNERS": json.dumps({"p1": {"url": receiver.url, "key": key}}), "CW_WEBHOOK_RETRY_HOURS": "0.0005"},
        )  # fmt: skip
        topics = running.settings.topics
        watched = [topics.windows, topics.notifications, topics.deadletter]
        env = {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace, "COLUMNS": "200", "CW_LOG_FORMAT": "json"}
        try:
            await running.publish(topics.scores, [_score(41, locale="en", partner="p1")])
            seen = await running.read(watched, lambda s: len(_letters(s)) >= 1, timeout_s=40)
            (letter,) = _letters(seen)
            assert letter.error_type == "webhook_undeliverable" and receiver.accepted() == []

            partner_up["now"] = True  # the partner is back: the operator replays the give-up
            first = await _creditwindow(env, "dlq", "replay", str(letter.event_id)[:8])
            assert first.returncode == 0 and "replayed" in first.stdout, first.stdout + first.stderr
            seen = await running.read(watched, lambda s: len(_notices(s, "webhook")) >= 1, timeout_s=30)

            again = await _creditwindow(env, "dlq", "replay", str(letter.event_id)[:8])
            assert again.returncode == 0 and "already replayed" in again.stdout, again.stdout + again.stderr
            # The replayed record delivered a second time (at least once): the delivery is not queued again.
            replayed = next(r for r in seen if r.record.topic == topics.windows and dict(r.record.headers or ()).get("replay_of"))
            await running.publish_raw(topics.windows, replayed.record.value or b"", key=replayed.record.key, headers=replayed.record.headers)
            await running.consumed("notification", [topics.windows])
            await asyncio.sleep(1.5)  # a requeued delivery would be due at once
            seen = await running.drain(watched, idle_s=1.5)
        finally:
            running.fleet.stop()

    (delivered,) = receiver.accepted()
    assert delivered.signature_ok and delivered.attempt == 1  # a fresh start: its own budget, first try
    assert len(receiver.tries(delivered.idempotency_key)) == len(receiver.seen)  # one delivery, tried, then taken once
    assert len(_notices(seen, "webhook")) == 1 and len(_notices(seen, "inbox")) == 1  # the customer is told once
    assert len(_letters(seen)) == 1


async def _creditwindow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "creditwindow", *args], env=env, capture_output=True, text=True, timeout=120
    )
