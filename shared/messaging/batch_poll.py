"""A fix to FastStream 0.7's batch poll, applied explicitly where a broker is built (`make_broker`).

aiokafka's `getmany` already waits up to the batch timeout and returns as soon as records arrive;
FastStream 0.7's `BatchSubscriber.get_msg` then sleeps the same timeout again after an empty poll,
which adds up to that much latency to the next record on every idle hop. `skip_idle_sleep` swaps in
the same call without the extra sleep. `tests/unit/test_batch_poll.py` is pinned to the FastStream
version: when FastStream changes, it fails and says to check whether the fix is still needed.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream.kafka.subscriber.usecase import BatchSubscriber

__all__ = ["PATCHED_FASTSTREAM", "original_poll", "skip_idle_sleep"]

# The FastStream versions whose batch poll sleeps after an empty poll (checked by the test).
PATCHED_FASTSTREAM = "0.7."
_ORIGINAL = BatchSubscriber.get_msg


async def _poll_batch(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
    # aiokafka's getmany already waits up to the timeout and returns as soon as records arrive;
    # FastStream 0.7 then sleeps the same timeout again after an empty poll, which only adds that
    # much latency to the next record on every idle hop. Same call, without the extra sleep.
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    return tuple(chain(*messages.values()))


def skip_idle_sleep() -> None:
    """Use `_poll_batch` for every batch subscriber (idempotent)."""
    BatchSubscriber.get_msg = _poll_batch  # type: ignore[method-assign]


def original_poll() -> Any:
    """FastStream's own `get_msg`, for the test that checks the fix is still needed."""
    return _ORIGINAL

