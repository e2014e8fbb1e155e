"""The whole fleet as separate processes on the real Kafka broker and Redis."""

from __future__ import annotations

import base64
import json
from collections import Counter

from devtools.germancredit import applications
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import DeadLetter, NotificationSent, WindowClosed, WindowOpened
from shared.redis_connection import make_redis
from shared.wire import encode
from tests.e2e.conftest import RunningFleet
from tests.unit.policy.factories import charged_to


def _decisions(records: list) -> list:  # type: ignore[type-arg]
    return [r.event for r in records if isinstance(r.event, (WindowOpened, WindowClosed))]


async def test_two_hundred_applications_end_in_two_hundred_decisions_limits_and_notifications(fleet: RunningFleet) -> None:
    topics = fleet.settings.topics
    batch = list(applications("e2e200", count=200))
    await fleet.publish(topics.applications, batch)

    def done(seen: list) -> bool:  # type: ignore[type-arg]
        notices = {r.event.decision_id for r in seen if isinstance(r.event, NotificationSent)}
        return len(_decisions(seen)) >= 200 and len(notices) >= 200

    # settle: anything extra (a second decision, a duplicate notification) would show up too
    seen = await fleet.read([topics.windows, topics.notifications], done, timeout_s=120, settle_s=2)
    decisions = {d.decision_id: d for d in _decisions(seen)}
    assert len(_decisions(seen)) == 200  # no duplicate decision records either
    per_application = Counter(d.application_id for d in decisions.values())
    assert set(per_application) == {a.application_id for a in batch}
    assert set(per_application.values()) == {1}

    notices = [r.event for r in seen if isinstance(r.event, NotificationSent)]
    assert len(notices) == 200
    assert {n.decision_id for n in notices} == set(decisions)  # one notification per decision

    redis = make_redis(fleet.settings)  # through Sentinel on a cluster
    try:
        store = RedisBook(redis, fleet.settings.redis_prefix)
        opened = [d for d in decisions.values() if isinstance(d, WindowOpened)]
        assert opened, "the German Credit data opens some windows"
        for window in opened:
            current = await store.current(window.customer_id)
            assert current is not None
            assert (current.status, current.limit, current.decision_id) == ("open", window.limit, str(window.decision_id))
        # Each window is charged to the budget of the period it was decided in (two, across a boundary).
        by_budget: Counter[str] = Counter()
        for window in opened:
            by_budget[charged_to(window)] += window.limit
        reserved = await store.budgets(sorted(by_budget))
        assert {k: v.exposure for k, v in reserved.items() if v.exposure} == dict(by_budget)
    finally:
        await redis.aclose()


async def test_bad_input_is_dead_lettered_and_everything_after_it_is_still_decided(fleet: RunningFleet) -> None:
    topics = fleet.settings.topics
    good, invalid_app = list(applications("e2ebad", count=2))
    body = json.loads(encode(invalid_app).value)
    body["applicant"]["age_years"] = 300  # impossible
    key = invalid_app.customer_id.encode()
    await fleet.publish_raw(topics.applications, b"\xff\xfe\x00 not an event", key=b"cus_bytes0000001")
    await fleet.publish_raw(topics.applications, json.dumps(body).encode(), key=key, headers=[("event_type", b"ApplicationReceived")])
    await fleet.publish(topics.applications, [good])

    def done(seen: list) -> bool:  # type: ignore[type-arg]
        letters = [r for r in seen if isinstance(r.event, DeadLetter)]
        return len(letters) >= 2 and len(_decisions(seen)) >= 3

    seen = await fleet.read([topics.deadletter, topics.windows], done, timeout_s=90)
    letters = {r.event.source_key: r.event for r in seen if isinstance(r.event, DeadLetter)}
    assert letters["cus_bytes0000001"].error_type == "undecodable"
    assert base64.b64decode(letters["cus_bytes0000001"].payload_b64) == b"\xff\xfe\x00 not an event"
    assert letters[invalid_app.customer_id].error_type == "invalid"
    assert "applicant.age_years" in letters[invalid_app.customer_id].error
    assert all(d.source_topic == topics.applications and d.failed_by == "scoring" for d in letters.values())

    decisions = {d.application_id: d for d in _decisions(seen)}
    assert good.application_id in decisions  # a valid event after the bad ones is decided
    # both bad records named a customer (body or key): each still ends in a decision, a system one
    invalid_decision = decisions[invalid_app.application_id]
    assert isinstance(invalid_decision, WindowClosed)
    assert (invalid_decision.category, invalid_decision.reason) == ("system", "application_invalid")
    garbage = [d for d in decisions.values() if d.customer_id == "cus_bytes0000001"]
    assert len(garbage) == 1 and garbage[0].category == "system"  # type: ignore[union-attr]


async def test_the_redis_cache_rebuilt_from_credit_windows_is_identical_to_the_live_one(fleet: RunningFleet) -> None:
    from services.policy.record.rebuild import derive

    topics = fleet.settings.topics
    first = list(applications("e2erb1", count=120))
    again = list(applications("e2erb2", count=40))  # the same customers apply again: superseding
    await fleet.publish(topics.applications, first)
    await fleet.read([topics.windows], lambda s: len(_decisions(s)) >= 120)
    await fleet.publish(topics.applications, again)
    seen = await fleet.read([topics.windows], lambda s: len(_decisions(s)) >= 160, settle_s=1.5)
    redis = make_redis(fleet.settings)  # through Sentinel on a cluster
    try:
        live = await RedisBook(redis, fleet.settings.redis_prefix).snapshot()
    finally:
        await redis.aclose()
    rebuilt = derive(_decisions(seen))
    assert rebuilt.comparable() == live.comparable()
    assert len(rebuilt.windows) == 120
