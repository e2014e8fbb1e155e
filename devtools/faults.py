"""`creditwindow faults` / `make faults`: the fleet under faults on the local platform, then the books.

One run publishes N applications (a share of them malformed bytes or invalid fields, a share exact
duplicates, a share by customers who applied shortly before) while, at seeded random moments, every service process (two replicas of each) is
killed with SIGKILL and restarted, one replica is killed and left down for a while (its
partitions move to the other), a poison record (350 KB of value, a 300 KB header key of control
characters) lands on the busiest partition of `credit.applications` and on `credit.policy`, every
Redis key of the run's namespace is lost at once (what a flush or a restart without persistence
does), the broker is stopped and restarted once, and Redis is stopped and restarted once.
Afterwards it checks, and prints:

- every valid application has exactly one decision (none missing, none doubled), and every
  malformed record that named a customer has one too;
- every drawdown (and repayment) asked for meanwhile, some of them twice, has exactly one outcome,
  and no balance ever went above the limit of the window it was drawn on;
- the fleet runs a testing policy whose instalments fall due within seconds (`demo.loans_policy`),
  so loans are booked, repaid (partly, early, more than owed) and fall due while the faults run: no
  repayment is lost or applied twice (each customer's principal and credit in Redis are what the
  loans booked and the repayments allocated say), and every due-date step the book recorded is
  published, under one id, in the policy's order (or still waiting in the book to be published);
- budget reservations in Redis equal the open windows' limits per segment, within budget;
- exactly one notification per decision and per drawdown outcome;
- every malformed or invalid record is in the dead-letter topic with a reason;
- Redis current limits, balances, loans and own records equal a rebuild from `credit.windows`,
  `credit.lending-results` and `credit.loans` (the policy replicas stopped first, so the book is quiet);
- each customer's decisions, and inbox notifications, keep their order: in each customer's
  partition, the first copy of each decision comes with a higher `decision_seq` than the one before.

`--cluster` runs the same on the local cluster (devtools/cluster.py: three Kafka nodes, Redis with a
replica and Sentinels, topics with RF 3 and min.insync.replicas 2, WAIT before publishing) and
replaces the broker and Redis restarts with: kill -9 of the broker that leads most partitions of
`credit.scores` (`broker_leader_kill`), of the active controller (`controller_kill`), and of the Redis
master, so the Sentinels promote the replica (`redis_failover`); each restarted afterwards.

Only 127.0.0.1, bounded in count and time: it stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import statistics
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devtools.cluster import LocalCluster, active_controller, leadership, live_brokers
from devtools.demo import loans_policy
from devtools.fleet import SERVICES, Fleet
from devtools.germancredit import applications
from devtools.namespaces import delete_namespace
from devtools.platform import LocalPlatform, PlatformError
from devtools.redis_memory import replace_section
from services.policy.control.document import load_policy
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.contracts import (
    LOAN_EVENTS,
    DeadLetter,
    Decision,
    DrawdownApproved,
    DrawdownOutcome,
    DrawdownRefused,
    DrawdownRequested,
    InstalmentDueSoon,
    InstalmentOverdue,
    LoanBooked,
    NotificationSent,
    OverdueCured,
    Repaid,
    RepaymentApplied,
    ScoreComputed,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher, TopicReader
from shared.redis_connection import make_redis
from shared.settings import REPO_ROOT, Settings
from shared.wire import MAX_DEAD_LETTER_BYTES, encode

__all__ = ["FaultPlan", "FaultReport", "run_faults"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    applications: int = 20_000
    malformed_share: float = 0.05
    duplicate_share: float = 0.05
    drawdown_share: float = 0.3  # of the valid applications' customers, who then draw (and some repay)
    repeat_share: float = 0.3  # applications by a customer who applied shortly before (several decisions each)
    replicas: int = 2
    publish_seconds: float = 240.0  # faults happen while applications keep arriving
    seed: int = 20261128
    settle_timeout_s: float = 300.0
    infrastructure: bool = True  # also fail the broker(s) and Redis (a local platform or cluster only)
    cluster: bool = False  # on the local cluster: leader, controller and Redis master killed instead


CLUSTER_KINDS = ("broker_leader_kill", "controller_kill", "redis_failover")


@dataclass(slots=True)
class Fault:
    kind: str  # sigkill | replica_down | poison_record | redis_data_loss | broker | redis | one of CLUSTER_KINDS
    target: str
    started: float
    restored: float = 0.0
    recovered_after_s: float | None = None
    failover_s: float | None = None  # cluster kinds: until new leaders, a new controller, a new master


@dataclass(slots=True)
class FaultReport:
    plan: FaultPlan
    namespace: str
    faults: list[Fault] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c["ok"] for c in self.checks.values())

    def summary(self) -> dict[str, Any]:
        recoveries = [f.recovered_after_s for f in self.faults if f.recovered_after_s is not None]
        return {
            "passed": self.passed,
            "applications": self.plan.applications,
            "namespace": self.namespace,
            "seconds": round(self.seconds, 1),
            "counts": self.counts,
            "checks": {k: v["ok"] for k, v in self.checks.items()},
            "faults": len(self.faults),
            "fault_kinds": sorted({f.kind for f in self.faults}),
            "recovery_s_max": round(max(recoveries), 2) if recoveries else None,
            "recovery_s_median": round(statistics.median(recoveries), 2) if recoveries else None,
            "recovery_s": {
                kind: max((f.recovered_after_s for f in self.faults if f.kind == kind and f.recovered_after_s is not None), default=None)
                for kind in sorted({f.kind for f in self.faults})
            },
            "failover_s": {f.kind: f.failover_s for f in self.faults if f.failover_s is not None},
            "cluster": self.plan.cluster,
        }


@dataclass(slots=True)
class _Published:
    valid: dict[str, str] = field(default_factory=dict)  # application_id -> customer
    malformed: list[tuple[int, int, str, str]] = field(default_factory=list)  # partition, offset, kind, key
    poison: list[tuple[str, int, int]] = field(default_factory=list)  # topic, partition, offset
    partitions: list[int] = field(default_factory=list)  # of every application published
    duplicates: int = 0
    resent: int = 0
    drawdowns: dict[str, str] = field(default_factory=dict)  # drawdown or repayment id -> customer
    repayments: set[str] = field(default_factory=set)
    drawdown_duplicates: int = 0


# A record crafted to hurt: a value far over the event limit, and a header key of control characters
# that costs six bytes a character in a dead letter's JSON. It must end in one dead letter that fits
# the broker, and stop nothing.
POISON_KEY = b"cus_poison_000001"
# The last records trickle while faults remain, so each fault has records made after it (`_publish`).
TRICKLE = 200
TRICKLE_EVERY_S = 0.5
PUBLISH_WINDOW = 64  # applications the suite's upstream app keeps in flight
REPEAT_FROM = 200  # a repeat applicant is one of the last this many customers


def poison_record() -> tuple[bytes, list[tuple[str, bytes]]]:
    control = "".join(chr(c) for c in range(1, 32))
    return b"\x00" * 350_000, [((control * 10_000)[:300_000], b"\x01" * 1_000), ("event_type", b"ApplicationReceived")]


# --- input -------------------------------------------------------------------------------------------


def _malformed(rng: random.Random, body: dict[str, Any]) -> tuple[str, bytes]:
    """A broken record: bytes that are not an event, or an event with an impossible field."""
    choice = rng.randrange(4)
    if choice == 0:
        return "undecodable", b"\x00\xffnot-json " + bytes(rng.randrange(256) for _ in range(24))
    if choice == 1:
        return "undecodable", json.dumps(body).encode()[: rng.randrange(20, 200)]  # truncated JSON
    broken = json.loads(json.dumps(body))
    if choice == 2:
        broken["applicant"]["age_years"] = rng.choice([-3, 300, "old"])
    else:
        broken["facts"]["requested_amount"] = rng.choice([0, -500, "lots"])
    return "invalid", json.dumps(broken).encode()


async def _publish(
    settings: Settings, plan: FaultPlan, published: _Published, progress: Progress, task: Any, faults_done: asyncio.Event
) -> None:
    """Publish the plan's records at its pace. The last TRICKLE records go out one every
    TRICKLE_EVERY_S while faults remain (then at once): on a slow machine the faults can outlast the
    publishing time, and a fault with no record made after it would have no recovery to measure."""
    rng = random.Random(plan.seed)
    run_id = uuid.uuid4().hex[:8]
    topic = settings.topics.applications
    items: list[tuple[str, bytes, bytes, dict[str, str], str | None]] = []  # kind, key, value, headers, app id
    repeats = random.Random(plan.seed + 2)  # its own stream: the malformed and duplicate draws stay as they were
    recent: deque[str] = deque(maxlen=REPEAT_FROM)
    for application in applications(run_id, count=plan.applications, producer="faults"):
        if recent and repeats.random() < plan.repeat_share:
            # A customer who applied a moment ago applies again: their decisions must stay in order.
            application = application.model_copy(update={"customer_id": repeats.choice(recent)})
        recent.append(application.customer_id)
        message = encode(application)
        if rng.random() < plan.malformed_share:
            kind, value = _malformed(rng, json.loads(message.value))
            items.append((kind, message.key, value, {"event_type": "ApplicationReceived"}, None))
            continue
        items.append(("valid", message.key, message.value, message.headers, application.application_id))
        published.valid[application.application_id] = application.customer_id
        if rng.random() < plan.duplicate_share:
            items.append(("duplicate", message.key, message.value, message.headers, application.application_id))
            published.duplicates += 1
    items = _with_drawdowns(rng, plan, items, published)
    progress.update(task, total=len(items))
    interval = plan.publish_seconds / max(len(items), 1)
    began = time.monotonic()
    in_flight: deque[tuple[str, str, bytes, bytes, dict[str, str], Any]] = deque()

    async def settle(kind: str, to: str, key: bytes, value: bytes, headers: dict[str, str], future: Any) -> None:
        try:
            metadata = await future
        except Exception:  # not acknowledged (a broker down): the upstream app sends it again until it is
            published.resent += 1
            metadata = await _send_until_acked(publisher, to, key, value, headers, published)
        if to == topic:  # the applications' partitions: the poison goes to the busiest
            published.partitions.append(metadata.partition)
        if kind in ("undecodable", "invalid"):
            published.malformed.append((metadata.partition, metadata.offset, kind, key.decode()))
        progress.advance(task)

    async with Publisher(settings) as publisher:
        for n, (kind, key, value, headers, _) in enumerate(items):
            delay = began + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if n >= len(items) - TRICKLE and not faults_done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(faults_done.wait(), TRICKLE_EVERY_S)
            # Up to PUBLISH_WINDOW records in flight, as an upstream app batching its sends: the pace is
            # the plan's, not one broker round trip per application (acks=all on three brokers is slower).
            to = settings.topics.lending_requests if kind in ("drawdown", "repayment") else topic
            try:
                future = await publisher.send_raw(to, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
            except Exception:
                future = asyncio.get_running_loop().create_future()
                future.set_exception(ConnectionError("send refused"))
            in_flight.append((kind, to, key, value, headers, future))
            if len(in_flight) >= PUBLISH_WINDOW:
                await settle(*in_flight.popleft())
        while in_flight:
            await settle(*in_flight.popleft())


def _with_drawdowns(
    rng: random.Random, plan: FaultPlan, items: list[tuple[str, bytes, bytes, dict[str, str], str | None]], published: _Published
) -> list[tuple[str, bytes, bytes, dict[str, str], str | None]]:
    """Drawdowns (a tenth of them asked twice) and repayments of some customers, each sent a while after
    their application: the window may be open, not yet decided, or closed; each must end in one outcome."""
    placed: list[tuple[float, tuple[str, bytes, bytes, dict[str, str], str | None]]] = [(float(n), item) for n, item in enumerate(items)]
    for n, (kind, _, _, _, application) in enumerate(items):
        if kind != "valid" or application is None or rng.random() >= plan.drawdown_share:
            continue
        customer = published.valid[application]
        for k in range(rng.randint(1, 3)):
            ident = f"dd_{application[-16:]}_{k}"
            event: DrawdownRequested | Repaid = DrawdownRequested(
                correlation_id=ident, drawdown_id=ident, customer_id=customer, amount=rng.choice([500, 1_000, 3_000, 8_000, 20_000]), producer="faults",
                term_months=rng.choice([None, 3, 6, 12]),
            )  # fmt: skip
            if k == 2 and rng.random() < 0.5:
                # a little, an instalment's worth, or more than anyone owes here (kept as credit)
                ident = f"rp_{application[-16:]}_{k}"
                event = Repaid(correlation_id=ident, repayment_id=ident, customer_id=customer, amount=rng.choice([500, 2_000, 40_000]), producer="faults")
                published.repayments.add(ident)
            message = encode(event)
            published.drawdowns[ident] = customer
            copies = 2 if rng.random() < 0.1 else 1
            published.drawdown_duplicates += copies - 1
            kind_of = "repayment" if isinstance(event, Repaid) else "drawdown"
            for copy in range(copies):
                # a few hundred records after the application (later, the higher k), so most find their window
                placed.append((n + rng.randint(20, 400) * (k + 1) + copy + 0.5, (kind_of, message.key, message.value, message.headers, None)))
    return [item for _, item in sorted(placed, key=lambda p: p[0])]


async def _send_until_acked(
    publisher: Publisher, topic: str, key: bytes, value: bytes, headers: dict[str, str], published: _Published
) -> Any:
    """An upstream app retries until the broker has the record (the broker may be down for a while)."""
    delay = 0.2
    while True:
        try:
            future = await publisher.send_raw(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
            return await future
        except Exception:
            published.resent += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- faults ------------------------------------------------------------------------------------------


_STREAM = {"scoring": "scores", "policy": "windows", "notification": "notifications"}


def _stream_of(fault: Fault) -> str:
    if fault.kind in ("sigkill", "replica_down"):
        return _STREAM[fault.target.rsplit("-", 1)[0]]
    return "notifications"  # poison, broker or Redis: the end of the chain flows only when everything does


async def _poison(settings: Settings, published: _Published) -> None:
    """The poison record on the busiest partition of the applications so far, and on the policy topic."""
    busiest = Counter(published.partitions)
    partition = busiest.most_common(1)[0][0] if busiest else 0
    value, headers = poison_record()
    async with Publisher(settings) as publisher:
        for topic, where in ((settings.topics.applications, partition), (settings.topics.policy, 0)):
            metadata = await (await publisher.send_raw(topic, value, key=POISON_KEY, headers=headers, partition=where))
            published.poison.append((topic, metadata.partition, metadata.offset))
            if topic == settings.topics.applications:
                published.malformed.append((metadata.partition, metadata.offset, "poison", POISON_KEY.decode()))


# Every key of a namespace gone at once, as a flush or a restart without persistence leaves Redis.
_LOSE_EVERYTHING = """
local keys = redis.call('KEYS', ARGV[1] .. '*')
for i = 1, #keys, 500 do redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys))) end
return #keys
"""


async def _lose_redis_data(settings: Settings) -> int:
    redis = make_redis(settings)
    try:
        return int(await redis.eval(_LOSE_EVERYTHING, 0, settings.redis_prefix))
    finally:
        await redis.aclose()


async def _chaos(
    plan: FaultPlan, settings: Settings, fleet: Fleet, infra: LocalPlatform | LocalCluster, faults: list[Fault],
    flow: Flow, published: _Published, say: Any,
) -> None:  # fmt: skip
    """Each fault in turn, at seeded random moments; the next starts only once the fleet recovered."""
    rng = random.Random(plan.seed + 1)
    names = sorted(fleet.processes)
    actions: list[tuple[str, str]] = [("sigkill", n) for n in names]
    actions.append(("replica_down", rng.choice([n for n in names if n.endswith("-0")])))
    actions.append(("redis_data_loss", "namespace"))
    if plan.infrastructure:
        actions += [(kind, "cluster") for kind in CLUSTER_KINDS] if plan.cluster else [("broker", "kafka"), ("redis", "redis")]
    rng.shuffle(actions)
    # The poison comes first: every restart that follows must start past it (the policy replicas
    # read credit.policy from the beginning at every start).
    actions.insert(0, ("poison_record", "applications+policy"))
    await asyncio.sleep(plan.publish_seconds * 0.05)
    for i, (kind, target) in enumerate(actions):
        fault = Fault(kind, target, started=time.time())
        faults.append(fault)
        say(f"fault {i + 1}/{len(actions)}: {kind} {target}")
        if kind == "sigkill":
            fleet.kill(target, signal.SIGKILL)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            fleet.restart(target)
        elif kind == "replica_down":
            fleet.kill(target, signal.SIGKILL)
            await asyncio.sleep(rng.uniform(8.0, 12.0))  # the other replica carries its partitions meanwhile
            fleet.restart(target)
        elif kind == "poison_record":
            await _poison(settings, published)
        elif kind == "redis_data_loss":
            say(f"  {await _lose_redis_data(settings)} keys lost")
        elif kind == "broker" and isinstance(infra, LocalPlatform):
            await asyncio.to_thread(infra.stop_kafka)
            await asyncio.sleep(rng.uniform(3.0, 6.0))
            await asyncio.to_thread(infra.start_kafka)
        elif kind == "redis" and isinstance(infra, LocalPlatform):
            await asyncio.to_thread(infra.stop_redis)
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            await asyncio.to_thread(infra.start_redis)
        elif isinstance(infra, LocalCluster):
            await _cluster_fault(infra, settings, fault, rng, say)
        if kind in CLUSTER_KINDS:
            # The cluster goes on without the node: recovered is when every partition of the end of the
            # chain delivers again what was made after the kill (the stall of the worst partition).
            recovered = await flow.every_partition("notifications", fault.started, timeout_s=90.0)
        else:
            fault.restored = time.time()
            recovered = await flow.after(_stream_of(fault), fault.restored, timeout_s=90.0)
        fault.recovered_after_s = None if recovered is None else round(recovered, 3)
        fault.restored = fault.restored or time.time()
        say(
            f"  back after {fault.restored - fault.started:.1f} s down"
            + (f"; failover in {fault.failover_s} s" if fault.failover_s is not None else "")
            + f"; flowing again {fault.recovered_after_s} s {'after the kill' if kind in CLUSTER_KINDS else 'later'}"
        )
        await asyncio.sleep(rng.uniform(1.0, 4.0))


async def _cluster_fault(cluster: LocalCluster, settings: Settings, fault: Fault, rng: random.Random, say: Any) -> None:
    """kill -9 a node of the cluster, time its failover, restart it after a while, wait until it is back in sync."""
    topics = settings.topics
    fleet_topics = [topics.applications, topics.scores, topics.windows, topics.notifications, topics.policy, topics.deadletter]
    if fault.kind == "redis_failover":
        master = await asyncio.to_thread(cluster.redis_master)
        if master is None:
            raise PlatformError("no Sentinel names a Redis master")
        fault.target = f"redis-{master} (master)"
        fault.started = time.time()
        await asyncio.to_thread(cluster.kill_redis, master)
        while (now_master := await asyncio.to_thread(cluster.redis_master)) in (master, None):
            await asyncio.sleep(0.1)
        fault.failover_s = round(time.time() - fault.started, 2)
        say(f"  Sentinels promoted redis-{now_master} in {fault.failover_s} s")
        await asyncio.sleep(rng.uniform(3.0, 6.0))
        await asyncio.to_thread(cluster.start_redis_node, master)  # comes back as the new master's replica
        while not await asyncio.to_thread(cluster.replica_in_sync, master):
            await asyncio.sleep(0.2)
        fault.restored = time.time()
        return
    if fault.kind == "broker_leader_kill":
        led = Counter(leader for leader, _ in (await leadership(settings, [topics.scores]))[topics.scores].values() if leader >= 0)
        victim, count = led.most_common(1)[0]
        fault.target = f"kafka-{victim} (leads {count} of {sum(led.values())} credit.scores partitions)"
    else:
        victim = await active_controller(settings)
        if victim is None:
            raise PlatformError("no active controller")
        fault.target = f"kafka-{victim} (active controller)"
    fault.started = time.time()
    await asyncio.to_thread(cluster.kill_node, victim)
    while True:  # failover: a new controller, and no fleet partition led by the victim or by no one
        try:
            controller = await asyncio.wait_for(active_controller(settings), 5)
            leaders = await asyncio.wait_for(leadership(settings, fleet_topics), 5)
            moved = all(leader not in (victim, -1) for partitions in leaders.values() for leader, _ in partitions.values())
            if controller not in (None, victim) and moved:
                break
        except Exception:  # noqa: BLE001 - a metadata request to the dead node: ask again
            pass
        await asyncio.sleep(0.1)
    fault.failover_s = round(time.time() - fault.started, 2)
    say(f"  new leaders and controller {controller} in {fault.failover_s} s")
    await asyncio.sleep(rng.uniform(3.0, 6.0))
    await asyncio.to_thread(cluster.start_node, victim)
    while True:  # back: registered, and in the in-sync replicas of every fleet partition again
        try:
            if victim in await live_brokers(settings):
                leaders = await leadership(settings, fleet_topics)
                if all(victim in isr for partitions in leaders.values() for _, isr in partitions.values()):
                    break
        except Exception:  # noqa: BLE001
            pass
        await asyncio.sleep(0.25)
    fault.restored = time.time()


class Flow:
    """When each stream's records were made (their producer timestamps) and when the watcher read them."""

    def __init__(self) -> None:
        self.made: dict[str, list[float]] = defaultdict(list)
        self.read: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
        self.published = asyncio.Event()  # every application is out: what still flows is the backlog

    def _deadline(self, timeout_s: float) -> float:
        # Once every application is out, a stream that stays quiet has nothing left to say.
        return time.monotonic() + (min(timeout_s, 20.0) if self.published.is_set() else timeout_s)

    def add(self, stream: str, partition: int, made: float, read: float) -> None:
        self.made[stream].append(made)
        self.read[stream][partition].append((made, read))

    async def after(self, stream: str, since: float, timeout_s: float) -> float | None:
        """From `since` to the first record made after it on the stream."""
        deadline = self._deadline(timeout_s)
        while time.monotonic() < deadline:
            later = [t for t in self.made[stream][-2000:] if t > since]
            if later:
                return min(later) - since
            await asyncio.sleep(0.05)
        return None

    async def every_partition(self, stream: str, since: float, timeout_s: float) -> float | None:
        """From `since` until every partition that flowed before has delivered a record made after it
        (by when the watcher read it): the longest stall any partition saw."""
        partitions = {p for p, records in self.read[stream].items() if any(made <= since for made, _ in records)}
        deadline = self._deadline(timeout_s)
        while True:
            first = {p: min((read for made, read in self.read[stream][p][-5000:] if made > since), default=None) for p in partitions}
            if all(v is not None for v in first.values()) or time.monotonic() > deadline:
                arrived = [v for v in first.values() if v is not None]
                return max(arrived) - since if arrived else None
            await asyncio.sleep(0.1)


async def _watch(settings: Settings, stop: asyncio.Event, flow: Flow) -> None:
    """Arrival times of scores, decisions and notifications, to measure recovery after each fault."""
    topics = settings.topics
    names = {topics.scores: "scores", topics.windows: "windows", topics.notifications: "notifications"}
    while not stop.is_set():
        try:
            async with TopicReader(settings, list(names), decode=False) as reader:
                while not stop.is_set():
                    for item in await reader.poll(timeout_ms=200):
                        # the record's own (producer) timestamp: a reader that reconnects and reads
                        # old records again must not count them as the stream flowing again
                        flow.add(names[item.record.topic], item.record.partition, item.timestamp_ms / 1000, time.time())
        except Exception:
            await asyncio.sleep(1.0)  # the broker is down: read again when it is back


# --- the books ---------------------------------------------------------------------------------------


async def _read_all(settings: Settings, published: _Published, timeout_s: float, progress: Progress, task: Any) -> dict[str, list[Any]]:
    topics = settings.topics
    wanted_decisions = len(published.valid) + len(published.malformed)
    seen: dict[str, list[Any]] = defaultdict(list)
    application_decisions: set[str] = set()
    notified: set[str] = set()

    told: set[str] = set()

    def on_batch(batch: list[Any]) -> None:
        for item in batch:
            event = item.event
            if item.record.topic == topics.lending_results and isinstance(event, DrawdownOutcome | RepaymentApplied):
                seen["movements"].append(event)
                answered.add(event.drawdown_id if isinstance(event, DrawdownOutcome) else event.repayment_id)
            elif item.record.topic == topics.loans and isinstance(event, LOAN_EVENTS):
                seen["loans"].append(event)
            elif item.record.topic == topics.windows and isinstance(event, Decision):
                seen["decisions"].append(event)
                seen["decisions_at"].append((item.record.partition, item.record.offset, event))
                if event.trigger == "application":
                    application_decisions.add(event.application_id)
            elif item.record.topic == topics.notifications and isinstance(event, NotificationSent):
                seen["notifications"].append(event)
                seen["notifications_at"].append((item.record.partition, item.record.offset, event))
                (told if event.movement_id or event.loan_id or event.about == "loan" else notified).add(str(event.decision_id))
            elif item.record.topic == topics.deadletter and isinstance(event, DeadLetter):
                seen["dead_letters"].append(event)
            elif item.record.topic == topics.scores and isinstance(event, ScoreComputed):
                seen["scores"].append(event)
        progress.update(task, completed=min(len(application_decisions), wanted_decisions))

    def done(_: list[Any]) -> bool:
        decided = {str(d.decision_id) for d in seen["decisions"]}
        outcomes = {str(m.event_id) for m in [*seen["movements"], *seen["loans"]]}
        booked = {m.loan_id for m in seen["movements"] if isinstance(m, DrawdownApproved)} <= {e.loan_id for e in seen["loans"] if isinstance(e, LoanBooked)}
        return len(application_decisions) >= wanted_decisions and decided <= notified and answered >= set(published.drawdowns) and outcomes <= told and booked

    progress.update(task, total=wanted_decisions)
    answered: set[str] = set()
    wanted_topics = [topics.windows, topics.notifications, topics.deadletter, topics.scores, topics.lending_results, topics.loans]
    async with TopicReader(settings, wanted_topics) as reader:
        await reader.until(done, timeout_s=timeout_s, on_batch=on_batch, settle_s=3.0)
    return seen


async def _check(settings: Settings, published: _Published, seen: dict[str, list[Any]], report: FaultReport) -> None:
    decisions: list[Decision] = seen["decisions"]
    by_id: dict[str, Decision] = {}
    copies = Counter(str(d.decision_id) for d in decisions)
    for decision in decisions:
        by_id.setdefault(str(decision.decision_id), decision)
    first_decisions = [d for d in by_id.values() if d.trigger == "application"]
    per_application = Counter(d.application_id for d in first_decisions)

    missing = [a for a in published.valid if per_application[a] == 0]
    doubled = [a for a in published.valid if per_application[a] > 1]
    report.checks["valid_applications_decided_once"] = {
        "ok": not missing and not doubled, "valid": len(published.valid), "missing": len(missing), "doubled": len(doubled),
        "examples": (missing + doubled)[:5],
    }  # fmt: skip

    unread = [d for d in first_decisions if d.application_id not in published.valid]
    unread_by_customer = Counter(d.customer_id for d in unread)
    named = Counter(key for _, _, _, key in published.malformed)
    short = {k: n for k, n in named.items() if unread_by_customer[k] < n}
    all_system = all(isinstance(d, WindowClosed) and d.category == "system" for d in unread)
    report.checks["malformed_records_naming_a_customer_decided"] = {
        "ok": not short and all_system, "malformed": len(published.malformed), "system_closures": len(unread),
        "all_system": all_system, "short": list(short)[:5],
    }  # fmt: skip

    movements: list[DrawdownOutcome | RepaymentApplied] = seen["movements"]
    by_movement: dict[str, dict[str, tuple[Any, ...]]] = defaultdict(dict)  # id -> event id -> what it said
    for m in movements:
        ident = m.drawdown_id if isinstance(m, DrawdownOutcome) else m.repayment_id
        by_movement[ident][str(m.event_id)] = (type(m).__name__, m.balance, m.balance_seq)
    unanswered = [i for i in published.drawdowns if i not in by_movement]
    answered_twice = [i for i, answers in by_movement.items() if len(answers) > 1]  # a second, different answer
    approved = [m for m in movements if isinstance(m, DrawdownApproved)]
    over_limit = [m.drawdown_id for m in approved if m.balance > m.limit]
    report.checks["drawdowns_answered_once_never_over_the_limit"] = {
        "ok": not unanswered and not answered_twice and not over_limit and bool(movements),
        "asked": len(published.drawdowns), "unanswered": len(unanswered), "answered_twice": len(answered_twice),
        "balance_over_limit": len(over_limit),
        "approved": len({m.drawdown_id for m in approved}),
        "refused": dict(Counter(m.reason for m in {m.drawdown_id: m for m in movements if isinstance(m, DrawdownRefused)}.values())),
        "repaid": len({m.repayment_id for m in movements if isinstance(m, RepaymentApplied)}),
    }  # fmt: skip

    notices = seen["notifications"]
    notice_copies = Counter(str(n.decision_id) for n in notices)
    outcome_notices = Counter(str(n.decision_id) for n in {str(n.notification_id): n for n in notices if n.movement_id}.values())
    outcome_ids = {str(m.event_id) for m in movements}
    report.checks["one_notification_per_drawdown_outcome"] = {
        "ok": all(outcome_notices[i] == 1 for i in outcome_ids), "outcomes": len(outcome_ids),
        "untold": sum(1 for i in outcome_ids if outcome_notices[i] == 0), "more_than_one": sum(1 for i in outcome_ids if outcome_notices[i] > 1),
    }  # fmt: skip
    notices = [n for n in notices if n.about == "decision"]  # delays and reviews are told apart, once each
    distinct_notices = {(str(n.decision_id), n.channel): n for n in notices}
    per_decision = Counter(decision_id for decision_id, channel in distinct_notices if channel == "inbox")
    unannounced = [d for d in by_id if per_decision[d] == 0]
    over = [d for d, n in per_decision.items() if n > 1]
    report.checks["one_notification_per_decision"] = {
        "ok": not unannounced and not over, "decisions": len(by_id), "unannounced": len(unannounced), "more_than_one": len(over),
    }  # fmt: skip

    letters = {(d.source_partition, d.source_offset): d for d in seen["dead_letters"] if d.source_topic == settings.topics.applications}
    not_lettered = [(p, o) for p, o, _, _ in published.malformed if (p, o) not in letters or not letters[(p, o)].error]
    report.checks["malformed_records_dead_lettered_with_reason"] = {
        "ok": not not_lettered, "malformed": len(published.malformed), "missing": len(not_lettered),
        "by_error_type": dict(Counter(letters[(p, o)].error_type for p, o, _, _ in published.malformed if (p, o) in letters)),
    }  # fmt: skip

    poison_letters = {
        (topic, partition, offset): {str(d.event_id) for d in seen["dead_letters"] if (d.source_topic, d.source_partition, d.source_offset) == (topic, partition, offset)}
        for topic, partition, offset in published.poison
    }
    largest = max((len(encode(d).value) for d in seen["dead_letters"]), default=0)
    report.checks["poison_records_dead_lettered_once_within_the_broker_limit"] = {
        "ok": bool(published.poison) and all(len(ids) == 1 for ids in poison_letters.values()) and largest <= MAX_DEAD_LETTER_BYTES,
        "poison_records": len(published.poison), "letters_per_record": [len(ids) for ids in poison_letters.values()],
        "largest_letter_bytes": largest,
    }  # fmt: skip

    redis = make_redis(settings, socket_timeout=None)
    try:
        live = await RedisBook(redis, settings.redis_prefix).snapshot()
    finally:
        await redis.aclose()
    loan_events = seen["loans"]
    policy = load_policy(settings.policy_path)
    rebuilt = derive(decisions, movements=movements, loans=loan_events)
    _check_loans(report, live, rebuilt, movements, loan_events, policy)
    open_limits: Counter[str] = Counter()
    for window in rebuilt.windows.values():
        if window.status == "open":
            open_limits[window.segment] += window.limit
    # Budgets are kept per period (segment/2026-11): per segment, the periods the run spans add up.
    reserved: Counter[str] = Counter()
    for key, value in live.budgets.items():
        reserved[key.split("/")[0]] += value.exposure
    reserved = Counter({k: v for k, v in reserved.items() if v})
    within = all(v.exposure <= policy.budgets[k.split("/")[0]].exposure for k, v in live.budgets.items() if k.split("/")[0] in policy.budgets)  # type: ignore[index]
    report.checks["budget_reservations_match_open_windows"] = {
        "ok": dict(reserved) == {k: v for k, v in open_limits.items() if v} and within,
        "reserved": dict(reserved), "open_windows": dict(open_limits), "within_budget": within,
    }  # fmt: skip
    differences = [k for k, v in rebuilt.comparable().items() if live.comparable()[k] != v]
    report.checks["redis_equals_rebuild_from_the_log"] = {"ok": not differences, "differs_in": differences, "balances": len(rebuilt.balances)}

    decisions_out = out_of_order(seen["decisions_at"])
    # Decision notices rise in decision_seq; drawdown notices in the balance's own sequence, apart.
    notices_out = out_of_order([(p, o, n) for p, o, n in seen["notifications_at"] if n.channel == "inbox" and n.about == "decision"])
    notices_out += out_of_order([(p, o, n) for p, o, n in seen["notifications_at"] if n.channel == "inbox" and n.about == "drawdown"], strictly=False)
    report.checks["per_customer_order_kept"] = {
        "ok": not decisions_out and not notices_out,
        "customers": len({d.customer_id for d in decisions}),
        "customers_with_several_decisions": sum(1 for n in Counter(d.customer_id for d in by_id.values()).values() if n > 1),
        "decisions_out_of_order": len(decisions_out), "inbox_notifications_out_of_order": len(notices_out),
        "examples": (decisions_out + notices_out)[:3],
    }  # fmt: skip

    report.counts = {
        "published_valid": len(published.valid),
        "published_malformed": len(published.malformed),
        "published_duplicates": published.duplicates,
        "publisher_resends": published.resent,
        "scores_records": len(seen["scores"]),
        "decision_records": len(decisions),
        "distinct_decisions": len(by_id),
        "decision_redelivered_copies": sum(n - 1 for n in copies.values()),
        "windows_opened": sum(1 for d in first_decisions if isinstance(d, WindowOpened)),
        "lifecycle_and_redecisions": len(by_id) - len(first_decisions),
        "notification_records": len(notices),
        "notification_redelivered_copies": sum(n - 1 for n in notice_copies.values()),
        "dead_letters": len(seen["dead_letters"]),
        "drawdowns_and_repayments_asked": len(published.drawdowns),
        "drawdown_requests_sent_twice": published.drawdown_duplicates,
        "drawdown_outcome_records": len(movements),
        "loans_booked": len({e.loan_id for e in loan_events if isinstance(e, LoanBooked)}),
        "repayments_applied": len({m.repayment_id for m in movements if isinstance(m, RepaymentApplied)}),
        "credit_balances_kept": sum(1 for b in live.balances.values() if b.credit_fen),
        "reminders": len({e.event_id for e in loan_events if isinstance(e, InstalmentDueSoon)}),
        "overdue_steps": len({e.event_id for e in loan_events if isinstance(e, InstalmentOverdue)}),
        "overdues_cured": len({e.event_id for e in loan_events if isinstance(e, OverdueCured)}),
        "windows_closed_for_overdue": len({str(d.decision_id) for d in decisions if d.trigger == "overdue"}),
        "loan_event_redelivered_copies": len(loan_events) - len({e.event_id for e in loan_events}),
    }


def _check_loans(
    report: FaultReport, live: Any, rebuilt: Any, movements: list[Any], loan_events: list[Any], policy: Any
) -> None:
    """No repayment lost or applied twice; every due-date step the book recorded published once, in order."""
    loans = {e.loan_id: e for e in loan_events if isinstance(e, LoanBooked)}
    repaid = {m.repayment_id: m for m in movements if isinstance(m, RepaymentApplied)}
    principal: Counter[str] = Counter()
    credit: Counter[str] = Counter()
    for loan in loans.values():
        principal[loan.customer_id] += loan.principal_fen
        credit[loan.customer_id] -= loan.credit_used_fen
    allocated_right = True
    for payment in repaid.values():
        principal[payment.customer_id] -= payment.principal_fen
        credit[payment.customer_id] += payment.credit_fen
        paid = sum(a.interest_fen + a.principal_fen for a in payment.allocations)
        allocated_right &= paid + payment.credit_fen == payment.amount * 100 and payment.principal_fen == sum(a.principal_fen for a in payment.allocations)
    customers = set(principal) | {c for c, b in live.balances.items() if b.principal_fen or b.credit_fen}
    off = [c for c in customers if (live.balances[c].principal_fen if c in live.balances else 0) != principal[c]
           or (live.balances[c].credit_fen if c in live.balances else 0) != credit[c]]  # fmt: skip
    report.checks["repayments_applied_once_none_lost"] = {
        "ok": not off and allocated_right and bool(repaid),
        "repayments": len(repaid), "loans": len(loans), "customers": len(customers), "principal_or_credit_off": len(off),
        "allocations_add_up": allocated_right, "examples": off[:3],
    }  # fmt: skip

    steps: dict[tuple[str, int, int], set[str]] = defaultdict(set)
    for event in loan_events:
        if isinstance(event, InstalmentDueSoon | InstalmentOverdue):
            steps[(event.loan_id, event.instalment, event.days_past_due)].add(str(event.event_id))
    waiting = {(n.loan_id, n.instalment, n.step) for n in live.notices.values()}  # recorded, left by a replica that stopped
    named = tuple(policy.lending.overdue_steps_days)
    out_of_order: list[str] = []
    for loan_id, loan in live.loans.items():
        for number, instalment in enumerate(loan.instalments, start=1):
            told = sorted(s for (i, n, s) in set(steps) | waiting if (i, n) == (loan_id, number) and s > 0)
            if told != [s for s in named if s <= instalment.step]:
                out_of_order.append(f"{loan_id}#{number}: told {told}, recorded up to {instalment.step}")
    report.checks["every_overdue_step_published_once"] = {
        "ok": all(len(ids) == 1 for ids in steps.values()) and not out_of_order,
        "steps": len(steps), "waiting_in_the_book": len(waiting), "under_two_ids": sum(1 for ids in steps.values() if len(ids) > 1),
        "missing_or_out_of_order": len(out_of_order), "examples": out_of_order[:3],
    }  # fmt: skip
    for loan_id, number, step in waiting:  # recorded but not yet published: a rebuilt book tells it then
        again = rebuilt.loans.get(loan_id)
        if again is not None and number <= len(again.instalments):
            again.instalments[number - 1].step = max(again.instalments[number - 1].step, step)


def out_of_order(records: list[tuple[int, int, Any]], *, strictly: bool = True) -> list[str]:
    """Customers whose records (partition, offset, event with customer_id, decision_id, decision_seq)
    do not rise in `decision_seq` by offset, counting the first copy of each decision only (a later
    copy is a redelivery every consumer dedupes). Says where, for each such customer. Not `strictly`: equal
    is in order (a refused drawdown leaves the balance, and its sequence, as it was)."""
    last: dict[str, tuple[int, int, int]] = {}
    first_copies: set[str] = set()
    found: list[str] = []
    for partition, offset, event in sorted(records, key=lambda r: (r[0], r[1])):
        decision = str(event.decision_id)
        if decision in first_copies:
            continue
        first_copies.add(decision)
        before = last.get(event.customer_id)
        if before is not None and (before[0] != partition or (event.decision_seq <= before[2] if strictly else event.decision_seq < before[2])):
            found.append(
                f"{event.customer_id}: seq {event.decision_seq} at {partition}/{offset} after seq {before[2]} at {before[0]}/{before[1]}"
            )
        last[event.customer_id] = (partition, offset, event.decision_seq)
    return found


# --- the run -----------------------------------------------------------------------------------------


async def _run(plan: FaultPlan, console: Console) -> FaultReport:
    # The suite's own clients (publisher, watcher, reader) meet dead nodes on purpose: keep their
    # retries off the console (the services log theirs in their own logs).
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    base = Settings()
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    namespace = f"faults{time.strftime('%m%d%H%M%S')}"
    infra: LocalPlatform | LocalCluster
    if plan.cluster:
        infra = LocalCluster(base, say=say)
        await asyncio.to_thread(infra.up)
        settings = infra.settings.model_copy(update={"topic_namespace": namespace})
        env = {**infra.layout.env(), "CW_TOPIC_NAMESPACE": namespace, "CW_RETRY_MAX_MS": "2000"}
    else:
        infra = LocalPlatform(base, say=say)
        if plan.infrastructure and (infra.kafka_external or infra.redis_external):
            raise PlatformError(
                "the fault suite stops and starts Kafka and Redis: run it on the local platform "
                "(unset KAFKA_BOOTSTRAP_SERVERS/REDIS_URL), on the local cluster (--cluster), or without infrastructure faults"
            )
        await asyncio.to_thread(infra.up)
        settings = base.model_copy(update={"topic_namespace": namespace})
        env = {
            "CW_TOPIC_NAMESPACE": namespace,
            "CW_RETRY_MAX_MS": "2000",
            **({"KAFKA_BOOTSTRAP_SERVERS": base.kafka_servers} if infra.kafka_external else {}),
            **({"REDIS_URL": base.redis_dsn} if infra.redis_external else {}),
        }
    # Loans that fall due within seconds while the faults run (a testing policy: local and test only).
    env["CW_POLICY_PATH"] = str(loans_policy(base, base.home / "logs" / namespace / "loans-policy.yaml"))
    settings = settings.model_copy(update={"policy_path": Path(env["CW_POLICY_PATH"])})
    await ensure_topics(settings)
    report = FaultReport(plan=plan, namespace=namespace)
    fleet = Fleet(env=env, log_dir=base.home / "logs" / namespace, replicas=plan.replicas, services=SERVICES)
    began = time.monotonic()
    published = _Published()
    flow = Flow()
    stop_watch = asyncio.Event()
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        fleet.start()
        await asyncio.to_thread(fleet.wait_ready, 90.0)
        with Progress(*columns, console=console) as progress:
            sending = progress.add_task("publishing (faults running)", total=plan.applications)
            deciding = progress.add_task("applications decided", total=plan.applications)
            watcher = asyncio.create_task(_watch(settings, stop_watch, flow))

            faults_done = asyncio.Event()

            async def publish() -> None:
                await _publish(settings, plan, published, progress, sending, faults_done)
                flow.published.set()

            async def chaos() -> None:
                try:
                    await _chaos(plan, settings, fleet, infra, report.faults, flow, published, lambda line: progress.console.print(line))
                finally:
                    faults_done.set()

            await asyncio.gather(publish(), chaos())
            exited_meanwhile = len(fleet.exited())  # counted before anything comes back
            for proc in fleet.processes.values():  # anything still down comes back for the count
                if not proc.alive:
                    fleet.restart(proc.name)
            seen = await _read_all(settings, published, plan.settle_timeout_s, progress, deciding)
            # The book quiet before it is compared with the log: the policy replicas stop (their
            # sweepers would go on telling due dates), then the log is read again to its end.
            for proc in list(fleet.processes.values()):
                if proc.service == "policy" and proc.alive:
                    fleet.kill(proc.name, signal.SIGTERM)
            quiet = progress.add_task("the log, the policy stopped", total=plan.applications)
            seen = await _read_all(settings, published, plan.settle_timeout_s, progress, quiet)
            stop_watch.set()
            await watcher
        await _check(settings, published, seen, report)
        report.counts["service_restarts"] = sum(p.restarts for p in fleet.processes.values())
        report.counts["unexpected_exits"] = exited_meanwhile + len(fleet.exited())
    finally:
        stop_watch.set()
        fleet.stop()
        try:
            await delete_namespace(settings)
        except Exception as exc:  # cleanup must not hide the report
            console.print(f"could not delete namespace {namespace}: {exc!r}")
    report.seconds = time.monotonic() - began
    return report


FAULTS_BEGIN, FAULTS_END = "<!-- BEGIN faults -->", "<!-- END faults -->"
CLUSTER_BEGIN, CLUSTER_END = "<!-- BEGIN cluster-faults -->", "<!-- END cluster-faults -->"


def _report_body(report: FaultReport, level: str) -> list[str]:
    lines = [
        f"- applications: {report.plan.applications:,} ({report.plan.malformed_share:.0%} malformed bytes or invalid fields, "
        f"{report.plan.duplicate_share:.0%} exact duplicates, {report.plan.repeat_share:.0%} by a customer who applied shortly before), "
        f"two replicas of each service, seed {report.plan.seed}",
        f"- run: {report.seconds:.0f} s, namespace `{report.namespace}`, result: **{'all checks passed' if report.passed else 'FAILED'}**",
        "",
        f"{level} Checks",
        "",
        "| check | result | details |",
        "|---|---|---|",
    ]
    for name, check in report.checks.items():
        details = ", ".join(f"{k}={v}" for k, v in check.items() if k != "ok")
        lines.append(f"| {name.replace('_', ' ')} | {'pass' if check['ok'] else '**FAIL**'} | {details} |")
    lines += ["", f"{level} Counts", "", "| count | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v:,} |" for k, v in report.counts.items()]
    lines += [
        "",
        "Redelivered copies are records of a decision or notification already on the topic (same id),",
        "written when a process died after publishing and before committing its input; every consumer",
        "dedupes by `decision_id` / `notification_id`, and no decision, reservation or notification",
        "happens twice.",
        "",
        f"{level} Faults and time to recover",
        "",
        "Time to recover: from the moment the faulty part is back (process restarted, broker or Redis",
        "answering) to the first record written after that moment (by its producer timestamp) on the",
        "stream it feeds: scores, windows or notifications (the end of the chain for broker and Redis).",
    ]
    if report.plan.cluster:
        lines += [
            "For the cluster's kills (the fleet goes on without the node) it is counted from the kill: until every",
            "partition of `credit.notifications` delivered again a record made after the kill (the longest stall",
            "any customer saw). Failover: from the kill until no fleet partition is led by the dead node or by no",
            "one and a new controller is active, or until the Sentinels name the new Redis master. Down for: from",
            "the kill until the restarted node is back in every in-sync replica set (Kafka) or in sync with the",
            "new master (Redis).",
        ]
    lines += [
        "",
        "| # | fault | target | down for (s) | failover (s) | recovered after (s) |",
        "|---|---|---|---|---|---|",
    ]
    for n, fault in enumerate(report.faults, start=1):
        down = fault.restored - fault.started
        recovered = "-" if fault.recovered_after_s is None else f"{fault.recovered_after_s:.2f}"
        failover = "-" if fault.failover_s is None else f"{fault.failover_s:.2f}"
        lines.append(f"| {n} | {fault.kind} | {fault.target} | {down:.1f} | {failover} | {recovered} |")
    lines.append("")
    return lines


def write_report(report: FaultReport, path: Path) -> None:
    """Each run replaces its own marked section of the page (the single-node run one, the cluster's
    run another): the hand-written prose around them and the sections of other writers stay."""
    if report.plan.cluster:
        head = [
            "## On a cluster: three Kafka nodes, Redis with a replica and Sentinels",
            "",
            "Generated by `creditwindow faults --cluster` on the local cluster (`creditwindow dev up --cluster`: three",
            "combined KRaft nodes, topics with replication factor 3 and `min.insync.replicas` 2, Redis master, replica",
            "and three Sentinels, `WAIT` for the replica before publishing); re-run it to refresh this section. The",
            "broker and Redis restarts of the single-node run are replaced by kill -9 of the broker that leads most",
            "`credit.scores` partitions, of the active controller, and of the Redis master, each restarted after.",
            "",
        ]
        begin, end = CLUSTER_BEGIN, CLUSTER_END
    else:
        head = [
            "## On one node: the fleet under faults",
            "",
            "Generated by `creditwindow faults` (`make faults`) on the local platform; re-run it to refresh this section.",
            "",
        ]
        begin, end = FAULTS_BEGIN, FAULTS_END
    replace_section(path, "\n".join(head + _report_body(report, "###")), begin, end)


def run_faults(plan: FaultPlan, *, console: Console | None = None, report_path: Path | None = None) -> FaultReport:
    console = console or Console()
    report = asyncio.run(_run(plan, console))
    if report_path is not None:
        write_report(report, report_path)
    return report


DEFAULT_REPORT = REPO_ROOT / "docs" / "reliability.md"
