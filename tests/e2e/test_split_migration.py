"""The split's migration on the real broker and Redis: the retired mixed topics read once as history by
`creditwindow topics migrate`, each part copying what its principal writes, only what the fleet
vouches for (a result an upstream app forged into the old topic stays out), nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from creditwindow.hmac_history import old_action_signature
from services.policy.record.adapters.recovery import read_book_log
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.model import Balance, BookState
from shared.contracts import (
    CustomerSuspended,
    DrawdownApproved,
    DrawdownRequested,
    RepaymentApplied,
    ReviewConcluded,
    ReviewRequested,
)
from shared.messaging import aiokafka_kwargs, ensure_topics
from shared.messaging.topic_io import Publisher, read_to_end
from shared.settings import Settings
from shared.wire import HISTORY_HEADER
from tests.clocks import WALL
from tests.conftest import settings_for
from tests.unit.notification.factories import review_concluded, review_opened

CUSTOMER = "cus_gold00000001"  # the review factories' customer
OLD_HMAC_KEY = "the-old-fleets-shared-hmac-key-0123456789"


async def _migrate(env: dict[str, str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "creditwindow", "topics", "migrate", *args, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


async def _history(settings: Settings) -> None:
    """The mixed topics as a fleet of before the split left them, with what an upstream app forged there."""
    topics = settings.topics
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, settings.topic_partitions, settings.topic_replication_factor) for t in topics.of_kind("retired")])
    finally:
        await admin.close()
    now = WALL.now()
    common = {"customer_id": CUSTOMER, "occurred_at": now, "producer": "policy"}
    approved = DrawdownApproved(
        correlation_id="dd_mig_000001", drawdown_id="dd_mig_000001", amount=3_000, limit=10_000, balance=3_000, available=7_000, balance_seq=1,
        policy_version="default@1", **common,
    )  # fmt: skip
    forged = RepaymentApplied(correlation_id="rp_mig_forged1", repayment_id="rp_mig_forged1", amount=3_000, applied=3_000, balance=0, balance_seq=50, **common)
    unsigned = CustomerSuspended(
        correlation_id=CUSTOMER, producer="creditwindow-cli", issued_by="ops_lin", issued_at=now - timedelta(minutes=1), key_id="k1",
        namespace=settings.topic_namespace, signature="0" * 64, customer_id=CUSTOMER, reason="collections",
    )  # fmt: skip
    # Signed as the old fleet's CLI signed: HMAC with its shared ring.
    suspended = unsigned.model_copy(update={"signature": old_action_signature(OLD_HMAC_KEY.encode(), unsigned)})
    async with Publisher(settings) as publisher:
        for topic, event in (
            (topics.retired_drawdowns, DrawdownRequested(correlation_id="dd_mig_000001", drawdown_id="dd_mig_000001", customer_id=CUSTOMER, amount=3_000)),
            (topics.retired_drawdowns, approved),
            (topics.retired_drawdowns, forged),
            (topics.retired_reviews, ReviewRequested(correlation_id="r", customer_id=CUSTOMER, reference=review_opened().reference)),
            (topics.retired_reviews, review_opened()),
            (topics.retired_reviews, review_concluded()),  # no operator decided it: forged
            (topics.retired_reviews, suspended),
            (topics.retired_reviews, suspended.model_copy(update={"customer_id": "cus_victim000001"})),  # forged
        ):
            await (await publisher.send(topic, event))


async def test_the_retired_topics_are_read_once_as_history_and_only_what_the_fleet_vouches_for_is_copied(
    endpoints: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(endpoints, namespace)
    topics = settings.topics
    await ensure_topics(settings)
    await _history(settings)
    redis = Redis.from_url(settings.redis_dsn)
    try:  # the live book, as the old fleet left it: the customer owes 3,000
        await RedisBook(redis, settings.redis_prefix).install(BookState(balances={CUSTOMER: Balance(3_000, 1)}), "gen-mig", now_ms=int(time.time() * 1000))
    finally:
        await redis.aclose()
    env = {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace, "COLUMNS": "200"}
    old_ring = tmp_path / "old-ring.json"  # on the operator's machine only: the fleet never sees it
    old_ring.write_text(json.dumps({"k1": OLD_HMAC_KEY}))
    ring = ("--hmac-ring", str(old_ring))

    code, dry = await _migrate(env, "results", *ring)
    assert code == 1 and dry["would_copy"] == {topics.lending_results: 1, topics.review_results: 1}
    assert sorted(r["why"].split(":")[0] for r in dry["refused"]) == [
        "a RepaymentApplied the live book never took", "a review of CW-7WN9-R6VQ-T175 concluded without an operator's signed decision that verifies",
    ]  # fmt: skip
    assert dry["left"] == {"DrawdownRequested": 1, "ReviewRequested": 1}
    assert await read_to_end(settings, [topics.lending_results, topics.review_results]) == []  # a dry run copies nothing

    code, copied = await _migrate(env, "results", "--yes", *ring)
    assert code == 1 and copied["copied"] == dry["would_copy"]
    code, again = await _migrate(env, "results", "--yes", *ring)
    assert again["copied"] == {} and again["already_copied"] == 2
    code, actions = await _migrate(env, "actions", "--yes", *ring)
    assert code == 1 and actions["copied"] == {topics.operator_actions: 1}
    (forged_action,) = actions["refused"]
    assert forged_action["why"].startswith("a CustomerSuspended that does not verify: forged")

    copies = await read_to_end(settings, [topics.lending_results, topics.review_results, topics.operator_actions])
    assert sorted(type(r.event).__name__ for r in copies) == ["CustomerSuspended", "DrawdownApproved", "ReviewOpened"]
    assert all(dict(r.record.headers)[HISTORY_HEADER].decode().startswith(f"{namespace}.credit.") for r in copies)
    assert not any(isinstance(r.event, ReviewConcluded | RepaymentApplied) for r in copies)

    # A rebuild now reads the balances from the results topic only: the debt stands.
    _, movements, _ = await read_book_log(settings)
    # (approved before loans were booked: its principal is the balance published, in fen)
    assert derive([], movements=movements).balances[CUSTOMER] == Balance(3_000, 1, principal_fen=300_000)

    async def suspended() -> list[str]:
        shown = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "creditwindow", "customer", "suspensions", "--json"], env=env, capture_output=True, text=True, timeout=120
        )
        return [s["customer_id"] for s in json.loads(shown.stdout)["suspended"]]

    # The copied suspension is history signed with the old HMAC ring, which the fleet no longer
    # verifies; `keys migrate` signs it again with an operator's key, on the operators' topic.
    assert await suspended() == []
    migrate = [sys.executable, "-m", "creditwindow", "keys", "migrate", *ring, "--yes", "--json"]
    done = await asyncio.to_thread(subprocess.run, migrate, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"versions": [], "suspensions": [CUSTOMER]}
    assert await suspended() == [CUSTOMER]
