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
from pydantic import SecretStr
from redis.asyncio import Redis

from creditwindow.policy_ops import publish_update, signed_update
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import DeadLetter, ScoreComputed, WindowClosed, WindowOpened
from tests.clocks import WALL
from tests.e2e.conftest import RunningFleet, start_fleet
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
    forged = signed_update(_policy_text(3, cycle_factor=2.0), settings.model_copy(update={"policy_signing_key": SecretStr("not-the-key")}))
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


K1, K2 = "e2e-policy-key-one-0123456789abcdef0123", "e2e-policy-key-two-0123456789abcdef0123"


async def test_after_a_key_rotation_a_restarted_replica_restores_the_whole_signed_history(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    ring_k1 = {"CW_POLICY_SIGNING_KEYS": json.dumps({"k1": K1}), "CW_POLICY_SIGNING_KEY_ID": "k1"}
    rotated = {"CW_POLICY_SIGNING_KEYS": json.dumps({"k1": K1, "k2": K2}), "CW_POLICY_SIGNING_KEY_ID": "k2", "CW_POLICY_RETIRED_KEY_IDS": "k1"}
    fleet = await start_fleet(endpoints, namespace, log_root, services=POLICY_ONLY, env=ring_k1)
    operator = fleet.settings.model_copy(update={"policy_signing_keys": {"k1": SecretStr(K1)}, "policy_signing_key_id": "k1"})
    try:
        await publish_update(signed_update(_policy_text(2), operator), operator)
        await fleet.until_logged("policy-0", "policy_applied", "default@2")
        fleet.fleet.stop()

        # The rotation: k2 signs from now on; k1 is retired (it signs nothing new, still verifies history).
        fleet.fleet.env.update(rotated)
        after = operator.model_copy(
            update={"policy_signing_keys": {"k1": SecretStr(K1), "k2": SecretStr(K2)}, "policy_signing_key_id": "k2", "policy_retired_key_ids": ("k1",)}
        )
        update = signed_update(_policy_text(3, cycle_factor=0.5), after)
        assert update.key_id == "k2"
        await publish_update(update, after)
        refused = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "creditwindow", "policy", "apply", str(_policy_file(tmp_path, version=4)), "--yes"],
            env={**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace, **rotated, "CW_POLICY_SIGNING_KEY_ID": "k1"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert refused.returncode == 1 and "retired" in refused.stderr and "CW_POLICY_SIGNING_KEY_ID" in refused.stderr

        fleet.fleet.start()  # restarted with the rotated ring: v2 (k1, retired) and v3 (k2) both restore
        await asyncio.to_thread(fleet.fleet.wait_ready)
        await fleet.until_logged("policy-0", "policy_restored", "default@3")
        probe = _score(grade="D", pd=0.18, income=100_000)
        await fleet.publish(fleet.settings.topics.scores, [probe])
        (decision,) = await _decided(fleet, 1, application_id=probe.application_id)
        assert (decision.policy_version, decision.basis.cycle_factor) == ("default@3", 0.5)
        seen = await fleet.drain([fleet.settings.topics.deadletter], idle_s=1)
        assert not [r for r in seen if isinstance(r.event, DeadLetter)]  # nothing of the history was refused
    finally:
        fleet.fleet.stop()


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
