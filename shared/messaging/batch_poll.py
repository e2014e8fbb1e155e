"""A fix to FastStream 0.7's batch poll, applied explicitly where a broker is built (`make_broker`).

aiokafka's `getmany` already waits up to the batch timeout and returns as soon as records arrive;
FastStream 0.7's `BatchSubscriber.get_msg` then sleeps the same timeout again after an empty poll,
which adds up to that much latency to the next record on every idle hop. `skip_idle_sleep` swaps in
the same call without the extra sleep. `tests/unit/test_batch_poll.py` is pinned to the FastStream
version: when FastStream changes, it fails and says to check whether the fix is still needed.
"""

from __future__ import annotations

from itertools import chain
from time import perf_counter
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream.kafka.subscriber.usecase import BatchSubscriber

from shared.messaging.stages import cycle

__all__ = ["PATCHED_FASTSTREAM", "original_poll", "skip_idle_sleep"]

# The FastStream versions whose batch poll sleeps after an empty poll (checked by the test).
PATCHED_FASTSTREAM = "0.7."
_ORIGINAL = BatchSubscriber.get_msg


async def _poll_batch(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
    # aiokafka's getmany already waits up to the timeout and returns as soon as records arrive;
    # FastStream 0.7 then sleeps the same timeout again after an empty poll, which only adds that
    # much latency to the next record on every idle hop. Same call, without the extra sleep.
    loop = cycle()  # the poll wait and the time since the last batch, for the batch's stages (stages.py)
    started = perf_counter()
    if loop.done_at is not None:
        loop.after, loop.done_at = started - loop.done_at, None
    if loop.idle_since is None:
        loop.idle_since = started
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    if not messages:
        return ()
    loop.polled_at = perf_counter()
    loop.waited, loop.idle_since = loop.polled_at - loop.idle_since, None
    return tuple(chain(*messages.values()))


def skip_idle_sleep() -> None:
    """Use `_poll_batch` for every batch subscriber (idempotent)."""
    BatchSubscriber.get_msg = _poll_batch  # type: ignore[method-assign]


def original_poll() -> Any:
    """FastStream's own `get_msg`, for the test that checks the fix is still needed."""
    return _ORIGINAL

