"""`creditwindow dev budget-bench`: how many budget reservations one Redis takes per second.

Every window a segment opens reserves its limit on one hash, `budget:<segment>/<period>`, in the
book's decide script (services/policy/windows/adapters/redis_book.py): a hot key. Redis runs scripts one at a time on
one core, so that key's ceiling is the ceiling of the whole instance, and only more Redis instances
(each holding a share of a segment's budget) raise it. This measures the book's own script, and
nothing else, on the Redis of the settings (the local platform's, or with `--cluster` the cluster's
master through Sentinel, its replica attached); every decision opens a window in the same segment
and period, so every one is a reservation on that one hash:

1. `RedisBook.post` in batches of 1, 100 and 500 requests per call, from one caller, and in
   batches of 1 and 100 from four concurrent callers (as four policy replicas would): decisions per
   second, and the server's time per decision (`INFO commandstats`, evalsha), which more callers do
   not lower;
2. the same script call from `redis-benchmark` (Debian's C client, 2 connections, 100 pipelined):
   the exact call `RedisBook.post` makes for one request, replayed with random application and
   customer ids, the server-side ceiling without Python in the way.

Only 127.0.0.1; bounded (a few seconds per mode); each mode's keys are deleted after it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from devtools.bench import BUDGET_BEGIN, BUDGET_END
from devtools.redis_memory import replace_section
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.model import BookState, BudgetTerms, OfferTerms, WindowRequest
from shared.redis_connection import make_redis
from shared.redis_state import StateGuard
from shared.settings import Settings

__all__ = ["BudgetBench", "run", "section", "write_section"]


@dataclass(slots=True)
class Mode:
    name: str
    calls: int  # script calls
    decisions: int  # reservations made (one per call, or per request of a batch)
    seconds: float
    server_us_per_call: float

    @property
    def per_s(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_decision(self) -> float:
        return self.server_us_per_call * self.calls / self.decisions if self.decisions else 0.0


@dataclass(slots=True)
class BudgetBench:
    where: str
    redis_version: str
    replicas: int
    modes: list[Mode] = field(default_factory=list)

    def best(self, prefix: str) -> Mode | None:
        found = [m for m in self.modes if m.name.startswith(prefix)]
        return max(found, key=lambda m: m.per_s) if found else None

    def ceiling_per_s(self) -> float:
        """Decisions (each a reservation on the hot key) per second one Redis core can run through the
        book's decide script: the lowest server time per decision measured."""
        times = [m.server_us_per_decision for m in self.modes if m.server_us_per_decision > 0]
        return 1e6 / min(times) if times else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "modes"},
            "modes": [{**asdict(m), "per_s": round(m.per_s), "server_us_per_decision": round(m.server_us_per_decision, 2)} for m in self.modes],
            "ceiling_per_s": round(self.ceiling_per_s()),
        }


async def _evalsha_stats(redis: Redis) -> tuple[int, float]:
    stats = await redis.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {})
    return int(entry.get("calls", 0)), float(entry.get("usec", 0))


async def _timed(redis: Redis, name: str, decisions: int, work: Any) -> Mode:
    calls0, usec0 = await _evalsha_stats(redis)
    began = time.perf_counter()
    await work()
    seconds = time.perf_counter() - began
    calls1, usec1 = await _evalsha_stats(redis)
    calls = calls1 - calls0
    return Mode(name, calls, decisions, round(seconds, 3), round((usec1 - usec0) / calls, 2) if calls else 0.0)


# Every reservation on one budget (the hot key): a segment's budget of one period, never exhausted here.
HOT_BUDGET = "individual/2026-11"
TERMS = {HOT_BUDGET: BudgetTerms(exposure=10**13, expected_loss=10**11, round_to=100, min_limit=500)}


def _request(record: str, customer: str, now_ms: int) -> WindowRequest:
    return WindowRequest(
        record=record, customer=customer, segment="individual", decision_id=str(uuid.uuid4()),
        application_id=record, policy_version="default@1", decided_at_ms=now_ms,
        budget=HOT_BUDGET,
        offer=OfferTerms(limit=20_000, el_rate=0.0216, margin=0.0379, apr="0.1095", valid_until_ms=now_ms + 30 * 86_400_000),
        region="CN-SH", channel="app", locale="zh-CN", model_id="german-woe@1",
    )  # fmt: skip


class _Replayable(StateGuard):
    """The book's guard, keeping the last script call it sent (sha and arguments) for redis-benchmark to replay."""

    call: tuple[str, tuple[Any, ...]] | None = None

    async def _plainly(self, sha: str, args: tuple[Any, ...]) -> Any:
        self.call = (sha, args)
        return await super()._plainly(sha, args)


async def _book(redis: Redis, prefix: str, generation: str) -> RedisBook:
    """An empty book under `prefix`, installed and adopted as a policy process does at start."""
    book = RedisBook(redis, prefix)
    book.guard = _Replayable(redis, prefix, "book")
    await book.install(BookState(), generation, now_ms=int(time.time() * 1000))
    book.guard.adopt(generation)
    return book


async def _forget(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=5000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


async def _allocate(redis: Redis, prefix: str, batch: int, callers: int, seconds: float) -> Mode:
    book = await _book(redis, prefix, f"bb{batch}x{callers}")
    now_ms = int(time.time() * 1000)
    made = 0

    async def caller(c: int) -> None:
        nonlocal made
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            requests = [_request(f"app_bb{c}_{n + i:08d}", f"cus_bb{c}_{n + i:09d}", now_ms) for i in range(batch)]
            await book.post(requests, TERMS)
            n += batch
            made += batch

    async def work() -> None:
        await asyncio.gather(*(caller(c) for c in range(callers)))

    name = f"book decide script, {batch} per call, {callers} caller{'s' if callers > 1 else ''}"
    mode = await _timed(redis, name, 0, work)
    mode.decisions = made
    await _forget(redis, prefix)
    return mode


async def _replayed_call(redis: Redis, prefix: str) -> list[str]:
    """The decide script call `RedisBook.post` makes for one request, its ids left for redis-benchmark to draw."""
    book = await _book(redis, prefix, "bbrb")
    template = _request("app_rb___rand_int__", "cus_rb___rand_int__", int(time.time() * 1000))
    await book.post([template], TERMS)
    assert isinstance(book.guard, _Replayable) and book.guard.call is not None
    sha, args = book.guard.call
    return ["EVALSHA", sha, "0", *(a.decode() if isinstance(a, bytes) else str(a) for a in args)]


def _redis_benchmark(host: str, port: int, command: list[str], requests: int) -> Mode | None:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    options = [tool, "-h", host, "-p", str(port), "-n", str(requests), "-c", "2", "-P", "100", "-r", "100000000", "-q"]
    with _sync(host, port) as sync:
        before = sync.info("commandstats").get("cmdstat_evalsha", {})
        result = subprocess.run([*options, *command], capture_output=True, text=True, timeout=300)
        after = sync.info("commandstats").get("cmdstat_evalsha", {})
    match = re.search(r"([\d.]+) requests per second", result.stdout)
    if not match:
        return None
    calls = int(after.get("calls", 0)) - int(before.get("calls", 0))
    usec = float(after.get("usec", 0)) - float(before.get("usec", 0))
    per_s = float(match.group(1))
    return Mode("book decide script from redis-benchmark (C), 1 per call, 100 pipelined, 2 connections", requests, requests, round(requests / per_s, 3), round(usec / calls, 2) if calls else 0.0)


def _sync(host: str, port: int) -> Any:
    from redis import Redis as SyncRedis

    return SyncRedis(host=host, port=port, decode_responses=True)


async def measure(settings: Settings, seconds: float = 5.0) -> BudgetBench:
    run = uuid.uuid4().hex[:6]
    prefix = f"cw:bb{run}:"
    redis = make_redis(settings, socket_timeout=30)
    try:
        info = await redis.info("replication")
        server = await redis.info("server")
        pool: Any = redis.connection_pool
        if hasattr(pool, "get_master_address"):  # through Sentinel: the master it names
            host, port = await pool.get_master_address()
        else:
            host, port = pool.connection_kwargs.get("host", "127.0.0.1"), int(pool.connection_kwargs.get("port", 6379))
        report = BudgetBench(where=f"{host}:{port}", redis_version=str(server.get("redis_version")), replicas=int(info.get("connected_slaves", 0)))
        for batch, callers in ((1, 1), (100, 1), (500, 1), (1, 4), (100, 4)):
            report.modes.append(await _allocate(redis, f"{prefix}b{batch}x{callers}:", batch, callers, seconds))
        command = await _replayed_call(redis, f"{prefix}rb:")
        # About `seconds` of the server's time at the best rate measured above, and bounded (memory).
        requests = min(200_000, max(1_000, int(seconds * report.ceiling_per_s())))
        measured = await asyncio.to_thread(_redis_benchmark, host, port, command, requests)
        if measured is not None:
            report.modes.append(measured)
        return report
    finally:
        await _forget(redis, prefix)
        await redis.aclose()


def run(settings: Settings, seconds: float = 5.0) -> BudgetBench:
    return asyncio.run(measure(settings, seconds))


def section(report: BudgetBench) -> str:
    ceiling = report.ceiling_per_s()
    lines = [
        "## One segment's budget on one Redis: reservations per second",
        "",
        f"Measured by `creditwindow dev budget-bench` on Redis {report.redis_version} at {report.where} ({report.replicas} replica"
        f"{'s' if report.replicas != 1 else ''} attached, append-only file on): the book's own decide script, every decision",
        f"opening a window and so reserving its limit on the same hash `budget:{HOT_BUDGET}`; see `devtools/budget_bench.py`.",
        "The machine is shared (2 CPUs): treat the figures as an order of magnitude.",
        "",
        "| mode | decisions (reservations) | seconds | decisions/s | Redis µs per script call | Redis µs per decision |",
        "|---|---|---|---|---|---|",
    ]
    for m in report.modes:
        lines.append(f"| {m.name} | {m.decisions:,} | {m.seconds} | {m.per_s:,.0f} | {m.server_us_per_call} | {m.server_us_per_decision:.2f} |")
    lines += [
        "",
        "The ceiling: Redis runs one script at a time on one core, and the fleet reserves inside the book's whole decide",
        "script (window, sequence, record and budget in one atomic call), so the least server time per decision above,",
        f"**{1e6 / ceiling if ceiling else 0:.1f} µs**, caps one instance (and so one hot budget key) at about **{ceiling:,.0f} decisions/s**,",
        "whatever the number of callers or policy replicas; the Python callers reach less (their own CPU and the round trips).",
        "`docs/operations.md` says what that means for the fleet and what to do past it.",
        "",
    ]
    return "\n".join(lines)


def write_section(report: BudgetBench, path: Path) -> None:
    """Put the measurement into `path` between its markers (kept when `creditwindow bench` rewrites the page)."""
    replace_section(path, section(report), BUDGET_BEGIN, BUDGET_END)
