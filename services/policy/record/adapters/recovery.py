"""Noticing a lost book and rebuilding it from the log, safely while traffic flows.

Redis can lose writes: a flush, a restart without its append-only file, a failover to a replica that
missed the last writes. The book is guarded (`shared/redis_state.py`): every script refuses a book
that is not the one this process works on, the process stops deciding (`/health` not ready, the
batch waits on Kafka) and recovery runs: it adopts a complete book another replica installed, or
rebuilds one under the fence (no script runs meanwhile, in any replica):

1. retire the book's generation;
2. wait a grace period, so that decisions published just before the loss reach the topic (not when
   the topic is empty: a new fleet has nothing in flight);
3. read `credit.windows` and `credit.drawdowns` to their end offsets, and `credit.scores` for
   maintenance deferrals still waiting; derive the book with its own rules (`rebuild.derive`);
4. write it and mark it complete with a new generation; lift the fence.

A rebuild that dies half way leaves no generation: the next one starts again. A decision decided
but not yet published when the book was lost is not in the log: its score is decided again when its
batch is redelivered, and it was never told, so nothing is doubled.

Automatic, because the fleet must resume by itself at three in the morning; `creditwindow cache
rebuild --yes` runs the same protocol by hand.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog

from services.policy.record.adapters.redis_references import RedisReferences
from services.policy.record.rebuild import deferred_since, derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.clock import Clock
from shared.contracts import Decision, DrawdownOutcome, RepaymentApplied, ScoreComputed
from shared.messaging import ServiceHealth
from shared.messaging.topic_io import end_offsets, offsets_at, read_to_end
from shared.redis_state import Recovery
from shared.settings import Settings

__all__ = ["book_recovery", "read_book_log", "rebuild_into"]

log = structlog.get_logger("creditwindow.policy")


def _book_log(records: list[Any]) -> tuple[list[Decision], list[DrawdownOutcome | RepaymentApplied]]:
    decisions = [r.event for r in records if isinstance(r.event, Decision)]
    movements = [r.event for r in records if isinstance(r.event, DrawdownOutcome | RepaymentApplied)]
    return decisions, movements


async def read_book_log(settings: Settings) -> tuple[list[Decision], list[DrawdownOutcome | RepaymentApplied]]:
    """The book's log to its end offsets: every decision, and every drawdown outcome and repayment."""
    topics = settings.topics
    return _book_log(await read_to_end(settings, [topics.windows, topics.drawdowns]))


async def rebuild_into(
    book: RedisBook, settings: Settings, generation: str, *, grace_s: float, clock: Clock, references: RedisReferences | None = None
) -> None:
    """Derive the book from the log and install it as `generation` (the caller holds the fence); the
    index of decision references too (every decision, with the time it was published)."""
    began = time.monotonic()
    if any((await end_offsets(settings, [settings.topics.windows, settings.topics.drawdowns])).values()):
        await asyncio.sleep(grace_s)  # publications in flight when the book was lost land on the topic first
    records = await read_to_end(settings, [settings.topics.windows, settings.topics.drawdowns])
    decisions, movements = _book_log(records)
    state = derive(decisions, await _deferred_scores(settings, decisions), movements)
    if references is not None:
        await references.install((r.event, r.timestamp_ms) for r in records if isinstance(r.event, Decision))
    await book.install(state, generation, now_ms=int(clock.now().timestamp() * 1000))
    log.info(
        "book_rebuilt", generation=generation, decisions=len(decisions), customers=len(state.windows),
        deferrals=len(state.deferred), balances=len(state.balances), seconds=round(time.monotonic() - began, 3),
    )  # fmt: skip


async def _deferred_scores(settings: Settings, decisions: list[Decision]) -> dict[uuid.UUID, ScoreComputed]:
    """The scores of maintenance closures that may still wait, read from the oldest such closure on."""
    since = deferred_since(decisions)
    if since is None:
        return {}
    start = await offsets_at(settings, [settings.topics.scores], int(since.timestamp() * 1000) - 60_000)
    records = await read_to_end(settings, [settings.topics.scores], start=start)
    return {r.event.event_id: r.event for r in records if isinstance(r.event, ScoreComputed)}


def book_recovery(
    book: RedisBook,
    settings: Settings,
    health: ServiceHealth,
    *,
    clock: Clock,
    grace_s: float | None = None,
    references: RedisReferences | None = None,
) -> Recovery:
    """The policy service's recovery: adopt the book in Redis, or rebuild it from `credit.windows`."""
    grace = settings.book_rebuild_grace_s if grace_s is None else grace_s
    return Recovery(
        book.guard, health, lambda generation: rebuild_into(book, settings, generation, grace_s=grace, clock=clock, references=references),
        owner=settings.instance_id or "policy",
    )  # fmt: skip
