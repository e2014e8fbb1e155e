"""The policy service on the real broker and Redis, its clock moved to the last seconds of a year.

`CW_CLOCK_OFFSET_S` runs the service's clock at 2026-12-31 23:59:xx China time whatever today is.
An application received just before midnight and one just after are decided after it: each is
charged to the month of its application time in the Redis book (the Lua twin), and the decisions
say so. A window valid three seconds, opened before midnight, is expired by the sweeper after it
and gives its reservation back to December. A rebuild from the log derives the same budgets.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from redis.asyncio import Redis

from services.policy.record.adapters.recovery import read_book_log
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import WindowClosed, WindowOpened
from tests.clocks import WALL
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.unit.policy.factories import default_policy, score

MIDNIGHT = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 in China time
PRE_ROLL = timedelta(seconds=25)  # the service starts well within it (a few seconds here)


def _fleet_now(offset: timedelta) -> datetime:
    return WALL.now() + offset


async def _until_fleet_time(offset: timedelta, moment: datetime) -> None:
    wait = (moment - _fleet_now(offset)).total_seconds()
    assert wait > -0.5, f"the service started too late for the year's end: {-wait:.1f} s after {moment.isoformat()}"
    await asyncio.sleep(max(0.0, wait))


async def _decisions(fleet: RunningFleet, wanted: int) -> list[WindowOpened | WindowClosed]:
    seen = await fleet.read(
        [fleet.settings.topics.windows], lambda s: sum(isinstance(r.event, (WindowOpened, WindowClosed)) for r in s) >= wanted, timeout_s=60
    )
    return [r.event for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))]


async def test_the_year_end_on_the_real_book_charges_each_application_to_its_month(
    endpoints: dict[str, str], namespace: str, log_root: Path, tmp_path: Path
) -> None:
    offset = MIDNIGHT - PRE_ROLL - WALL.now()
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(default_policy(timing__window_validity=timedelta(seconds=3)).model_dump(mode="json"), sort_keys=False))
    fleet = await start_fleet(
        endpoints, namespace, log_root, services=("policy",),
        env={"CW_CLOCK_OFFSET_S": repr(offset.total_seconds()), "CW_POLICY_PATH": str(policy)},
    )  # fmt: skip
    redis = Redis.from_url(fleet.settings.redis_dsn)
    try:
        topics = fleet.settings.topics
        # A window opened two seconds before midnight (valid three): expires after it.
        await _until_fleet_time(offset, MIDNIGHT - timedelta(seconds=2))
        expiring = score(application_id="app_yearend_01", customer_id="cus_yearend_001", at=_fleet_now(offset))
        await fleet.publish(topics.scores, [expiring])
        (first,) = await _decisions(fleet, 1)
        assert isinstance(first, WindowOpened) and first.basis.budget_period == "2026-12"
        # Received a tenth of a second either side of midnight, both decided after it.
        await _until_fleet_time(offset, MIDNIGHT + timedelta(milliseconds=500))
        late = score(application_id="app_yearend_02", customer_id="cus_yearend_002", at=MIDNIGHT - timedelta(milliseconds=100))
        early = score(application_id="app_yearend_03", customer_id="cus_yearend_003", at=MIDNIGHT + timedelta(milliseconds=100))
        await fleet.publish(topics.scores, [late, early])
        decisions = await _decisions(fleet, 4)  # the two, and the expiry of the first
        by_application = {d.application_id: d for d in decisions if d.trigger == "application"}
        assert all(d.occurred_at >= MIDNIGHT for d in (by_application[late.application_id], by_application[early.application_id]))
        assert by_application[late.application_id].basis.budget_period == "2026-12"  # type: ignore[union-attr]
        assert by_application[early.application_id].basis.budget_period == "2027-01"  # type: ignore[union-attr]
        (expiry,) = [d for d in decisions if d.trigger == "expiry"]
        assert isinstance(expiry, WindowClosed) and expiry.closes_decision_id == first.decision_id and expiry.occurred_at >= MIDNIGHT

        book = RedisBook(redis, fleet.settings.redis_prefix)
        live = await book.budgets(["individual/2026-12", "individual/2027-01"])
        late_limit = by_application[late.application_id].limit  # type: ignore[union-attr]
        early_limit = by_application[early.application_id].limit  # type: ignore[union-attr]
        assert (live["individual/2026-12"].exposure, live["individual/2027-01"].exposure) == (late_limit, early_limit)
        # The log says the same: a rebuild derives these budgets.
        logged, movements = await read_book_log(fleet.settings)
        rebuilt = derive(logged, movements=movements)
        assert {k: v.exposure for k, v in rebuilt.budgets.items() if v.exposure} == {"individual/2026-12": late_limit, "individual/2027-01": early_limit}
    finally:
        await redis.aclose()
        fleet.fleet.stop()
