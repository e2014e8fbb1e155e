"""Where a batch's time goes: records per batch, seconds per stage, and the event loop's lag.

One consumer's loop is a cycle: poll for records, hand them to the handler, run the batch, go back to
the poll. Each stage's seconds are summed per consumer (`creditwindow_batch_stage_seconds_total`),
beside the records per batch (`creditwindow_batch_records`), so a reader (the benchmark) divides the
sums by the batches of a phase:

- `poll`: waiting in `getmany` until records come (the fetch wait: idle, or the fetch still out);
- `framework`: from `getmany` returning to the handler starting (FastStream: parse, middlewares);
- `decode`: records into events (`intake`), dead letters of the undecodable included;
- `logic`: the handler's work, less the three below;
- `redis`: awaiting Redis replies inside the batch (the server, the socket and the loop);
- `encode`: events into records (JSON, headers) in the outbox;
- `produce`: from records handed to the producer until the broker acknowledged every one;
- `observe`: metrics and log lines after the work;
- `after`: from the handler returning to the next poll (FastStream's acknowledgement, middlewares);
- `commit`: a background commit's round trip. It overlaps the next batches: not part of the cycle.

The stages are timed with a monotonic clock and kept in a context variable of the consumer's task, so
the outbox and the Redis client add to the batch they run for, and nothing else does. The cost is a
few clock reads per batch and per Redis round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["STAGES", "BatchStages", "Cycle", "StageClock", "add", "cycle", "watch_loop_lag"]

STAGES: Final = ("poll", "framework", "decode", "logic", "redis", "encode", "produce", "observe", "after", "commit")
BATCH_SIZES: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
LAG_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(slots=True)
class Cycle:
    """A consumer loop's clock, kept in its task across batches (set by the poll, read by the batch)."""

    idle_since: float | None = None  # the first poll of a streak of empty polls
    polled_at: float = 0.0  # when `getmany` returned the batch's records
    waited: float = 0.0  # the batch's poll wait, empty polls before it included
    done_at: float | None = None  # when the previous batch's handler returned
    after: float = 0.0  # from the previous batch's end to this batch's first poll


@dataclass(slots=True)
class StageClock:
    """The seconds one batch spent in the stages timed from inside it (Redis, encode, produce)."""

    redis: float = 0.0
    encode: float = 0.0
    produce: float = 0.0


_CYCLE: ContextVar[Cycle | None] = ContextVar("creditwindow_cycle", default=None)
_CLOCK: ContextVar[StageClock | None] = ContextVar("creditwindow_stage_clock", default=None)


def cycle() -> Cycle:
    """This task's consumer cycle (made on first use)."""
    current = _CYCLE.get()
    if current is None:
        current = Cycle()
        _CYCLE.set(current)
    return current


def add(stage: str, seconds: float) -> None:
    """Add `seconds` to `stage` (redis, encode or produce) of the batch this task runs, if any."""
    clock = _CLOCK.get()
    if clock is not None:
        setattr(clock, stage, getattr(clock, stage) + seconds)


class BatchStages:
    """The stage metrics of a process's consumers (see the module); without a registry, nothing is kept."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._seconds: Counter | None = None
        self._records: Histogram | None = None
        if registry is not None:
            self._seconds = Counter(
                "creditwindow_batch_stage_seconds", "Seconds a consumer's batches spent in each stage (see shared/messaging/stages.py).",
                ["consumer", "stage"], registry=registry,
            )  # fmt: skip
            self._records = Histogram(
                "creditwindow_batch_records", "Records per batch a consumer handled.", ["consumer"], buckets=BATCH_SIZES, registry=registry
            )

    def begin(self) -> tuple[StageClock, float]:
        """A batch starts: its clock, made current for this task, and the time it started."""
        clock = StageClock()
        _CLOCK.set(clock)
        return clock, perf_counter()

    def end(self, consumer: str, records: int, clock: StageClock, started: float, decoded: float, worked: float) -> None:
        """A batch ended: record its stages (`decoded`, `worked`: when decoding and the work ended)."""
        ended = perf_counter()
        _CLOCK.set(None)
        loop = cycle()
        loop.done_at = ended
        if self._seconds is None or self._records is None:
            return
        self._records.labels(consumer).observe(records)
        inside = clock.redis + clock.encode + clock.produce
        for stage, seconds in (
            ("poll", loop.waited),
            ("framework", max(0.0, started - loop.polled_at) if loop.polled_at else 0.0),
            ("after", loop.after),
            ("decode", decoded - started),
            ("logic", max(0.0, worked - decoded - inside)),
            ("redis", clock.redis),
            ("encode", clock.encode),
            ("produce", clock.produce),
            ("observe", ended - worked),
        ):
            self._seconds.labels(consumer, stage).inc(seconds)
        loop.waited = loop.after = 0.0

    def committed(self, consumer: str, seconds: float) -> None:
        if self._seconds is not None:
            self._seconds.labels(consumer, "commit").inc(seconds)


async def watch_loop_lag(registry: CollectorRegistry, *, every_s: float = 0.05) -> None:
    """Until cancelled: how late the event loop wakes a task that slept `every_s` (a busy or starved loop)."""
    lag = Histogram("creditwindow_event_loop_lag_seconds", "How late the event loop ran a timer that was due.", buckets=LAG_BUCKETS, registry=registry)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            due = loop.time() + every_s
            await asyncio.sleep(every_s)
            lag.observe(max(0.0, loop.time() - due))
