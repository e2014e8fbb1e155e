"""The portfolio book's two twins agree: the pure Python `Book` and the Lua script on the real Redis.

Hypothesis draws random streams of decisions (offers against tight budgets in several periods,
paced against random demand forecasts, credit and system closures, maintenance deferrals,
duplicates, customers applying again, re-decisions of earlier applications, unreadable attempts of
applications, application ids reused by another customer), lifecycle closures (expiry, pause),
drawdowns (within, above and at the edge of the limit, on closed and expired windows, under a
tightened regulatory cap, repeated, and with another customer's id) and repayments, runs each
stream through both, and compares every answer and, at the end, every value of the book: budgets,
programmes, decision records, windows, sequences, queues, balances and movements.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.book import Book
from services.policy.windows.decisions import budget_period, charge_of, close_request, propose, request_for
from services.policy.windows.model import (
    BookState,
    BudgetTerms,
    CloseRequest,
    DrawRequest,
    OfferTerms,
    RepayRequest,
    WindowRequest,
)
from tests.conftest import settings_for
from tests.unit.policy.factories import default_policy, score

NOW_MS = 1_795_000_000_000
CUSTOMERS = [f"cus_twin_{n:06d}" for n in range(6)]
SEGMENTS = ("individual", "small_business")
BUDGET_KEYS = ("individual", "individual/2026-11", "individual/2026-12", "small_business/2026-11")
FRACTIONS = ("", "0.3333333333", "0.25", "0.5")


@dataclass(frozen=True)
class Decide:
    request: WindowRequest
    terms: BudgetTerms


@dataclass(frozen=True)
class Draw:
    request: DrawRequest


@dataclass(frozen=True)
class Repay:
    request: RepayRequest


@dataclass(frozen=True)
class Close:
    which: int  # index into the records decided so far
    trigger: str
    at_ms: int


@st.composite
def demand_curves(draw: st.DrawFn) -> tuple[tuple[float, float, float], ...]:
    """A forecast: margins ascending, demand falling (possibly flat)."""
    margins = sorted(set(draw(st.lists(st.floats(-0.01, 0.08, allow_nan=False), max_size=6))))
    exposures = sorted(
        draw(st.lists(st.integers(0, 400_000), min_size=len(margins), max_size=len(margins))), reverse=True
    )
    losses = sorted(
        draw(st.lists(st.floats(0, 8_000, allow_nan=False), min_size=len(margins), max_size=len(margins))), reverse=True
    )
    return tuple((m, float(e), l) for m, e, l in zip(margins, exposures, losses, strict=True))


budgets = st.builds(
    BudgetTerms,
    exposure=st.integers(0, 40).map(lambda n: n * 5_000),
    expected_loss=st.integers(0, 4_000),
    programme_budget=st.integers(0, 20).map(lambda n: n * 500),
    round_to=st.sampled_from([100, 500]),
    min_limit=st.sampled_from([500, 1_000]),
    pacing=st.booleans(),
    elapsed=st.floats(0, 1, allow_nan=False),
    slack=st.floats(-0.5, 2, allow_nan=False),
    demand=demand_curves(),
)
offers = st.builds(
    OfferTerms,
    limit=st.integers(5, 600).map(lambda n: n * 100),
    el_rate=st.floats(0, 0.25, allow_nan=False, allow_subnormal=False),
    margin=st.floats(-0.01, 0.08, allow_nan=False),
    apr=st.sampled_from(["0.073", "0.1095", "0.24"]),
    valid_until_ms=st.integers(NOW_MS, NOW_MS + 10_000),
    programme=st.sampled_from(["", "boost"]),
    part=st.integers(0, 50).map(lambda n: n * 100),
    income_fraction=st.sampled_from(FRACTIONS),
)


KINDS = ["offer", "offer", "offer", "credit", "system", "maintenance", "duplicate", "redecision", "unreadable"]


@st.composite
def decide(draw: st.DrawFn, n: int) -> Decide:
    kind = draw(st.sampled_from(KINDS))
    earlier = f"app_twin_{draw(st.integers(0, max(0, n - 1))):05d}"
    application = earlier if kind in ("duplicate", "redecision", "unreadable") and n else f"app_twin_{n:05d}"
    record = {"redecision": f"{application}~r", "unreadable": f"{application}~invalid"}.get(kind, application)
    offer = draw(offers) if kind in ("offer", "duplicate", "redecision") and draw(st.integers(0, 3)) else None
    closure = {"credit": "credit", "system": "system", "maintenance": "system", "unreadable": "system"}.get(kind, "")
    if kind in ("duplicate", "redecision") and offer is None:
        closure = "credit"
    return Decide(
        WindowRequest(
            record=record,
            # Mostly each application's own customer; sometimes another one reuses its id (a conflict).
            customer=CUSTOMERS[int(application[-5:]) % len(CUSTOMERS)]
            if draw(st.integers(0, 5))
            else draw(st.sampled_from(CUSTOMERS)),
            segment=draw(st.sampled_from(SEGMENTS)),
            decision_id=str(uuid.UUID(int=n)),
            application_id=application,
            policy_version="default@1",
            decided_at_ms=NOW_MS + n,
            budget=draw(st.sampled_from(BUDGET_KEYS)),
            offer=offer,
            category=closure if offer is None else "",
            reason={"credit": "score_below_cutoff", "system": "scoring_failed"}.get(closure, "")
            if kind not in ("maintenance", "unreadable")
            else kind,
            supersedes=closure != "system",
            fallback_of=application if kind == "unreadable" else "",
            redecides=application if kind == "redecision" else "",
            region=draw(st.sampled_from(["CN-SH", "CN-BJ"])),
            channel="app",
            locale=draw(st.sampled_from(["zh-CN", "en"])),
            model_id="german-woe@1",
            deferred_score='{"score": 1}' if kind == "maintenance" else "",
            deferred_until_ms=NOW_MS + 5_000 if kind == "maintenance" else 0,
        ),
        # The batch's terms for the budget the request names (several periods of one segment meet).
        draw(budgets),
    )


@st.composite
def movement(draw: st.DrawFn, n: int) -> Draw | Repay:
    # Ids repeat (asked twice is asked once) and sometimes come from another customer (a conflict).
    ident = f"mv_twin_{draw(st.integers(0, n)):05d}"
    customer = draw(st.sampled_from(CUSTOMERS))
    amount = draw(st.sampled_from([100, 500, 2_000, 10_000, 30_000, 60_000]))
    at_ms = NOW_MS + draw(st.integers(0, 20_000))
    if draw(st.integers(0, 3)) == 0:
        return Repay(RepayRequest(repayment_id=ident, customer=customer, amount=amount, at_ms=at_ms))
    return Draw(
        DrawRequest(
            drawdown_id=ident,
            customer=customer,
            amount=amount,
            at_ms=at_ms,
            absolute_cap=draw(st.sampled_from([200_000, 20_000, 5_000])),
            income_fraction=draw(st.sampled_from(FRACTIONS)),
            policy_version="default@2",
        )  # fmt: skip
    )


Op = Decide | Close | Draw | Repay


@st.composite
def streams(draw: st.DrawFn) -> list[Op]:
    ops: list[Op] = []
    for n in range(draw(st.integers(1, 40))):
        pick = draw(st.integers(0, 9))
        if n and pick < 2:
            ops.append(
                Close(draw(st.integers(0, n - 1)), draw(st.sampled_from(["expiry", "pause"])), NOW_MS + 20_000 + n)
            )
        elif pick < 5:
            ops.append(draw(movement(n)))
        else:
            ops.append(draw(decide(n)))
    return ops


async def new_book(redis: Redis, prefix: str) -> RedisBook:
    """An empty book in Redis, installed and adopted as a process does at start."""
    store = RedisBook(redis, prefix)
    await store.install(BookState(), "g1", now_ms=NOW_MS)
    store.guard.adopt("g1")
    return store


async def _run_both(endpoints: dict[str, str], ops: list[Op]) -> None:
    prefix = f"cw:twin{uuid.uuid4().hex[:10]}:"
    redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
    try:
        store, book = await new_book(redis, prefix), Book()
        decided: list[str] = []
        for op in ops:
            if isinstance(op, Draw):
                (in_redis,) = await store.draw([op.request])
                assert in_redis == book.draw(op.request), op
            elif isinstance(op, Repay):
                (in_redis,) = await store.repay([op.request])
                assert in_redis == book.repay(op.request), op
            elif isinstance(op, Decide):
                (in_redis,) = await store.post([op.request], {op.request.budget: op.terms})
                assert in_redis == book.post(op.request, op.terms), op
                if in_redis.fresh:  # as the underwriter does: keep the event, then mark it published
                    event = b'{"event_type":"WindowClosed","n":%d}' % len(decided)
                    await store.remember([(op.request.record, event)])
                    book.remember(op.request.record, event)
                    if len(decided) % 3:
                        await store.mark_published([op.request.record])
                        book.mark_published(op.request.record)
                decided.append(op.request.record)
            else:
                record = decided[op.which % len(decided)] if decided else "app_twin_none"
                request = CloseRequest(
                    record,
                    str(uuid.UUID(int=10**6 + op.at_ms % 10**6)),
                    "strategy",
                    f"{op.trigger}_x",
                    op.trigger,
                    op.at_ms,
                )
                closed = await store.close(request)
                assert (closed is not None) == (book.close(request) is not None), op
        assert await store.snapshot() == book.state
    finally:
        doomed = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if doomed:
            await redis.delete(*doomed)
        await redis.aclose()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(ops=streams())
def test_the_lua_book_and_the_python_book_hold_the_same_values(endpoints: dict[str, str], ops: list[Op]) -> None:
    asyncio.run(_run_both(endpoints, ops))


def test_a_batch_is_decided_in_order_as_one_call(endpoints: dict[str, str]) -> None:
    """Several requests of one customer in one call: each sees the previous one's reservation and supersedes it."""
    terms = BudgetTerms(exposure=10_000, expected_loss=1_000, round_to=100, min_limit=500)
    requests = [
        WindowRequest(
            record=f"app_batch_{n}",
            customer="cus_batch_00001",
            segment="individual",
            decision_id=str(uuid.UUID(int=n)),
            application_id=f"app_batch_{n}",
            policy_version="default@1",
            decided_at_ms=NOW_MS,
            budget="individual",
            offer=OfferTerms(limit=6_000, el_rate=0.05, margin=0.03, apr="0.1", valid_until_ms=NOW_MS + 1),
        )  # fmt: skip
        for n in range(3)
    ]
    book = Book()
    expected = [book.post(r, terms) for r in requests]
    assert [a.granted for a in expected] == [6_000, 4_000, 6_000]  # the second met the first still counted

    async def run() -> None:
        prefix = f"cw:batch{uuid.uuid4().hex[:8]}:"
        redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
        try:
            store = await new_book(redis, prefix)
            assert await store.post(requests, {"individual": terms}) == expected
            assert await store.snapshot() == book.state
        finally:
            doomed = [key async for key in redis.scan_iter(match=f"{prefix}*")]
            await redis.delete(*doomed)
            await redis.aclose()

    asyncio.run(run())


def test_the_store_reloads_its_script_after_redis_lost_it(endpoints: dict[str, str]) -> None:
    async def run() -> None:
        prefix = f"cw:reload{uuid.uuid4().hex[:8]}:"
        redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
        try:
            store = await new_book(redis, prefix)
            await redis.script_flush()  # what a Redis restart without persistence of scripts looks like
            request = WindowRequest(
                record="app_reload_0001", customer="cus_reload_00001", segment="individual", decision_id=str(uuid.UUID(int=1)),
                application_id="app_reload_0001", policy_version="default@1", decided_at_ms=NOW_MS, budget="individual",
                offer=OfferTerms(limit=5_000, el_rate=0.02, margin=0.03, apr="0.1", valid_until_ms=NOW_MS + 1),
            )  # fmt: skip
            (allocation,) = await store.post(
                [request], {"individual": BudgetTerms(exposure=100_000, expected_loss=10_000)}
            )
            assert allocation.fresh and allocation.granted == 5_000
        finally:
            await redis.delete(*[key async for key in redis.scan_iter(match=f"{prefix}*")])
            await redis.aclose()

    asyncio.run(run())


def test_a_book_that_lost_its_data_or_went_back_in_time_is_refused_until_recovered(endpoints: dict[str, str]) -> None:
    """A flush, a restart without persistence, or a failover to a replica that missed writes: noticed first."""
    from shared.redis_state import StateLost

    async def run() -> None:
        prefix = f"cw:lost{uuid.uuid4().hex[:8]}:"
        redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
        lost: list[str] = []
        try:
            store = await new_book(redis, prefix)
            store.guard.on_lost = lost.append
            terms = BudgetTerms(exposure=100_000, expected_loss=10_000)
            offer = OfferTerms(limit=5_000, el_rate=0.02, margin=0.03, apr="0.1", valid_until_ms=NOW_MS + 1)

            def request(n: int) -> WindowRequest:
                return WindowRequest(
                    record=f"app_lost_{n:05d}", customer=f"cus_lost_{n:05d}", segment="individual", decision_id=str(uuid.UUID(int=n)),
                    application_id=f"app_lost_{n:05d}", policy_version="default@1", decided_at_ms=NOW_MS, budget="individual", offer=offer,
                )  # fmt: skip

            budgets = {"individual": terms}
            await store.post([request(1), request(2)], budgets)
            version = await redis.get(f"{prefix}book:version")
            await store.post([request(3)], budgets)
            await redis.set(f"{prefix}book:version", version)  # what a replica that missed the last write holds
            with pytest.raises(StateLost):
                await store.post([request(4)], budgets)
            assert lost and "behind" in lost[-1]

            await redis.delete(*[key async for key in redis.scan_iter(match=f"{prefix}*")])  # a flush
            with pytest.raises(StateLost):
                await store.post([request(5)], budgets)
            assert "generation false" in lost[-1]  # no generation: the data is gone
            assert [key async for key in redis.scan_iter(match=f"{prefix}*")] == []  # nothing half-written
        finally:
            await redis.delete(*[key async for key in redis.scan_iter(match=f"{prefix}*")] or [f"{prefix}none"])
            await redis.aclose()

    asyncio.run(run())


# --- across budget periods' ends ----------------------------------------------------------------------
# Real applications through the policy's own rules (`propose`, `charge_of`, `request_for`), received
# and decided within seconds of the end of a month (and of a day) in China time, including a year's
# end and a leap day: each is charged to the period of its application time even when decided after
# it; windows valid for a few seconds expire on either side of midnight and are swept at instants
# that straddle it. Both twins must give every answer alike, find the same windows due, and give
# every reservation back to the budget it was charged to.

ENDS = (
    datetime(2026, 12, 31, 16, tzinfo=UTC),  # 2027-01-01 00:00 in China: a month's and a year's end
    datetime(2028, 2, 28, 16, tzinfo=UTC),  # 2028-02-29 00:00: into a leap day
    datetime(2028, 2, 29, 16, tzinfo=UTC),  # 2028-03-01 00:00: out of it
)
PERIOD_POLICIES = {
    "monthly": default_policy(
        budgets__individual={"exposure": 60_000, "expected_loss": 3_000, "period": "P1M"},
        timing__window_validity=timedelta(seconds=3),
        pacing__demand={"individual": [{"margin": 0.0, "exposure": 90_000, "expected_loss": 4_000}, {"margin": 0.05, "exposure": 30_000, "expected_loss": 900}]},
    ),
    "daily": default_policy(
        budgets__individual={"exposure": 40_000, "expected_loss": 2_000, "period": "P1D"},
        timing__window_validity=timedelta(seconds=2),
    ),
}
GRADES = (("A", 0.02, 640.0), ("C", 0.08, 560.0), ("D", 0.18, 530.0))


@dataclass(frozen=True)
class Apply:
    customer: int
    grade: int
    income: int
    received_ms: int  # from the period's end
    delay_ms: int  # from receipt to decision


@dataclass(frozen=True)
class Sweep:
    at_ms: int  # from the period's end


@st.composite
def boundary_streams(draw: st.DrawFn) -> list[Apply | Sweep]:
    ops: list[Apply | Sweep] = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 2)) == 0:
            ops.append(Sweep(draw(st.sampled_from([-1, 0, 1]) | st.integers(-3_000, 6_000))))  # midnight itself, often
        else:
            ops.append(Apply(
                draw(st.integers(0, 3)), draw(st.integers(0, 2)), draw(st.sampled_from([60_000, 120_000, 300_000])),
                # received exactly at midnight, a millisecond either side of it, or so that a window
                # valid 2 or 3 seconds expires exactly at midnight; else anywhere around it
                draw(st.sampled_from([-3_000, -2_000, -1, 0, 1]) | st.integers(-3_000, 3_000)),
                draw(st.sampled_from([0, 1, 50, 900, 2_500])),
            ))  # fmt: skip
    return ops


async def _run_across(endpoints: dict[str, str], policy_name: str, end: datetime, ops: list[Apply | Sweep]) -> None:
    policy = PERIOD_POLICIES[policy_name]
    prefix = f"cw:ends{uuid.uuid4().hex[:10]}:"
    redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
    try:
        store, book = await new_book(redis, prefix), Book()
        charged: dict[str, str] = {}  # record -> the budget its application's time falls in
        for n, op in enumerate(ops):
            if isinstance(op, Sweep):
                at = end + timedelta(milliseconds=op.at_ms)
                due = book.due_expiries(int(at.timestamp() * 1000))
                assert await store.due_expiries(at) == due, op
                for record in due:
                    request = close_request(record, trigger="expiry", reason="expired", now=at)
                    assert (await store.close(request) is not None) == (book.close(request) is not None), op
                continue
            received = end + timedelta(milliseconds=op.received_ms)
            grade, pd, points = GRADES[op.grade]
            the_score = score(
                application_id=f"app_end_{n:05d}", customer_id=f"cus_end_{op.customer:07d}", grade=grade, pd=pd, points=points,
                income=op.income, at=received,
            )  # fmt: skip
            proposal = propose(the_score, policy, received + timedelta(milliseconds=op.delay_ms))
            charge = charge_of(proposal, policy)
            key, terms = charge.key, charge.terms
            assert key == f"individual/{budget_period(policy, 'individual', received)}"  # the application's period
            request = request_for(proposal, policy, charge)
            (in_redis,) = await store.post([request], {key: terms})
            assert in_redis == book.post(request, terms), op
            charged[request.record] = key
        assert await store.snapshot() == book.state
        # Every reservation is held by the budget its window was charged to, and by no other.
        held: dict[str, int] = {}
        for record, entry in book.state.records.items():
            if entry.status == "open":
                assert entry.budget == charged[record]
                held[charged[record]] = held.get(charged[record], 0) + entry.granted
        assert {k: v.exposure for k, v in book.state.budgets.items() if v.exposure} == held
    finally:
        doomed = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if doomed:
            await redis.delete(*doomed)
        await redis.aclose()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(policy_name=st.sampled_from(sorted(PERIOD_POLICIES)), end=st.sampled_from(ENDS), ops=boundary_streams())
def test_the_twins_agree_across_the_end_of_a_budget_period(
    endpoints: dict[str, str], policy_name: str, end: datetime, ops: list[Apply | Sweep]
) -> None:
    asyncio.run(_run_across(endpoints, policy_name, end, ops))


@pytest.mark.parametrize("end", ENDS, ids=lambda e: e.isoformat())
def test_a_window_due_at_midnight_is_swept_at_midnight_not_a_millisecond_before_in_both_twins(endpoints: dict[str, str], end: datetime) -> None:
    """Window expiry and the sweeper across the day boundary in China time: valid until exactly midnight."""
    policy = PERIOD_POLICIES["monthly"]  # windows valid 3 seconds
    received = end - timedelta(seconds=3)  # the last month's: it expires exactly at midnight

    async def run() -> None:
        prefix = f"cw:midnight{uuid.uuid4().hex[:8]}:"
        redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
        try:
            store, book = await new_book(redis, prefix), Book()
            proposal = propose(score(application_id="app_midnight_01", grade="A", pd=0.02, points=640.0, at=received), policy, received)
            charge = charge_of(proposal, policy)
            key, terms = charge.key, charge.terms
            request = request_for(proposal, policy, charge)
            (allocation,) = await store.post([request], {key: terms})
            assert allocation == book.post(request, terms) and allocation.granted > 0
            assert request.offer is not None and request.offer.valid_until_ms == int(end.timestamp() * 1000)
            before = end - timedelta(milliseconds=1)
            assert await store.due_expiries(before) == book.due_expiries(int(before.timestamp() * 1000)) == []
            assert await store.due_expiries(end) == book.due_expiries(int(end.timestamp() * 1000)) == [request.record]
            closing = close_request(request.record, trigger="expiry", reason="expired", now=end)
            assert (await store.close(closing)) is not None and book.close(closing) is not None
            assert (await store.budgets([key]))[key].exposure == book.state.budgets[key].exposure == 0  # back to its month
            assert await store.snapshot() == book.state
        finally:
            await redis.delete(*[k async for k in redis.scan_iter(match=f"{prefix}*")] or [f"{prefix}none"])
            await redis.aclose()

    asyncio.run(run())
