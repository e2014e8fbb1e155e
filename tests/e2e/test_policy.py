"""The policy service on the real broker and Redis: categories, caps, pauses, expiry, maintenance,
the control plane and the budget under two replicas."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from creditwindow.hmac_history import old_action_signature, old_policy_signature
from creditwindow.policy_ops import publish_update, signed_update
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import (
    CustomerSuspended,
    DeadLetter,
    Event,
    PolicyUpdated,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import aiokafka_kwargs, ensure_topics
from shared.messaging.topic_io import Publisher
from shared.signing import OperatorKey
from tests.clocks import WALL
from tests.conftest import settings_for
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.operator_keys import forger, operator, ring_json, signing_as
from tests.unit.policy.factories import charged_to, default_policy, score

POLICY_ONLY = ("policy",)


def _policy_file(tmp_path: Path, name: str = "policy.yaml", **changes: object) -> Path:
    data = default_policy(**changes).model_dump(mode="json")  # type: ignore[arg-type]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _policy_text(version: int, **changes: object) -> str:
    data = default_policy(**changes).model_dump(mode="json")  # type: ignore[arg-type]
    data["version"] = version
    return yaml.safe_dump(data, sort_keys=False)


_ids = itertools.count(1)


def _score(**kwargs: object) -> ScoreComputed:
    n = next(_ids)
    return score(at=WALL.now(), application_id=f"app_pol_{n:06d}", customer_id=f"cus_pol_{n:09d}", **kwargs)  # type: ignore[arg-type]


def _decisions(records: list) -> list:  # type: ignore[type-arg]
    return [r.event for r in records if isinstance(r.event, (WindowOpened, WindowClosed))]


async def _decided(fleet: RunningFleet, wanted: int, *, timeout_s: float = 60, **filters: object) -> list:  # type: ignore[type-arg]
    def match(d: object) -> bool:
        return all(getattr(d, k) == v for k, v in filters.items())

    seen = await fleet.read(
        [fleet.settings.topics.windows], lambda s: sum(1 for d in _decisions(s) if match(d)) >= wanted, timeout_s=timeout_s
    )
    return [d for d in _decisions(seen) if match(d)]


@pytest.fixture
async def policy_fleet(endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path) -> AsyncIterator[RunningFleet]:
    running = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY)
    try:
        yield running
    finally:
        running.fleet.stop()


async def _limits(fleet: RunningFleet) -> tuple[Redis, RedisBook]:
    redis = Redis.from_url(fleet.settings.redis_dsn)
    return redis, RedisBook(redis, fleet.settings.redis_prefix)


async def test_every_category_is_decided_and_named(policy_fleet: RunningFleet) -> None:
    topics = policy_fleet.settings.topics
    good, weak, broken, poor = _score(), _score(points=400), _score(outcome="unscorable"), _score(income=1_200)
    await policy_fleet.publish(topics.scores, [good, weak, broken, poor])
    decisions = {d.application_id: d for d in await _decided(policy_fleet, 4)}
    assert isinstance(decisions[good.application_id], WindowOpened)
    assert (decisions[weak.application_id].category, decisions[weak.application_id].reason) == ("credit", "score_below_cutoff")
    assert decisions[weak.application_id].reasons
    assert (decisions[broken.application_id].category, decisions[broken.application_id].reason) == ("system", "scoring_failed")
    assert decisions[broken.application_id].retry_after is not None
    assert (decisions[poor.application_id].category, decisions[poor.application_id].reason) == ("regulatory", "income_cap")
    assert all(d.policy_version == "default@1" for d in decisions.values())


async def test_a_cap_that_only_lowers_the_limit_is_named_and_redis_serves_it(policy_fleet: RunningFleet) -> None:
    topics = policy_fleet.settings.topics
    capped = _score(grade="A", income=90_000)
    await policy_fleet.publish(topics.scores, [capped])
    (opened,) = await _decided(policy_fleet, 1, application_id=capped.application_id)
    assert isinstance(opened, WindowOpened)
    assert (opened.limit, opened.basis.bound_by, opened.basis.income_fraction) == (30_000, "income_cap", pytest.approx(1 / 3))
    redis, store = await _limits(policy_fleet)
    try:
        current = await store.current(capped.customer_id)
        assert current is not None and (current.status, current.limit, current.decision_seq) == ("open", 30_000, 1)
        assert current.valid_until == opened.valid_until.replace(microsecond=(opened.valid_until.microsecond // 1000) * 1000)
    finally:
        await redis.aclose()


async def test_pausing_a_segment_closes_its_open_windows_and_resuming_opens_again(policy_fleet: RunningFleet) -> None:
    settings = policy_fleet.settings
    topics = settings.topics
    business, person = _score(segment="small_business"), _score()
    await policy_fleet.publish(topics.scores, [business, person])
    first = await _decided(policy_fleet, 2)
    charged = charged_to(next(d for d in first if d.customer_id == business.customer_id))

    await publish_update(signed_update(_policy_text(2, pauses__segments=["small_business"]), settings), settings)
    (closure,) = await _decided(policy_fleet, 1, trigger="pause")
    assert isinstance(closure, WindowClosed)
    assert (closure.customer_id, closure.category, closure.reason) == (business.customer_id, "strategy", "segment_paused")
    later = _score(segment="small_business")
    await policy_fleet.publish(topics.scores, [later])
    (refused,) = await _decided(policy_fleet, 1, application_id=later.application_id)
    assert (refused.category, refused.reason, refused.policy_version) == ("strategy", "segment_paused", "default@2")

    redis, store = await _limits(policy_fleet)
    try:
        assert (await store.current(business.customer_id)).status == "closed"  # type: ignore[union-attr]
        assert (await store.current(person.customer_id)).status == "open"  # type: ignore[union-attr]
        budgets = await store.budgets([charged])
        assert budgets[charged].exposure == 0  # the closed window's reservation is released
    finally:
        await redis.aclose()

    await publish_update(signed_update(_policy_text(3), settings), settings)
    await policy_fleet.until_logged("policy-0", "policy_applied", "default@3")  # from its own subscription
    again = _score(segment="small_business")
    await policy_fleet.publish(topics.scores, [again])
    (reopened,) = await _decided(policy_fleet, 1, application_id=again.application_id)
    assert isinstance(reopened, WindowOpened) and reopened.policy_version == "default@3"


async def test_forged_unsigned_replayed_and_tampered_updates_take_no_effect(policy_fleet: RunningFleet) -> None:
    settings = policy_fleet.settings
    topics = settings.topics
    await publish_update(signed_update(_policy_text(2), settings), settings)
    forged = signed_update(_policy_text(3, cycle_factor=2.0), forger(settings))  # a key of another ring under the fleet's id
    real = signed_update(_policy_text(4, cycle_factor=2.0), settings)
    tampered = real.model_copy(update={"document": real.document.replace("cycle_factor: 2.0", "cycle_factor: 1.9")})
    replayed = signed_update(_policy_text(2, cycle_factor=2.0), settings)
    for update in (forged, tampered, replayed):
        await publish_update(update, settings)
    unsigned = signed_update(_policy_text(5), settings).model_dump(mode="json")
    unsigned["signature"] = ""
    await policy_fleet.publish_raw(topics.policy, json.dumps(unsigned).encode(), key=b"default")

    seen = await policy_fleet.read([topics.deadletter], lambda s: len([r for r in s if isinstance(r.event, DeadLetter)]) >= 4)
    kinds = Counter(r.event.error_type for r in seen if isinstance(r.event, DeadLetter))
    assert kinds == Counter({"policy_forged": 2, "policy_replayed": 1, "invalid": 1})
    probe = _score(grade="D", pd=0.18, income=100_000)
    await policy_fleet.publish(topics.scores, [probe])
    (decision,) = await _decided(policy_fleet, 1, application_id=probe.application_id)
    assert decision.policy_version == "default@2"  # none of the bad updates took effect
    assert decision.basis.cycle_factor == 1.0


async def test_the_active_policy_is_restored_from_the_topic_on_restart(policy_fleet: RunningFleet) -> None:
    settings = policy_fleet.settings
    await publish_update(signed_update(_policy_text(2, cycle_factor=0.5), settings), settings)
    await policy_fleet.until_logged("policy-0", "policy_applied", "default@2")
    policy_fleet.fleet.stop()
    policy_fleet.fleet.start()
    await asyncio.to_thread(policy_fleet.fleet.wait_ready)
    probe = _score(grade="D", pd=0.18, income=100_000)
    await policy_fleet.publish(settings.topics.scores, [probe])
    (decision,) = await _decided(policy_fleet, 1, application_id=probe.application_id)
    assert (decision.policy_version, decision.limit) == ("default@2", 11_000)


LIN, WANG = operator("ops-lin"), operator("ops-wang")


def _cli(endpoints: dict[str, str], namespace: str, key: OperatorKey, *args: str) -> subprocess.CompletedProcess[str]:
    """The operators' CLI of whoever holds `key`, with the fleet's ring, as a process of its own."""
    env = {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace, "CW_OPERATOR_PUBLIC_KEYS": ring_json(LIN, WANG), "CW_OPERATOR_PRIVATE_KEY": key.text()}
    return subprocess.run([sys.executable, "-m", "creditwindow", *args], env=env, capture_output=True, text=True, timeout=120)


async def test_after_a_key_is_retired_by_a_signed_event_a_restarted_replica_restores_the_history_it_signed_and_nothing_after(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    # The fleet holds the operators' public keys only; each operator holds a private key of their own.
    fleet = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY, env={"CW_OPERATOR_PUBLIC_KEYS": ring_json(LIN, WANG)})
    lin, wang = signing_as(fleet.settings, LIN, LIN, WANG), signing_as(fleet.settings, WANG, LIN, WANG)
    try:
        await publish_update(signed_update(_policy_text(2), lin), lin)
        await fleet.until_logged("policy-0", "policy_applied", "default@2")

        # The rotation, no replica restarted: Lin retires her key with a signed event; Wang signs from now on.
        retired = await asyncio.to_thread(_cli, endpoints, namespace, LIN, "keys", "retire", "ops-lin", "--issued-by", "ops_lin", "--yes")
        assert retired.returncode == 0, retired.stderr
        await fleet.until_logged("policy-0", "operator_key_retired", "ops-lin")
        await publish_update(signed_update(_policy_text(3, cycle_factor=0.5), wang), wang)
        await fleet.until_logged("policy-0", "policy_applied", "default@3")
        refused = await asyncio.to_thread(_cli, endpoints, namespace, LIN, "policy", "apply", str(_policy_file(tmp_path, version=4)), "--yes")
        assert refused.returncode == 1 and "retired_key" in refused.stderr and "'ops-lin' retired at" in " ".join(refused.stderr.split())
        listed = await asyncio.to_thread(_cli, endpoints, namespace, WANG, "keys", "list", "--json")
        keys = {k["key_id"]: k for k in json.loads(listed.stdout)["keys"]}
        assert (keys["ops-lin"]["may_sign"], keys["ops-wang"]["may_sign"], keys["ops-wang"]["yours"]) == (False, True, True)
        assert keys["ops-lin"]["retired_on_log"].startswith(fleet.settings.topics.policy)
        # Signed with the retired key and published past the CLI: the fleet refuses it.
        await publish_update(signed_update(_policy_text(4, cycle_factor=2.0), lin), lin)

        fleet.fleet.stop()
        fleet.fleet.start()  # restored: v2 (Lin's, logged before her retirement), the retirement, v3 (Wang's); v4 refused again
        await asyncio.to_thread(fleet.fleet.wait_ready)
        await fleet.until_logged("policy-0", "policy_restored", "default@3")
        probe = _score(grade="D", pd=0.18, income=100_000)
        await fleet.publish(fleet.settings.topics.scores, [probe])
        (decision,) = await _decided(fleet, 1, application_id=probe.application_id)
        assert (decision.policy_version, decision.basis.cycle_factor) == ("default@3", 0.5)
        seen = await fleet.drain([fleet.settings.topics.deadletter], idle_s=1)
        letters = {(r.event.error_type, r.event.source_offset) for r in seen if isinstance(r.event, DeadLetter)}
        assert {error for error, _ in letters} == {"policy_retired_key"} and len(letters) == 1  # v4 only, nothing of the history
    finally:
        fleet.fleet.stop()


async def test_history_signed_with_the_old_hmac_ring_is_carried_over_once_by_keys_migrate(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    settings = settings_for(endpoints, namespace)
    await ensure_topics(settings)
    old_ring = tmp_path / "old-ring.json"  # on the operator's machine only: the fleet never sees it
    old_ring.write_text(json.dumps({"k1": OLD_HMAC_KEY}))
    suspended = f"cus_pol_hmac_{namespace[-6:]}"
    # What the old CLI published: two versions and a suspension, HMAC-signed with the fleet's shared ring.
    history: list[tuple[str, Event]] = [(settings.topics.policy, _hmac_update(2, namespace, cycle_factor=0.9)), (settings.topics.policy, _hmac_update(3, namespace, cycle_factor=0.5))]
    suspension = CustomerSuspended(
        correlation_id=suspended, producer="creditwindow-cli", issued_by="ops_lin", issued_at=WALL.now(), key_id="k1",
        namespace=namespace, signature="0" * 64, customer_id=suspended, reason="collections",
    )  # fmt: skip
    # The old fleet wrote its operators' actions to the mixed `credit.reviews`, retired by the split.
    history.append((settings.topics.retired_reviews, suspension.model_copy(update={"signature": old_action_signature(OLD_HMAC_KEY.encode(), suspension)})))
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topics.retired_reviews, settings.topic_partitions, settings.topic_replication_factor)])
    finally:
        await admin.close()
    for topic, event in history:
        async with Publisher(settings) as publisher:
            await (await publisher.send(topic, event))

    fleet = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY)
    try:
        await fleet.until_logged("policy-0", "policy_restored", "default@1", "hmac_history")  # not verified: the fleet holds no HMAC key
        migrate = [sys.executable, "-m", "creditwindow", "keys", "migrate", "--hmac-ring", str(old_ring), "--yes", "--json"]
        env = {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace}
        done = await asyncio.to_thread(subprocess.run, migrate, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"versions": ["default@2", "default@3"], "suspensions": [suspended]}
        await fleet.until_logged("policy-0", "policy_applied", "default@3")
        again = await asyncio.to_thread(subprocess.run, migrate, env=env, capture_output=True, text=True, timeout=120)
        assert json.loads(again.stdout) == {"versions": [], "suspensions": []}  # carried once

        fleet.fleet.stop()
        fleet.fleet.start()
        await asyncio.to_thread(fleet.fleet.wait_ready)
        await fleet.until_logged("policy-0", "policy_restored", "default@3")
        probe = _score(grade="D", pd=0.18, income=100_000)
        barred = score(at=WALL.now(), application_id=f"app_pol_hmac_{namespace[-6:]}", customer_id=suspended)
        await fleet.publish(settings.topics.scores, [probe, barred])
        decided = {d.application_id: d for d in await _decided(fleet, 2)}
        assert (decided[probe.application_id].policy_version, decided[probe.application_id].basis.cycle_factor) == ("default@3", 0.5)
        assert (decided[barred.application_id].category, decided[barred.application_id].reason) == ("strategy", "customer_suspended")
        seen = await fleet.drain([settings.topics.deadletter], idle_s=1)
        # The old history leaves no dead letter at each start, and the old suspension, on a topic the
        # fleet no longer reads, none at all: it took effect again only as `keys migrate` signed it.
        letters = [(r.event.error_type, r.event.source_topic) for r in seen if isinstance(r.event, DeadLetter)]
        assert letters == []
    finally:
        fleet.fleet.stop()


OLD_HMAC_KEY = "the-fleets-old-shared-hmac-key-0123456789"


def _hmac_update(version: int, namespace: str, **changes: object) -> PolicyUpdated:
    """A policy update as the old CLI signed it: HMAC-SHA256 with the fleet's shared ring."""
    unsigned = PolicyUpdated(
        correlation_id=f"policy-default-{version}", producer="creditwindow-cli", policy_name="default", version=version,
        document=_policy_text(version, **changes), issued_by="op_old", issued_at=WALL.now(), key_id="k1", namespace=namespace, signature="0" * 64,
    )  # fmt: skip
    return unsigned.model_copy(update={"signature": old_policy_signature(OLD_HMAC_KEY.encode(), unsigned)})


async def test_updates_signed_for_another_namespace_or_issued_in_the_future_are_refused(policy_fleet: RunningFleet) -> None:
    settings = policy_fleet.settings
    elsewhere = signed_update(_policy_text(2), settings.model_copy(update={"topic_namespace": f"{settings.topic_namespace}x"}))
    ahead = signed_update(_policy_text(3), settings, issued_at=WALL.now() + timedelta(minutes=30))
    for update in (elsewhere, ahead):
        await publish_update(update, settings)
    seen = await policy_fleet.read([settings.topics.deadletter], lambda s: len([r for r in s if isinstance(r.event, DeadLetter)]) >= 2)
    kinds = Counter(r.event.error_type for r in seen if isinstance(r.event, DeadLetter))
    assert kinds == Counter({"policy_other_namespace": 1, "policy_future": 1})
    probe = _score(grade="D", pd=0.18, income=100_000)
    await policy_fleet.publish(settings.topics.scores, [probe])
    (decision,) = await _decided(policy_fleet, 1, application_id=probe.application_id)
    assert decision.policy_version == "default@1"


async def test_an_expired_window_closes_and_releases_its_budget(endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path) -> None:
    path = _policy_file(tmp_path, timing__window_validity=timedelta(seconds=3))
    fleet = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY, env={"CW_POLICY_PATH": str(path)})
    try:
        opened_score = _score()
        await fleet.publish(fleet.settings.topics.scores, [opened_score])
        (opened,) = await _decided(fleet, 1, trigger="application")
        assert isinstance(opened, WindowOpened) and opened.valid_until - opened.occurred_at == timedelta(seconds=3)
        (expired,) = await _decided(fleet, 1, trigger="expiry", timeout_s=30)
        assert (expired.category, expired.reason, expired.closes_decision_id) == ("strategy", "expired", opened.decision_id)
        assert expired.decision_seq > opened.decision_seq
        redis, store = await _limits(fleet)
        try:
            assert (await store.budgets([charged_to(opened)]))[charged_to(opened)].exposure == 0
            assert (await store.current(opened.customer_id)).status == "closed"  # type: ignore[union-attr]
        finally:
            await redis.aclose()
    finally:
        fleet.fleet.stop()


async def test_maintenance_closes_as_system_and_the_application_is_decided_again_after(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    start = WALL.now() - timedelta(seconds=1)
    window = {"start": start.isoformat(), "end": (start + timedelta(seconds=8)).isoformat(), "note": "test"}
    path = _policy_file(tmp_path, maintenance=[window])
    fleet = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY, env={"CW_POLICY_PATH": str(path)})
    try:
        waiting = _score()
        await fleet.publish(fleet.settings.topics.scores, [waiting])
        (closed,) = await _decided(fleet, 1, trigger="application")
        assert (closed.category, closed.reason) == ("system", "maintenance")
        (again,) = await _decided(fleet, 1, trigger="redecision", timeout_s=40)
        assert isinstance(again, WindowOpened)
        assert again.application_id == waiting.application_id and again.decision_seq > closed.decision_seq
    finally:
        fleet.fleet.stop()


async def test_two_policy_replicas_deciding_at_once_never_overspend_the_budget(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    cap = 500_000
    path = _policy_file(tmp_path, budgets__individual={"exposure": cap, "expected_loss": 10**9, "period": "P1M"}, pacing__enabled=False)
    fleet = await start_fleet(
        endpoints, namespace, log_root, services=POLICY_ONLY, replicas=2,
        env={"CW_POLICY_PATH": str(path), "CW_BATCH_MAX_RECORDS": "20"},
    )  # fmt: skip
    try:
        scores = [_score(grade="D", pd=0.18, income=100_000) for _ in range(120)]  # 22,000 asked each: 2.64M in all
        await fleet.publish(fleet.settings.topics.scores, scores + scores[:20])  # duplicates too
        decisions = await _decided(fleet, 120, timeout_s=90)
        assert Counter(d.application_id for d in decisions) == Counter({s.application_id: 1 for s in scores})
        opened = [d for d in decisions if isinstance(d, WindowOpened)]
        granted = sum(d.limit for d in opened)
        assert granted <= cap
        assert granted >= cap - 22_000  # the budget was used, not left idle
        assert any(d.reason == "budget_exhausted" for d in decisions if isinstance(d, WindowClosed))
        redis, store = await _limits(fleet)
        try:
            charged = sorted({charged_to(d) for d in opened})  # one budget, or two if a period ended meanwhile
            assert sum(b.exposure for b in (await store.budgets(charged)).values()) == granted
        finally:
            await redis.aclose()
        assert len({p.name for p in fleet.fleet.processes.values() if p.alive}) == 2
    finally:
        fleet.fleet.stop()


async def test_one_customers_applications_are_decided_in_order_and_the_latest_supersedes(policy_fleet: RunningFleet) -> None:
    customer = "cus_order_0000001"
    scores = [
        score(at=WALL.now(), application_id=f"app_order_{n}", customer_id=customer, grade=grade, pd=pd, income=100_000)
        for n, (grade, pd) in enumerate([("D", 0.18), ("B", 0.07), ("C", 0.12)], start=1)
    ]
    await policy_fleet.publish(policy_fleet.settings.topics.scores, scores)
    decisions = await _decided(policy_fleet, 3, customer_id=customer)
    assert [(d.application_id, d.decision_seq) for d in decisions] == [(s.application_id, n) for n, s in enumerate(scores, start=1)]
    redis, store = await _limits(policy_fleet)
    try:
        current = await store.current(customer)
        assert current is not None and (current.application_id, current.decision_seq) == ("app_order_3", 3)
        assert isinstance(decisions[-1], WindowOpened)
        charged = sorted({charged_to(d) for d in decisions if isinstance(d, WindowOpened)})
        assert sum(b.exposure for b in (await store.budgets(charged)).values()) == decisions[-1].limit  # earlier windows released
    finally:
        await redis.aclose()
