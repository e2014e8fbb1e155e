"""The notification state's Lua scripts and their pure twins hold the same values (real Redis).

As tests/e2e/test_book_twins.py does for the book: hypothesis draws random streams and runs each
through the Redis adapter and the pure twin, comparing every reply and, after a rebuild's install
and at the end, every value of the state in Redis (`snapshot`) with the twin's.

- the ledger (`redis_ledger.py` / `ledger.py`): claims of decisions and of notices outside the
  customer's order (sequence 0 or below) in batches with repeats, customers applying again, stale
  sequences, kept events (any text) remembered and published, and rebuilds installing what was
  told (some of it already past the ledger's 30 days);
- the webhook queue (`redis_webhooks.py` / `webhook_queue.py`): enqueues (again), replayed
  give-ups requeued (once per letter, only when dead), claims with short leases that run out while
  the stream goes on, settles and finishes by the lease holder and by holders whose lease was
  taken over, rebuilds installing the deliveries owed, and states installed as they are that no
  script leaves behind (finished deliveries, or none at all, still queued), so the twins agree on
  any state, not only on the ones they reach.

The twin is given Redis's own time: every script answers the TIME it used (`now`), which the
guard below keeps.
"""

from __future__ import annotations

import asyncio
import copy
import traceback
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from services.notification.ledger import TTL_S, LedgerState, NoticeLedger, installed
from services.notification.ports import ClaimedDelivery, DeliverySource, WebhookDelivery
from services.notification.redis_ledger import RedisLedger
from services.notification.redis_webhooks import STATE, RedisWebhookQueue
from services.notification.webhook_queue import DeliveryQueue, QueuedDelivery, QueueState, restored
from shared.redis_state import StateGuard
from tests.conftest import settings_for

TWIN_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


class Clocked(StateGuard):
    """The notification state's guard, keeping what the last script was asked (`body`) and the Redis
    time it answered it at (`now_ms`): the pure twin's clock."""

    body: dict[str, Any] | None = None
    now_ms: int | None = None

    async def run(self, script: Any, body: bytes | str, *, durable: bool = False) -> Any:
        reply = await super().run(script, body, durable=durable)
        if isinstance(reply, bytes):
            answer = orjson.loads(reply)
            self.body, self.now_ms = orjson.loads(body), int(answer["now"])
        return reply

    def took(self) -> int:
        """The time of the script just run (and forget it, so that a script that answered none is noticed)."""
        now, self.now_ms = self.now_ms, None
        assert now is not None, "the script answered no time"
        return now


@dataclass
class State:
    redis: Redis
    guard: Clocked
    ledger: RedisLedger
    queue: RedisWebhookQueue

    async def install(self, ledger: LedgerState, deliveries: list[WebhookDelivery], now_ms: int) -> None:
        """A rebuild: install the state, and work on it from now on."""
        generation = uuid.uuid4().hex[:8]
        await self.ledger.install(ledger, self.queue, restored(deliveries, now_ms), generation)
        self.guard.adopt(generation)


@asynccontextmanager
async def notification_state(endpoints: dict[str, str]) -> AsyncIterator[State]:
    """An empty, complete notification state under a prefix of its own, as a first start leaves it."""
    prefix = f"cw:ntwin{uuid.uuid4().hex[:10]}:"
    redis = Redis.from_url(settings_for(endpoints, "twins").redis_dsn)
    guard = Clocked(redis, prefix, STATE)
    try:
        pipe = redis.pipeline(transaction=False)
        guard.mark_complete(pipe, "g1")
        await pipe.execute()
        guard.adopt("g1")
        yield State(redis, guard, RedisLedger(redis, prefix, guard), RedisWebhookQueue(redis, prefix, guard))
    finally:
        doomed = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if doomed:
            await redis.delete(*doomed)
        await redis.aclose()


def run(stream: Coroutine[Any, Any, None]) -> None:
    """Run a stream on both; a difference fails as text. An exception holding the stream's frames (its
    Redis client, both states) made hypothesis's shrinking, which keeps the failures it meets, grow
    to gigabytes."""
    try:
        asyncio.run(stream)
        return
    except AssertionError:
        problem = traceback.format_exc()
    raise AssertionError(problem)


# --- the ledger ------------------------------------------------------------------------------------

DECISIONS = [f"dec_twin_{n:03d}" for n in range(10)] + ["dec_twin_通知"]
CUSTOMERS = [f"cus_twin_{n:06d}" for n in range(4)]


@dataclass(frozen=True)
class ClaimBatch:
    claims: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class Remember:
    notices: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Publish:
    decision_ids: tuple[str, ...]


@dataclass(frozen=True)
class Rebuild:
    told_ago_ms: tuple[tuple[str, int], ...]
    seqs: tuple[tuple[str, int], ...]


claim_batches = st.builds(
    ClaimBatch,
    st.lists(
        st.tuples(st.sampled_from(DECISIONS), st.sampled_from(CUSTOMERS), st.integers(-1, 8)), min_size=1, max_size=5
    ).map(tuple),
)
remembers = st.builds(
    Remember, st.lists(st.tuples(st.sampled_from(DECISIONS), TEXT.map(str.encode)), min_size=1, max_size=3).map(tuple)
)
publishes = st.builds(Publish, st.lists(st.sampled_from(DECISIONS), min_size=1, max_size=3).map(tuple))
rebuilds = st.builds(
    Rebuild,
    st.lists(
        st.tuples(st.sampled_from(DECISIONS), st.integers(0, TTL_S * 1000 + 5_000)), max_size=6, unique_by=lambda t: t[0]
    ).map(tuple),
    st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.integers(0, 8)), max_size=4, unique_by=lambda t: t[0]).map(tuple),
)
LedgerOp = ClaimBatch | Remember | Publish | Rebuild
ledger_streams = st.builds(
    lambda first, rest: [first, *rest],
    claim_batches,
    st.lists(st.one_of(claim_batches, claim_batches, remembers, publishes, rebuilds), min_size=2, max_size=30),
)


async def _run_ledger(endpoints: dict[str, str], ops: list[LedgerOp]) -> None:
    async with notification_state(endpoints) as state:
        twin = NoticeLedger()
        now = await state.ledger.now_ms()
        for op in ops:
            if isinstance(op, ClaimBatch):
                in_redis = await state.ledger.claim(op.claims)
                now = state.guard.took()
                assert in_redis == twin.claim(op.claims, now), op
            elif isinstance(op, Remember):
                await state.ledger.remember(op.notices)
                twin.remember(op.notices, now)
            elif isinstance(op, Publish):
                await state.ledger.mark_published(op.decision_ids)
                twin.mark_published(op.decision_ids, now)
            else:
                now = await state.ledger.now_ms()
                twin = NoticeLedger(installed(dict(op.told_ago_ms), dict(op.seqs), now))
                await state.install(installed(dict(op.told_ago_ms), dict(op.seqs), now), [], now)
                assert await state.ledger.snapshot() == twin.state, op
        assert await state.ledger.snapshot() == twin.state


@TWIN_SETTINGS
@given(ops=ledger_streams)
def test_the_lua_ledger_and_the_python_ledger_hold_the_same_values(endpoints: dict[str, str], ops: list[LedgerOp]) -> None:
    run(_run_ledger(endpoints, ops))


# --- the webhook queue --------------------------------------------------------------------------------


def _delivery(n: int) -> WebhookDelivery:
    customer = CUSTOMERS[n % len(CUSTOMERS)]
    source = DeliverySource("credit.windows", n % 3, 100 + n, customer, b'{"decision": %d}' % n, {"event_type": "WindowOpened"})
    return WebhookDelivery(
        notification_id=f"nt_twin_{n:03d}", partner_id=f"p{n % 2}", customer_id=customer, decision_id=f"dec_twin_{n:03d}",
        correlation_id="" if n == 3 else f"app_twin_{n:03d}", body=f'{{"n": {n}, "title": "额度 / \\"{n}\\""}}'.encode(),
        notice=b'{"event_type": "NotificationSent", "n": %d}' % n, source=source,
    )  # fmt: skip


DELIVERIES = [_delivery(n) for n in range(4)]  # few: each meets enqueues, claims and requeues often
LETTERS = [f"letter_twin_{n}" for n in range(6)]


@dataclass(frozen=True)
class Enqueue:
    which: tuple[int, ...]


@dataclass(frozen=True)
class Requeue:
    which: tuple[tuple[int, int], ...]  # (delivery, dead letter replayed)


@dataclass(frozen=True)
class Dispatch:
    """A dispatcher's round: claim, then for each delivery claimed what became of it (in turn)."""

    limit: int
    lease_ms: int
    outcomes: tuple[str, ...]  # retry | delivered | failed (then finished, or it died first) | died
    delay_ms: int
    error: str


@dataclass(frozen=True)
class Late:
    """A dispatcher that held a claim earlier settles or finishes it now: its lease may have been taken over."""

    back: int  # which claim so far, counted back from the latest
    outcome: str  # retry | delivered | failed | finish


@dataclass(frozen=True)
class Wait:
    ms: int


@dataclass(frozen=True)
class Restore:
    which: tuple[int, ...]


@dataclass(frozen=True)
class Seeded:
    """One delivery of a state installed as it is: times relative to the install, in ms."""

    which: int
    state: str
    attempts: int
    lease: str | None
    first_ms: int | None
    due_ms: int | None  # None: not in the queue


@dataclass(frozen=True)
class Seed:
    """A state installed as it is, including what no script leaves behind (a finished delivery or none
    at all still queued): the rules must agree on any state, not only on the ones they reach."""

    deliveries: tuple[Seeded, ...]
    orphans: tuple[int, ...]  # queued ids with no delivery

    def state(self, now_ms: int) -> QueueState:
        state = QueueState()
        for s in self.deliveries:
            entry = replace(
                QueuedDelivery.of(DELIVERIES[s.which], now_ms - 50), state=s.state, attempts=s.attempts, lease=s.lease,
                first=None if s.first_ms is None else now_ms + s.first_ms,
            )  # fmt: skip
            if s.state in ("done", "dead"):
                entry = replace(entry, body=None, notice=None, source=None, expires_at=now_ms + TTL_S * 1000)
            state.deliveries[DELIVERIES[s.which].notification_id] = entry
            if s.due_ms is not None:
                state.due[DELIVERIES[s.which].notification_id] = now_ms + s.due_ms
        for n in self.orphans:
            state.due[f"nt_twin_gone_{n}"] = now_ms - n
        return state


indices = st.integers(0, len(DELIVERIES) - 1)
# Leases and delays that run out within the stream (mostly), and some that do not.
spans_ms = st.sampled_from([0, 0, 1, 3, 60_000])
outcomes = st.sampled_from(["retry", "delivered", "delivered+finish", "failed", "failed+finish", "failed+finish", "died"])
enqueues = st.builds(Enqueue, st.lists(indices, min_size=1, max_size=3).map(tuple))
requeues = st.builds(Requeue, st.lists(st.tuples(indices, st.integers(0, len(LETTERS) - 1)), min_size=1, max_size=2).map(tuple))
dispatches = st.builds(
    Dispatch, st.sampled_from([0, 1, 2, 4]), spans_ms, st.lists(outcomes, min_size=1, max_size=3).map(tuple), spans_ms, TEXT
)
queue_ops = st.one_of(
    enqueues,
    enqueues,
    requeues,
    requeues,
    dispatches,
    dispatches,
    dispatches,
    st.builds(Late, st.integers(0, 4), st.sampled_from(["retry", "delivered", "failed", "finish"])),
    st.builds(Wait, st.integers(1, 4)),
    st.builds(Restore, st.lists(indices, max_size=3, unique=True).map(tuple)),
    st.builds(
        Seed,
        st.lists(
            st.builds(
                Seeded, indices, st.sampled_from(["pending", "delivered", "failed", "done", "dead"]), st.integers(0, 3),
                st.sampled_from([None, "lease-of-a-dead-dispatcher"]), st.sampled_from([None, -40, 0]),
                st.sampled_from([None, -5, 0, 60_000]),
            ),  # fmt: skip
            max_size=4,
            unique_by=lambda seeded: seeded.which,
        ).map(tuple),
        st.lists(st.integers(0, 3), max_size=2, unique=True).map(tuple),
    ),
)
queue_streams = st.builds(lambda first, rest: [first, *rest], enqueues, st.lists(queue_ops, min_size=3, max_size=40))
QueueOp = Enqueue | Requeue | Dispatch | Late | Wait | Restore | Seed


@dataclass
class BothQueues:
    """The Redis queue and its pure twin, asked the same; every answer compared."""

    state: State
    twin: DeliveryQueue
    claimed: list[ClaimedDelivery]

    async def claim(self, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
        claimed = await self.state.queue.claim(limit, lease_ms)
        now, token = self.state.guard.took(), self.state.guard.body["token"]  # type: ignore[index]
        assert claimed == self.twin.claim(limit, lease_ms, token, now)
        self.claimed += claimed
        return claimed

    async def settle(self, held: ClaimedDelivery, outcome: str, delay_ms: int = 0, error: str = "") -> None:
        ok = await self.state.queue.settle(held, outcome, delay_ms=delay_ms, error=error)
        now = self.state.guard.took()
        assert ok == self.twin.settle(held.delivery.notification_id, held.token, outcome, delay_ms, error, now)

    async def finish(self, held: ClaimedDelivery) -> None:
        ok = await self.state.queue.finish(held)
        assert ok == self.twin.finish(held.delivery.notification_id, held.token, self.state.guard.took())


async def _run_queue(endpoints: dict[str, str], ops: list[QueueOp]) -> None:
    async with notification_state(endpoints) as state:
        both = BothQueues(state, DeliveryQueue(), [])
        for op in ops:
            if isinstance(op, Enqueue):
                batch = [DELIVERIES[i] for i in op.which]
                in_redis = await state.queue.enqueue(batch)
                assert in_redis == both.twin.enqueue(batch, state.guard.took()), op
            elif isinstance(op, Requeue):
                batch = [replace(DELIVERIES[i], replay_of=LETTERS[letter]) for i, letter in op.which]
                in_redis = await state.queue.requeue(batch)
                assert in_redis == both.twin.requeue(batch, state.guard.took()), op
            elif isinstance(op, Dispatch):
                for n, held in enumerate(await both.claim(op.limit, op.lease_ms)):
                    outcome, _, then = op.outcomes[n % len(op.outcomes)].partition("+")
                    if held.state != "pending":  # posted already: its event is published, then it is finished
                        await both.finish(held)
                    elif outcome != "died":
                        await both.settle(held, outcome, op.delay_ms, op.error)
                        if then:
                            await both.finish(held)
            elif isinstance(op, Late) and both.claimed:
                held = both.claimed[-1 - op.back % len(both.claimed)]
                await (both.finish(held) if op.outcome == "finish" else both.settle(held, op.outcome))
            elif isinstance(op, Wait):
                await asyncio.sleep(op.ms / 1000)  # leases and retry delays run out meanwhile
            elif isinstance(op, Restore):
                now = await state.ledger.now_ms()
                owed = [DELIVERIES[i] for i in op.which]
                await state.install(LedgerState(), owed, now)
                both.twin.install(restored(owed, now))
                assert await state.queue.snapshot() == both.twin.state, op
            elif isinstance(op, Seed):
                now = await state.ledger.now_ms()
                seeded = op.state(now)
                await state.ledger.install(LedgerState(), state.queue, seeded, "seeded")
                state.guard.adopt("seeded")
                both.twin.install(copy.deepcopy(seeded))
                assert await state.queue.snapshot() == both.twin.state, op
        assert await state.queue.snapshot() == both.twin.state


@TWIN_SETTINGS
@given(ops=queue_streams)
def test_the_lua_webhook_queue_and_the_python_queue_hold_the_same_values(
    endpoints: dict[str, str], ops: list[QueueOp]
) -> None:
    run(_run_queue(endpoints, ops))
