"""`creditwindow dev redis-memory`: how much Redis the fleet's state takes per 100,000 customers, measured.

One application per customer goes through the real book (the Lua script, in batches as the policy
service sends them: 60% of windows opened, the rest closed) and the real notification ledger (each
decision claimed, its notice remembered and marked published), in a namespace of its own on the
local Redis. `used_memory` is read before, after the book, after the ledger, and once more after
what retention expires (closed decision records and windows, told notices) is taken away: what the
fleet holds for good is the open windows, the budgets and one sequence per customer. The namespace
is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from services.notification.redis_ledger import RedisLedger
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.model import BookState, BudgetTerms, OfferTerms, WindowRequest
from shared.redis_state import StateGuard
from shared.settings import Settings

__all__ = ["MemoryReport", "kept_section", "measure", "replace_section", "write_section"]

BATCH = 500


@dataclass(frozen=True, slots=True)
class MemoryReport:
    customers: int
    all_bytes: int  # right after deciding and telling
    ledger_kept_bytes: int  # the notification ledger's share of what is kept
    kept_bytes: int  # what is left once retention has expired what it expires
    keys_after: int
    keys_kept: int
    seconds: float

    def per_100k(self, value: int) -> float:
        return value / self.customers * 100_000 / 2**20


async def _used(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


TERMS = BudgetTerms(exposure=10**12, expected_loss=10**10, round_to=100, min_limit=500)


def _request(n: int, run: str, now_ms: int) -> WindowRequest:
    application = f"app_mem{run}_{n:08d}"
    opened = n % 5 < 3
    offer = OfferTerms(limit=30_000, el_rate=0.0216, margin=0.0379, apr="0.1095", valid_until_ms=now_ms + 30 * 86_400_000) if opened else None
    return WindowRequest(
        record=application, customer=f"cus_mem{run}_{n:09d}", segment="individual", decision_id=str(uuid.uuid4()),
        application_id=application, policy_version="default@1", decided_at_ms=now_ms,
        budget="individual/2026-11",
        offer=offer, category="" if opened else "credit", reason="" if opened else "score_below_cutoff",
        region="CN-SH", channel="app", locale="zh-CN", model_id="german-woe@1+eb436e95",
    )  # fmt: skip


async def measure(settings: Settings, customers: int = 100_000) -> MemoryReport:
    run = uuid.uuid4().hex[:6]
    prefix = f"cw:mem{run}:"
    redis = Redis.from_url(settings.redis_dsn)
    began = time.monotonic()
    try:
        book = RedisBook(redis, prefix, retention_ms=settings.book_retention_ms)
        await book.install(BookState(), "m1", now_ms=int(time.time() * 1000))
        book.guard.adopt("m1")
        guard = StateGuard(redis, prefix, "notify")
        pipe = redis.pipeline(transaction=False)
        guard.mark_complete(pipe, "m1")
        await pipe.execute()
        guard.adopt("m1")
        ledger = RedisLedger(redis, prefix, guard)
        start = await _used(redis)
        now_ms = int(time.time() * 1000)
        notice = b'{"event_type":"NotificationSent","schema_version":1,' + b'"body":"' + b"x" * 900 + b'"}'
        for first in range(0, customers, BATCH):
            requests = [_request(n, run, now_ms) for n in range(first, min(customers, first + BATCH))]
            answers = await book.post(requests, {"individual/2026-11": TERMS})
            await book.remember([(r.record, b'{"event_type":"WindowClosed"}' + b" " * 1_400) for r in requests])
            await book.mark_published([r.record for r in requests])
            claims = [(r.decision_id, r.customer, a.seq) for r, a in zip(requests, answers, strict=True)]
            await ledger.claim(claims)
            await ledger.remember([(d, notice) for d, _, _ in claims])
            await ledger.mark_published([d for d, _, _ in claims])
        after_all = await _used(redis)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=5000)]
        keys_after = len(keys)
        expiring = []
        for i in range(0, len(keys), 5000):
            pipe = redis.pipeline(transaction=False)
            for key in keys[i : i + 5000]:
                pipe.pttl(key)
            expiring += [key for key, ttl in zip(keys[i : i + 5000], await pipe.execute(), strict=True) if ttl > 0]
        for i in range(0, len(expiring), 1000):
            await redis.delete(*expiring[i : i + 1000])
        kept = await _used(redis)
        keys_kept = keys_after - len(expiring)
        notify = [k async for k in redis.scan_iter(match=f"{prefix}n*", count=5000)]
        before_notify = await _used(redis)
        for i in range(0, len(notify), 1000):
            await redis.delete(*notify[i : i + 1000])
        ledger_kept = before_notify - await _used(redis)
        return MemoryReport(
            customers=customers,
            all_bytes=after_all - start,
            ledger_kept_bytes=ledger_kept,
            kept_bytes=kept - start,
            keys_after=keys_after,
            keys_kept=keys_kept,
            seconds=round(time.monotonic() - began, 1),
        )
    finally:
        doomed = [k async for k in redis.scan_iter(match=f"{prefix}*", count=5000)]
        for i in range(0, len(doomed), 1000):
            await redis.delete(*doomed[i : i + 1000])
        await redis.aclose()


def section(report: MemoryReport) -> str:
    mib = report.per_100k
    return "\n".join(
        [
            "## Redis memory per 100,000 customers",
            "",
            f"Measured by `creditwindow dev redis-memory --customers {report.customers:,}` on the local Redis: one application per",
            "customer through the real book (60% opened) and the real notification ledger; see `devtools/redis_memory.py`.",
            "",
            "| what Redis holds | MiB per 100,000 customers |",
            "|---|---|",
            f"| everything, right after deciding and telling ({report.keys_after:,} keys) | {mib(report.all_bytes):.1f} |",
            f"| what stays once retention has expired closed records, closed windows and notices ({report.keys_kept:,} keys) | {mib(report.kept_bytes):.1f} |",
            f"| ... of which the notification ledger (one told sequence per customer) | {mib(report.ledger_kept_bytes):.1f} |",
            "",
            "Closed and superseded decision records and closed windows expire after `CW_BOOK_RETENTION_DAYS` (default 30,",
            "longer than the topics' 7 days, so a redelivered score still finds its decision), told notices after 30 days.",
            "Open windows, the budgets and one decision sequence per customer (`seq:`, and `nseq:` for the ledger) are",
            "kept for good: a sequence must never go back, or a new decision would look older than one already told.",
            "",
        ]
    )


BEGIN, END = "<!-- BEGIN redis-memory -->", "<!-- END redis-memory -->"


def write_section(report: MemoryReport, path: Path) -> None:
    """Put the measurement into `path` between its markers (kept when the fault suite rewrites the page)."""
    replace_section(path, section(report), BEGIN, END)


def kept_section(path: Path, begin: str = BEGIN, end: str = END) -> str:
    """The section of `path` between `begin` and `end`, if any (for a writer that replaces the rest of the page)."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    start, stop = text.find(begin), text.find(end)
    return text[start : stop + len(end)] if start >= 0 and stop >= 0 else ""


def replace_section(path: Path, block: str, begin: str, end: str) -> None:
    """Put `block` into `path` between `begin` and `end` (appended with them when the page has none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marked = f"{begin}\n{block.rstrip()}\n{end}"
    start, stop = text.find(begin), text.find(end)
    text = text[:start] + marked + text[stop + len(end) :] if start >= 0 and stop >= 0 else text.rstrip() + "\n\n" + marked + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run(settings: Settings, customers: int) -> MemoryReport:
    return asyncio.run(measure(settings, customers))
