"""Drawdowns on the real broker and Redis: decided at once against the window by two policy replicas
at the same time without ever lending beyond the limit, told to the customer, shown by `GET /limits`,
and rebuilt from `credit.drawdowns` exactly."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from services.policy.record.adapters.recovery import read_book_log
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import (
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    NotificationSent,
    Repaid,
    RepaymentApplied,
    WindowOpened,
)
from shared.wire import encode
from tests.clocks import WALL
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.unit.policy.factories import score

CUSTOMER = "cus_draw_00000001"


def _outcomes(seen: list) -> list:  # type: ignore[type-arg]
    return [r.event for r in seen if isinstance(r.event, DrawdownApproved | DrawdownRefused | RepaymentApplied)]


async def _open_window(fleet: RunningFleet) -> WindowOpened:
    await fleet.publish(fleet.settings.topics.scores, [score(at=WALL.now(), application_id="app_draw_000001", customer_id=CUSTOMER, grade="D", pd=0.18, income=100_000)])
    seen = await fleet.read([fleet.settings.topics.windows], lambda s: any(isinstance(r.event, WindowOpened) for r in s))
    (opened,) = [r.event for r in seen if isinstance(r.event, WindowOpened)]
    return opened


async def _spread(fleet: RunningFleet, events: list[DrawdownRequested | Repaid]) -> None:
    """Each request keyed by its own id, so they land on every partition and both replicas decide at once
    (upstream apps key by customer; this is the worst case the book must still hold)."""
    for event in events:
        message = encode(event)
        ident = event.drawdown_id if isinstance(event, DrawdownRequested) else event.repayment_id
        headers = [(k, v.encode()) for k, v in message.headers.items()]
        await fleet.publish_raw(fleet.settings.topics.drawdowns, message.value, key=ident.encode(), headers=headers)


async def test_two_replicas_drawing_at_once_never_lend_beyond_the_limit_and_the_log_rebuilds_the_balance(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    token = secrets.token_urlsafe(24)
    fleet = await start_fleet(
        endpoints, namespace, log_root, services=("policy", "notification"), replicas=2,
        env={"CW_BATCH_MAX_RECORDS": "5", "CW_API_TOKENS": json.dumps({"e2e": token})},
    )  # fmt: skip
    try:
        opened = await _open_window(fleet)
        asks = [DrawdownRequested(correlation_id=f"dd_race_{n:04d}", drawdown_id=f"dd_race_{n:04d}", customer_id=CUSTOMER, amount=1_000 + 100 * (n % 7), locale="en") for n in range(80)]
        assert sum(a.amount for a in asks) > 3 * opened.limit  # far more asked than the window holds
        await _spread(fleet, asks + asks[:15])  # and some asked twice
        topics = fleet.settings.topics
        seen = await fleet.read([topics.drawdowns], lambda s: len({o.drawdown_id for o in _outcomes(s)}) >= len(asks), timeout_s=120, settle_s=1.0)
        outcomes = _outcomes(seen)
        first = {o.drawdown_id: o for o in reversed(outcomes)}  # copies of one outcome are the same event
        assert all(o.event_id == first[o.drawdown_id].event_id and o.balance == first[o.drawdown_id].balance for o in outcomes)
        approved = [o for o in first.values() if isinstance(o, DrawdownApproved)]
        refused = [o for o in first.values() if isinstance(o, DrawdownRefused)]
        lent = sum(o.amount for o in approved)
        assert lent <= opened.limit and max(o.balance for o in first.values()) <= opened.limit
        assert lent > opened.limit - 1_700  # the window was used, not left idle
        assert refused and {(o.category, o.reason) for o in refused} == {("credit", "above_available")}
        assert sorted(o.balance_seq for o in approved) == list(range(1, len(approved) + 1))  # one sequence, no gap
        assert {o.balance for o in approved} == {sum(a.amount for a in approved if a.balance_seq <= o.balance_seq) for o in approved}
        # Both replicas decided some of them (each holds half the partitions).
        assert fleet.fleet.logged("policy-0", "batch_lent") and fleet.fleet.logged("policy-1", "batch_lent"), fleet.fleet.tail("policy-1")

        # A repayment, then the customer reads their balance on the customer-data API.
        await _spread(fleet, [Repaid(correlation_id="rp_race_0001", repayment_id="rp_race_0001", customer_id=CUSTOMER, amount=2_000, locale="en")])
        await fleet.read([topics.drawdowns], lambda s: any(isinstance(e, RepaymentApplied) for e in _outcomes(s)))
        async with httpx.AsyncClient(base_url=fleet.fleet.api_address("policy-0"), timeout=5) as client:
            limits = (await client.get(f"/limits/{CUSTOMER}", headers={"Authorization": f"Bearer {token}"})).json()
        assert (limits["limit"], limits["balance"], limits["available"]) == (opened.limit, lent - 2_000, opened.limit - lent + 2_000)

        # Every outcome is told to the customer once, in their inbox.
        told = await fleet.read(
            [topics.notifications], lambda s: len({r.event.movement_id for r in s if isinstance(r.event, NotificationSent) and r.event.movement_id}) >= len(asks) + 1,
            timeout_s=90, settle_s=1.0,
        )  # fmt: skip
        notices = [r.event for r in told if isinstance(r.event, NotificationSent) and r.event.movement_id]
        assert Counter(n.decision_id for n in notices).most_common(1)[0][1] == 1
        assert {n.outcome for n in notices} == {"drawdown_approved", "drawdown_refused", "repayment_applied"}

        # The balances are derived state: the log gives back exactly what Redis holds.
        decisions, movements = await read_book_log(fleet.settings)
        derived = derive(decisions, movements=movements)
        redis = Redis.from_url(fleet.settings.redis_dsn)
        try:
            live = await RedisBook(redis, fleet.settings.redis_prefix).snapshot()
        finally:
            await redis.aclose()
        assert derived.balances[CUSTOMER] == live.balances[CUSTOMER]
        assert derived.balances[CUSTOMER].balance == lent - 2_000
        assert set(derived.movements) == set(live.movements)
    finally:
        fleet.fleet.stop()
