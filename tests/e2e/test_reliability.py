"""Reliability on the real broker and Redis: poison records, lost Redis data, reused ids, pauses while down."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import yaml
from redis.asyncio import Redis

from creditwindow.policy_ops import publish_update, signed_update
from devtools.faults import POISON_KEY, poison_record
from devtools.germancredit import DEMO_PARTNER, applications
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import DeadLetter, Decision, NotificationSent, WindowClosed, WindowOpened
from shared.wire import MAX_DEAD_LETTER_BYTES, encode
from tests.clocks import WALL
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.unit.notification.receiver import Receiver, running_receiver
from tests.unit.policy.factories import default_policy, score

_ids = itertools.count(1)
QUICK = {"CW_BOOK_REBUILD_GRACE_S": "1"}


def _score(**kwargs: object):  # type: ignore[no-untyped-def]
    n = next(_ids)
    kwargs.setdefault("customer_id", f"cus_rel_{n:09d}")
    return score(at=WALL.now(), application_id=kwargs.pop("application_id", f"app_rel_{n:06d}"), **kwargs)  # type: ignore[arg-type]


def _policy_file(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(default_policy(**changes).model_dump(mode="json"), sort_keys=False))  # type: ignore[arg-type]
    return path


async def _lose_everything(fleet: RunningFleet) -> int:
    """Every key of the namespace gone at once: what a flush or a restart without persistence leaves."""
    redis = Redis.from_url(fleet.settings.redis_dsn)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{fleet.settings.redis_prefix}*", count=1000)]
        script = "for i = 1, #KEYS, 500 do redis.call('DEL', unpack(KEYS, i, math.min(i + 499, #KEYS))) end return #KEYS"
        return int(await redis.eval(script, len(keys), *keys)) if keys else 0
    finally:
        await redis.aclose()


async def _healthy(fleet: RunningFleet, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    for name in fleet.fleet.processes:
        while True:
            address = fleet.fleet.http_address(name)
            try:
                if address and httpx.get(f"{address}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert asyncio.get_running_loop().time() < deadline, f"{name} not ready again"
            await asyncio.sleep(0.1)


def _of(records: list, kind: type) -> list:  # type: ignore[type-arg]
    return [r.event for r in records if isinstance(r.event, kind)]


async def test_a_poison_record_ends_in_one_dead_letter_that_fits_and_stops_nothing(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    from shared.messaging import ensure_topics
    from shared.messaging.topic_io import Publisher
    from tests.conftest import settings_for

    settings = settings_for(endpoints, namespace)
    await ensure_topics(settings)
    value, headers = poison_record()
    async with Publisher(settings) as publisher:  # on the policy topic before any replica starts
        await (await publisher.send_raw(settings.topics.policy, value, key=POISON_KEY, headers=headers))
    fleet = await start_fleet(endpoints, namespace, log_root)  # the policy service starts normally past it
    try:
        good = next(iter(applications(f"poison{namespace}", count=1)))
        async with Publisher(settings) as publisher:
            await (await publisher.send_raw(settings.topics.applications, value, key=POISON_KEY, headers=headers))
        await fleet.publish(settings.topics.applications, [good])
        topics = settings.topics

        def done(seen: list) -> bool:  # type: ignore[type-arg]
            decided = {d.application_id for d in _of(seen, Decision)}
            return good.application_id in decided and len(_of(seen, DeadLetter)) >= 2 and len(decided) >= 2

        seen = await fleet.read([topics.windows, topics.deadletter], done, settle_s=1.0)
        letters = _of(seen, DeadLetter)
        by_source = Counter((d.source_topic, d.error_type) for d in {d.event_id: d for d in letters}.values())
        assert by_source == Counter({(topics.policy, "too_large"): 1, (topics.applications, "too_large"): 1})
        assert all(len(encode(d).value) <= MAX_DEAD_LETTER_BYTES and d.payload_truncated for d in letters)
        poisoned = [d for d in _of(seen, WindowClosed) if d.customer_id == POISON_KEY.decode()]
        assert [(d.category, d.reason) for d in poisoned] == [("system", "application_invalid")]  # still told
    finally:
        fleet.fleet.stop()


async def test_lost_redis_data_is_noticed_and_rebuilt_with_deferrals_and_queued_webhooks(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    partner_key = "a-key-only-this-partner-and-the-fleet-share-0001"
    receiver = Receiver(partner_key.encode(), answer=lambda key, before: 503)
    now = WALL.now()
    policy = _policy_file(tmp_path, maintenance=[{"start": now - timedelta(minutes=1), "end": now + timedelta(seconds=25)}])
    batch = list(applications(f"lost{namespace}", count=20))
    partnered = [a for a in batch if a.facts.partner_id == DEMO_PARTNER]
    assert partnered, "the German Credit rows include partner applications"
    with running_receiver(receiver):
        partners = {DEMO_PARTNER: {"url": receiver.url, "key": partner_key}}
        env = {**QUICK, "CW_POLICY_PATH": str(policy), "CW_WEBHOOK_PARTNERS": json.dumps(partners)}
        fleet = await start_fleet(endpoints, namespace, log_root, env=env)
        topics = fleet.settings.topics
        try:
            await fleet.publish(topics.applications, batch)
            await fleet.read(
                [topics.notifications], lambda s: len({n.decision_id for n in _of(s, NotificationSent)}) >= len(batch)
            )
            # Every decision closed for maintenance and told; the partner's webhooks queued, failing.
            assert await _lose_everything(fleet) > 0
            await fleet.until_logged("policy-0", "book_rebuilt", f'"deferrals":{len(batch)}', timeout_s=60)
            await fleet.until_logged("notification-0", "notification_state_rebuilt", f'"told":{len(batch)}', timeout_s=60)
            await _healthy(fleet)
            receiver.answer = lambda key, before: 200  # the partner is back

            def done(seen: list) -> bool:  # type: ignore[type-arg]
                redecided = {d.application_id for d in _of(seen, Decision) if d.trigger == "redecision"}
                webhooks = {n.decision_id for n in _of(seen, NotificationSent) if n.channel == "webhook"}
                return len(redecided) >= len(batch) and len(webhooks) >= 2 * len(partnered)

            seen = await fleet.read([topics.windows, topics.notifications], done, timeout_s=120, settle_s=2.0)
        finally:
            fleet.fleet.stop()
    decisions = {d.decision_id: d for d in _of(seen, Decision)}.values()
    per_application = Counter((d.application_id, d.trigger) for d in decisions)
    assert set(per_application.values()) == {1} and len(per_application) == 2 * len(batch)  # deferral survived: one each
    notices = {(n.decision_id, n.channel) for n in _of(seen, NotificationSent)}
    assert Counter(channel for _, channel in notices) == Counter(inbox=2 * len(batch), webhook=2 * len(partnered))
    accepted = Counter(t.idempotency_key for t in receiver.seen if t.status == 200)
    assert len(accepted) == 2 * len(partnered) and set(accepted.values()) == {1}  # the queue survived: one 2xx each
    redis = Redis.from_url(fleet.settings.redis_dsn)
    try:
        live = await RedisBook(redis, fleet.settings.redis_prefix).snapshot()
    finally:
        await redis.aclose()
    assert live.comparable() == derive(list(decisions)).comparable()  # reservations equal the open windows


async def test_a_reused_application_id_is_refused_and_a_corrected_resubmission_is_decided(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    fleet = await start_fleet(endpoints, namespace, log_root, services=("policy",), env=QUICK)
    topics = fleet.settings.topics
    try:
        owner = _score(application_id="app_reused_000001")
        intruder = _score(application_id="app_reused_000001")  # another customer, the same application id
        unread = _score(application_id="app_fixed_0000001", outcome="unscorable", failure="application_invalid: invalid")
        fixed = _score(application_id="app_fixed_0000001", customer_id=unread.customer_id)
        await fleet.publish(topics.scores, [owner, unread])
        await fleet.read([topics.windows], lambda s: len(_of(s, Decision)) >= 2)
        await fleet.publish(topics.scores, [intruder, fixed])

        def done(seen: list) -> bool:  # type: ignore[type-arg]
            return len(_of(seen, Decision)) >= 3 and len(_of(seen, DeadLetter)) >= 1

        seen = await fleet.read([topics.windows, topics.deadletter], done, settle_s=1.0)
    finally:
        fleet.fleet.stop()
    (letter,) = _of(seen, DeadLetter)
    assert letter.error_type == "application_id_reused" and letter.source_key == intruder.customer_id
    decided = {(d.customer_id, d.application_id, type(d).__name__) for d in _of(seen, Decision)}
    assert decided == {
        (owner.customer_id, owner.application_id, "WindowOpened"),
        (unread.customer_id, unread.application_id, "WindowClosed"),
        (fixed.customer_id, fixed.application_id, "WindowOpened"),
    }


async def test_a_pause_applied_while_no_policy_replica_runs_closes_the_windows_when_one_starts(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    fleet = await start_fleet(endpoints, namespace, log_root, services=("policy",), env=QUICK)
    settings, topics = fleet.settings, fleet.settings.topics
    try:
        business = _score(segment="small_business")
        await fleet.publish(topics.scores, [business])
        await fleet.read([topics.windows], lambda s: len(_of(s, WindowOpened)) >= 1)
        fleet.fleet.stop()
        text = default_policy(pauses__segments=["small_business"]).model_dump(mode="json")
        text["version"] = 2
        await publish_update(signed_update(yaml.safe_dump(text), settings), settings)
        fleet.fleet.start()
        await asyncio.to_thread(fleet.fleet.wait_ready)
        seen = await fleet.read([topics.windows], lambda s: any(d.trigger == "pause" for d in _of(s, WindowClosed)))
    finally:
        fleet.fleet.stop()
    (closure,) = [d for d in _of(seen, WindowClosed) if d.trigger == "pause"]
    assert (closure.customer_id, closure.category, closure.reason) == (business.customer_id, "strategy", "segment_paused")
