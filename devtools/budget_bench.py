"""`creditwindow dev budget-bench`: how many budget reservations one Redis takes per second.

Every window a segment opens reserves its limit on one hash, `budget:<segment>`, in the book's Lua
script (services/policy/windows/adapters/redis_book.py): a hot key. Redis runs scripts one at a time on one core, so
that key's ceiling is the ceiling of the whole instance, and only more Redis instances (each holding
a share of a segment's budget) raise it. This measures, on the Redis of the settings (the local
platform's, or with `--cluster` the cluster's master through Sentinel, its replica attached):

1. the book's real decide script (`RedisBook.post`), every request opening a window in the same
   segment, in batches of 1, 100 and 500 requests per call, from one client: decisions per second,
   and the server's time per decision (`INFO commandstats`, evalsha);
2. a reservation alone (idempotent per application, then HINCRBY on the hot hash), one script call
   per application, 100 calls pipelined per round trip, from one and from four clients;
3. the same script from `redis-benchmark` (Debian's C client, 2 connections, 100 pipelined, random
   application ids), the server-side ceiling without Python in the way.

Only 127.0.0.1; bounded (a few seconds per mode); its keys are deleted afterwards.
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
from shared.settings import Settings

__all__ = ["BudgetBench", "run", "section", "write_section"]

# One application's reservation: idempotent (a second call for the same application changes nothing),
# then the budget's room checked and the limit reserved on the segment's hash. KEYS: budget, claim.
RESERVE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', 600000) == false then return 0 end
local reserved = tonumber(redis.call('HGET', KEYS[1], 'exposure') or '0')
if reserved + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
redis.call('HINCRBY', KEYS[1], 'exposure', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'el_fen', ARGV[3])
return 1
"""


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
        """Reservations per second one Redis core can run: the lowest server time per reservation measured."""
        times = [m.server_us_per_decision for m in self.modes if m.server_us_per_decision > 0]
        return 1e6 / min(times) if times else 0.0

    def decide_ceiling_per_s(self) -> float:
        """Decisions per second one Redis core can run through the book's whole decide script (window,
        sequence, record and budget in one call): the fleet's real ceiling on one instance."""
        times = [m.server_us_per_decision for m in self.modes if m.name.startswith("book decide") and m.server_us_per_decision > 0]
        return 1e6 / min(times) if times else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "modes"},
            "modes": [{**asdict(m), "per_s": round(m.per_s), "server_us_per_decision": round(m.server_us_per_decision, 2)} for m in self.modes],
            "ceiling_per_s": round(self.ceiling_per_s()),
            "decide_ceiling_per_s": round(self.decide_ceiling_per_s()),
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


def _request(n: int, run: str, now_ms: int) -> WindowRequest:
    application = f"app_bb{run}_{n:08d}"
    return WindowRequest(
        record=application, customer=f"cus_bb{run}_{n:09d}", segment="individual", decision_id=str(uuid.uuid4()),
        application_id=application, policy_version="default@1", decided_at_ms=now_ms,
        budget=HOT_BUDGET,
        offer=OfferTerms(limit=20_000, el_rate=0.0216, margin=0.0379, apr="0.1095", valid_until_ms=now_ms + 30 * 86_400_000),
        region="CN-SH", channel="app", locale="zh-CN", model_id="german-woe@1",
    )  # fmt: skip


async def _allocate(redis: Redis, prefix: str, run: str, batch: int, seconds: float) -> Mode:
    book = RedisBook(redis, prefix)
    await book.install(BookState(), f"bb{batch}", now_ms=int(time.time() * 1000))
    book.guard.adopt(f"bb{batch}")
    now_ms = int(time.time() * 1000)
    made = 0

    async def work() -> None:
        nonlocal made
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await book.post([_request(made + i, f"{run}{batch}", now_ms) for i in range(batch)], TERMS)
            made += batch

    mode = await _timed(redis, f"book decide script, {batch} per call", 0, work)
    mode.decisions = made
    return mode


async def _reserve(redis: Redis, prefix: str, run: str, clients: int, seconds: float, pipeline: int = 100) -> Mode:
    sha = await redis.script_load(RESERVE)  # loaded once; each call below is an EVALSHA
    made = 0

    async def client(c: int) -> None:
        nonlocal made
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            pipe = redis.pipeline(transaction=False)
            for _ in range(pipeline):
                n += 1
                pipe.evalsha(sha, 2, f"{prefix}budget:{HOT_BUDGET}", f"{prefix}claim:{run}{c}:{n}", 20_000, 10**15, 43_200)
            replies = await pipe.execute()
            if len(replies) != pipeline:
                raise RuntimeError(f"the pipeline answered {len(replies)} of {pipeline} reservations")
            made += pipeline

    async def work() -> None:
        await asyncio.gather(*(client(c) for c in range(clients)))

    mode = await _timed(redis, f"reservation script, {pipeline} pipelined, {clients} client{'s' if clients > 1 else ''}", 0, work)
    mode.decisions = mode.calls = made
    return mode


def _redis_benchmark(host: str, port: int, prefix: str, sha: str, requests: int = 300_000) -> Mode | None:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    command = [
        tool, "-h", host, "-p", str(port), "-n", str(requests), "-c", "2", "-P", "100", "-r", "100000000", "-q",
        "EVALSHA", sha, "2", f"{prefix}budget:{HOT_BUDGET}", f"{prefix}claim:rb:__rand_int__", "20000", str(10**15), "43200",
    ]  # fmt: skip
    with _sync(host, port) as sync:
        before = sync.info("commandstats").get("cmdstat_evalsha", {})
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        after = sync.info("commandstats").get("cmdstat_evalsha", {})
    match = re.search(r"([\d.]+) requests per second", result.stdout)
    if not match:
        return None
    calls = int(after.get("calls", 0)) - int(before.get("calls", 0))
    usec = float(after.get("usec", 0)) - float(before.get("usec", 0))
    per_s = float(match.group(1))
    return Mode("reservation script from redis-benchmark (C), 100 pipelined, 2 connections", requests, requests, round(requests / per_s, 3), round(usec / calls, 2) if calls else 0.0)


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
        for batch in (1, 100, 500):
            report.modes.append(await _allocate(redis, f"{prefix}b{batch}:", run, batch, seconds))
        for clients in (1, 4):
            report.modes.append(await _reserve(redis, prefix, run, clients, seconds))
        sha = await redis.script_load(RESERVE)
        measured = await asyncio.to_thread(_redis_benchmark, host, port, prefix, sha)
        if measured is not None:
            report.modes.append(measured)
        return report
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=5000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()


def run(settings: Settings, seconds: float = 5.0) -> BudgetBench:
    return asyncio.run(measure(settings, seconds))


def section(report: BudgetBench) -> str:
    ceiling, decide = report.ceiling_per_s(), report.decide_ceiling_per_s()
    lines = [
        "## One segment's budget on one Redis: reservations per second",
        "",
        f"Measured by `creditwindow dev budget-bench` on Redis {report.redis_version} at {report.where} ({report.replicas} replica"
        f"{'s' if report.replicas != 1 else ''} attached, append-only file on), every reservation on the same hash",
        f"`budget:{HOT_BUDGET}`; see `devtools/budget_bench.py`. The machine is shared (2 CPUs): treat the figures as an",
        "order of magnitude.",
        "",
        "| mode | reservations | seconds | reservations/s | Redis µs per script call | Redis µs per reservation |",
        "|---|---|---|---|---|---|",
    ]
    for m in report.modes:
        lines.append(f"| {m.name} | {m.decisions:,} | {m.seconds} | {m.per_s:,.0f} | {m.server_us_per_call} | {m.server_us_per_decision:.2f} |")
    lines += [
        "",
        "The ceiling: Redis runs one script at a time on one core, so the least server time per reservation above,",
        f"**{1e6 / ceiling if ceiling else 0:.1f} µs**, caps one instance (and so one hot budget key) at about **{ceiling:,.0f} reservations/s**",
        "whatever the number of clients; the Python clients reach less (their own CPU and the round trips).",
        "That is the bare reservation. The fleet reserves inside the book's whole decide script (window, sequence, record",
        f"and budget in one atomic call), at **{1e6 / decide if decide else 0:.0f} µs** per decision at best above: one Redis core,",
        f"and so one hot budget key, decides at most about **{decide:,.0f} decisions/s**, whatever the number of policy replicas.",
        "`docs/operations.md` says what that means for the fleet and what to do past it.",
        "",
    ]
    return "\n".join(lines)


def write_section(report: BudgetBench, path: Path) -> None:
    """Put the measurement into `path` between its markers (kept when `creditwindow bench` rewrites the page)."""
    replace_section(path, section(report), BUDGET_BEGIN, BUDGET_END)
